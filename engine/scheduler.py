"""The scheduler: turns due fires into executions and runs queued attempts.

One thread owns the loop. Each pass it
1. claims the due fires of active jobs from the due index, a batch per transaction:
   each job's `next_run` moves on and every fire it owed becomes an execution row
   (queued, or skipped / missed with its reason; engine/misfire.py decides);
2. claims due queued attempts while the global cap allows (status -> running with a
   lease, durably), then hands each to a worker thread that runs it in a sandboxed
   child;
3. sleeps until the earliest `next_run` or queued attempt, or until woken by a
   create or update, a trigger while a worker is free, or an attempt that queued a
   retry. A worker that finishes claims the next ready attempt for its own slot in the
   transaction that commits the finish, and runs it: in a burst, one commit per
   attempt and no hand-off between threads.

Fires and retries are claimed `CLAIM_AHEAD_SECONDS` before they are due, and their
child, once forked and set up, waits for the due instant before it calls the
function: the function starts on time rather than late by the claim, the hand-off
and the fork. The price is that a change made in those last milliseconds before a
fire (an update, a pause) applies from the next fire on.

`next_fire` is computed once per fire, never for all jobs: a restart reads only the
head of the due index. Every step is a committed transaction before the next begins,
so a kill at any instant leaves either an unclaimed fire (the next engine claims it),
a queued attempt (it starts), or a running attempt of a dead engine, which start-up
reconciliation finishes as crashed and retries while attempts remain. Fires that fell
due while the engine was down follow the job's misfire policy.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any, Callable, Mapping

from engine import misfire
from engine.clock import Clock
from engine.core import Engine, final_job_status, fire_of, one_off
from engine.model import DEFAULT_TIMEOUT, ExecutionError, ExecutionStatus, Limits, Version
from engine.store import AttemptContext, AttemptResult, Fire, Store, new_id
from engine.validation import MAX_METADATA_BYTES, metadata_bytes
from sandbox import AttemptRequest, EffectRefused, Limits as SandboxLimits

log = logging.getLogger("capsule.scheduler")

# The global cap on attempts running at once (`capsule serve --max-running N`).
DEFAULT_WORKERS = 8
# Fires recorded per transaction: small enough that the first of a burst start soon.
FIRE_BATCH = 50
LEASE_GRACE_SECONDS = 60.0
# With every worker busy the loop sleeps until an attempt finishes, checking at least this often.
BUSY_RECHECK_SECONDS = 0.05
# How far ahead of its due time an attempt is claimed and its child prepared: more than
# claim + hand-off + fork take on a busy machine (a few ms), little enough that a fire
# still follows any change made before it.
CLAIM_AHEAD_SECONDS = 0.02
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
        self.engine_id = new_id("eng")
        self.started_at = self.clock.now()
        engine.wake_scheduler = self.wake
        engine.attempt_queued = self.attempt_queued

    def start(self) -> None:
        self.started_at = self.clock.now()
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

    def attempt_queued(self) -> None:
        """An attempt was queued to start now. With every worker busy a pass of the loop
        would find nothing to do: the first worker to finish starts it (its
        `start_ready` follows its slot's release, which follows this check)."""
        if not self._all_busy():
            self.wake()

    # -- the loop ------------------------------------------------------------------------------

    def _loop(self) -> None:
        while not self._stopping.is_set():
            self._wake.clear()
            try:
                now = self.clock.now()
                self.fire_due(now)
                while self.start_ready(now):
                    pass
                delay = self._sleep_seconds()
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

    def _sleep_seconds(self) -> float | None:
        # From the clock's reading now, not the pass's start: a sleep measured from the
        # pass's start would wake late by however long the pass took.
        now = self.clock.now()
        wakeup = self.store.next_wakeup(now + timedelta(seconds=CLAIM_AHEAD_SECONDS))
        if wakeup is None:
            return None
        return max((wakeup - now).total_seconds() - CLAIM_AHEAD_SECONDS, 0.0)

    def fire_due(self, now: datetime) -> int:
        """Claims and records every fire due by `now` + `CLAIM_AHEAD_SECONDS`, a batch
        per transaction; returns how many jobs fired. After each batch it starts what is
        ready: in a burst the first attempts run while the rest are being recorded."""
        horizon = now + timedelta(seconds=CLAIM_AHEAD_SECONDS)
        count = 0
        while batch := self.store.due_jobs(horizon, FIRE_BATCH):
            # Decided inside the transaction that records them: what a fire's overlap policy
            # sees (the job queued or running) cannot change before the fire is recorded.
            with self.store.transaction():
                fires = [self._decide(job_id, self.store.get_version(job_id, version_id=version_id), due, horizon)
                         for job_id, version_id, due in batch]
                self.store.record_fires(fires, now)
            count += len(fires)
            self.engine.finished.notify()
            while self.start_ready(now):
                pass
            if len(batch) < FIRE_BATCH:
                break  # every job due by the horizon is in this batch
        return count

    def _decide(self, job_id: str, version: Version, due: datetime, now: datetime) -> Fire:
        assert version.schedule is not None
        plan = misfire.plan_fires(version.schedule, due, now, missed_before=self.started_at)
        busy, queued = self.store.job_busy(job_id)
        return fire_of(job_id, version, due, plan, busy, queued)

    def start_ready(self, now: datetime) -> int:
        """Claims due queued attempts while the global cap allows and hands them to
        workers; returns how many started."""
        # Workers call this too, as they finish: one caller at a time claims free slots.
        with self._start_lock:
            if self._stopping.is_set():
                return 0
            with self._running_lock:
                free = self.workers - self._running
            if free <= 0:
                return 0
            started = self.store.start_ready(now, free, self.engine_id, LEASE_GRACE_SECONDS, CLAIM_AHEAD_SECONDS)
            for execution_id in started:
                with self._running_lock:
                    self._running += 1
                self._pool.submit(self._run_and_release, execution_id)
        return len(started)

    def _run_and_release(self, execution_id: str) -> None:
        """Runs attempts in the worker slot claimed for `execution_id`: that one, then
        each one its finish claimed next, in the same transaction (one commit, no hand-off)."""
        next_id: str | None = execution_id
        try:
            while next_id is not None:
                next_id = self._run_guarded(next_id)
        finally:
            with self._running_lock:
                self._running -= 1
            # Take the next ready attempt at once: the loop need not wake for it.
            try:
                self.start_ready(self.clock.now())
            except Exception:
                log.exception("could not start the next attempt", extra={"action": "start_ready"})
                self.wake()  # the loop tries again

    def _run_guarded(self, execution_id: str) -> str | None:
        """`run_one`, finishing the attempt as crashed if the engine fails; the id of the
        attempt claimed next for this slot, if any. (run_one claims only in its last
        transaction, so when it raises, nothing was claimed.)"""
        try:
            return self.run_one(execution_id, claim_next=True)
        except Exception:
            log.exception("attempt failed inside the engine", extra={"action": "run_attempt",
                                                                     "execution_id": execution_id})
            self._finish(execution_id, ExecutionStatus.CRASHED,
                         ExecutionError("EngineError", "the engine failed while running this attempt"))
            return None

    # -- one attempt -----------------------------------------------------------------------------

    def run_one(self, execution_id: str, *, claim_next: bool = False) -> str | None:
        """Runs a running-claimed execution in a sandboxed child and commits its outcome;
        with `claim_next`, also claims the next ready attempt for the same worker slot and
        returns its id."""
        ctx = self.store.attempt_context(execution_id)
        # Claimed ahead of its due time: the child waits for it (on the wall clock).
        early = (ctx.execution.scheduled_for - self.clock.now()).total_seconds()
        request = AttemptRequest(
            start_at=time.time() + early if early > 0 else None,
            source=ctx.artifact.source, entrypoint=ctx.artifact.entrypoint, job=_job_scope(ctx),
            isolation=ctx.version.isolation.value, payload=ctx.artifact.payload,
            limits=SandboxLimits(**_sandbox_limits(ctx.version.timeout_seconds, ctx.version.limits),
                                 max_calls=_max_calls(ctx)),
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
        return self._finish(execution_id, ExecutionStatus(outcome.status), error, ctx=ctx,
                            result_json=outcome.result_json, logs=outcome.logs, effects=tuple(outcome.effects),
                            duration_ms=outcome.duration_ms, claim_next=claim_next)

    def _finish(self, execution_id: str, status: ExecutionStatus, error: ExecutionError | None, *,
                ctx: AttemptContext | None = None, result_json: str | None = None, logs: str = "",
                effects: tuple[Mapping[str, Any], ...] = (), duration_ms: int | None = None,
                claim_next: bool = False) -> str | None:
        ctx = ctx or self.store.attempt_context(execution_id)
        now = self.clock.now()
        retry = ctx.version.retry
        retry_at = None
        if status.failed_attempt and ctx.execution.attempt < retry.max_attempts:
            retry_at = now + timedelta(seconds=retry.delay_before(ctx.execution.attempt + 1))
        # The context's job is as the attempt started. Only a one-off's final status depends
        # on it, on its next_run, which an update meanwhile may have moved: read that again.
        next_run = self.store.next_run(ctx.job.id) if one_off(ctx.version) else ctx.job.next_run
        started = ctx.execution.started_at or now
        result = AttemptResult(
            execution_id=execution_id, status=status, finished_at=now,
            duration_ms=duration_ms if duration_ms is not None else int((now - started).total_seconds() * 1000),
            result_json=result_json, error=error, logs=logs, effects=effects, retry_at=retry_at,
            job_status=final_job_status(next_run, ctx.version, status, retry_at is not None))
        next_id = None
        if claim_next:
            # The same lock order as start_ready: the claim lock, then the store's.
            with self._start_lock, self.store.transaction() as conn:
                self.store.finish_attempt(result, now)
                next_id = self._claim_one(conn, now)
        else:
            self.store.finish_attempt(result, now)
        try:
            self._after_finish(ctx, execution_id, status, retry_at is not None)
        except Exception:  # committed: the claimed attempt must still run
            log.exception("could not complete a finished attempt", extra={"action": "finish_attempt",
                                                                          "execution_id": execution_id})
        return next_id

    def _claim_one(self, conn: Any, now: datetime) -> str | None:
        """The next ready attempt, claimed inside the caller's transaction, or None. A
        savepoint keeps a failed claim from undoing the rest of the transaction."""
        if self._stopping.is_set():
            return None
        try:
            with conn:
                started = self.store.start_ready(now, 1, self.engine_id, LEASE_GRACE_SECONDS, CLAIM_AHEAD_SECONDS)
        except Exception:
            log.exception("could not claim the next attempt", extra={"action": "start_ready"})
            self.wake()  # the loop tries again
            return None
        return started[0] if started else None

    def _after_finish(self, ctx: AttemptContext, execution_id: str, status: ExecutionStatus,
                      retrying: bool) -> None:
        if retrying:
            self.wake()  # the loop's next wake-up may now be the retry's time
        if self.store.take_message_flag():
            self.engine.messages.notify()
        # Before waiters wake, so they see the pruned history; the exact age limit is the hourly sweep's.
        self.engine.apply_retention(ctx.job.id, exact_age=False)
        self.engine.finished.notify()
        log.info("attempt finished", extra={"action": "finish_attempt", "execution_id": execution_id,
                                            "status": status.value})

    # -- start-up ---------------------------------------------------------------------------------

    def _reconcile(self) -> None:
        """Attempts a previous engine left running died with it: crashed, retried if allowed.
        (Fires it missed are found by the first pass, through the due index.)"""
        for execution_id in self.store.abandoned_executions(self.engine_id):
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


# Calls an attempt may make besides its sends (metadata updates, deactivate, delete).
OTHER_CALLS = 100


def _max_calls(ctx: AttemptContext) -> int:
    """The sandbox's cap on an attempt's calls: the owner's sends, and the other calls."""
    return (ctx.owner_limits.max_messages_per_attempt or 0) + OTHER_CALLS


def _authorizer(ctx: AttemptContext) -> Callable[[Mapping[str, Any]], None]:
    """The engine's check of each call a child makes, before anything is recorded.

    Users live in their owner's namespace: a message is always stored under the job's
    owner, so a job can only ever reach users of its own owner. Sends past the owner's
    `max_messages_per_attempt` are refused.
    """
    cap = ctx.owner_limits.max_messages_per_attempt or 0
    sent = [0]
    others = [0]
    # What the job's metadata will be once this attempt's updates are applied: each
    # update is small, but they add up, and the whole must stay under the same cap as
    # metadata set through the API.
    metadata = dict(ctx.job.metadata)

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
        elif others[0] >= OTHER_CALLS:
            raise EffectRefused(f"an attempt may make at most {OTHER_CALLS} calls besides its sends "
                                "(metadata updates, deactivate, delete); make fewer, larger updates")
        else:
            others[0] += 1
        if call.get("op") == "update_metadata":
            size = metadata_bytes({**metadata, **call["metadata"]})
            if size > MAX_METADATA_BYTES:
                raise EffectRefused(f"metadata: the job's metadata would be {size} bytes of JSON, over the cap of "
                                    f"{MAX_METADATA_BYTES}; store less in it, or replace keys instead of adding")
            metadata.update(call["metadata"])

    return authorize
