"""The run loop: stage each item before T, fire it at T (never early, each once), record its
outcome. APScheduler is only the alarm clock; the outbox is the truth.

Owns: the dispatcher, the burst engine (one pooled aiohttp session), pacing per rate-limit
domain, sending and reconciling one staged item, and connecting an account to its channel.
May import: outbox, channels, notify, the core, secrets, errors.
Never: the CLI, ops.
"""
