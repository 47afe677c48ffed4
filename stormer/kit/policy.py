"""The Content-Security-Policy of the kit's pages: in a `<meta http-equiv>` of every page (a
static host may set no header; a page opened from disk has none) and, from `kit serve`, as
an HTTP header too.

What it allows and why (CSP Level 3, https://www.w3.org/TR/CSP3/):
- `default-src 'self'`, `script-src 'self'`, `style-src 'self'`, `img-src 'self'`: the kit's
  own files only — no inline script or style attribute, no CDN, font or tracker; an injected
  `<script>` does not run even if escaping ever failed.
- `connect-src`: the page itself fetches nothing, but scheduling on the visitor's own Mastodon
  (issue 13, item 2) must reach a server only the visitor knows, so this first policy allows
  `'self'`, any https origin, and loopback http (a local Mastodon, or the simulator in tests).
  A meta policy can be tightened but never widened: a second policy is enforced together with
  the first, and a request must pass both (CSP3 §8.1, "multiple policies"). So `kit.js`,
  before anything else runs, adds a second `<meta>` that allows only `'self'` and the origin
  the visitor chose (none yet: `'self'` alone). Choosing another server reloads the page, whose
  new second policy names the new origin.
- `object-src 'none'`, `base-uri 'none'`: no plugins; no `<base>` to re-point relative links.
- `form-action 'none'`: the one form (the Mastodon server) is read by the script, never sent.
`frame-ancestors` (no framing) works only as a header (a meta's is ignored, CSP3 §6.4.2), so
it is added to the header `kit serve` sends and to the `_headers` file some static hosts read.

Pages opened from disk (file://): Chromium takes `'self'` of a file: page to be the file:
scheme (its origin is opaque), so the kit's own scripts, styles and images load; nothing
from the network does, and loopback fetches are the only connections such a page can make
besides https origins (tested against `kit serve`; see the kit's tests).
"""

from __future__ import annotations

from typing import Final

# Loopback over plain http: a local Mastodon, or stormer's simulator in tests. Browsers treat
# loopback as potentially trustworthy (https://w3c.github.io/webappsec-secure-contexts/).
# Chromium refuses an IPv6 literal in a source list ("http://[::1]:*": "invalid source").
LOOPBACK: Final = ("http://localhost:*", "http://127.0.0.1:*")

DIRECTIVES: Final = (
    ("default-src", ("'self'",)),
    ("script-src", ("'self'",)),
    ("style-src", ("'self'",)),
    ("img-src", ("'self'",)),
    ("connect-src", ("'self'", "https:", *LOOPBACK)),
    ("object-src", ("'none'",)),
    ("base-uri", ("'none'",)),
    ("form-action", ("'none'",)),
)
HEADER_ONLY: Final = (("frame-ancestors", ("'none'",)),)


def _policy(directives: tuple[tuple[str, tuple[str, ...]], ...]) -> str:
    return "; ".join(f"{name} {' '.join(sources)}" for name, sources in directives)


def meta_policy() -> str:
    """The policy every page carries in its `<meta http-equiv="Content-Security-Policy">`."""
    return _policy(DIRECTIVES)


def header_policy() -> str:
    """The same policy as an HTTP header, with what only a header can say."""
    return _policy(DIRECTIVES + HEADER_ONLY)
