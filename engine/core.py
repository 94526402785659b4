"""The engine's operations: what each request does, between the gRPC edge and the store.

Services (engine/services.py) convert wire messages and call these methods; the
scheduler (engine/scheduler.py) fires and runs attempts. Everything here speaks the
domain and raises engine.errors.
"""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, Callable, Iterator, Mapping

from croniter import CroniterBadDateError, CroniterError

from engine import misfire, schedules, validation
from engine.clock import Clock
from engine.errors import FailedPrecondition, InvalidArgument, PermissionDenied, QuotaExceeded
from engine.model import (
    DEFAULT_RETENTION, DEFAULT_TIMEOUT, FINISHED_JOB_STATUSES, Artifact, Execution, ExecutionStatus,
    Isolation, Job, JobSpec, JobStatus, Retention, Trigger, Version,
)
from engine.schedules import CRON_DIALECT, Overlap, Schedule
from engine.store import Caller, Fire, FireRecord, Store
from sandbox import SourceRejected
from sandbox.policy import policy_for

NEXT_FIRE_COUNT = 5
MAX_WAIT_SECONDS = 3600.0
MAX_QUEUED_PER_OWNER = 1000


def check_wait_timeout(timeout: float, field: str) -> None:
    if not 0 <= timeout <= MAX_WAIT_SECONDS:
        raise InvalidArgument(field, f"must be between 0 and {MAX_WAIT_SECONDS:.0f} seconds, got {timeout}")


class Notifier:
    """Wakes threads waiting for executions to finish or messages to arrive."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._generation = 0

    def notify(self) -> None:
        with self._cond:
            self._generation += 1
            self._cond.notify_all()

    def generation(self) -> int:
        with self._cond:
            return self._generation

    def wait(self, seen: int, timeout: float) -> int:
        """Waits until something happened after generation `seen` (or timeout)."""
        with self._cond:
            self._cond.wait_for(lambda: self._generation != seen, timeout)
            return self._generation


class Engine:
    def __init__(self, store: Store, clock: Clock, *, check_source: Callable[..., None],
                 wake_scheduler: Callable[[], None] = lambda: None) -> None:
        self.store = store
        self.clock = clock
        self.check_source = check_source
        self.wake_scheduler = wake_scheduler
        # An attempt was queued to start now: the scheduler wakes only if that helps.
        self.attempt_queued: Callable[[], None] = lambda: self.wake_scheduler()
        self.finished = Notifier()   # an execution finished
        self.messages = Notifier()   # a message was committed

    # -- creating and changing jobs ---------------------------------------------------------------

    def create_job(self, caller: Caller, spec: JobSpec) -> tuple[Job, Version]:
        self._admit(caller, spec)
        now = self.clock.now()
        next_run = self._first_run(spec.schedule, now, spec.paused)
        job, version = self.store.create_job(caller.owner, spec, self._timeout(spec), now, next_run)
        self.wake_scheduler()
        return job, version

    def update_job(self, caller: Caller, ref: str, changes: Mapping[str, Any]) -> tuple[Job, Version]:
        """Applies the changed fields; makes a new version when code or config changed."""
        job = self._live_job(caller, ref)
        current = self.store.get_version(job.id, version_id=job.active_version_id)
        if "description" in changes:
            self.store.set_description(job.id, changes["description"])
        spec = self._spec_of(job, current, changes)
        if self._unchanged(current, spec):
            return self.store.get_job(caller.scope, job.id), current
        self._admit(caller, spec)
        version = self._add_version(job, spec)
        return self.store.get_job(caller.scope, job.id), version

    def _unchanged(self, current: Version, spec: JobSpec) -> bool:
        """True when `spec` would make a version that runs exactly like `current`."""
        candidate = replace(current, artifact_digest=spec.artifact.digest, schedule=spec.schedule,
                            timeout_seconds=self._timeout(spec), retry=spec.retry,
                            isolation=spec.isolation, limits=spec.limits, retention=spec.retention)
        return candidate.same_config(current)

    def _add_version(self, job: Job, spec: JobSpec) -> Version:
        now = self.clock.now()
        next_run = self._first_run(spec.schedule, now, not job.active)
        status = JobStatus.PENDING if job.status in (JobStatus.COMPLETED, JobStatus.FAILED) else job.status
        version = self.store.add_version(job.id, spec, self._timeout(spec), now, next_run, status)
        self.wake_scheduler()
        return version

    def update_metadata(self, caller: Caller, ref: str, metadata: Mapping[str, Any], replace_all: bool) -> Job:
        job = self.get_job(caller, ref)
        merged = dict(metadata) if replace_all else {**job.metadata, **metadata}
        validation.check_metadata(merged, "metadata_json")
        self.store.set_metadata(job.id, merged)
        return self.store.get_job(caller.scope, job.id)

    def set_active(self, caller: Caller, ref: str, active: bool) -> Job:
        job = self.get_job(caller, ref)
        if active and job.status in FINISHED_JOB_STATUSES:
            raise FailedPrecondition(
                f"job {job.name!r} is {job.status.value} and cannot be activated; "
                "create it again or update its schedule")
        version = self.store.get_version(job.id, version_id=job.active_version_id)
        now = self.clock.now()
        # A finished job keeps its status; a never-fired one stays pending.
        keep = job.status in FINISHED_JOB_STATUSES or job.status is JobStatus.PENDING
        status = job.status if keep else JobStatus.ACTIVE
        if not active or job.active or version.schedule is None:
            self.store.set_active(job.id, active, job.next_run, status)
        else:
            self._resume(job, version, now, status)
        self.wake_scheduler()
        return self.store.get_job(caller.scope, job.id)

    def _resume(self, job: Job, version: Version, now: datetime, status: JobStatus) -> None:
        """Back on the grid: the fires the pause owed follow the misfire policy and
        are recorded ("paused" when they do not run), all with the resume."""
        assert version.schedule is not None
        due = job.next_run or schedules.first_fire(version.schedule, now)
        if due is None or due > now:
            self.store.set_active(job.id, True, due, status)
            return
        plan = misfire.plan_fires(version.schedule, due, now, missed_before=now, paused=True)
        busy, queued = self.store.job_busy(job.id)
        fire = fire_of(job.id, version, due, plan, busy, queued)
        self.store.set_active(job.id, True, due, status, fire=fire, now=now)

    def delete_job(self, caller: Caller, ref: str) -> bool:
        job = self._live_job(caller, ref)
        archived = self.store.delete_job(job.id, self.clock.now())
        self.finished.notify()
        return archived

    def deploy(self, caller: Caller, specs: list[JobSpec], *, dry_run: bool, prune: bool
               ) -> list[tuple[str, str, Job | None]]:
        """Creates or versions predefined jobs by name; returns (name, action, job) in
        the order given, then the pruned ones. Validates every spec before writing."""
        names = [s.name for s in specs]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise InvalidArgument("jobs", f"names appear more than once: {', '.join(duplicates)}; give each job one entry")
        for i, spec in enumerate(specs):
            self._admit(caller, spec, field=f"jobs[{i}] ({spec.name})")
        existing = self.store.predefined_jobs(caller.owner)
        if not dry_run:
            self._check_room(caller, len(set(names) - set(existing)))
        results = [self._deploy_one(caller, spec, existing.get(spec.name), dry_run) for spec in specs]
        if prune:
            for name in sorted(set(existing) - set(names)):
                if not dry_run:
                    self.store.delete_job(existing[name], self.clock.now())
                results.append((name, "pruned", None))
        return results

    def _deploy_one(self, caller: Caller, spec: JobSpec, job_id: str | None, dry_run: bool
                    ) -> tuple[str, str, Job | None]:
        if job_id is None:
            job = None if dry_run else self.create_job(caller, spec)[0]
            return spec.name, "created", job
        job = self.store.get_job(caller.owner, job_id)
        current = self.store.get_version(job_id, version_id=job.active_version_id)
        if not dry_run:
            if job.description != spec.description:
                self.store.set_description(job_id, spec.description)
            if dict(job.metadata) != dict(spec.metadata):
                self.store.set_metadata(job_id, spec.metadata)
        if self._unchanged(current, spec):
            return spec.name, "unchanged", self.store.get_job(caller.owner, job_id)
        if not dry_run:
            self._add_version(job, spec)
        return spec.name, "new_version", self.store.get_job(caller.owner, job_id)

    def activate_version(self, caller: Caller, ref: str, version_id: str, number: int) -> Job:
        job = self._live_job(caller, ref)
        version = self._version(job, version_id, number)
        now = self.clock.now()
        next_run = self._first_run(version.schedule, now, not job.active)
        status = JobStatus.PENDING if job.status in (JobStatus.COMPLETED, JobStatus.FAILED) else job.status
        self.store.activate_version(job.id, version.id, next_run, status)
        self.wake_scheduler()
        return self.store.get_job(caller.scope, job.id)

    # -- reading ------------------------------------------------------------------------------------

    def get_job(self, caller: Caller, ref: str) -> Job:
        if not ref:
            raise InvalidArgument("job", "is empty; pass a job id (job_...) or name")
        return self.store.get_job(caller.scope, ref)

    def schedule_of(self, job: Job) -> Schedule | None:
        if not job.active_version_id:
            return None
        return self.store.get_version(job.id, version_id=job.active_version_id).schedule

    def next_fire_times(self, job: Job, schedule: Schedule | None) -> list[datetime]:
        if schedule is None or job.next_run is None:
            return []
        fires = [job.next_run]
        while len(fires) < NEXT_FIRE_COUNT:
            try:
                t = schedules.next_fire(schedule, fires[-1])
            except (CroniterBadDateError, OverflowError):
                break  # no later fire can be computed: show the ones there are
            if t is None:
                break
            fires.append(t)
        return fires

    def versions(self, caller: Caller, ref: str) -> list[tuple[Version, Artifact]]:
        job = self.get_job(caller, ref)
        return [(v, self.store.get_artifact(v.artifact_digest)) for v in self.store.list_versions(job.id)]

    # -- running --------------------------------------------------------------------------------------

    def trigger(self, caller: Caller, ref: str, *, version_id: str = "", number: int = 0,
                force: bool = False) -> Execution:
        """Queues a manual run now. Without `force`, a job whose overlap policy is not
        "allow" and that is queued or running gets a "skipped: overlap" row instead."""
        job = self.get_job(caller, ref)
        if job.status is JobStatus.ARCHIVED:
            raise FailedPrecondition(f"job {job.name!r} is archived; it can no longer run")
        version = self._version(job, version_id, number) if (version_id or number) else \
            self.store.get_version(job.id, version_id=job.active_version_id)
        overlap = version.schedule.overlap if version.schedule else Overlap.SKIP
        now = self.clock.now()
        blocked = False
        # Decided in the transaction that writes it, as the scheduler decides a fire: a
        # fire recorded meanwhile is seen, and sees this run.
        with self.store.transaction():
            if not force and overlap is not Overlap.ALLOW:  # only then does what is queued or running matter
                busy, queued = self.store.job_busy(job.id)
                blocked = bool(busy) and (overlap is Overlap.SKIP or (overlap is Overlap.BUFFER_ONE and queued))
            if blocked:
                reason = "skipped: overlap"
                execution_id = self.store.record_skipped(job, version.id, Trigger.MANUAL, now, reason)
            else:
                reason = None
                self._check_backlog(job.owner)
                execution_id = self.store.enqueue(job, version.id, Trigger.MANUAL, now, now,
                                                  concurrent=force or overlap is Overlap.ALLOW)
        if not blocked:
            self.attempt_queued()
        # The row as written, not read back: the scheduler may be starting it already.
        return Execution(id=execution_id, job_id=job.id, job_name=job.name, version_id=version.id,
                         version_number=version.number, trigger=Trigger.MANUAL, scheduled_for=now, attempt=1,
                         status=ExecutionStatus.SKIPPED if blocked else ExecutionStatus.QUEUED,
                         finished_at=now if blocked else None, reason=reason)

    def wait_execution(self, caller: Caller, execution_id: str, timeout: float,
                       wanted: Callable[[], bool] = lambda: True) -> Execution:
        """The last attempt of the execution's retry chain once it is final, or its
        current state when `timeout` passes first or, checked every second, the caller
        stops `wanted` it (a client that went away frees its server thread)."""
        check_wait_timeout(timeout, "timeout_seconds")
        deadline = time.monotonic() + timeout
        seen = self.finished.generation()
        while True:
            execution = self._follow_retries(caller, execution_id)
            remaining = deadline - time.monotonic()
            if execution.status.finished or remaining <= 0 or not wanted():
                return execution
            seen = self.finished.wait(seen, min(remaining, 1.0))

    def _follow_retries(self, caller: Caller, execution_id: str) -> Execution:
        execution = self.store.get_execution(caller.scope, execution_id)
        while execution.retried_by:
            execution = self.store.get_execution(caller.scope, execution.retried_by)
        return execution

    def cancel_execution(self, caller: Caller, execution_id: str) -> Execution:
        execution = self.store.get_execution(caller.scope, execution_id)
        if not self.store.cancel_queued(execution.id, self.clock.now(), "cancelled by request"):
            raise FailedPrecondition(
                f"execution {execution_id!r} is {execution.status.value}; "
                "only queued executions can be cancelled")
        self.finished.notify()
        return self.store.get_execution(caller.scope, execution_id)

    # -- retention ----------------------------------------------------------------------------------

    def retention_of(self, job: Job) -> Retention:
        """The active version's retention, with the engine's defaults filled in."""
        return self._retention(job.id, job.active_version_id)

    def _retention(self, job_id: str, active_version_id: str) -> Retention:
        if not active_version_id:
            return DEFAULT_RETENTION
        return self.store.get_version(job_id, version_id=active_version_id).retention.effective()

    def apply_retention(self, job_id: str, *, exact_age: bool = True) -> tuple[int, int]:
        """Removes what the job's retention no longer keeps; returns (executions, bytes).
        `exact_age=False` is the cheap check after each attempt (Store.prune_job_history)."""
        retention = self._retention(job_id, self.store.active_version_id(job_id))
        before = self.clock.now() - timedelta(days=retention.max_age_days or 0)
        return self.store.prune_job_history(job_id, keep_last=retention.keep_last or 1, before=before,
                                            exact_age=exact_age)

    def apply_retention_everywhere(self) -> tuple[int, int]:
        """`apply_retention` for every job with finished history; returns the totals."""
        count = size = 0
        for job_id in self.store.jobs_with_finished_history():
            removed, removed_bytes = self.apply_retention(job_id)
            count, size = count + removed, size + removed_bytes
        return count, size

    # -- helpers -----------------------------------------------------------------------------------------

    def _admit(self, caller: Caller, spec: JobSpec, field: str = "spec") -> None:
        """Validates a spec and compiles its source under the policy (in a sandboxed child),
        once per artifact digest."""
        validation.check_spec(spec, field)
        if spec.isolation is Isolation.TRUSTED and not self.store.owner_trusted(caller.owner):
            raise PermissionDenied(f"{field}.isolation: owner {caller.owner!r} may not run trusted jobs; "
                                   "use the default restricted isolation or ask an admin to allow it")
        self._check_artifact_size(caller, spec, field)
        if not self.store.has_artifact(spec.artifact.digest):
            try:
                self.check_source(spec.artifact.source, spec.artifact.entrypoint, policy_for(spec.isolation.value))
            except SourceRejected as exc:
                raise InvalidArgument(f"{field}.artifact.source", f"cannot run under the sandbox policy: {exc}") from None

    def _check_artifact_size(self, caller: Caller, spec: JobSpec, field: str) -> None:
        cap = self.store.owner_limits(caller.owner).max_artifact_bytes
        size = len(spec.artifact.source.encode("utf-8", "surrogatepass")) + len(spec.artifact.payload or b"")
        if size > cap:
            raise QuotaExceeded(f"{field}.artifact", f"{size} bytes (source plus payload) is over owner "
                                f"{caller.owner!r}'s max_artifact_bytes of {cap}; make the job smaller "
                                "or ask an admin to raise the limit")

    def _check_backlog(self, owner: str) -> None:
        """Refuses a manual run while the owner already has MAX_QUEUED_PER_OWNER waiting:
        attempts start in due order, so one owner's trigger storm would delay everyone's."""
        queued = self.store.queued_count(owner)
        if queued >= MAX_QUEUED_PER_OWNER:
            raise QuotaExceeded("queued runs", f"owner {owner!r} has {queued} runs waiting to start, the most "
                                               f"allowed is {MAX_QUEUED_PER_OWNER}; wait for them to run")

    def _check_room(self, caller: Caller, new_jobs: int) -> None:
        """Refuses, before anything is written, a deploy that would pass `max_jobs`."""
        cap = self.store.owner_limits(caller.owner).max_jobs
        count = self.store.live_job_count(caller.owner)
        if new_jobs and count + new_jobs > cap:
            raise QuotaExceeded("max_jobs", f"owner {caller.owner!r} has {count} live jobs and this deploy adds "
                                            f"{new_jobs}, its limit is {cap}; delete jobs or ask an admin to raise it")

    def upcoming(self, schedule: Schedule, after: datetime, count: int) -> list[datetime]:
        """The next `count` fires after `after`; InvalidArgument when they cannot be computed."""
        with _schedule_field():
            return schedules.upcoming(schedule, after, count)

    def _first_run(self, schedule: Schedule | None, now: datetime, paused: bool) -> datetime | None:
        if schedule is None:
            return None
        with _schedule_field():
            first = schedules.first_fire(schedule, now)
        if isinstance(schedule.when, schedules.Once) and first is not None and \
                now - first > timedelta(seconds=schedule.catchup_window_seconds):
            raise InvalidArgument("schedule.once.at", f"{first.isoformat()} is more than the catch-up window "
                                  f"({schedule.catchup_window_seconds} s) in the past; pick a future instant")
        return first

    def _timeout(self, spec: JobSpec) -> float:
        return spec.timeout_seconds or DEFAULT_TIMEOUT[spec.kind]

    def _live_job(self, caller: Caller, ref: str) -> Job:
        job = self.get_job(caller, ref)
        if job.status is JobStatus.ARCHIVED:
            raise FailedPrecondition(f"job {job.name!r} is archived; create a new job instead")
        return job

    def _version(self, job: Job, version_id: str, number: int) -> Version:
        if version_id:
            return self.store.get_version(job.id, version_id=version_id)
        if number < 1:
            raise InvalidArgument("version_number", f"must be >= 1, got {number}")
        return self.store.get_version(job.id, number=number)

    def _spec_of(self, job: Job, version: Version, changes: Mapping[str, Any]) -> JobSpec:
        artifact = changes.get("artifact") or self.store.get_artifact(version.artifact_digest)
        return JobSpec(
            name=job.name, kind=job.kind, artifact=artifact, description=job.description,
            user_id=job.user_id, metadata=job.metadata,
            schedule=changes.get("schedule", version.schedule),
            timeout_seconds=changes.get("timeout_seconds", version.timeout_seconds),
            retry=changes.get("retry", version.retry), isolation=changes.get("isolation", version.isolation),
            limits=changes.get("limits", version.limits),
            retention=changes.get("retention", version.retention),
        )


@contextmanager
def _schedule_field() -> Iterator[None]:
    """Turns a schedule whose fires cannot be computed into INVALID_ARGUMENT."""
    try:
        yield
    except CroniterBadDateError:
        raise InvalidArgument("schedule.cron.expression", "never fires (no matching date within the next years); "
                                                          "check the day of month and month. Capsule's cron takes "
                                                          f"{CRON_DIALECT}") from None
    except CroniterError:  # validated at creation; a safety net, never an INTERNAL error
        raise InvalidArgument("schedule.cron.expression", f"cannot be evaluated; Capsule's cron takes {CRON_DIALECT}") \
            from None
    except OverflowError:
        raise InvalidArgument("schedule", "its fires fall outside the dates the engine handles "
                                          "(1970 to 2200); pick nearer instants") from None


def one_off(version: Version) -> bool:
    """True for a version scheduled once (at an instant)."""
    return isinstance(version.schedule and version.schedule.when, schedules.Once)


def final_job_status(next_run: datetime | None, version: Version, status: ExecutionStatus,
                     retrying: bool) -> JobStatus:
    """The job's status after an attempt: a one-off completes (or fails) once its fire
    has run (the job has no `next_run`) and no retry follows; anything else is active again."""
    if retrying or not one_off(version) or next_run is not None:
        return JobStatus.ACTIVE
    return JobStatus.COMPLETED if status is ExecutionStatus.SUCCEEDED else JobStatus.FAILED


def fire_of(job_id: str, version: Version, due: datetime, plan: misfire.Plan, busy: int, queued: int) -> Fire:
    """The history rows of a plan, with the overlap policy applied to the fires that
    would run: while the job is busy, "skip" (and "buffer_one" with one already
    queued) records them as "skipped: overlap". Catch-up runs of misfire "all" queue
    together and run one by one (all at once with overlap "allow")."""
    schedule = version.schedule
    assert schedule is not None
    blocked = bool(busy) and (schedule.overlap is Overlap.SKIP or (schedule.overlap is Overlap.BUFFER_ONE and queued))
    records = []
    for row in plan.rows:
        if not row.run:
            status = ExecutionStatus.SKIPPED if row.reason == misfire.PAUSED else ExecutionStatus.MISSED
            records.append(FireRecord(row.at, status, row.reason))
        elif blocked:
            records.append(FireRecord(row.at, ExecutionStatus.SKIPPED, "skipped: overlap"))
        else:
            records.append(FireRecord(row.at, ExecutionStatus.QUEUED, concurrent=schedule.overlap is Overlap.ALLOW))
    ran = any(r.status is ExecutionStatus.QUEUED for r in records)
    return Fire(job_id, version.id, due, plan.next_run, tuple(records),
                complete_job=not schedule.recurring and not ran and plan.next_run is None)
