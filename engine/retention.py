"""Retention: how long finished executions (with their results, errors and logs) stay.

Each job keeps its `keep_last` most recent finished executions, none older than
`max_age_days` (its version's `Retention`, else `model.DEFAULT_RETENTION`: 1000 and
30 days). The scheduler applies a job's retention right after one of its attempts
finishes, with a few index probes and a delete only when something goes; there the
age limit removes only executions created before the job's oldest one still young
enough (see `Store.prune_job_history`). `RetentionSweeper` applies every job's
exactly once an hour, so the age limit also reaches jobs that no longer run (first
pass one period after start). `capsule log-cleanup` is the operator's immediate,
global age limit on top of this.
"""

from __future__ import annotations

import logging
import threading

from engine.core import Engine

log = logging.getLogger("capsule.retention")

SWEEP_SECONDS = 3600.0


class RetentionSweeper:
    """A thread that applies every job's retention every `seconds`."""

    def __init__(self, engine: Engine, seconds: float = SWEEP_SECONDS) -> None:
        self.engine = engine
        self.seconds = seconds
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="capsule-retention", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=10)

    def sweep(self) -> tuple[int, int]:
        """One pass over every job; returns (executions, bytes) removed."""
        count, size = self.engine.apply_retention_everywhere()
        if count:
            log.info("retention removed %d executions (%d bytes)", count, size,
                     extra={"action": "retention_sweep", "executions": count, "bytes": size})
        return count, size

    def _loop(self) -> None:
        # Wait a period first: a sweep touches every job, and start-up must stay cheap
        # however many jobs the store holds (attempts that finish prune their own job).
        while not self._stopping.wait(self.seconds):
            try:
                self.sweep()
            except Exception:  # the sweep must survive a busy or failing store; retried next pass
                log.exception("retention sweep failed", extra={"action": "retention_sweep"})
