"""The domain: frozen values the store, the services and the client speak.

Nothing here imports protobuf; `engine/convert.py` and `client/_convert.py` translate
at the gRPC edge. Times are aware UTC datetimes.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass, field
from datetime import datetime, timezone
from enum import StrEnum
from typing import Any, Mapping

from engine.schedules import Schedule

UTC = timezone.utc


class JobKind(StrEnum):
    DYNAMIC = "dynamic"
    PREDEFINED = "predefined"


class JobStatus(StrEnum):
    PENDING = "pending"
    ACTIVE = "active"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    ARCHIVED = "archived"


# A job in one of these states never fires again.
FINISHED_JOB_STATUSES = frozenset(
    {JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.ARCHIVED}
)


class Trigger(StrEnum):
    SCHEDULE = "schedule"
    MANUAL = "manual"
    RETRY = "retry"


class ExecutionStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    CRASHED = "crashed"
    CANCELLED = "cancelled"
    SKIPPED = "skipped"
    MISSED = "missed"

    @property
    def finished(self) -> bool:
        return self not in (ExecutionStatus.QUEUED, ExecutionStatus.RUNNING)

    @property
    def failed_attempt(self) -> bool:
        """An attempt that ran and did not succeed: it may be retried."""
        return self in (ExecutionStatus.FAILED, ExecutionStatus.TIMED_OUT, ExecutionStatus.CRASHED)


class Isolation(StrEnum):
    RESTRICTED = "restricted"
    TRUSTED = "trusted"


DEFAULT_TIMEOUT = {JobKind.DYNAMIC: 60.0, JobKind.PREDEFINED: 300.0}


@dataclass(frozen=True)
class Retry:
    """How failed attempts are retried: attempt n >= 2 waits
    min(backoff_seconds * factor**(n-2), max_backoff_seconds), jittered if asked."""

    max_attempts: int = 1
    backoff_seconds: float = 0.0
    factor: float = 1.0
    max_backoff_seconds: float | None = None
    jitter: bool = False

    def delay_before(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait before `attempt` (2 for the first retry)."""
        delay = self.backoff_seconds * self.factor ** max(attempt - 2, 0)
        if self.max_backoff_seconds:
            delay = min(delay, self.max_backoff_seconds)
        if self.jitter:
            delay *= (rng or random).uniform(0.5, 1.0)
        return delay


@dataclass(frozen=True)
class Limits:
    """Per-attempt resource limits; None means the engine's default."""

    memory_mb: int | None = None
    cpu_seconds: int | None = None
    output_bytes: int | None = None
    log_bytes: int | None = None


@dataclass(frozen=True)
class Retention:
    """How long a job's finished executions (and their logs) are kept; None means the
    engine's default (`DEFAULT_RETENTION`). Queued and running executions and sent
    messages are never removed."""

    keep_last: int | None = None
    max_age_days: float | None = None

    def effective(self) -> "Retention":
        """This retention with the engine's defaults filled in."""
        return Retention(
            keep_last=self.keep_last or DEFAULT_RETENTION.keep_last,
            max_age_days=self.max_age_days or DEFAULT_RETENTION.max_age_days,
        )


# The engine's defaults: a job keeps its last 1000 finished executions, for 30 days.
DEFAULT_RETENTION = Retention(keep_last=1000, max_age_days=30.0)


@dataclass(frozen=True)
class OwnerLimits:
    """An owner's quotas. None means the engine's default (`DEFAULT_OWNER_LIMITS`)."""

    max_jobs: int | None = None
    max_artifact_bytes: int | None = None
    max_messages_per_attempt: int | None = None
    # Attempts of this owner running at once; None: only the engine's global cap applies.
    max_running: int | None = None

    def resolved(self) -> "OwnerLimits":
        """These limits with every None replaced by the engine's default."""
        d = DEFAULT_OWNER_LIMITS
        return OwnerLimits(
            max_jobs=d.max_jobs if self.max_jobs is None else self.max_jobs,
            max_artifact_bytes=d.max_artifact_bytes if self.max_artifact_bytes is None else self.max_artifact_bytes,
            max_messages_per_attempt=(d.max_messages_per_attempt if self.max_messages_per_attempt is None
                                      else self.max_messages_per_attempt),
            max_running=self.max_running,
        )


# 10,000 live jobs; an artifact as large as the per-field caps allow (256 KiB of source
# plus 1 MiB of payload); 100 messages per attempt; no cap on running attempts beyond the
# engine's global one (`capsule serve --max-running`).
DEFAULT_OWNER_LIMITS = OwnerLimits(max_jobs=10_000, max_artifact_bytes=256 * 1024 + 1024 * 1024,
                                   max_messages_per_attempt=100)


@dataclass(frozen=True)
class Owner:
    """A tenant: its jobs, executions and messages are visible only to its tokens (and the admin)."""

    name: str
    trusted_allowed: bool
    created_at: datetime
    limits: OwnerLimits = OwnerLimits()


@dataclass(frozen=True)
class Artifact:
    """The code of a job, content-addressed. The engine treats `payload` as opaque bytes."""

    source: str
    entrypoint: str = "execute"
    payload: bytes | None = None
    payload_encoding: str | None = None
    python_version: str = ""
    library_versions: Mapping[str, str] = field(default_factory=dict)

    @property
    def digest(self) -> str:
        """sha256 over what decides behaviour: source, entrypoint and payload.

        The Python version is recorded but not hashed, so redeploying the same source
        from another patch release is still "unchanged".
        """
        h = hashlib.sha256()
        canonical = {
            "source": self.source,
            "entrypoint": self.entrypoint,
            "payload_encoding": self.payload_encoding or "",
            "payload_sha256": hashlib.sha256(self.payload).hexdigest() if self.payload else "",
        }
        h.update(json.dumps(canonical, sort_keys=True).encode())
        return h.hexdigest()


@dataclass(frozen=True)
class JobSpec:
    """What a caller asks for when creating or deploying a job."""

    name: str
    artifact: Artifact
    kind: JobKind = JobKind.DYNAMIC
    description: str = ""
    user_id: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    schedule: Schedule | None = None
    timeout_seconds: float | None = None
    retry: Retry = Retry()
    isolation: Isolation = Isolation.RESTRICTED
    limits: Limits = Limits()
    paused: bool = False
    retention: Retention = Retention()


@dataclass(frozen=True)
class Version:
    id: str
    job_id: str
    number: int
    artifact_digest: str
    schedule: Schedule | None
    timeout_seconds: float
    retry: Retry
    isolation: Isolation
    limits: Limits
    created_at: datetime
    retention: Retention = Retention()

    def same_config(self, other: "Version") -> bool:
        """True when both versions would run the same code the same way (and keep
        its history as long)."""
        keys = ("artifact_digest", "schedule", "timeout_seconds", "retry", "isolation", "limits", "retention")
        return all(getattr(self, k) == getattr(other, k) for k in keys)


@dataclass(frozen=True)
class Job:
    id: str
    owner: str
    name: str
    description: str
    kind: JobKind
    user_id: str | None
    metadata: Mapping[str, Any]
    active: bool
    status: JobStatus
    active_version_id: str
    active_version_number: int
    created_at: datetime
    next_run: datetime | None
    last_run: datetime | None
    last_status: ExecutionStatus | None
    last_error: str | None
    run_count: int


@dataclass(frozen=True)
class ExecutionError:
    type: str
    message: str
    traceback: tuple[str, ...] = ()


@dataclass(frozen=True)
class Execution:
    id: str
    job_id: str
    job_name: str
    version_id: str
    version_number: int
    trigger: Trigger
    scheduled_for: datetime
    attempt: int
    status: ExecutionStatus
    result_json: str | None = None
    error: ExecutionError | None = None
    logs: str = ""
    started_at: datetime | None = None
    finished_at: datetime | None = None
    duration_ms: int | None = None
    reason: str | None = None
    retry_of: str | None = None
    retried_by: str | None = None


@dataclass(frozen=True)
class JobCleanup:
    """What a cleanup removed (or would) from one job."""

    job_id: str
    job_name: str
    executions_removed: int
    bytes_removed: int


@dataclass(frozen=True)
class CleanupReport:
    """What a cleanup removed (or, on a dry run, would): finished executions that
    finished before `before`, in total and job by job (by name)."""

    before: datetime
    dry_run: bool
    jobs: tuple[JobCleanup, ...] = ()

    @property
    def executions_removed(self) -> int:
        return sum(j.executions_removed for j in self.jobs)

    @property
    def bytes_removed(self) -> int:
        return sum(j.bytes_removed for j in self.jobs)


@dataclass(frozen=True)
class Message:
    id: str
    owner: str
    user_id: str
    job_id: str
    execution_id: str
    parts: tuple[Mapping[str, Any], ...]
    created_at: datetime
