"""Messages to people rather than posts to platforms, through Apprise: the organizer's senders
(e-mail, Telegram, Matrix…), one recipient per message, Apprise's own logs kept free of
contacts, and Apprise's verdict on a contact that is an Apprise URL (`checked_contact`).

May import: the core, secrets, errors; Apprise lazily.
Never: the outbox, the dispatcher, the CLI.
"""
