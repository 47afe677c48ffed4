"""The organizer's services behind the commands: `check`, `check --online`, `doctor`,
`watchdog` (alerts), `report` and `status` rendering, `rehearse`, and the participants file
(`roster`: a sign-up form's import, the listing without contacts, the export).

May import: everything below it (dispatch, outbox, channels, notify, the core).
Never: the CLI (the CLI calls these, renders and exits).
"""
