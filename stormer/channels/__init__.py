"""Channels: where an item goes. The interface every channel implements (`base.Channel`); one
module and one class per platform (`base.Platform`), their registry (the `stormer.platforms`
entry-point group, built-ins included); the reminder channel (`reminder`: one participant's
reminder through Apprise); and the HTTP plumbing the platforms share (`http`: requests built
sans-I/O, responses mapped to stormer's typed errors).

Owns: what each channel *is* (limits, media rules, idempotency, credential fields, gate, pace)
as class data, and how to stage, publish and reconcile one item.
May import: the core (storm, queue, lengths, richtext, timezones), secrets, errors, notify.
Never: the outbox, the database, the dispatcher, the CLI or a terminal library — a channel is
handed what it needs and returns results or typed errors.
"""
