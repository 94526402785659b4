"""Domain values <-> capsule.v1 messages: the one place that knows both.

The engine's services and the Python client both convert here, so the wire mapping
exists once. Proto3 defaults ("" / 0 / unset) map to None explicitly. Functions named
`*_from_pb` validate what they read and raise `ConversionError(field, message)`.
"""

from __future__ import annotations

import functools
import json
from datetime import datetime, timezone
from typing import Any, Iterable

from google.protobuf.timestamp_pb2 import Timestamp

from capsule.v1 import admin_pb2, executions_pb2, jobs_pb2
from capsule.v1 import types_pb2 as pb
from engine import model, schedules
from engine.schedules import ScheduleError

UTC = timezone.utc
# Instants a request may carry: 1970-01-01 to 2200-01-01. Later ones would overflow the
# date arithmetic of schedules (and a sleep until then), earlier ones mean nothing here.
MIN_SECONDS = 0
MAX_SECONDS = 7258118400
MAX_SCHEDULE_SECONDS = 10 * 366 * 24 * 3600  # intervals and catch-up windows: ten years at most
MAX_MISFIRE_CAP = 10_000


class ConversionError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


# -- time -----------------------------------------------------------------------------

def ts_to_pb(t: datetime | None) -> Timestamp | None:
    if t is None:
        return None
    out = Timestamp()
    out.FromDatetime(t.astimezone(UTC))
    return out


def ts_from_pb(msg: Any, field: str, path: str | None = None) -> datetime | None:
    """An aware UTC datetime, or None when the field is unset. `path` names the field
    in errors (default: `field`)."""
    if not msg.HasField(field):
        return None
    value = getattr(msg, field)
    if not (MIN_SECONDS <= value.seconds <= MAX_SECONDS and 0 <= value.nanos < 1_000_000_000):
        raise ConversionError(path or field, "is out of range; use an instant between 1970-01-01 and 2200-01-01 "
                                             "(nanos between 0 and 999999999)")
    return value.ToDatetime(tzinfo=UTC)


def _set_ts(msg: Any, field: str, t: datetime | None) -> None:
    if t is not None:
        getattr(msg, field).FromDatetime(t.astimezone(UTC))


# -- enums: domain StrEnum <-> proto enum by name ---------------------------------------

@functools.cache  # a few values each, converted for every reply
def _enum_to_pb(prefix: str, value: Any) -> int:
    return 0 if value is None else pb.DESCRIPTOR.enum_types_by_name[_enum_type(prefix)].values_by_name[
        f"{prefix}_{value.value.upper()}"
    ].number


def _enum_from_pb(prefix: str, number: int, domain: type, field: str, default: Any = None) -> Any:
    if number == 0:
        return default
    values = pb.DESCRIPTOR.enum_types_by_name[_enum_type(prefix)].values_by_number
    if number not in values:
        choices = ", ".join(v.name for v in values.values() if v.number)
        raise ConversionError(field, f"unknown value {number}; use one of {choices}")
    return domain(values[number].name[len(prefix) + 1:].lower())


def _enum_type(prefix: str) -> str:
    return "".join(part.capitalize() for part in prefix.split("_"))


# -- JSON text fields -----------------------------------------------------------------------

def json_object_from_text(text: str, field: str) -> dict[str, Any]:
    if not text:
        return {}
    try:
        value = json.loads(text, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as exc:
        raise ConversionError(field, f"is not valid JSON ({exc}); send a JSON object such as {{\"key\": \"value\"}}") from None
    if not isinstance(value, dict):
        raise ConversionError(field, f"must be a JSON object, got {type(value).__name__}")
    return value


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON; use null or a number")


def json_text(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


# -- schedules ----------------------------------------------------------------------------

def schedule_to_pb(s: schedules.Schedule | None) -> pb.Schedule:
    out = pb.Schedule()
    if s is None:
        return out
    when = s.when
    if isinstance(when, schedules.Once):
        _set_ts(out.once, "at", when.at)
    elif isinstance(when, schedules.Interval):
        out.interval.seconds = when.seconds
        _set_ts(out.interval, "start_at", when.start_at)
    elif isinstance(when, schedules.Cron):
        out.cron.expression = when.expression
        out.cron.timezone = when.timezone
        out.cron.dst_gap = _enum_to_pb("DST_GAP", when.dst_gap)
        out.cron.dst_overlap = _enum_to_pb("DST_OVERLAP", when.dst_overlap)
    out.misfire = _enum_to_pb("MISFIRE", s.misfire)
    out.misfire_cap = s.misfire_cap
    out.catchup_window_seconds = s.catchup_window_seconds
    out.overlap = _enum_to_pb("OVERLAP", s.overlap)
    out.max_running = s.max_running
    return out


def schedule_from_pb(msg: pb.Schedule, field: str = "schedule") -> schedules.Schedule | None:
    kind = msg.WhichOneof("kind")
    _at_most(msg.catchup_window_seconds, MAX_SCHEDULE_SECONDS, f"{field}.catchup_window_seconds")
    _at_most(msg.misfire_cap, MAX_MISFIRE_CAP, f"{field}.misfire_cap")
    if kind == "interval":
        _at_most(msg.interval.seconds, MAX_SCHEDULE_SECONDS, f"{field}.interval.seconds")
    try:
        when = _when_from_pb(msg, kind, field)
        policy = dict(
            misfire=_enum_from_pb("MISFIRE", msg.misfire, schedules.Misfire, f"{field}.misfire", schedules.Misfire.COALESCE),
            misfire_cap=msg.misfire_cap or 100,
            catchup_window_seconds=msg.catchup_window_seconds if msg.catchup_window_seconds else 3600,
            overlap=_enum_from_pb("OVERLAP", msg.overlap, schedules.Overlap, f"{field}.overlap", schedules.Overlap.SKIP),
            max_running=msg.max_running,
        )
        if when is None and policy == dict(misfire=schedules.Misfire.COALESCE, misfire_cap=100,
                                           catchup_window_seconds=3600, overlap=schedules.Overlap.SKIP,
                                           max_running=0):
            return None
        return schedules.Schedule(when, **policy)
    except ScheduleError as exc:  # its field is relative to the schedule; name it as the request does
        raise ConversionError(field + exc.field.removeprefix("schedule"), exc.message) from None


def _at_most(value: int, cap: int, field: str) -> None:
    """Bounds a wire number before it meets date arithmetic (where it would overflow)."""
    if value > cap:
        raise ConversionError(field, f"{value} is more than the largest allowed, {cap}")


def _when_from_pb(msg: pb.Schedule, kind: str | None, field: str):
    if kind == "once":
        at = ts_from_pb(msg.once, "at", f"{field}.once.at")
        if at is None:
            raise ConversionError(f"{field}.once.at", "is required; set the instant to fire at")
        return schedules.Once(at)
    if kind == "interval":
        return schedules.Interval(int(msg.interval.seconds), ts_from_pb(msg.interval, "start_at", f"{field}.interval.start_at"))
    if kind == "cron":
        c = msg.cron
        return schedules.Cron(
            c.expression,
            c.timezone or "UTC",
            _enum_from_pb("DST_GAP", c.dst_gap, schedules.DstGap, f"{field}.cron.dst_gap", schedules.DstGap.SHIFT),
            _enum_from_pb("DST_OVERLAP", c.dst_overlap, schedules.DstOverlap, f"{field}.cron.dst_overlap",
                          schedules.DstOverlap.FIRST),
        )
    return None


# -- retry, limits, artifact ----------------------------------------------------------------

def retry_to_pb(r: model.Retry) -> pb.Retry:
    return pb.Retry(max_attempts=r.max_attempts, backoff_seconds=r.backoff_seconds, factor=r.factor,
                    max_backoff_seconds=r.max_backoff_seconds or 0.0, jitter=r.jitter)


def retry_from_pb(msg: pb.Retry) -> model.Retry:
    return model.Retry(
        max_attempts=msg.max_attempts or 1,
        backoff_seconds=msg.backoff_seconds,
        factor=msg.factor or 1.0,
        max_backoff_seconds=msg.max_backoff_seconds or None,
        jitter=msg.jitter,
    )


def limits_to_pb(l: model.Limits) -> pb.Limits:
    return pb.Limits(memory_mb=l.memory_mb or 0, cpu_seconds=l.cpu_seconds or 0,
                     output_bytes=l.output_bytes or 0, log_bytes=l.log_bytes or 0)


def limits_from_pb(msg: pb.Limits) -> model.Limits:
    return model.Limits(memory_mb=msg.memory_mb or None, cpu_seconds=msg.cpu_seconds or None,
                        output_bytes=msg.output_bytes or None, log_bytes=msg.log_bytes or None)


def retention_to_pb(r: model.Retention) -> pb.Retention:
    return pb.Retention(keep_last=r.keep_last or 0, max_age_days=r.max_age_days or 0.0)


def retention_from_pb(msg: pb.Retention) -> model.Retention:
    return model.Retention(keep_last=msg.keep_last or None, max_age_days=msg.max_age_days or None)


def artifact_to_pb(a: model.Artifact) -> pb.Artifact:
    return pb.Artifact(
        digest=a.digest, source=a.source, entrypoint=a.entrypoint, payload=a.payload or b"",
        payload_encoding=a.payload_encoding or "", python_version=a.python_version,
        library_versions=dict(a.library_versions),
    )


def artifact_from_pb(msg: pb.Artifact, field: str = "artifact") -> model.Artifact:
    art = model.Artifact(
        source=msg.source,
        entrypoint=msg.entrypoint or "execute",
        payload=msg.payload or None,
        payload_encoding=msg.payload_encoding or None,
        python_version=msg.python_version,
        library_versions=dict(msg.library_versions),
    )
    if msg.digest and msg.digest != art.digest:
        raise ConversionError(f"{field}.digest", "does not match the artifact's content; leave it empty or recompute it")
    return art


def isolation_from_pb(number: int, field: str = "isolation") -> model.Isolation:
    return _enum_from_pb("ISOLATION", number, model.Isolation, field, model.Isolation.RESTRICTED)


def execution_status_from_pb(number: int, field: str = "status") -> model.ExecutionStatus:
    status = _enum_from_pb("EXECUTION_STATUS", number, model.ExecutionStatus, field)
    if status is None:
        raise ConversionError(field, "is unspecified; name a status such as EXECUTION_STATUS_FAILED")
    return status


def execution_status_to_pb(status: model.ExecutionStatus) -> int:
    return _enum_to_pb("EXECUTION_STATUS", status)


def isolation_to_pb(value: model.Isolation) -> int:
    return _enum_to_pb("ISOLATION", value)


# -- job specs ----------------------------------------------------------------------------

def spec_to_pb(s: model.JobSpec) -> pb.JobSpec:
    return pb.JobSpec(
        name=s.name, description=s.description, user_id=s.user_id or "",
        metadata_json=json_text(dict(s.metadata)), artifact=artifact_to_pb(s.artifact),
        schedule=schedule_to_pb(s.schedule), timeout_seconds=s.timeout_seconds or 0.0,
        retry=retry_to_pb(s.retry), isolation=isolation_to_pb(s.isolation),
        limits=limits_to_pb(s.limits), paused=s.paused, retention=retention_to_pb(s.retention),
    )


def spec_from_pb(msg: pb.JobSpec, kind: model.JobKind, field: str = "spec") -> model.JobSpec:
    return model.JobSpec(
        name=msg.name,
        kind=kind,
        description=msg.description,
        user_id=msg.user_id or None,
        metadata=json_object_from_text(msg.metadata_json, f"{field}.metadata_json"),
        artifact=artifact_from_pb(msg.artifact, f"{field}.artifact"),
        schedule=schedule_from_pb(msg.schedule, f"{field}.schedule"),
        timeout_seconds=msg.timeout_seconds or None,
        retry=retry_from_pb(msg.retry),
        isolation=isolation_from_pb(msg.isolation, f"{field}.isolation"),
        limits=limits_from_pb(msg.limits),
        paused=msg.paused,
        retention=retention_from_pb(msg.retention),
    )


# -- records: job, version, execution, message ---------------------------------------------

def job_to_pb(j: model.Job, schedule: schedules.Schedule | None = None,
              next_fire_times: list[datetime] = (), retention: model.Retention | None = None) -> pb.Job:
    out = pb.Job(
        id=j.id, name=j.name, description=j.description,
        kind=_enum_to_pb("JOB_KIND", j.kind), owner=j.owner, user_id=j.user_id or "",
        metadata_json=json_text(dict(j.metadata)), active=j.active,
        status=_enum_to_pb("JOB_STATUS", j.status), active_version_id=j.active_version_id,
        active_version_number=j.active_version_number,
        last_status=_enum_to_pb("EXECUTION_STATUS", j.last_status),
        last_error=j.last_error or "", run_count=j.run_count,
        schedule=schedule_to_pb(schedule), schedule_human=schedules.describe(schedule),
    )
    _set_ts(out, "created_at", j.created_at)
    _set_ts(out, "next_run", j.next_run)
    _set_ts(out, "last_run", j.last_run)
    out.next_fire_times.extend(ts_to_pb(t) for t in next_fire_times)
    if retention is not None:
        out.retention.CopyFrom(retention_to_pb(retention))
    return out


def job_from_pb(msg: pb.Job) -> model.Job:
    return model.Job(
        id=msg.id, owner=msg.owner, name=msg.name, description=msg.description,
        kind=_enum_from_pb("JOB_KIND", msg.kind, model.JobKind, "kind"),
        user_id=msg.user_id or None, metadata=json_object_from_text(msg.metadata_json, "metadata_json"),
        active=msg.active, status=_enum_from_pb("JOB_STATUS", msg.status, model.JobStatus, "status"),
        active_version_id=msg.active_version_id, active_version_number=msg.active_version_number,
        created_at=ts_from_pb(msg, "created_at"), next_run=ts_from_pb(msg, "next_run"),
        last_run=ts_from_pb(msg, "last_run"),
        last_status=_enum_from_pb("EXECUTION_STATUS", msg.last_status, model.ExecutionStatus, "last_status"),
        last_error=msg.last_error or None, run_count=msg.run_count,
    )


def version_to_pb(v: model.Version, artifact: model.Artifact | None = None) -> pb.Version:
    out = pb.Version(
        id=v.id, job_id=v.job_id, number=v.number, artifact_digest=v.artifact_digest,
        schedule=schedule_to_pb(v.schedule), timeout_seconds=v.timeout_seconds,
        retry=retry_to_pb(v.retry), isolation=isolation_to_pb(v.isolation), limits=limits_to_pb(v.limits),
        entrypoint=artifact.entrypoint if artifact else "", source=artifact.source if artifact else "",
        retention=retention_to_pb(v.retention),
    )
    _set_ts(out, "created_at", v.created_at)
    return out


def version_from_pb(msg: pb.Version) -> model.Version:
    return model.Version(
        id=msg.id, job_id=msg.job_id, number=msg.number, artifact_digest=msg.artifact_digest,
        schedule=schedule_from_pb(msg.schedule), timeout_seconds=msg.timeout_seconds,
        retry=retry_from_pb(msg.retry), isolation=isolation_from_pb(msg.isolation),
        limits=limits_from_pb(msg.limits), created_at=ts_from_pb(msg, "created_at"),
        retention=retention_from_pb(msg.retention),
    )


def execution_to_pb(e: model.Execution) -> pb.Execution:
    out = pb.Execution(
        id=e.id, job_id=e.job_id, job_name=e.job_name, version_id=e.version_id,
        version_number=e.version_number, trigger=_enum_to_pb("TRIGGER", e.trigger), attempt=e.attempt,
        status=_enum_to_pb("EXECUTION_STATUS", e.status), result_json=e.result_json or "",
        logs=e.logs, duration_ms=e.duration_ms or 0, reason=e.reason or "",
        retry_of=e.retry_of or "", retried_by=e.retried_by or "",
    )
    if e.error is not None:
        out.error.CopyFrom(pb.ExecutionError(type=e.error.type, message=e.error.message,
                                             traceback=list(e.error.traceback)))
    _set_ts(out, "scheduled_for", e.scheduled_for)
    _set_ts(out, "started_at", e.started_at)
    _set_ts(out, "finished_at", e.finished_at)
    return out


def execution_from_pb(msg: pb.Execution) -> model.Execution:
    error = None
    if msg.HasField("error"):
        error = model.ExecutionError(msg.error.type, msg.error.message, tuple(msg.error.traceback))
    return model.Execution(
        id=msg.id, job_id=msg.job_id, job_name=msg.job_name, version_id=msg.version_id,
        version_number=msg.version_number,
        trigger=_enum_from_pb("TRIGGER", msg.trigger, model.Trigger, "trigger"),
        scheduled_for=ts_from_pb(msg, "scheduled_for"), attempt=msg.attempt,
        status=_enum_from_pb("EXECUTION_STATUS", msg.status, model.ExecutionStatus, "status"),
        result_json=msg.result_json or None, error=error, logs=msg.logs,
        started_at=ts_from_pb(msg, "started_at"), finished_at=ts_from_pb(msg, "finished_at"),
        duration_ms=msg.duration_ms if msg.HasField("finished_at") else None,
        reason=msg.reason or None, retry_of=msg.retry_of or None, retried_by=msg.retried_by or None,
    )


def message_to_pb(m: model.Message) -> pb.Message:
    out = pb.Message(id=m.id, user_id=m.user_id, owner=m.owner, job_id=m.job_id,
                     execution_id=m.execution_id, parts_json=json_text(list(m.parts)))
    _set_ts(out, "created_at", m.created_at)
    return out


def message_from_pb(msg: pb.Message) -> model.Message:
    return model.Message(
        id=msg.id, owner=msg.owner, user_id=msg.user_id, job_id=msg.job_id,
        execution_id=msg.execution_id, parts=tuple(json.loads(msg.parts_json or "[]")),
        created_at=ts_from_pb(msg, "created_at"),
    )


def cleanup_report_to_pb(r: model.CleanupReport) -> executions_pb2.CleanupExecutionsResponse:
    out = executions_pb2.CleanupExecutionsResponse(
        executions_removed=r.executions_removed, bytes_removed=r.bytes_removed,
        jobs=[executions_pb2.JobCleanup(job_id=j.job_id, job_name=j.job_name,
                                        executions_removed=j.executions_removed, bytes_removed=j.bytes_removed)
              for j in r.jobs])
    _set_ts(out, "before", r.before)
    return out


def cleanup_report_from_pb(msg: executions_pb2.CleanupExecutionsResponse, dry_run: bool) -> model.CleanupReport:
    jobs = tuple(model.JobCleanup(j.job_id, j.job_name, j.executions_removed, j.bytes_removed) for j in msg.jobs)
    if not jobs and msg.executions_removed:  # an engine that reports totals only
        jobs = (model.JobCleanup("", "", msg.executions_removed, msg.bytes_removed),)
    return model.CleanupReport(before=ts_from_pb(msg, "before"), dry_run=dry_run, jobs=jobs)


# -- replies read by the client ------------------------------------------------------------------

def timestamps_from_pb(values: Iterable[Timestamp]) -> list[datetime]:
    """Aware UTC datetimes of a repeated Timestamp field."""
    return [t.ToDatetime(tzinfo=UTC) for t in values]


def job_extras_from_pb(msg: pb.Job) -> tuple[schedules.Schedule | None, str, list[datetime]]:
    """What a pb.Job says beyond `model.Job`: schedule, its sentence, next fires."""
    schedule = schedule_from_pb(msg.schedule) if msg.HasField("schedule") else None
    return schedule, msg.schedule_human, timestamps_from_pb(msg.next_fire_times)


def job_retention_from_pb(msg: pb.Job) -> model.Retention:
    """The job's effective retention as the engine reported it (defaults filled in)."""
    return retention_from_pb(msg.retention).effective()


def deploy_action_from_pb(number: int) -> str:
    """"created" | "new_version" | "unchanged" | "pruned"."""
    return jobs_pb2.DeployAction.Name(number).removeprefix("DEPLOY_ACTION_").lower()


def deploy_action_to_pb(action: str) -> int:
    return jobs_pb2.DeployAction.Value(f"DEPLOY_ACTION_{action.upper()}")


def server_info_from_pb(msg: admin_pb2.ServerInfo) -> dict[str, Any]:
    return {
        "version": msg.version,
        "store_path": msg.store_path,
        "listen_address": msg.listen_address,
        "isolation_layers": [
            {"name": layer.name, "active": layer.active, "detail": layer.detail} for layer in msg.isolation_layers
        ],
        "owner": msg.owner,
        "admin": msg.admin,
        "started_at": ts_from_pb(msg, "started_at"),
        "python_version": msg.python_version,
    }


def owner_limits_to_pb(l: model.OwnerLimits) -> admin_pb2.OwnerLimits:
    return admin_pb2.OwnerLimits(max_jobs=l.max_jobs or 0, max_artifact_bytes=l.max_artifact_bytes or 0,
                                 max_messages_per_attempt=l.max_messages_per_attempt or 0,
                                 max_running=l.max_running or 0)


def owner_limits_from_pb(msg: admin_pb2.OwnerLimits, field: str = "limits") -> model.OwnerLimits:
    """0 means the engine's default; a negative value is refused."""
    for name in ("max_jobs", "max_artifact_bytes", "max_messages_per_attempt", "max_running"):
        if getattr(msg, name) < 0:
            raise ConversionError(f"{field}.{name}", f"must be >= 0 (0 = the engine's default), "
                                                     f"got {getattr(msg, name)}")
    return model.OwnerLimits(max_jobs=msg.max_jobs or None, max_artifact_bytes=msg.max_artifact_bytes or None,
                             max_messages_per_attempt=msg.max_messages_per_attempt or None,
                             max_running=msg.max_running or None)


def owner_to_pb(o: model.Owner) -> admin_pb2.Owner:
    """The owner with its limits in force (defaults filled in)."""
    return admin_pb2.Owner(name=o.name, trusted_allowed=o.trusted_allowed, created_at=ts_to_pb(o.created_at),
                           limits=owner_limits_to_pb(o.limits.resolved()))


def owner_from_pb(msg: admin_pb2.Owner) -> model.Owner:
    return model.Owner(name=msg.name, trusted_allowed=msg.trusted_allowed,
                       created_at=ts_from_pb(msg, "created_at"), limits=owner_limits_from_pb(msg.limits))
