"""Loading a storm from its folder: the config schema, posts and images, participants and their
contacts, every problem collected with its file and line; and scaffolding a new storm.

Owns: the storm as data (`Storm`, `Account`, `Post`, `Participant`, `Contact`).
May import: errors, timezones, lengths and the standard library, pydantic, Babel.
Never: a database, an HTTP client, Apprise, or a terminal library — loading is pure.
"""
