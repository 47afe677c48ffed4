"""Storms written for a harness or a benchmark (tests/chaos_storm.py, bench/burst.py,
bench/gen_storm.py): their `[storm]` table, and accounts each with its own `[[accounts]]`
table and, on the simulator, its own user, derived from its own credential."""

from __future__ import annotations

# The credential field each platform's account names (channels/*.py `credential_fields`).
CREDENTIAL = {
    "mastodon": "access_token",
    "bluesky": "app_password",
    "x": "access_token",
    "telegram": "bot_token",
    "discord": "webhook_url",
    "matrix": "access_token",
}
TELEGRAM_BOT0 = 7_000_000  # account i's bot id: TELEGRAM_BOT0 + i
DISCORD_HOOK0 = 100_000_000_000_000_000  # account i's webhook id: DISCORD_HOOK0 + i


def storm_table(name: str, slug: str, hashtag: str) -> str:
    """A `[storm]` table: every account posts once, all at one instant (moved by the caller)."""
    return f"""[storm]
name = "{name}"
slug = "{slug}"
hashtag = "{hashtag}"
at = "2030-01-01T00:00:00Z"
posts_per_account = 1
post_interval = "0s"
default_lang = "en"
"""


def secret_of(platform: str, i: int, url: str) -> str:
    """Account i's credential on `platform`: the simulator at `url` derives a user of its own
    from each."""
    return {
        "mastodon": f"tok-m-{i}",
        "bluesky": f"pw-b-{i}",
        "x": f"tok-x-{i}",
        "telegram": f"{TELEGRAM_BOT0 + i}:tok-t-{i}",
        "discord": f"{url}/api/webhooks/{DISCORD_HOOK0 + i}/tok-d-{i}",
        "matrix": f"tok-mx-{i}",
    }[platform]


def account_block(
    name: str,
    platform: str,
    variable: str,
    *,
    base_url: str | None = None,
    handle: str | None = None,
    target: str | None = None,
    langs: tuple[str, ...] = (),
) -> str:
    """One `[[accounts]]` table; its credential read from the environment `variable`."""
    lines = ["[[accounts]]", f'name = "{name}"', f'platform = "{platform}"']
    if langs:
        lines.append("langs = [" + ", ".join(f'"{lang}"' for lang in langs) + "]")
    if base_url:
        lines.append(f'base_url = "{base_url}"')
    if handle:
        lines.append(f'handle = "{handle}"')
    if target:
        lines.append(f'target = "{target}"')
    lines.append(f'credentials = {{ {CREDENTIAL[platform]} = "{variable}" }}')
    return "\n".join(lines) + "\n"
