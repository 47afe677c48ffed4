"""Finding platform plugins through the `stormer.platforms` entry-point group, and the kind of
channel an item goes through.

Listing reads names only; a plugin's module is imported the first time it is used.
"""

from __future__ import annotations

import functools
from importlib.metadata import EntryPoint, entry_points
from typing import TYPE_CHECKING

from stormer.channels.base import Platform
from stormer.errors import UnknownPlatform

if TYPE_CHECKING:
    from stormer.channels.reminder import ReminderChannel

GROUP = "stormer.platforms"


@functools.cache
def installed() -> dict[str, EntryPoint]:
    """Installed plugins by name, without importing them."""
    return {ep.name: ep for ep in entry_points(group=GROUP)}


@functools.cache
def get(name: str) -> Platform:
    """An instance of the plugin called `name`."""
    eps = installed()
    if name not in eps:
        raise UnknownPlatform(f"unknown platform {name!r}; installed: {', '.join(sorted(eps))}")
    cls = eps[name].load()
    if not (isinstance(cls, type) and issubclass(cls, Platform)):
        raise UnknownPlatform(
            f"the plugin {name!r} ({eps[name].value}) is not a stormer.platforms.base.Platform"
        )
    return cls()


def channel_class(kind: str) -> type[Platform] | type[ReminderChannel]:
    """The class of channel an item of `kind` ("post", "reminder") goes through, for what it
    says about its items without a plugin loaded (`Channel.label`, `Channel.private`): the
    reminder channel for a reminder; for a post, a platform (`item.platform` names which)."""
    from stormer.channels.reminder import ReminderChannel

    return ReminderChannel if kind == "reminder" else Platform
