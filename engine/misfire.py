"""What becomes of the fires a job owes: a pure function of the schedule and `now`.

The scheduler (a due job) and resume (a paused job made active again) both call
`plan_fires`; it decides, for every fire from the job's stored `next_run` up to now,
whether it runs or why not, and where the job's grid continues. The store then
records the plan in one transaction, so every fire that did not run is a history row.

The rules (DESIGN.md, "Schedules"):
- A fire later than `catchup_window_seconds` does not run: "missed: catchup_window".
- A fire is *missed* when a later fire of the same job is also due (the loop fell a
  whole period behind), or when it was due before `missed_before` (the engine was
  down, or the job was paused). The latest due fire that is not missed is on time
  and always runs.
- Missed fires inside the window follow `misfire`:
  - `coalesce` (default): one run, for the latest due fire; the others are
    "coalesced" rows.
  - `all`: each runs, oldest first, up to `misfire_cap`; the rest are
    "missed: misfire_cap" rows.
  - `skip`: none runs: "missed: misfire skip" rows.
- Fires owed because the job was paused (`paused=True`) are recorded as "paused"
  when they do not run.

History stays bounded: at most `LIST_LIMIT` fires before the window and as many
inside it get a row each; beyond that one summary row stands for the rest, and says
so in its reason. The cost is one `next_fire` per listed fire plus a few probes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from engine.schedules import Misfire, Schedule, next_fire

LIST_LIMIT = 1000
_TICK = timedelta(microseconds=1)

COALESCED = "coalesced"
CATCHUP_WINDOW = "missed: catchup_window"
MISFIRE_SKIP = "missed: misfire skip"
MISFIRE_CAP = "missed: misfire_cap"
PAUSED = "paused"


@dataclass(frozen=True)
class FireRow:
    """One fire and its fate: `run`, or not with `reason`. A summary row
    (`until` set) stands for every fire from `at` to `until`."""

    at: datetime
    run: bool
    reason: str | None = None
    until: datetime | None = None


@dataclass(frozen=True)
class Plan:
    rows: tuple[FireRow, ...]  # oldest first
    next_run: datetime | None  # the first fire strictly after now


def plan_fires(schedule: Schedule, first_due: datetime, now: datetime, *,
               missed_before: datetime, paused: bool = False) -> Plan:
    """Decides every fire in [first_due, now] (first_due is a fire of `schedule`)."""
    cutoff = now - timedelta(seconds=schedule.catchup_window_seconds)
    rows, t = _stale_rows(schedule, first_due, cutoff, PAUSED if paused else CATCHUP_WINDOW)
    if t is None or t > now:
        return Plan(tuple(rows), t)
    fires, summary, after = _window_fires(schedule, t, now)
    rows += _decide(schedule, fires, summary, missed_before, paused)
    return Plan(tuple(rows), after)


def _stale_rows(schedule: Schedule, t: datetime | None, cutoff: datetime, reason: str
                ) -> tuple[list[FireRow], datetime | None]:
    """Rows for the fires before the catch-up window; returns them and the first fire
    at or after `cutoff`."""
    rows: list[FireRow] = []
    while t is not None and t < cutoff:
        if len(rows) == LIST_LIMIT:
            rows.append(FireRow(t, False, f"{reason} (every fire up to the catch-up window, "
                                          "not listed one by one)", until=cutoff))
            return rows, next_fire(schedule, cutoff - _TICK)
        rows.append(FireRow(t, False, reason))
        t = next_fire(schedule, t)
    return rows, t


def _window_fires(schedule: Schedule, t: datetime, now: datetime
                  ) -> tuple[list[datetime], tuple[datetime, datetime] | None, datetime | None]:
    """The fires in [t, now], oldest first: all of them, or the first LIST_LIMIT and
    the latest with the span between them as a summary (first, last); and the first
    fire after now."""
    limit = max(LIST_LIMIT, schedule.misfire_cap + 1)
    fires = [t]
    while (n := next_fire(schedule, fires[-1])) is not None and n <= now:
        if len(fires) == limit:
            latest = _latest_due(schedule, n, now)
            after = next_fire(schedule, latest)
            if latest == n:
                return fires + [n], None, after
            return fires + [latest], (n, latest), after
        fires.append(n)
    return fires, None, n


def _latest_due(schedule: Schedule, floor: datetime, now: datetime) -> datetime:
    """The latest fire in [floor, now], where floor is a fire: probe back from now in
    doubling steps, then walk forward."""
    step = timedelta(seconds=1)
    while True:
        lo = max(now - step, floor)
        t = next_fire(schedule, lo - _TICK)
        if t is not None and t <= now:
            while (n := next_fire(schedule, t)) is not None and n <= now:
                t = n
            return t
        if lo == floor:
            return floor
        step *= 2


def _decide(schedule: Schedule, fires: list[datetime], summary: tuple[datetime, datetime] | None,
            missed_before: datetime, paused: bool) -> list[FireRow]:
    if not fires:
        return []
    on_time = fires[-1] >= missed_before and not paused
    missed = fires[:-1] if on_time else fires
    runs: set[datetime] = set()
    if schedule.misfire is Misfire.COALESCE:
        runs.add(fires[-1])
        reason = COALESCED
    elif schedule.misfire is Misfire.ALL:
        runs.update(missed[:schedule.misfire_cap])
        reason = MISFIRE_CAP
    else:
        reason = MISFIRE_SKIP
    if on_time:
        runs.add(fires[-1])
    reason = PAUSED if paused else reason
    rows = [FireRow(t, t in runs, None if t in runs else reason) for t in fires]
    if summary is not None:
        first, last = summary
        note = f"{reason} (every fire from {first.isoformat()} until the last listed, not listed one by one)"
        rows.insert(-1, FireRow(first, False, note, until=last))
    return rows
