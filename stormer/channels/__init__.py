"""Channels: where an item goes. One module and one class per platform (`base.Platform`), their
registry (the `stormer.platforms` entry-point group, built-ins included), and the HTTP plumbing
they share (`http`: requests built sans-I/O, responses mapped to stormer's typed errors).

Owns: what each platform *is* (limits, media rules, idempotency, credential fields, pace) as
class data, and how to stage, publish and reconcile one item.
May import: the core (storm, queue, lengths, richtext, timezones), secrets, errors, notify.
Never: the outbox, the database, the dispatcher, the CLI or a terminal library — a channel is
handed what it needs and returns results or typed errors.
"""
