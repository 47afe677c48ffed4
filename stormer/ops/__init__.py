"""The organizer's services behind the commands: `check`, `check --online`, `doctor`,
`watchdog` (alerts), `report` and `status` rendering, and `rehearse`.

May import: everything below it (dispatch, outbox, channels, notify, the core).
Never: the CLI (the CLI calls these, renders and exits).
"""
