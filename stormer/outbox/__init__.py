"""The outbox: the database that is the truth of a storm (DESIGN.md: "the database is the
truth; the scheduler is only an alarm clock").

Owns: the tables and the item state machine (`models`), engines and Alembic (`db`), the
idempotent upsert of planned items (`schedule`), claims, leases and outcomes (`claims`), the
workers' registry and heartbeats (`workers`), and the status read model (`status`).
May import: the core (queue, storm), errors, SQLAlchemy, Alembic.
Never: channels, the dispatcher, Apprise, the CLI.
"""
