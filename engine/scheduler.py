"""The scheduler: turns due fires into executions and runs queued attempts.

One thread owns the loop. Each pass it
1. records every due fire of an active job as an execution (queued, or skipped /
   missed with a reason) and moves the job's `next_run`, one transaction per fire;
2. starts due queued attempts while workers are free (status -> running, durably),
   handing each to a worker thread that runs it in a sandboxed child;
3. sleeps until the earliest `next_run` or queued attempt, or until woken by a
   create, update, trigger or a finished attempt.

`next_fire` is computed once per fire, never for all jobs. On start, attempts left
running by a previous engine are finished as crashed (and retried while attempts
remain).
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any, Callable, Mapping

from engine import schedules
from engine.clock import Clock
from engine.core import Engine, final_job_status
from engine.model import DEFAULT_TIMEOUT, ExecutionError, ExecutionStatus, Limits, Version
from engine.schedules import Overlap
from engine.store import AttemptContext, AttemptResult, Fire, Store

log = logging.getLogger("capsule.scheduler")

DEFAULT_WORKERS = 8
FIRE_BATCH = 500
# With every worker busy the loop sleeps until an attempt finishes, checking at least this often.
BUSY_RECHECK_SECONDS = 0.05
DEFAULT_MEMORY_MB = 512
DEFAULT_LOG_BYTES = 64 * 1024
DEFAULT_OUTPUT_BYTES = 1024 * 1024


class Scheduler:
    def __init__(self, engine: Engine, run_attempt: Callable[..., Any], *, workers: int = DEFAULT_WORKERS) -> None:
        self.engine = engine
        self.store: Store = engine.store
        self.clock: Clock = engine.clock
        self.run_attempt = run_attempt
        self.workers = workers
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="capsule-attempt")
        self._running = 0
        self._running_lock = threading.Lock()
        self._start_lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="capsule-scheduler", daemon=True)
        engine.wake_scheduler = self.wake

    def start(self) -> None:
        self._reconcile()
        self._thread.start()

    def stop(self, wait_for_attempts: bool = True) -> None:
        with self._start_lock:  # no attempt is claimed after this
            self._stopping.set()
        self._wake.set()
        self._thread.join(timeout=10)
        self._pool.shutdown(wait=wait_for_attempts, cancel_futures=True)

    def wake(self) -> None:
        self._wake.set()

    # -- the loop ------------------------------------------------------------------------------

    def _loop(self) -> None:
        while not self._stopping.is_set():
            self._wake.clear()
            try:
                now = self.clock.now()
                self.fire_due(now)
                self.start_ready(now)
                delay = self._sleep_seconds(now)
                if delay == 0 and self._all_busy():
                    # Ready attempts wait for a worker; a finishing attempt wakes the loop.
                    delay = BUSY_RECHECK_SECONDS
            except Exception:  # the loop must survive anything a pass throws
                log.exception("scheduler pass failed", extra={"action": "scheduler_pass"})
                delay = 1.0
            self.clock.sleep(self._wake, delay)

    def _all_busy(self) -> bool:
        with self._running_lock:
            return self._running >= self.workers

    def _sleep_seconds(self, now: datetime) -> float | None:
        wakeup = self.store.next_wakeup()
        if wakeup is None:
            return None
        return max((wakeup - now).total_seconds(), 0.0)

    def fire_due(self, now: datetime) -> int:
        """Records every fire due at `now`; returns how many."""
        count = 0
        while batch := self.store.due_jobs(now, FIRE_BATCH):
            for job_id, version_id, fire_time in batch:
                version = self.store.get_version(job_id, version_id=version_id)
                self.store.record_fire(self._decide(job_id, version, fire_time, now), now)
                count += 1
        if count:
            self.engine.finished.notify()
        return count

    def _decide(self, job_id: str, version: Version, fire_time: datetime, now: datetime) -> Fire:
        schedule = version.schedule
        assert schedule is not None
        # Coalesce: whatever was missed, the next fire is the first grid point after now.
        next_run = schedules.next_fire(schedule, max(fire_time, now))
        one_off = not schedule.recurring
        late = (now - fire_time).total_seconds()
        if late > schedule.catchup_window_seconds:
            return Fire(job_id, version.id, fire_time, next_run, ExecutionStatus.MISSED,
                        "missed: catchup_window", complete_job=one_off)
        busy, queued = self.store.job_busy(job_id)
        if busy and (schedule.overlap is Overlap.SKIP or (schedule.overlap is Overlap.BUFFER_ONE and queued)):
            return Fire(job_id, version.id, fire_time, next_run, ExecutionStatus.SKIPPED,
                        "skipped: overlap", complete_job=one_off)
        return Fire(job_id, version.id, fire_time, next_run, ExecutionStatus.QUEUED,
                    concurrent=schedule.overlap is Overlap.ALLOW)

    def start_ready(self, now: datetime) -> int:
        """Starts due queued attempts on free workers; returns how many started."""
        # Workers call this too, as they finish: one caller at a time claims free slots.
        with self._start_lock:
            if self._stopping.is_set():
                return 0
            with self._running_lock:
                free = self.workers - self._running
            if free <= 0:
                return 0
            started = self.store.start_ready(now, free)
            for execution_id in started:
                with self._running_lock:
                    self._running += 1
                self._pool.submit(self._run_and_release, execution_id)
        return len(started)

    def _run_and_release(self, execution_id: str) -> None:
        try:
            self.run_one(execution_id)
        except Exception:
            log.exception("attempt failed inside the engine", extra={"action": "run_attempt",
                                                                     "execution_id": execution_id})
            self._finish(execution_id, ExecutionStatus.CRASHED,
                         ExecutionError("EngineError", "the engine failed while running this attempt"))
        finally:
            with self._running_lock:
                self._running -= 1
            # Take the next ready attempt at once rather than waiting for the loop thread.
            try:
                self.start_ready(self.clock.now())
            except Exception:
                log.exception("could not start the next attempt", extra={"action": "start_ready"})
            self.wake()

    # -- one attempt -----------------------------------------------------------------------------

    def run_one(self, execution_id: str) -> None:
        """Runs a running-claimed execution in a sandboxed child and commits its outcome."""
        from sandbox import AttemptRequest, Limits as SandboxLimits

        ctx = self.store.attempt_context(execution_id)
        request = AttemptRequest(
            source=ctx.artifact.source, entrypoint=ctx.artifact.entrypoint, job=_job_scope(ctx),
            isolation=ctx.version.isolation.value, payload=ctx.artifact.payload,
            limits=SandboxLimits(**_sandbox_limits(ctx.version.timeout_seconds, ctx.version.limits)),
            # Every stored version passed check_source at creation. An artifact without a
            # payload can only have been admitted under the restricted policy, so the
            # fork server may compile and cache it.
            admitted=ctx.artifact.payload is None,
        )
        outcome = self.run_attempt(request, authorize=_authorizer(ctx))
        error = None
        if outcome.error:
            error = ExecutionError(str(outcome.error.get("type", "Error")), str(outcome.error.get("message", "")),
                                   tuple(outcome.error.get("traceback", ())))
        self._finish(execution_id, ExecutionStatus(outcome.status), error, ctx=ctx,
                     result_json=outcome.result_json, logs=outcome.logs, effects=tuple(outcome.effects),
                     duration_ms=outcome.duration_ms)

    def _finish(self, execution_id: str, status: ExecutionStatus, error: ExecutionError | None, *,
                ctx: AttemptContext | None = None, result_json: str | None = None, logs: str = "",
                effects: tuple[Mapping[str, Any], ...] = (), duration_ms: int | None = None) -> None:
        ctx = ctx or self.store.attempt_context(execution_id)
        now = self.clock.now()
        retry = ctx.version.retry
        retry_at = None
        if status.failed_attempt and ctx.execution.attempt < retry.max_attempts:
            retry_at = now + timedelta(seconds=retry.delay_before(ctx.execution.attempt + 1))
        job = self.store.get_job(None, ctx.job.id)
        started = ctx.execution.started_at or now
        self.store.finish_attempt(AttemptResult(
            execution_id=execution_id, status=status, finished_at=now,
            duration_ms=duration_ms if duration_ms is not None else int((now - started).total_seconds() * 1000),
            result_json=result_json, error=error, logs=logs, effects=effects, retry_at=retry_at,
            job_status=final_job_status(job, ctx.version, status, retry_at is not None)), now)
        if self.store.take_message_flag():
            self.engine.messages.notify()
        self.engine.apply_retention(ctx.job.id)  # before waiters wake, so they see the pruned history
        self.engine.finished.notify()
        log.info("attempt finished", extra={"action": "finish_attempt", "execution_id": execution_id,
                                            "status": status.value})

    # -- start-up ---------------------------------------------------------------------------------

    def _reconcile(self) -> None:
        """Attempts a previous engine left running died with it: crashed, retried if allowed."""
        for execution_id in self.store.running_executions():
            self._finish(execution_id, ExecutionStatus.CRASHED,
                         ExecutionError("EngineStopped", "the engine stopped during this attempt"))


def _job_scope(ctx: AttemptContext) -> dict[str, Any]:
    """What the child may know about its job: metadata and identifiers, nothing else."""
    return {
        "id": ctx.job.id, "name": ctx.job.name, "kind": ctx.job.kind.value, "user_id": ctx.job.user_id,
        "metadata": dict(ctx.job.metadata), "active_version": ctx.version.number,
        "execution_id": ctx.execution.id, "attempt": ctx.execution.attempt,
    }


def _sandbox_limits(timeout_seconds: float, limits: Limits) -> dict[str, Any]:
    return {
        "timeout_seconds": timeout_seconds or DEFAULT_TIMEOUT["dynamic"],
        "memory_mb": limits.memory_mb or DEFAULT_MEMORY_MB,
        "cpu_seconds": limits.cpu_seconds,
        "output_bytes": limits.output_bytes or DEFAULT_OUTPUT_BYTES,
        "log_bytes": limits.log_bytes or DEFAULT_LOG_BYTES,
    }


def _authorizer(ctx: AttemptContext) -> Callable[[Mapping[str, Any]], None]:
    """The engine's check of each call a child makes, before anything is recorded.

    Users live in their owner's namespace: a message is always stored under the job's
    owner, so a job can only ever reach users of its own owner. Sends past the owner's
    `max_messages_per_attempt` are refused.
    """
    from sandbox import EffectRefused

    cap = ctx.owner_limits.max_messages_per_attempt or 0
    sent = [0]

    def authorize(call: Mapping[str, Any]) -> None:
        if ctx.job.status.value == "archived":
            raise EffectRefused("the job was deleted")
        if call.get("op") == "send" and not str(call.get("user_id", "")).strip():
            raise EffectRefused("User.get() needs a non-empty user id")
        if call.get("op") == "send":
            if sent[0] >= cap:
                raise EffectRefused(f"max_messages_per_attempt: this owner's jobs may send at most {cap} "
                                    "messages per attempt; send fewer, or ask an admin to raise the limit")
            sent[0] += 1

    return authorize
