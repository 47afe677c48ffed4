"""Loading a storm from its folder: the config schema, posts and images, participants and their
contacts, every problem collected with its file and line; and scaffolding a new storm.

Owns: the storm as data (`Storm`, `Account`, `Post`, `Image`, `Participant`, `Contact`).
May import: errors, timezones, lengths and the standard library, pydantic, Babel, pytz.
Never: a database, an HTTP client, Apprise, or a terminal library — loading is pure.

The rest of stormer imports what it needs from here (`from stormer.storm import Storm,
load_storm`); `contacts`, `roster` and `scaffold` are imported by module, where used. Inside:
`loader` (load_storm), `schema` (config.toml and front matter, pydantic), `model` (the loaded
dataclasses), `problems`, `secretscan`, `posts` + `images`, `participants` (the CSV),
`tomlpos` (line numbers in TOML).

Importing this package imports pydantic: `stormer --help` must not, so the command modules
import it inside their functions (or under TYPE_CHECKING).
"""

from stormer.storm.loader import load_storm
from stormer.storm.model import Account, Image, Participant, Post, Storm
from stormer.storm.schema import CONFIG_NAME

__all__ = [
    "CONFIG_NAME",
    "Account",
    "Image",
    "Participant",
    "Post",
    "Storm",
    "load_storm",
]
