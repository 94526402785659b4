"""plan_fires: what becomes of every fire a job owes, at fixed instants."""

from datetime import datetime, timedelta, timezone

import pytest

from engine.misfire import LIST_LIMIT, FireRow, plan_fires
from engine.schedules import cron, interval, once

UTC = timezone.utc
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def fates(plan) -> list[tuple[float, str]]:
    return [((r.at - T0).total_seconds() / 60, "run" if r.run else r.reason) for r in plan.rows]


def test_an_on_time_fire_runs_and_the_grid_moves_on():
    plan = plan_fires(interval(60, start_at=T0), T0, T0 + timedelta(milliseconds=3), missed_before=T0)
    assert fates(plan) == [(0, "run")]
    assert plan.next_run == at(1)


@pytest.mark.parametrize("misfire, expected", [
    pytest.param("coalesce", [(0, "coalesced"), (1, "coalesced"), (2, "coalesced"), (3, "run")], id="coalesce"),
    pytest.param("all", [(0, "run"), (1, "run"), (2, "run"), (3, "run")], id="all"),
    pytest.param("skip", [(0, "missed: misfire skip"), (1, "missed: misfire skip"),
                          (2, "missed: misfire skip"), (3, "missed: misfire skip")], id="skip"),
])
def test_fires_missed_while_the_engine_was_down(misfire, expected):
    s = interval(60, start_at=T0, misfire=misfire)
    # The engine was down from before T0 until 3.5 minutes later.
    plan = plan_fires(s, T0, at(3.5), missed_before=at(3.5))
    assert fates(plan) == expected
    assert plan.next_run == at(4)  # back on the grid


def test_all_runs_the_oldest_up_to_the_cap():
    s = interval(60, start_at=T0, misfire="all", misfire_cap=2)
    plan = plan_fires(s, T0, at(3.5), missed_before=at(3.5))
    assert fates(plan) == [(0, "run"), (1, "run"), (2, "missed: misfire_cap"), (3, "missed: misfire_cap")]


def test_skip_still_runs_the_fire_that_is_on_time():
    # The engine was up, but the loop fell a period behind: only the latest is on time.
    s = interval(60, start_at=T0, misfire="skip")
    plan = plan_fires(s, T0, at(1), missed_before=T0 - timedelta(hours=1))
    assert fates(plan) == [(0, "missed: misfire skip"), (1, "run")]


def test_fires_beyond_the_catchup_window_are_missed():
    s = interval(60, start_at=T0, catchup_window_seconds=150)
    plan = plan_fires(s, T0, at(5.5), missed_before=at(5.5))
    assert fates(plan) == [(0, "missed: catchup_window"), (1, "missed: catchup_window"),
                           (2, "missed: catchup_window"), (3, "coalesced"),  # exactly 150 s late: inside
                           (4, "coalesced"), (5, "run")]


def test_a_resumed_job_records_its_paused_fires():
    s = interval(60, start_at=T0)
    plan = plan_fires(s, T0, at(2.5), missed_before=at(2.5), paused=True)
    assert fates(plan) == [(0, "paused"), (1, "paused"), (2, "run")]
    skip = interval(60, start_at=T0, misfire="skip")
    assert fates(plan_fires(skip, T0, at(2.5), missed_before=at(2.5), paused=True)) == [
        (0, "paused"), (1, "paused"), (2, "paused")]


def test_a_one_off_late_beyond_the_window_is_missed():
    plan = plan_fires(once(T0, catchup_window_seconds=60), T0, at(60), missed_before=at(60))
    assert fates(plan) == [(0, "missed: catchup_window")]
    assert plan.next_run is None


def test_a_long_outage_is_summarised_not_listed_fire_by_fire():
    s = interval(1, start_at=T0)  # every second, down for a day: 86,400 fires owed
    now = T0 + timedelta(days=1)
    plan = plan_fires(s, T0, now, missed_before=now)
    stale = [r for r in plan.rows if r.reason and r.reason.startswith("missed: catchup_window")]
    assert len(stale) == LIST_LIMIT + 1 and stale[-1].until == now - timedelta(hours=1)
    window = plan.rows[len(stale):]
    assert window[-1] == FireRow(now, True)  # the latest runs
    assert window[-2].until == now and window[-2].reason.startswith("coalesced")
    assert len(plan.rows) <= 2 * LIST_LIMIT + 3
    assert plan.next_run == now + timedelta(seconds=1)


def test_cron_catch_up_finds_the_latest_fire_past_the_listing_limit():
    s = cron("* * * * * *")  # every second
    now = T0 + timedelta(minutes=30)
    plan = plan_fires(s, T0, now, missed_before=now)
    assert plan.rows[-1] == FireRow(now, True)
    assert sum(r.run for r in plan.rows) == 1
