"""next_fire and friends: pure functions of time, pinned at fixed instants."""

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from engine.schedules import (
    Misfire, Overlap, ScheduleError, cron, describe, first_fire, from_dict, interval, next_fire, once,
    to_dict, upcoming,
)

UTC = timezone.utc
T0 = datetime(2026, 1, 5, 12, 0, 0, tzinfo=UTC)


def local(tz: str, fires: list[datetime]) -> list[str]:
    return [f.astimezone(ZoneInfo(tz)).strftime("%m-%d %H:%M:%S%z") for f in fires]


def test_once_fires_at_its_instant_then_never():
    s = once(T0 + timedelta(minutes=10))
    assert first_fire(s, T0) == T0 + timedelta(minutes=10)
    assert next_fire(s, T0 + timedelta(minutes=10)) is None


def test_once_refuses_a_naive_datetime_naming_the_field():
    with pytest.raises(ScheduleError, match="schedule.once.at.*naive"):
        once(datetime(2026, 1, 1, 9, 0))


def test_interval_stays_on_its_grid_after_downtime():
    s = interval(60, start_at=T0)
    # The engine was down for 10.5 minutes: the next fire is still on the minute grid.
    assert next_fire(s, T0 + timedelta(minutes=10, seconds=30)) == T0 + timedelta(minutes=11)
    assert next_fire(s, T0 + timedelta(minutes=11)) == T0 + timedelta(minutes=12)


def test_interval_without_start_fires_one_period_after_creation():
    assert first_fire(interval(30), T0) == T0 + timedelta(seconds=30)


def test_interval_with_future_start_fires_at_start():
    assert first_fire(interval(30, start_at=T0 + timedelta(hours=1)), T0) == T0 + timedelta(hours=1)


@pytest.mark.parametrize("seconds", [0, -5, 1.5, True], ids=["zero", "negative", "fraction", "bool"])
def test_interval_refuses_bad_periods(seconds):
    with pytest.raises(ScheduleError, match="schedule.interval.seconds"):
        interval(seconds)


def test_six_field_cron_reads_seconds_first():
    # Read seconds-last (croniter's default) this would fire every second of minute 0.
    fires = upcoming(cron("0 */15 * * * *"), T0, 3)
    assert fires == [T0 + timedelta(minutes=15), T0 + timedelta(minutes=30), T0 + timedelta(minutes=45)]


def test_five_field_cron_in_a_timezone():
    fires = upcoming(cron("0 9 * * *", timezone="America/New_York"), T0, 2)
    assert local("America/New_York", fires) == ["01-05 09:00:00-0500", "01-06 09:00:00-0500"]


@pytest.mark.parametrize("expression, match", [
    pytest.param("* * *", "has 3 fields", id="too-few-fields"),
    pytest.param("0 0 9 * * * 2026", "has 7 fields", id="year-field"),
    pytest.param("61 * * * *", "not a valid cron", id="minute-out-of-range"),
    pytest.param("0 9 * * mon-xyz", "not a valid cron", id="bad-day-name"),
])
def test_bad_cron_names_the_dialect(expression, match):
    with pytest.raises(ScheduleError, match=match) as info:
        cron(expression)
    assert "seconds first" in str(info.value)


def test_bad_timezone_is_refused():
    with pytest.raises(ScheduleError, match="schedule.cron.timezone.*IANA"):
        cron("0 9 * * *", timezone="Mars/Olympus")


# DST: Berlin springs forward 2026-03-29 02:00 -> 03:00 and falls back 2026-10-25 03:00 -> 02:00.
SPRING = datetime(2026, 3, 28, 12, tzinfo=UTC)
AUTUMN = datetime(2026, 10, 24, 12, tzinfo=UTC)


@pytest.mark.parametrize("policy, expected", [
    pytest.param("shift", ["03-29 03:00:00+0200", "03-30 02:30:00+0200"], id="shift-runs-at-gap-end"),
    pytest.param("skip", ["03-30 02:30:00+0200", "03-31 02:30:00+0200"], id="skip-drops-the-day"),
])
def test_dst_gap_policy(policy, expected):
    fires = upcoming(cron("30 2 * * *", timezone="Europe/Berlin", dst_gap=policy), SPRING, 2)
    assert local("Europe/Berlin", fires) == expected


@pytest.mark.parametrize("policy, expected", [
    pytest.param("first", ["10-25 02:30:00+0200", "10-26 02:30:00+0100"], id="first"),
    pytest.param("last", ["10-25 02:30:00+0100", "10-26 02:30:00+0100"], id="last"),
    pytest.param("both", ["10-25 02:30:00+0200", "10-25 02:30:00+0100"], id="both"),
])
def test_dst_overlap_policy(policy, expected):
    fires = upcoming(cron("30 2 * * *", timezone="Europe/Berlin", dst_overlap=policy), AUTUMN, 2)
    assert local("Europe/Berlin", fires) == expected


def test_every_minute_through_the_gap_runs_once_at_its_end():
    fires = upcoming(cron("* 2 * * *", timezone="Europe/Berlin"), datetime(2026, 3, 29, 0, 58, tzinfo=UTC), 2)
    # 01:59 CET is the last wall time before the gap; every 02:xx shifts to one 03:00 run.
    assert local("Europe/Berlin", fires) == ["03-29 03:00:00+0200", "03-30 02:00:00+0200"]


def test_describe_gives_sentences():
    assert describe(cron("0 9 * * *", timezone="America/New_York")) == "every day at 09:00 America/New_York"
    assert describe(interval(3600)) == "every hour"
    assert describe(interval(90)) == "every 90 seconds"
    assert describe(None) == "on demand"


@pytest.mark.parametrize("schedule", [
    pytest.param(once(T0), id="once"),
    pytest.param(interval(15, start_at=T0, overlap="allow"), id="interval"),
    pytest.param(cron("0 0 9 * * 1-5", timezone="Europe/Berlin", dst_gap="skip", misfire=Misfire.SKIP), id="cron"),
])
def test_store_form_round_trips(schedule):
    assert from_dict(to_dict(schedule)) == schedule


def test_policy_strings_become_enums():
    assert interval(10, overlap="buffer_one").overlap is Overlap.BUFFER_ONE
