"""Time conversion against pytz as an independent oracle, and the user-facing time errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import pytz
from hypothesis import given, settings
from hypothesis import strategies as st

from stormer.errors import AmbiguousTime, NonexistentTime, TimeError, UnknownZone
from stormer.timezones import (
    AnnounceZone,
    announcement,
    local_times,
    localize,
    parse_when,
    suggest_zones,
)

# DST zones north and south, half-hour and 45-minute offsets, and the storm's own zones.
ZONES = [
    "Asia/Gaza",
    "Asia/Hebron",
    "Europe/Madrid",
    "America/New_York",
    "America/Sao_Paulo",
    "Pacific/Auckland",
    "Asia/Kathmandu",
    "Asia/Kolkata",
    "Australia/Adelaide",
    "Australia/Lord_Howe",
    "Pacific/Chatham",
    "America/St_Johns",
    "Africa/Tunis",
    "Asia/Tehran",
    "Europe/Dublin",
    "America/Los_Angeles",
    "Australia/Sydney",
]

instants = st.datetimes(min_value=datetime(1995, 1, 1), max_value=datetime(2035, 12, 31)).map(
    lambda d: d.replace(tzinfo=UTC, microsecond=0)
)
walls = st.datetimes(min_value=datetime(1995, 1, 1), max_value=datetime(2035, 12, 31)).map(
    lambda d: d.replace(second=0, microsecond=0)
)


@settings(max_examples=300, deadline=None)
@given(instant=instants, zone=st.sampled_from(ZONES))
def test_local_time_agrees_with_pytz(instant: datetime, zone: str) -> None:
    (ours,) = local_times(instant, [zone])
    theirs = pytz.utc.localize(instant.replace(tzinfo=None)).astimezone(pytz.timezone(zone))
    assert ours.local.replace(tzinfo=None) == theirs.replace(tzinfo=None)
    assert ours.local.utcoffset() == theirs.utcoffset()
    assert ours.abbreviation == theirs.tzname()


@settings(max_examples=400, deadline=None)
@given(wall=walls, zone=st.sampled_from(ZONES))
def test_localize_agrees_with_pytz_including_gaps_and_folds(wall: datetime, zone: str) -> None:
    oracle = pytz.timezone(zone)
    try:
        expected = oracle.localize(wall, is_dst=None).astimezone(pytz.utc)
    except pytz.NonExistentTimeError:
        with pytest.raises(NonexistentTime, match="does not exist"):
            localize(wall, zone)
        return
    except pytz.AmbiguousTimeError:
        with pytest.raises(AmbiguousTime, match="ambiguous") as info:
            localize(wall, zone)
        early = oracle.localize(wall, is_dst=True).astimezone(pytz.utc)
        late = oracle.localize(wall, is_dst=False).astimezone(pytz.utc)
        for candidate in (early, late):
            assert candidate.strftime("%Y-%m-%dT%H:%M:%SZ") in str(info.value)
        return
    assert localize(wall, zone) == expected


@settings(max_examples=200, deadline=None)
@given(instant=instants, zone=st.sampled_from(ZONES))
def test_round_trip_through_wall_time(instant: datetime, zone: str) -> None:
    (lt,) = local_times(instant, [zone])
    wall = lt.local.replace(tzinfo=None)
    try:
        assert localize(wall, zone) == instant
    except AmbiguousTime as e:  # a fold: both instants are named, ours among them
        assert instant.strftime("%Y-%m-%dT%H:%M:%SZ") in str(e)


def test_gap_message_names_the_jump() -> None:
    with pytest.raises(NonexistentTime) as info:
        parse_when("2021-03-28 02:30", "Europe/Madrid")
    message = str(info.value)
    assert "does not exist" in message
    assert "02:00" in message and "03:00" in message and "CET" in message and "CEST" in message


def test_fold_message_names_both_instants() -> None:
    with pytest.raises(AmbiguousTime) as info:
        parse_when("2021-10-31 02:30", "Europe/Madrid")
    message = str(info.value)
    assert "2021-10-31T00:30:00Z" in message and "2021-10-31T01:30:00Z" in message


def test_gaza_spring_forward_2021() -> None:
    # Gaza sprang forward at midnight on 27 March 2021: 00:30 never happened there.
    with pytest.raises(NonexistentTime):
        parse_when("2021-03-27 00:30", "Asia/Gaza")


@pytest.mark.parametrize(
    "when, tz, expected",
    [
        ("2021-03-11T18:00:00Z", None, datetime(2021, 3, 11, 18, tzinfo=UTC)),
        ("2021-03-11T20:00:00+02:00", None, datetime(2021, 3, 11, 18, tzinfo=UTC)),
        ("2021-03-11T23:45:00+05:45", None, datetime(2021, 3, 11, 18, tzinfo=UTC)),
        ("2021-03-11 20:00", "Asia/Gaza", datetime(2021, 3, 11, 18, tzinfo=UTC)),
        ("2021-03-12 07:00", "Pacific/Auckland", datetime(2021, 3, 11, 18, tzinfo=UTC)),
        ("2021-03-11 23:45", "Asia/Kathmandu", datetime(2021, 3, 11, 18, tzinfo=UTC)),
    ],
)
def test_parse_when(when: str, tz: str | None, expected: datetime) -> None:
    assert parse_when(when, tz) == expected


@pytest.mark.parametrize(
    "when, tz, fragment",
    [
        ("2021-02-30T18:00:00Z", None, "not a valid date"),
        ("2021-03-11 20:00", None, "without a zone"),
        ("next thursday", None, "cannot read"),
        ("2021-03-11T20:00:00+02:00", "Asia/Gaza", "already has a UTC offset"),
        ("2021-03-11T20:00:00+25:00", None, "not a valid UTC offset"),
    ],
)
def test_parse_when_rejects(when: str, tz: str | None, fragment: str) -> None:
    with pytest.raises(TimeError, match=fragment):
        parse_when(when, tz)


def test_unknown_zone_suggests_close_names() -> None:
    with pytest.raises(UnknownZone) as info:
        parse_when("2021-03-11 20:00", "Europe/Madird")
    assert "unknown time zone" in str(info.value)
    assert "Europe/Madrid" in info.value.suggestions
    assert suggest_zones("asia/gaza") == ["Asia/Gaza"]
    assert "Asia/Kathmandu" in suggest_zones("Katmandu")


CAMPAIGN_ZONES = [
    AnnounceZone("America/Los_Angeles", "Pacific", (("es", "Pacífico"),)),
    AnnounceZone("America/New_York", "Eastern"),
    AnnounceZone("UTC", "UTC"),
    AnnounceZone("Europe/Paris", "central Europe", (("es", "Europa central"),)),
    AnnounceZone("Asia/Gaza", "Palestine", (("es", "Palestina"),)),
]
STORM = datetime(2021, 3, 11, 18, tzinfo=UTC)


def test_announcement_reads_like_the_campaign() -> None:
    line = announcement(STORM, CAMPAIGN_ZONES, "en")
    assert line == (
        "Thursday 11 March, 10 am Pacific / 1 pm Eastern / 6 pm UTC / "
        "7 pm central Europe / 8 pm Palestine"
    )


def test_announcement_in_spanish_uses_24_hour_clock_and_local_names() -> None:
    line = announcement(STORM, CAMPAIGN_ZONES, "es")
    assert line.startswith("jueves, 11 de marzo, 10:00 Pacífico")
    assert "19:00 Europa central" in line and "20:00 Palestina" in line
    # No Spanish label configured for Eastern: CLDR's name for the zone is used.
    assert "13:00 hora de Estados Unidos (Nueva York)" in line


def test_announcement_marks_a_zone_on_another_day() -> None:
    line = announcement(
        STORM,
        [AnnounceZone("Europe/Paris", "Paris"), AnnounceZone("Pacific/Auckland", "Auckland")],
        "en",
    )
    assert line == "Thursday 11 March, 7 pm Paris / 7 am Auckland (Fri 12)"


def test_minutes_and_noon_in_english() -> None:
    line = announcement(
        datetime(2021, 3, 11, 6, 15, tzinfo=UTC),
        [AnnounceZone("Asia/Kathmandu", "Kathmandu"), AnnounceZone("UTC", "UTC")],
        "en",
    )
    assert "12 pm Kathmandu" in line and "6:15 am UTC" in line


def test_local_times_keep_order_and_drop_repeats() -> None:
    rows = local_times(STORM, ["Asia/Gaza", "UTC", "Asia/Gaza", "Pacific/Auckland"])
    assert [r.zone for r in rows] == ["Asia/Gaza", "UTC", "Pacific/Auckland"]
    assert rows[2].weekday == "Friday"
    assert rows[0].as_dict() == {
        "zone": "Asia/Gaza",
        "local": "2021-03-11T20:00:00+02:00",
        "weekday": "Thursday",
        "abbreviation": "EET",
    }
    assert rows[1].local.utcoffset() == timedelta(0)
