"""Time as a dependency: the scheduler reads `now()` and sleeps through the clock, so
tests drive time by hand instead of sleeping."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone
from typing import Protocol

UTC = timezone.utc


class Clock(Protocol):
    def now(self) -> datetime: ...

    def sleep(self, wake: threading.Event, seconds: float | None) -> None:
        """Block until `wake` is set or `seconds` of this clock's time have passed."""


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def sleep(self, wake: threading.Event, seconds: float | None) -> None:
        wake.wait(seconds)


class ManualClock:
    """A clock that moves only when told; `advance` wakes whoever sleeps on it."""

    def __init__(self, start: datetime) -> None:
        self._now = start
        self._lock = threading.Lock()
        self._sleepers: set[threading.Event] = set()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, seconds: float = 0.0, *, to: datetime | None = None) -> datetime:
        with self._lock:
            self._now = to if to is not None else self._now + timedelta(seconds=seconds)
            for wake in self._sleepers:
                wake.set()
            return self._now

    def sleep(self, wake: threading.Event, seconds: float | None) -> None:
        # Time stands still between advances, so a timed sleep is a sleep until woken;
        # the short real timeout only guards against a lost wake-up.
        with self._lock:
            self._sleepers.add(wake)
        try:
            wake.wait(0.5 if seconds is not None else None)
        finally:
            with self._lock:
                self._sleepers.discard(wake)
