"""Schedules as values, and when they fire as pure functions of time.

`next_fire(schedule, after)` is the only place that knows how a schedule maps to
instants. The scheduler calls it once per fire, never for every job at once.

The cron dialect is fixed and named in every error: 5 fields `min hour dom mon dow`,
or 6 fields with seconds FIRST `sec min hour dom mon dow` (croniter reads 6 fields
seconds-last unless told `second_at_beginning=True`).

Cron is evaluated in local wall time and then mapped to instants, so the DST policy
is explicit rather than inherited from a library:
- dst_gap "shift" (default): a wall time that does not exist that day runs once, at
  the first instant after the gap; "skip": it does not run that day.
- dst_overlap "first" (default): a wall time that occurs twice runs at the first
  occurrence; "last": at the second; "both": at both.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from datetime import datetime, timedelta, timezone
from enum import StrEnum
from typing import Iterator
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

UTC = timezone.utc
CRON_DIALECT = (
    "5 fields 'min hour dom mon dow', or 6 fields with seconds first 'sec min hour dom mon dow'"
)


# One item of a cron field (fields are comma-separated lists of these).
_ITEM = re.compile(r"(\*|\d+)(-\d+)?(/\d+)?")
_ITEM_NAMED = re.compile(r"(\*|\d+|[a-z]{3})(-(\d+|[a-z]{3}))?(/\d+)?", re.IGNORECASE)
_RANGE = re.compile(r"^(\w+)-(\w+)(/\d+)?$")
_NAMES = {name: n for names in ("jan feb mar apr may jun jul aug sep oct nov dec".split(),
                                ["sun", "mon", "tue", "wed", "thu", "fri", "sat"])
          for n, name in enumerate(names, start=1 if len(names) == 12 else 0)}


def _single(item: str, day_of_week: bool) -> str:
    """A range from a value to itself, however spelled (1-01, mon-1, sun-7), as that value."""
    match = _RANGE.match(item.lower())
    if match is None:
        return item
    low, high = (_NAMES.get(v, int(v) if v.isdigit() else v) for v in match.group(1, 2))
    if day_of_week:
        low, high = (v % 7 if isinstance(v, int) else v for v in (low, high))
    return match.group(1) if low == high else item


class ScheduleError(ValueError):
    """A schedule that cannot be used; `field` names the culprit and the text says the fix."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class Misfire(StrEnum):
    COALESCE = "coalesce"
    ALL = "all"
    SKIP = "skip"


class Overlap(StrEnum):
    SKIP = "skip"
    BUFFER_ONE = "buffer_one"
    ALLOW = "allow"


class DstGap(StrEnum):
    SHIFT = "shift"
    SKIP = "skip"


class DstOverlap(StrEnum):
    FIRST = "first"
    LAST = "last"
    BOTH = "both"


@dataclass(frozen=True)
class Once:
    at: datetime

    def __post_init__(self) -> None:
        if self.at.tzinfo is None:
            raise ScheduleError(
                "schedule.once.at",
                "is a naive datetime; pass an aware one, e.g. datetime.now(timezone.utc) + timedelta(minutes=10)",
            )


@dataclass(frozen=True)
class Interval:
    seconds: int
    start_at: datetime | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.seconds, int) or isinstance(self.seconds, bool) or self.seconds < 1:
            raise ScheduleError("schedule.interval.seconds", f"must be a whole number >= 1, got {self.seconds!r}")
        if self.start_at is not None and self.start_at.tzinfo is None:
            raise ScheduleError("schedule.interval.start_at", "is a naive datetime; pass an aware one")


@dataclass(frozen=True)
class Cron:
    expression: str
    timezone: str = "UTC"
    dst_gap: DstGap = DstGap.SHIFT
    dst_overlap: DstOverlap = DstOverlap.FIRST

    def __post_init__(self) -> None:
        _coerce(self, "dst_gap", DstGap, "shift|skip")
        _coerce(self, "dst_overlap", DstOverlap, "first|last|both")
        fields = self.expression.split()
        if len(fields) not in (5, 6):
            raise ScheduleError(
                "schedule.cron.expression",
                f"{self.expression!r} has {len(fields)} fields; Capsule's cron takes {CRON_DIALECT}",
            )
        for position, field in enumerate(fields):
            names = position >= len(fields) - 2  # month and day of week may be named
            for item in field.split(","):
                if not (_ITEM_NAMED if names else _ITEM).fullmatch(item):
                    raise ScheduleError(
                        "schedule.cron.expression",
                        f"{self.expression!r}: {item!r} is not part of Capsule's cron, which takes {CRON_DIALECT}; "
                        "each field is *, a number, a range a-b, a step */n or a-b/n, or a list of these "
                        "(month and day of week may be named: jan, mon); croniter's R, L, W, # and ? are not "
                        "supported",
                    )
        if not (croniter.is_valid(self.expression, second_at_beginning=self.has_seconds)
                and croniter.is_valid(self.evaluated, second_at_beginning=self.has_seconds)):
            raise ScheduleError(
                "schedule.cron.expression",
                f"{self.expression!r} is not a valid cron expression; Capsule's cron takes {CRON_DIALECT}",
            )
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ScheduleError(
                "schedule.cron.timezone",
                f"{self.timezone!r} is not an IANA timezone; use a name such as 'UTC' or 'America/New_York'",
            ) from None

    @property
    def has_seconds(self) -> bool:
        return len(self.expression.split()) == 6

    @property
    def days_either(self) -> bool:
        """Whether a day fires when it matches day of month OR day of week: when both
        are restricted, as in Vixie cron; a field starting with * (like */2) leaves
        the other to decide alone (croniter would OR it)."""
        fields = self.expression.split()
        return not (fields[-3].startswith("*") or fields[-1].startswith("*"))

    @cached_property
    def evaluated(self) -> str:
        """The expression as croniter is given it: a range from a value to itself is
        that value, as in every cron (croniter reads "1-1" as the whole field)."""
        fields = self.expression.split()
        return " ".join(",".join(_single(item, n == len(fields) - 1) for item in field.split(","))
                        for n, field in enumerate(fields))

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


@dataclass(frozen=True)
class Schedule:
    """When a job fires (`when`; None = on demand only) and what to do with late or
    overlapping fires. `max_running` caps this job's attempts running at once
    (0: no per-job cap; attempts over it wait, queued, in order)."""

    when: Once | Interval | Cron | None = None
    misfire: Misfire = Misfire.COALESCE
    misfire_cap: int = 100
    catchup_window_seconds: int = 3600
    overlap: Overlap = Overlap.SKIP
    max_running: int = 0

    def __post_init__(self) -> None:
        _coerce(self, "misfire", Misfire, "coalesce|all|skip")
        _coerce(self, "overlap", Overlap, "skip|buffer_one|allow")
        if self.misfire_cap < 1:
            raise ScheduleError("schedule.misfire_cap", f"must be >= 1, got {self.misfire_cap}")
        if not isinstance(self.max_running, int) or self.max_running < 0:
            raise ScheduleError("schedule.max_running", f"must be a whole number >= 0 (0: no cap), got {self.max_running!r}")
        if self.catchup_window_seconds < 0:
            raise ScheduleError(
                "schedule.catchup_window_seconds", f"must be >= 0, got {self.catchup_window_seconds}"
            )

    @property
    def recurring(self) -> bool:
        return isinstance(self.when, (Interval, Cron))


def _coerce(value: object, name: str, enum: type[StrEnum], choices: str) -> None:
    """Let callers pass plain strings for enum fields of a frozen dataclass."""
    try:
        object.__setattr__(value, name, enum(getattr(value, name)))
    except ValueError:
        raise ScheduleError(f"schedule.{name}", f"{getattr(value, name)!r} is not one of {choices}") from None


def once(at: datetime, **policy) -> Schedule:
    """Fire once at an aware datetime."""
    return Schedule(Once(at), **policy)


def interval(seconds: int, start_at: datetime | None = None, **policy) -> Schedule:
    """Fire every `seconds` on the grid start_at + k*seconds."""
    return Schedule(Interval(seconds, start_at), **policy)


def cron(
    expression: str,
    timezone: str = "UTC",
    dst_gap: str = DstGap.SHIFT,
    dst_overlap: str = DstOverlap.FIRST,
    **policy,
) -> Schedule:
    """Fire on a cron expression (5 fields, or 6 with seconds first) in an IANA timezone."""
    return Schedule(Cron(expression, timezone, dst_gap, dst_overlap), **policy)


def first_fire(schedule: Schedule, now: datetime) -> datetime | None:
    """The first fire of a schedule created at `now`.

    A one-off fires at its instant even if that has just passed (the scheduler runs it
    late); an interval fires at `start_at` when that is still ahead, else on the next
    grid point after now.
    """
    when = schedule.when
    if isinstance(when, Once):
        return when.at.astimezone(UTC)
    if isinstance(when, Interval) and when.start_at is not None and when.start_at > now:
        return when.start_at.astimezone(UTC)
    return next_fire(schedule, now)


def next_fire(schedule: Schedule, after: datetime) -> datetime | None:
    """The first fire strictly after `after` (aware), or None when there is none."""
    when = schedule.when
    if isinstance(when, Once):
        return when.at.astimezone(UTC) if when.at > after else None
    if isinstance(when, Interval):
        return _next_on_grid(when, after)
    if isinstance(when, Cron):
        return _next_cron(when, after)
    return None


def upcoming(schedule: Schedule, after: datetime, count: int = 5) -> list[datetime]:
    """The next `count` fires after `after` (fewer when the schedule ends)."""
    fires: list[datetime] = []
    t = first_fire(schedule, after)
    while t is not None and len(fires) < count:
        fires.append(t)
        t = next_fire(schedule, t)
    return fires


def _next_on_grid(when: Interval, after: datetime) -> datetime:
    anchor = when.start_at or datetime(1970, 1, 1, tzinfo=UTC)
    if after < anchor:
        return anchor.astimezone(UTC)
    step = timedelta(seconds=when.seconds)
    k = (after - anchor) // step + 1
    return (anchor + k * step).astimezone(UTC)


_DAY = timedelta(days=1)
_SECOND = timedelta(seconds=1)


def _next_cron(when: Cron, after: datetime) -> datetime:
    zone = when.zone
    early, late = _offset(zone, after - _DAY), _offset(zone, after + _DAY)
    if early != late:
        return _next_cron_across(when, after, early, late)
    # No transition within a day: the next wall time's instant is the next fire. (Its
    # own day may have one, far ahead: _instants applies the DST policy there.)
    for wall in _walls(when, after.astimezone(zone).replace(tzinfo=None)):
        instants = [t for t in _instants(wall, when) if t > after]
        if instants:
            return min(instants)
    raise AssertionError("a valid cron expression always fires again")


def _next_cron_across(when: Cron, after: datetime, early: timedelta, late: timedelta) -> datetime:
    """The next fire when the UTC offset changes from `early` to `late` within a day of
    `after`. Instants before the transition read the wall clock at `early`, from it on
    at `late`; the walls in between are a gap (spring forward) or occur twice (fall
    back). Each part is one search for the next wall, never a walk over every wall
    near the transition (a cron with seconds has 3,600 of them in an hour)."""
    zone = when.zone
    change = _transition(zone, after - _DAY, after + _DAY)
    shift = late - early
    repeated = max(-shift, timedelta(0))
    fires = []
    # Before the transition. With dst_overlap "last", the repeated walls' first
    # occurrences (the last `repeated` of this part) do not run.
    end = change - repeated if when.dst_overlap is DstOverlap.LAST else change
    if after < end:
        instant = _wall_after(when, after, early)
        if instant < end:
            fires.append(instant)
    # The gap: if any wall in it is a fire, dst_gap "shift" runs it once, at the transition.
    if shift > timedelta(0) and when.dst_gap is DstGap.SHIFT and after < change:
        if _wall_after(when, change - _SECOND, early) < change + shift:
            fires.append(change)
    # From the transition on. With dst_overlap "first", the second occurrences do not run.
    start = change + repeated if when.dst_overlap is DstOverlap.FIRST else change
    instant = _wall_after(when, max(after, start - _SECOND), late)
    # The clock reads `late` up to a day after `after`, not necessarily beyond: a fire
    # further ahead may fall in another transition (next year's repeated hour, say).
    if instant <= after + _DAY:
        fires.append(instant)
    elif not fires:
        # Nothing fires within the day: the search goes on from its end.
        return _next_cron(when, after + _DAY)
    return min(fires)


def _offset(zone: ZoneInfo, instant: datetime) -> timedelta:
    offset = instant.astimezone(zone).utcoffset()
    assert offset is not None
    return offset


def _wall_after(when: Cron, after: datetime, offset: timedelta) -> datetime:
    """The instant of the first wall time after `after`'s, reading the clock at `offset`."""
    wall = (after.astimezone(UTC) + offset).replace(tzinfo=None)
    return (next(_walls(when, wall)) - offset).replace(tzinfo=UTC)


def _transition(zone: ZoneInfo, lo: datetime, hi: datetime) -> datetime:
    """The first whole second after `lo`, up to `hi`, whose UTC offset is not `lo`'s."""
    lo, hi = lo.astimezone(UTC).replace(microsecond=0), hi.astimezone(UTC)
    before = _offset(zone, lo)
    while hi - lo > _SECOND:
        middle = lo + (hi - lo) / 2
        if _offset(zone, middle) == before:
            lo = middle
        else:
            hi = middle
    return hi.replace(microsecond=0)  # transitions fall on whole seconds


def _walls(when: Cron, start: datetime) -> Iterator[datetime]:
    it = croniter(when.evaluated, start, second_at_beginning=when.has_seconds, ret_type=datetime,
                  day_or=when.days_either)
    while True:
        yield it.get_next(datetime)


def _instants(wall: datetime, when: Cron) -> list[datetime]:
    """The UTC instants at which a local wall time happens, under the DST policy."""
    zone = when.zone
    first = wall.replace(tzinfo=zone, fold=0)
    second = wall.replace(tzinfo=zone, fold=1)
    exists = [t for t in (first, second) if _roundtrips(t, wall)]
    if not exists:  # in a gap
        # The gap's end: the transition, between the two readings of the wall.
        return [_transition(zone, *sorted((first.astimezone(UTC), second.astimezone(UTC))))] \
            if when.dst_gap is DstGap.SHIFT else []
    if len(exists) == 2 and first.utcoffset() != second.utcoffset():  # repeated
        chosen = {DstOverlap.FIRST: [first], DstOverlap.LAST: [second], DstOverlap.BOTH: [first, second]}
        return [t.astimezone(UTC) for t in chosen[when.dst_overlap]]
    return [exists[0].astimezone(UTC)]


def _roundtrips(t: datetime, wall: datetime) -> bool:
    return t.astimezone(UTC).astimezone(t.tzinfo).replace(tzinfo=None) == wall


def describe(schedule: Schedule | None) -> str:
    """A sentence for humans, e.g. "every day at 09:00 America/New_York"."""
    when = schedule.when if schedule else None
    if when is None:
        return "on demand"
    if isinstance(when, Once):
        return f"once at {when.at.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"
    if isinstance(when, Interval):
        return f"every {_duration(when.seconds)}"
    return _describe_cron(when)


def _duration(seconds: int) -> str:
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds % size == 0:
            n = seconds // size
            return f"{n} {unit}s" if n != 1 else unit
    return f"{seconds} seconds" if seconds != 1 else "second"


_DAYS = {"0": "Sunday", "1": "Monday", "2": "Tuesday", "3": "Wednesday", "4": "Thursday",
         "5": "Friday", "6": "Saturday", "7": "Sunday", "1-5": "weekday"}


def _describe_cron(when: Cron) -> str:
    fields = when.expression.split()
    sec, (minute, hour, dom, mon, dow) = (fields[0] if when.has_seconds else "0"), fields[-5:]
    plain = all(f.isdigit() for f in (sec, minute, hour))
    if plain and dom == "*" and mon == "*":
        at = f"{int(hour):02d}:{int(minute):02d}" + (f":{int(sec):02d}" if sec != "0" else "")
        if dow == "*":
            return f"every day at {at} {when.timezone}"
        if dow in _DAYS:
            return f"every {_DAYS[dow]} at {at} {when.timezone}"
    if sec == "0" and minute.startswith("*/") and hour == dom == mon == dow == "*":
        return f"every {minute[2:]} minutes"
    if sec == "0" and minute.isdigit() and hour == dom == mon == dow == "*":
        return f"every hour at minute {int(minute)}"
    return f"cron '{when.expression}' in {when.timezone}"


def to_dict(schedule: Schedule | None) -> dict | None:
    """A JSON-ready form for the store (never the wire: that is engine/convert.py)."""
    if schedule is None:
        return None
    out: dict = {
        "misfire": schedule.misfire.value, "misfire_cap": schedule.misfire_cap,
        "catchup_window_seconds": schedule.catchup_window_seconds, "overlap": schedule.overlap.value,
        "max_running": schedule.max_running,
    }
    when = schedule.when
    if isinstance(when, Once):
        out["once"] = {"at": when.at.astimezone(UTC).isoformat()}
    elif isinstance(when, Interval):
        out["interval"] = {"seconds": when.seconds,
                           "start_at": when.start_at.astimezone(UTC).isoformat() if when.start_at else None}
    elif isinstance(when, Cron):
        out["cron"] = {"expression": when.expression, "timezone": when.timezone,
                       "dst_gap": when.dst_gap.value, "dst_overlap": when.dst_overlap.value}
    return out


def from_dict(data: dict | None) -> Schedule | None:
    if data is None:
        return None
    when: Once | Interval | Cron | None = None
    if "once" in data:
        when = Once(datetime.fromisoformat(data["once"]["at"]))
    elif "interval" in data:
        start = data["interval"]["start_at"]
        when = Interval(data["interval"]["seconds"], datetime.fromisoformat(start) if start else None)
    elif "cron" in data:
        when = Cron(**data["cron"])
    return Schedule(when, data["misfire"], data["misfire_cap"], data["catchup_window_seconds"], data["overlap"],
                    data.get("max_running", 0))
