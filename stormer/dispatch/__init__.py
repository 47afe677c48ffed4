"""The run loop: stage each item before T, fire it at T (never early, each once), record its
outcome. APScheduler is only the alarm clock; the outbox is the truth.

Owns: the dispatcher (its pass, staging, firing, and the tracker of what one worker holds),
the burst engine (one pooled aiohttp session), gates and pacing per channel and account,
sending and reconciling one staged item, and the route of each item to its channel.
May import: outbox, channels, notify, the core, secrets, errors.
Never: the CLI, ops.
"""
