import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from capsule.v1 import types_pb2 as _types_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GetExecutionRequest(_message.Message):
    __slots__ = ("execution_id",)
    EXECUTION_ID_FIELD_NUMBER: _ClassVar[int]
    execution_id: str
    def __init__(self, execution_id: _Optional[str] = ...) -> None: ...

class WaitExecutionRequest(_message.Message):
    __slots__ = ("execution_id", "timeout_seconds")
    EXECUTION_ID_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    execution_id: str
    timeout_seconds: float
    def __init__(self, execution_id: _Optional[str] = ..., timeout_seconds: _Optional[float] = ...) -> None: ...

class ListExecutionsRequest(_message.Message):
    __slots__ = ("job", "statuses", "since", "limit", "page_token")
    JOB_FIELD_NUMBER: _ClassVar[int]
    STATUSES_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    job: str
    statuses: _containers.RepeatedScalarFieldContainer[_types_pb2.ExecutionStatus]
    since: _timestamp_pb2.Timestamp
    limit: int
    page_token: str
    def __init__(self, job: _Optional[str] = ..., statuses: _Optional[_Iterable[_Union[_types_pb2.ExecutionStatus, str]]] = ..., since: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., limit: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListExecutionsResponse(_message.Message):
    __slots__ = ("executions", "next_page_token")
    EXECUTIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    executions: _containers.RepeatedCompositeFieldContainer[_types_pb2.Execution]
    next_page_token: str
    def __init__(self, executions: _Optional[_Iterable[_Union[_types_pb2.Execution, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class CleanupExecutionsRequest(_message.Message):
    __slots__ = ("older_than_days", "dry_run", "job")
    OLDER_THAN_DAYS_FIELD_NUMBER: _ClassVar[int]
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    JOB_FIELD_NUMBER: _ClassVar[int]
    older_than_days: float
    dry_run: bool
    job: str
    def __init__(self, older_than_days: _Optional[float] = ..., dry_run: _Optional[bool] = ..., job: _Optional[str] = ...) -> None: ...

class CleanupExecutionsResponse(_message.Message):
    __slots__ = ("executions_removed", "bytes_removed", "jobs", "before")
    EXECUTIONS_REMOVED_FIELD_NUMBER: _ClassVar[int]
    BYTES_REMOVED_FIELD_NUMBER: _ClassVar[int]
    JOBS_FIELD_NUMBER: _ClassVar[int]
    BEFORE_FIELD_NUMBER: _ClassVar[int]
    executions_removed: int
    bytes_removed: int
    jobs: _containers.RepeatedCompositeFieldContainer[JobCleanup]
    before: _timestamp_pb2.Timestamp
    def __init__(self, executions_removed: _Optional[int] = ..., bytes_removed: _Optional[int] = ..., jobs: _Optional[_Iterable[_Union[JobCleanup, _Mapping]]] = ..., before: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class JobCleanup(_message.Message):
    __slots__ = ("job_id", "job_name", "executions_removed", "bytes_removed")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    JOB_NAME_FIELD_NUMBER: _ClassVar[int]
    EXECUTIONS_REMOVED_FIELD_NUMBER: _ClassVar[int]
    BYTES_REMOVED_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    job_name: str
    executions_removed: int
    bytes_removed: int
    def __init__(self, job_id: _Optional[str] = ..., job_name: _Optional[str] = ..., executions_removed: _Optional[int] = ..., bytes_removed: _Optional[int] = ...) -> None: ...
