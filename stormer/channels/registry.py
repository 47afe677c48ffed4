"""Finding platform plugins through the `stormer.platforms` entry-point group.

Listing reads names only; a plugin's module is imported the first time it is used.
"""

from __future__ import annotations

import functools
from importlib.metadata import EntryPoint, entry_points

from stormer.channels.base import Platform
from stormer.errors import UnknownPlatform

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
