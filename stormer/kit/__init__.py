"""The storm kit: a static site, one page per language, for the participants who post from
their own accounts — the storm time on every clock, the sample posts with their lengths,
copy buttons and click-to-post links, the images with their alt text, the .ics, the hashtag
embargo, the endorsers.

`content` turns a loaded storm into what the pages show (reusing the storm's own time zones,
each platform's length rule, the reminders' click-to-post links and .ics); `render` writes it
with Jinja2 templates (package's, overridable from the storm's `templates/kit/`); `build`
puts it in a folder; `policy` is the Content-Security-Policy every page carries; `serve`
serves a built kit on 127.0.0.1.

May import: `storm`, `reminders`, `channels.registry` (the lengths), `timezones`, `errors`.
Never a database, an HTTP client, Apprise or a terminal: the kit is made from files alone.
"""

from stormer.errors import StormerError


class KitError(StormerError):
    """The kit cannot be built or served where asked (the message says what to do)."""


__all__ = ["KitError"]
