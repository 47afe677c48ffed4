"""`stormer check`: every problem of a storm at once — loading problems plus the rules that
need the plan and the platforms (lengths, images, duplicate texts, credentials, targets)."""

from __future__ import annotations

import functools
import re
import unicodedata
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime

from stormer.channels import registry
from stormer.errors import ConfigError, Problem, Severity, shown_path
from stormer.ops.images import image_problems, target_platforms
from stormer.plan import Eligibility, plan_posts
from stormer.queue import QueueItem
from stormer.storm import CONFIG_NAME, Post, Storm
from stormer.storm.problems import in_reading_order

_URL = re.compile(r"https?://\S+")
_NOISE = re.compile(r"[\W_]+", re.UNICODE)


@functools.lru_cache(maxsize=65536)  # a storm repeats its few texts across many accounts
def near_duplicate_key(text: str) -> str:
    """Texts equal under this key are "the same or nearly the same" in X's sense: they differ
    only in case, punctuation, spacing, emoji or links."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = _URL.sub(" ", text)
    return _NOISE.sub(" ", text).strip()


def check(
    storm: Storm,
    *,
    now: datetime | None = None,
    posts: Sequence[QueueItem] | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> list[Problem]:
    """All problems of `storm`, errors and warnings, in reading order (by file and line).

    `posts`: `list(plan.plan_posts(storm))`, in its order, when the caller has planned
    already (planning is a good part of checking a big storm). `progress(step, done,
    total)` is told how far the checking of posts is."""
    now = now or datetime.now(UTC)
    problems = list(storm.problems)
    if storm.at is not None and storm.at <= now:
        problems.append(
            Problem(
                "warning",
                "storm-in-past",
                CONFIG_NAME,
                storm.at_line,
                f"the storm time {storm.at:%Y-%m-%d %H:%M} UTC has passed; "
                "`stormer schedule` will refuse it (fine for a rehearsal "
                "or a look back)",
            )
        )
    index = Eligibility(storm.posts, storm.accounts)
    problems += _account_problems(storm, index)
    problems += _post_platform_problems(storm, index, progress)
    problems += image_problems(storm, index)
    problems += _duplicate_text_problems(plan_posts(storm) if posts is None else posts)
    problems += _reminder_problems(storm)
    problems += _database_problems(storm)
    problems += template_problems(storm)
    return in_reading_order(problems, storm.root)


def _database_problems(storm: Storm) -> list[Problem]:
    """A [database] url SQLAlchemy cannot use (`notadb://…`) fails every command that opens
    the outbox: say so now. The URL is never echoed (it may hold a password)."""
    if not storm.database_url:
        return []
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    from stormer.outbox.db import in_memory

    try:
        url = make_url(storm.database_url)
        url.get_dialect()
    except (ArgumentError, NoSuchModuleError, ValueError):
        why = "is not a database URL stormer can use"
    else:
        if not in_memory(url):
            return []
        why = "is an in-memory database, lost when each command ends"
    return [
        Problem(
            "error",
            "bad-database-url",
            CONFIG_NAME,
            None,
            f"[database] url {why}: write sqlite:///stormer.db or "
            "postgresql://USER@HOST/NAME (password in STORMER_DATABASE_URL, not in config.toml)",
        )
    ]


def _reminder_problems(storm: Storm) -> list[Problem]:
    """Contacts that cannot be reached, senders not configured, languages without a
    template. A contact is never quoted: the row number says where to look."""
    from stormer.notify.sender import checked_contact
    from stormer.reminder_templates import FALLBACK, ReminderTemplates, template_path
    from stormer.storm.contacts import SENDER_FOR, BadContact

    if not storm.reminder_offsets or not storm.participants:
        return []
    file = storm.participants_file
    out = []
    needed: dict[str, list[int]] = defaultdict(list)  # sender → rows that need it
    for p in storm.participants:
        for n, text in enumerate(p.contacts, 1):
            try:
                contact = checked_contact(text)
            except BadContact as e:
                out.append(
                    Problem(
                        "error",
                        "bad-contact",
                        file,
                        p.row,
                        f"row {p.row} ({p.name}): {_nth_contact(n, len(p.contacts))} cannot "
                        f"be used, so no reminder goes there: {e}",
                    )
                )
                continue
            if contact.needs_sender:
                needed[SENDER_FOR[contact.kind]].append(p.row)
    for sender, rows in sorted(needed.items()):
        if sender not in storm.reminder_senders:
            shown = ", ".join(map(str, rows[:8])) + (" …" if len(rows) > 8 else "")
            out.append(
                Problem(
                    "error",
                    "missing-sender",
                    CONFIG_NAME,
                    None,
                    f"{len(rows)} participant contact(s) need the `{sender}` "
                    f"sender (rows {shown} of {file}): add it to [reminders] "
                    f'senders = {{ {sender} = "ENV_VAR" }}, the variable '
                    f"holding the organizer's {sender}:// Apprise URL",
                )
            )
    templates = ReminderTemplates(storm.root)
    missing: dict[str, int] = defaultdict(int)
    for p in storm.participants:
        if p.contacts and not templates.has(p.lang):
            missing[p.lang] += 1
    for lang, count in sorted(missing.items()):
        out.append(
            Problem(
                "warning",
                "no-reminder-template",
                file,
                None,
                f"{count} participant(s) speak {lang!r}, which has no reminder template: they "
                f"get the {FALLBACK!r} text. To remind them in {lang!r}, create the template "
                f"{_as_seen(storm, template_path(lang))} (see “Reminder templates” in the README)",
            )
        )
    return out


def template_problems(storm: Storm) -> list[Problem]:
    """What is wrong with the storm's own reminder templates: read (syntax, blocks,
    variables), then, if that is fine, written once per language."""
    from stormer.reminder_templates import ReminderTemplates
    from stormer.reminders import ReminderWriter

    templates = ReminderTemplates(storm.root)
    problems = templates.problems()
    if problems or storm.at is None:
        return problems
    writer = ReminderWriter(storm)
    for lang in sorted(templates.own):
        try:
            writer.trial(lang)
        except ConfigError as e:
            problems += e.problems
    return problems


def _as_seen(storm: Storm, file: str) -> str:
    """`file` of the storm as the user would name it from their working directory."""
    seen = shown_path(str(storm.root), file)
    return seen if seen != file else f"{file} in the storm folder"


def _nth_contact(n: int, of: int) -> str:
    return "the contact" if of == 1 else f"contact {n} of {of}"


def _account_problems(storm: Storm, index: Eligibility) -> list[Problem]:
    out = []
    known = registry.installed()
    for a in storm.accounts:
        if a.platform not in known:
            continue  # reported by loading as unknown-platform
        plugin = registry.get(a.platform)
        named = dict(a.credentials)
        for needed in plugin.credential_fields_for(a):
            if needed not in named:
                out.append(
                    Problem(
                        "error",
                        "missing-credential",
                        CONFIG_NAME,
                        a.line,
                        f"account {a.name!r} ({plugin.title}) needs credentials.{needed}: the name "
                        "of the environment variable (or keyring:NAME) that holds it",
                    )
                )
        if plugin.target_field and not a.target:
            out.append(
                Problem(
                    "error",
                    "missing-target",
                    CONFIG_NAME,
                    a.line,
                    f"account {a.name!r} ({plugin.title}) needs target = the "
                    f"{plugin.target_field} to post to",
                )
            )
        if plugin.handle_example and not a.handle:
            out.append(
                Problem(
                    "error",
                    "missing-handle",
                    CONFIG_NAME,
                    a.line,
                    f"account {a.name!r} ({plugin.title}) needs handle = {plugin.handle_example}",
                )
            )
        if plugin.needs_base_url and plugin.default_base_url is None and not a.base_url:
            out.append(
                Problem(
                    "error",
                    "missing-base-url",
                    CONFIG_NAME,
                    a.line,
                    f"account {a.name!r} ({plugin.title}) needs base_url = the "
                    "server's address, e.g. https://mastodon.social",
                )
            )
        if not index.carries_any(a):
            out.append(
                Problem(
                    "warning",
                    "account-without-posts",
                    CONFIG_NAME,
                    a.line,
                    f"no sample post fits account {a.name!r} (languages "
                    f"{', '.join(a.langs) or 'any'}); it will post nothing",
                )
            )
    return out


def _post_platform_problems(
    storm: Storm,
    index: Eligibility,
    progress: Callable[[str, int, int], None] | None = None,
) -> list[Problem]:
    """Each post against every platform it is for (any eligible account there, or named in
    its `platforms`); whether any account will post it; and, for a post reminders hand to
    participants, against the platforms whose click-to-post link carries it."""
    from stormer.reminders import handed_samples

    handed = handed_samples(storm)
    known = frozenset(registry.installed())
    out = []
    for n, post in enumerate(storm.posts):
        if progress is not None and n % 500 == 0:
            progress("checking posts", n, len(storm.posts))
        # A storm with no accounts yet (as `stormer init` writes it) posts nothing by design.
        if storm.accounts and not index.platforms_of(post):
            out.append(_unused(post, index, handed=post.file in handed))
        if post.file in handed:
            out += _sample_link_problems(storm, post, index, known)
        images = len(post.images)
        for name in target_platforms(index, post, known):
            plugin = registry.get(name)
            length = plugin.length(post.text)
            limit = plugin.limit(with_media=bool(images))
            if length > limit:
                out.append(
                    Problem(
                        "error",
                        "too-long",
                        post.file,
                        post.text_line,
                        f"{plugin.title}: {length} > {limit} "
                        f"({'caption ' if images and plugin.media_text_limit else ''}"
                        f"limit); shorten the post or restrict it with "
                        f"platforms = [...]",
                    )
                )
            if images > plugin.max_images:
                out.append(
                    Problem(
                        "error",
                        "too-many-images",
                        post.file,
                        None,
                        f"{plugin.title}: {images} images, at most {plugin.max_images} allowed",
                    )
                )
    if progress is not None:
        progress("checking posts", len(storm.posts), len(storm.posts))
    return out


def _unused(post: Post, index: Eligibility, *, handed: bool) -> Problem:
    """`post` is never posted: say why, and whether participants still get it."""
    fate = (
        "it is only handed to participants as a sample in their reminders"
        if handed
        else "nor do reminders hand it to anyone: it is not used at all"
    )
    return Problem(
        "warning",
        "post-unused",
        post.file,
        None,
        f"no account will post {post.file} ({_why_unused(post, index)}); {fate}",
    )


def _why_unused(post: Post, index: Eligibility) -> str:
    where = ""
    if post.platforms is not None:
        where = " on " + ", ".join(post.platforms)
        if not index.platforms().intersection(post.platforms):
            return f"its platforms = {list(post.platforms)} match no account in {CONFIG_NAME}"
    if post.accounts is not None:
        named = (a for name in post.accounts for a in index.accounts_named(name))
        if not any(post.platforms is None or a.platform in post.platforms for a in named):
            return f"its accounts = {list(post.accounts)} name no account{where}"
        where = " among those it names"
    return (
        f"no account{where} takes its language {post.lang!r}: add it to an account's langs, "
        "or change the post's platforms or accounts"
    )


def _sample_link_problems(
    storm: Storm, post: Post, index: Eligibility, known: frozenset[str]
) -> list[Problem]:
    """A sample reminders hand out is sent by participants through click-to-post links: one
    too long for a link's platform opens there over the limit (the text alone, no image)."""
    from stormer.reminders import link_platforms

    out = []
    checked = set(target_platforms(index, post, known))  # too long there is already an error
    for name in link_platforms(storm, post):
        if name not in known or name in checked:
            continue
        plugin = registry.get(name)
        length, limit = plugin.length(post.text), plugin.limit(with_media=False)
        if length > limit:
            out.append(
                Problem(
                    "warning",
                    "sample-too-long",
                    post.file,
                    post.text_line,
                    f"{plugin.title}: {length} > {limit}: reminders hand this post to "
                    f"participants with a {plugin.title} click-to-post link, and they would "
                    f"have to shorten it there; shorten the post, or keep it off "
                    f"{plugin.title} (and its link) with platforms = [...]",
                )
            )
    return out


def _duplicate_text_problems(posts: Iterable[QueueItem]) -> list[Problem]:
    groups: dict[tuple[str, str], list[QueueItem]] = defaultdict(list)
    for item in posts:
        groups[(item.platform, near_duplicate_key(item.text))].append(item)
    out = []
    for (platform, _), items in sorted(groups.items()):
        if len(items) < 2:
            continue  # most texts, in a storm whose accounts each have their own
        accounts = sorted({i.account for i in items})
        if len(accounts) < 2:
            continue
        # An unknown platform is reported by loading; only a known one can forbid this.
        plugin = registry.get(platform) if platform in registry.installed() else None
        severity: Severity = "warning"
        advice = "; add more distinct samples so each account posts its own"
        if plugin is not None and plugin.same_text_forbidden:
            severity = "error"
            advice = (
                f"; {plugin.title}'s rules forbid this — write more distinct samples in this "
                f"language or post from fewer {plugin.title} accounts"
            )
        shown = ", ".join(accounts[:5]) + (
            f" and {len(accounts) - 5} more" if len(accounts) > 5 else ""
        )
        out.append(
            Problem(
                severity,
                "same-text-many-accounts",
                items[0].source,
                None,
                f"{len(accounts)} {platform} accounts would post the same or nearly the same text "
                f"({shown}){advice}",
            )
        )
    return out
