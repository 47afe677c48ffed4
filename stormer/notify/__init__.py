"""Messages to people rather than posts to platforms, through Apprise: the organizer's senders
(e-mail, Telegram, Matrix…), one recipient per message, and Apprise's own logs kept free of
contacts.

May import: the core, secrets, errors; Apprise lazily.
Never: the outbox, the dispatcher, the CLI.
"""
