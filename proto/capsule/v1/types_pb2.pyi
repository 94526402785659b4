import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class JobKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    JOB_KIND_UNSPECIFIED: _ClassVar[JobKind]
    JOB_KIND_DYNAMIC: _ClassVar[JobKind]
    JOB_KIND_PREDEFINED: _ClassVar[JobKind]

class JobStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    JOB_STATUS_UNSPECIFIED: _ClassVar[JobStatus]
    JOB_STATUS_PENDING: _ClassVar[JobStatus]
    JOB_STATUS_ACTIVE: _ClassVar[JobStatus]
    JOB_STATUS_RUNNING: _ClassVar[JobStatus]
    JOB_STATUS_COMPLETED: _ClassVar[JobStatus]
    JOB_STATUS_FAILED: _ClassVar[JobStatus]
    JOB_STATUS_CANCELLED: _ClassVar[JobStatus]
    JOB_STATUS_ARCHIVED: _ClassVar[JobStatus]

class Trigger(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TRIGGER_UNSPECIFIED: _ClassVar[Trigger]
    TRIGGER_SCHEDULE: _ClassVar[Trigger]
    TRIGGER_MANUAL: _ClassVar[Trigger]
    TRIGGER_RETRY: _ClassVar[Trigger]

class ExecutionStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EXECUTION_STATUS_UNSPECIFIED: _ClassVar[ExecutionStatus]
    EXECUTION_STATUS_QUEUED: _ClassVar[ExecutionStatus]
    EXECUTION_STATUS_RUNNING: _ClassVar[ExecutionStatus]
    EXECUTION_STATUS_SUCCEEDED: _ClassVar[ExecutionStatus]
    EXECUTION_STATUS_FAILED: _ClassVar[ExecutionStatus]
    EXECUTION_STATUS_TIMED_OUT: _ClassVar[ExecutionStatus]
    EXECUTION_STATUS_CRASHED: _ClassVar[ExecutionStatus]
    EXECUTION_STATUS_CANCELLED: _ClassVar[ExecutionStatus]
    EXECUTION_STATUS_SKIPPED: _ClassVar[ExecutionStatus]
    EXECUTION_STATUS_MISSED: _ClassVar[ExecutionStatus]

class Isolation(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ISOLATION_UNSPECIFIED: _ClassVar[Isolation]
    ISOLATION_RESTRICTED: _ClassVar[Isolation]
    ISOLATION_TRUSTED: _ClassVar[Isolation]

class Misfire(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MISFIRE_UNSPECIFIED: _ClassVar[Misfire]
    MISFIRE_COALESCE: _ClassVar[Misfire]
    MISFIRE_ALL: _ClassVar[Misfire]
    MISFIRE_SKIP: _ClassVar[Misfire]

class Overlap(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OVERLAP_UNSPECIFIED: _ClassVar[Overlap]
    OVERLAP_SKIP: _ClassVar[Overlap]
    OVERLAP_BUFFER_ONE: _ClassVar[Overlap]
    OVERLAP_ALLOW: _ClassVar[Overlap]

class DstGap(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DST_GAP_UNSPECIFIED: _ClassVar[DstGap]
    DST_GAP_SHIFT: _ClassVar[DstGap]
    DST_GAP_SKIP: _ClassVar[DstGap]

class DstOverlap(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DST_OVERLAP_UNSPECIFIED: _ClassVar[DstOverlap]
    DST_OVERLAP_FIRST: _ClassVar[DstOverlap]
    DST_OVERLAP_LAST: _ClassVar[DstOverlap]
    DST_OVERLAP_BOTH: _ClassVar[DstOverlap]
JOB_KIND_UNSPECIFIED: JobKind
JOB_KIND_DYNAMIC: JobKind
JOB_KIND_PREDEFINED: JobKind
JOB_STATUS_UNSPECIFIED: JobStatus
JOB_STATUS_PENDING: JobStatus
JOB_STATUS_ACTIVE: JobStatus
JOB_STATUS_RUNNING: JobStatus
JOB_STATUS_COMPLETED: JobStatus
JOB_STATUS_FAILED: JobStatus
JOB_STATUS_CANCELLED: JobStatus
JOB_STATUS_ARCHIVED: JobStatus
TRIGGER_UNSPECIFIED: Trigger
TRIGGER_SCHEDULE: Trigger
TRIGGER_MANUAL: Trigger
TRIGGER_RETRY: Trigger
EXECUTION_STATUS_UNSPECIFIED: ExecutionStatus
EXECUTION_STATUS_QUEUED: ExecutionStatus
EXECUTION_STATUS_RUNNING: ExecutionStatus
EXECUTION_STATUS_SUCCEEDED: ExecutionStatus
EXECUTION_STATUS_FAILED: ExecutionStatus
EXECUTION_STATUS_TIMED_OUT: ExecutionStatus
EXECUTION_STATUS_CRASHED: ExecutionStatus
EXECUTION_STATUS_CANCELLED: ExecutionStatus
EXECUTION_STATUS_SKIPPED: ExecutionStatus
EXECUTION_STATUS_MISSED: ExecutionStatus
ISOLATION_UNSPECIFIED: Isolation
ISOLATION_RESTRICTED: Isolation
ISOLATION_TRUSTED: Isolation
MISFIRE_UNSPECIFIED: Misfire
MISFIRE_COALESCE: Misfire
MISFIRE_ALL: Misfire
MISFIRE_SKIP: Misfire
OVERLAP_UNSPECIFIED: Overlap
OVERLAP_SKIP: Overlap
OVERLAP_BUFFER_ONE: Overlap
OVERLAP_ALLOW: Overlap
DST_GAP_UNSPECIFIED: DstGap
DST_GAP_SHIFT: DstGap
DST_GAP_SKIP: DstGap
DST_OVERLAP_UNSPECIFIED: DstOverlap
DST_OVERLAP_FIRST: DstOverlap
DST_OVERLAP_LAST: DstOverlap
DST_OVERLAP_BOTH: DstOverlap

class Once(_message.Message):
    __slots__ = ("at",)
    AT_FIELD_NUMBER: _ClassVar[int]
    at: _timestamp_pb2.Timestamp
    def __init__(self, at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Interval(_message.Message):
    __slots__ = ("seconds", "start_at")
    SECONDS_FIELD_NUMBER: _ClassVar[int]
    START_AT_FIELD_NUMBER: _ClassVar[int]
    seconds: int
    start_at: _timestamp_pb2.Timestamp
    def __init__(self, seconds: _Optional[int] = ..., start_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Cron(_message.Message):
    __slots__ = ("expression", "timezone", "dst_gap", "dst_overlap")
    EXPRESSION_FIELD_NUMBER: _ClassVar[int]
    TIMEZONE_FIELD_NUMBER: _ClassVar[int]
    DST_GAP_FIELD_NUMBER: _ClassVar[int]
    DST_OVERLAP_FIELD_NUMBER: _ClassVar[int]
    expression: str
    timezone: str
    dst_gap: DstGap
    dst_overlap: DstOverlap
    def __init__(self, expression: _Optional[str] = ..., timezone: _Optional[str] = ..., dst_gap: _Optional[_Union[DstGap, str]] = ..., dst_overlap: _Optional[_Union[DstOverlap, str]] = ...) -> None: ...

class Schedule(_message.Message):
    __slots__ = ("once", "interval", "cron", "misfire", "misfire_cap", "catchup_window_seconds", "overlap", "max_running")
    ONCE_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_FIELD_NUMBER: _ClassVar[int]
    CRON_FIELD_NUMBER: _ClassVar[int]
    MISFIRE_FIELD_NUMBER: _ClassVar[int]
    MISFIRE_CAP_FIELD_NUMBER: _ClassVar[int]
    CATCHUP_WINDOW_SECONDS_FIELD_NUMBER: _ClassVar[int]
    OVERLAP_FIELD_NUMBER: _ClassVar[int]
    MAX_RUNNING_FIELD_NUMBER: _ClassVar[int]
    once: Once
    interval: Interval
    cron: Cron
    misfire: Misfire
    misfire_cap: int
    catchup_window_seconds: int
    overlap: Overlap
    max_running: int
    def __init__(self, once: _Optional[_Union[Once, _Mapping]] = ..., interval: _Optional[_Union[Interval, _Mapping]] = ..., cron: _Optional[_Union[Cron, _Mapping]] = ..., misfire: _Optional[_Union[Misfire, str]] = ..., misfire_cap: _Optional[int] = ..., catchup_window_seconds: _Optional[int] = ..., overlap: _Optional[_Union[Overlap, str]] = ..., max_running: _Optional[int] = ...) -> None: ...

class Retry(_message.Message):
    __slots__ = ("max_attempts", "backoff_seconds", "factor", "max_backoff_seconds", "jitter")
    MAX_ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    BACKOFF_SECONDS_FIELD_NUMBER: _ClassVar[int]
    FACTOR_FIELD_NUMBER: _ClassVar[int]
    MAX_BACKOFF_SECONDS_FIELD_NUMBER: _ClassVar[int]
    JITTER_FIELD_NUMBER: _ClassVar[int]
    max_attempts: int
    backoff_seconds: float
    factor: float
    max_backoff_seconds: float
    jitter: bool
    def __init__(self, max_attempts: _Optional[int] = ..., backoff_seconds: _Optional[float] = ..., factor: _Optional[float] = ..., max_backoff_seconds: _Optional[float] = ..., jitter: _Optional[bool] = ...) -> None: ...

class Limits(_message.Message):
    __slots__ = ("memory_mb", "cpu_seconds", "output_bytes", "log_bytes")
    MEMORY_MB_FIELD_NUMBER: _ClassVar[int]
    CPU_SECONDS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_BYTES_FIELD_NUMBER: _ClassVar[int]
    LOG_BYTES_FIELD_NUMBER: _ClassVar[int]
    memory_mb: int
    cpu_seconds: int
    output_bytes: int
    log_bytes: int
    def __init__(self, memory_mb: _Optional[int] = ..., cpu_seconds: _Optional[int] = ..., output_bytes: _Optional[int] = ..., log_bytes: _Optional[int] = ...) -> None: ...

class Retention(_message.Message):
    __slots__ = ("keep_last", "max_age_days")
    KEEP_LAST_FIELD_NUMBER: _ClassVar[int]
    MAX_AGE_DAYS_FIELD_NUMBER: _ClassVar[int]
    keep_last: int
    max_age_days: float
    def __init__(self, keep_last: _Optional[int] = ..., max_age_days: _Optional[float] = ...) -> None: ...

class Artifact(_message.Message):
    __slots__ = ("digest", "source", "entrypoint", "payload", "payload_encoding", "python_version", "library_versions")
    class LibraryVersionsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    ENTRYPOINT_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_ENCODING_FIELD_NUMBER: _ClassVar[int]
    PYTHON_VERSION_FIELD_NUMBER: _ClassVar[int]
    LIBRARY_VERSIONS_FIELD_NUMBER: _ClassVar[int]
    digest: str
    source: str
    entrypoint: str
    payload: bytes
    payload_encoding: str
    python_version: str
    library_versions: _containers.ScalarMap[str, str]
    def __init__(self, digest: _Optional[str] = ..., source: _Optional[str] = ..., entrypoint: _Optional[str] = ..., payload: _Optional[bytes] = ..., payload_encoding: _Optional[str] = ..., python_version: _Optional[str] = ..., library_versions: _Optional[_Mapping[str, str]] = ...) -> None: ...

class JobSpec(_message.Message):
    __slots__ = ("name", "description", "user_id", "metadata_json", "artifact", "schedule", "timeout_seconds", "retry", "isolation", "limits", "paused", "retention")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    METADATA_JSON_FIELD_NUMBER: _ClassVar[int]
    ARTIFACT_FIELD_NUMBER: _ClassVar[int]
    SCHEDULE_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    RETRY_FIELD_NUMBER: _ClassVar[int]
    ISOLATION_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    PAUSED_FIELD_NUMBER: _ClassVar[int]
    RETENTION_FIELD_NUMBER: _ClassVar[int]
    name: str
    description: str
    user_id: str
    metadata_json: str
    artifact: Artifact
    schedule: Schedule
    timeout_seconds: float
    retry: Retry
    isolation: Isolation
    limits: Limits
    paused: bool
    retention: Retention
    def __init__(self, name: _Optional[str] = ..., description: _Optional[str] = ..., user_id: _Optional[str] = ..., metadata_json: _Optional[str] = ..., artifact: _Optional[_Union[Artifact, _Mapping]] = ..., schedule: _Optional[_Union[Schedule, _Mapping]] = ..., timeout_seconds: _Optional[float] = ..., retry: _Optional[_Union[Retry, _Mapping]] = ..., isolation: _Optional[_Union[Isolation, str]] = ..., limits: _Optional[_Union[Limits, _Mapping]] = ..., paused: _Optional[bool] = ..., retention: _Optional[_Union[Retention, _Mapping]] = ...) -> None: ...

class Job(_message.Message):
    __slots__ = ("id", "name", "description", "kind", "owner", "user_id", "metadata_json", "active", "status", "active_version_id", "active_version_number", "created_at", "next_run", "last_run", "last_status", "last_error", "run_count", "schedule", "schedule_human", "next_fire_times", "retention")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    METADATA_JSON_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_VERSION_ID_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_VERSION_NUMBER_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    NEXT_RUN_FIELD_NUMBER: _ClassVar[int]
    LAST_RUN_FIELD_NUMBER: _ClassVar[int]
    LAST_STATUS_FIELD_NUMBER: _ClassVar[int]
    LAST_ERROR_FIELD_NUMBER: _ClassVar[int]
    RUN_COUNT_FIELD_NUMBER: _ClassVar[int]
    SCHEDULE_FIELD_NUMBER: _ClassVar[int]
    SCHEDULE_HUMAN_FIELD_NUMBER: _ClassVar[int]
    NEXT_FIRE_TIMES_FIELD_NUMBER: _ClassVar[int]
    RETENTION_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    description: str
    kind: JobKind
    owner: str
    user_id: str
    metadata_json: str
    active: bool
    status: JobStatus
    active_version_id: str
    active_version_number: int
    created_at: _timestamp_pb2.Timestamp
    next_run: _timestamp_pb2.Timestamp
    last_run: _timestamp_pb2.Timestamp
    last_status: ExecutionStatus
    last_error: str
    run_count: int
    schedule: Schedule
    schedule_human: str
    next_fire_times: _containers.RepeatedCompositeFieldContainer[_timestamp_pb2.Timestamp]
    retention: Retention
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., description: _Optional[str] = ..., kind: _Optional[_Union[JobKind, str]] = ..., owner: _Optional[str] = ..., user_id: _Optional[str] = ..., metadata_json: _Optional[str] = ..., active: _Optional[bool] = ..., status: _Optional[_Union[JobStatus, str]] = ..., active_version_id: _Optional[str] = ..., active_version_number: _Optional[int] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., next_run: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_run: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_status: _Optional[_Union[ExecutionStatus, str]] = ..., last_error: _Optional[str] = ..., run_count: _Optional[int] = ..., schedule: _Optional[_Union[Schedule, _Mapping]] = ..., schedule_human: _Optional[str] = ..., next_fire_times: _Optional[_Iterable[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]]] = ..., retention: _Optional[_Union[Retention, _Mapping]] = ...) -> None: ...

class Version(_message.Message):
    __slots__ = ("id", "job_id", "number", "artifact_digest", "schedule", "timeout_seconds", "retry", "isolation", "limits", "created_at", "entrypoint", "source", "retention")
    ID_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    ARTIFACT_DIGEST_FIELD_NUMBER: _ClassVar[int]
    SCHEDULE_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    RETRY_FIELD_NUMBER: _ClassVar[int]
    ISOLATION_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    ENTRYPOINT_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    RETENTION_FIELD_NUMBER: _ClassVar[int]
    id: str
    job_id: str
    number: int
    artifact_digest: str
    schedule: Schedule
    timeout_seconds: float
    retry: Retry
    isolation: Isolation
    limits: Limits
    created_at: _timestamp_pb2.Timestamp
    entrypoint: str
    source: str
    retention: Retention
    def __init__(self, id: _Optional[str] = ..., job_id: _Optional[str] = ..., number: _Optional[int] = ..., artifact_digest: _Optional[str] = ..., schedule: _Optional[_Union[Schedule, _Mapping]] = ..., timeout_seconds: _Optional[float] = ..., retry: _Optional[_Union[Retry, _Mapping]] = ..., isolation: _Optional[_Union[Isolation, str]] = ..., limits: _Optional[_Union[Limits, _Mapping]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., entrypoint: _Optional[str] = ..., source: _Optional[str] = ..., retention: _Optional[_Union[Retention, _Mapping]] = ...) -> None: ...

class ExecutionError(_message.Message):
    __slots__ = ("type", "message", "traceback")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    TRACEBACK_FIELD_NUMBER: _ClassVar[int]
    type: str
    message: str
    traceback: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, type: _Optional[str] = ..., message: _Optional[str] = ..., traceback: _Optional[_Iterable[str]] = ...) -> None: ...

class Execution(_message.Message):
    __slots__ = ("id", "job_id", "version_id", "version_number", "trigger", "scheduled_for", "attempt", "status", "result_json", "error", "logs", "started_at", "finished_at", "duration_ms", "reason", "retry_of", "retried_by", "job_name")
    ID_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_NUMBER_FIELD_NUMBER: _ClassVar[int]
    TRIGGER_FIELD_NUMBER: _ClassVar[int]
    SCHEDULED_FOR_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    RESULT_JSON_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    LOGS_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    FINISHED_AT_FIELD_NUMBER: _ClassVar[int]
    DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    RETRY_OF_FIELD_NUMBER: _ClassVar[int]
    RETRIED_BY_FIELD_NUMBER: _ClassVar[int]
    JOB_NAME_FIELD_NUMBER: _ClassVar[int]
    id: str
    job_id: str
    version_id: str
    version_number: int
    trigger: Trigger
    scheduled_for: _timestamp_pb2.Timestamp
    attempt: int
    status: ExecutionStatus
    result_json: str
    error: ExecutionError
    logs: str
    started_at: _timestamp_pb2.Timestamp
    finished_at: _timestamp_pb2.Timestamp
    duration_ms: int
    reason: str
    retry_of: str
    retried_by: str
    job_name: str
    def __init__(self, id: _Optional[str] = ..., job_id: _Optional[str] = ..., version_id: _Optional[str] = ..., version_number: _Optional[int] = ..., trigger: _Optional[_Union[Trigger, str]] = ..., scheduled_for: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., attempt: _Optional[int] = ..., status: _Optional[_Union[ExecutionStatus, str]] = ..., result_json: _Optional[str] = ..., error: _Optional[_Union[ExecutionError, _Mapping]] = ..., logs: _Optional[str] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., finished_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., duration_ms: _Optional[int] = ..., reason: _Optional[str] = ..., retry_of: _Optional[str] = ..., retried_by: _Optional[str] = ..., job_name: _Optional[str] = ...) -> None: ...

class Message(_message.Message):
    __slots__ = ("id", "user_id", "owner", "job_id", "execution_id", "parts_json", "created_at")
    ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    EXECUTION_ID_FIELD_NUMBER: _ClassVar[int]
    PARTS_JSON_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    id: str
    user_id: str
    owner: str
    job_id: str
    execution_id: str
    parts_json: str
    created_at: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., user_id: _Optional[str] = ..., owner: _Optional[str] = ..., job_id: _Optional[str] = ..., execution_id: _Optional[str] = ..., parts_json: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
