import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from capsule.v1 import types_pb2 as _types_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class DeployAction(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DEPLOY_ACTION_UNSPECIFIED: _ClassVar[DeployAction]
    DEPLOY_ACTION_CREATED: _ClassVar[DeployAction]
    DEPLOY_ACTION_NEW_VERSION: _ClassVar[DeployAction]
    DEPLOY_ACTION_UNCHANGED: _ClassVar[DeployAction]
    DEPLOY_ACTION_PRUNED: _ClassVar[DeployAction]
DEPLOY_ACTION_UNSPECIFIED: DeployAction
DEPLOY_ACTION_CREATED: DeployAction
DEPLOY_ACTION_NEW_VERSION: DeployAction
DEPLOY_ACTION_UNCHANGED: DeployAction
DEPLOY_ACTION_PRUNED: DeployAction

class JobRef(_message.Message):
    __slots__ = ("job",)
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: str
    def __init__(self, job: _Optional[str] = ...) -> None: ...

class CreateJobRequest(_message.Message):
    __slots__ = ("spec",)
    SPEC_FIELD_NUMBER: _ClassVar[int]
    spec: _types_pb2.JobSpec
    def __init__(self, spec: _Optional[_Union[_types_pb2.JobSpec, _Mapping]] = ...) -> None: ...

class CreateJobResponse(_message.Message):
    __slots__ = ("job", "version")
    JOB_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    job: _types_pb2.Job
    version: _types_pb2.Version
    def __init__(self, job: _Optional[_Union[_types_pb2.Job, _Mapping]] = ..., version: _Optional[_Union[_types_pb2.Version, _Mapping]] = ...) -> None: ...

class GetJobRequest(_message.Message):
    __slots__ = ("job",)
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: str
    def __init__(self, job: _Optional[str] = ...) -> None: ...

class ListJobsRequest(_message.Message):
    __slots__ = ("include_dynamic", "include_finished", "search", "user_id", "page_size", "page_token")
    INCLUDE_DYNAMIC_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_FINISHED_FIELD_NUMBER: _ClassVar[int]
    SEARCH_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    include_dynamic: bool
    include_finished: bool
    search: str
    user_id: str
    page_size: int
    page_token: str
    def __init__(self, include_dynamic: _Optional[bool] = ..., include_finished: _Optional[bool] = ..., search: _Optional[str] = ..., user_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListJobsResponse(_message.Message):
    __slots__ = ("jobs", "next_page_token")
    JOBS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    jobs: _containers.RepeatedCompositeFieldContainer[_types_pb2.Job]
    next_page_token: str
    def __init__(self, jobs: _Optional[_Iterable[_Union[_types_pb2.Job, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class UpdateJobRequest(_message.Message):
    __slots__ = ("job", "description", "artifact", "schedule", "timeout_seconds", "retry", "isolation", "limits", "retention")
    JOB_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    ARTIFACT_FIELD_NUMBER: _ClassVar[int]
    SCHEDULE_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    RETRY_FIELD_NUMBER: _ClassVar[int]
    ISOLATION_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    RETENTION_FIELD_NUMBER: _ClassVar[int]
    job: str
    description: str
    artifact: _types_pb2.Artifact
    schedule: _types_pb2.Schedule
    timeout_seconds: float
    retry: _types_pb2.Retry
    isolation: _types_pb2.Isolation
    limits: _types_pb2.Limits
    retention: _types_pb2.Retention
    def __init__(self, job: _Optional[str] = ..., description: _Optional[str] = ..., artifact: _Optional[_Union[_types_pb2.Artifact, _Mapping]] = ..., schedule: _Optional[_Union[_types_pb2.Schedule, _Mapping]] = ..., timeout_seconds: _Optional[float] = ..., retry: _Optional[_Union[_types_pb2.Retry, _Mapping]] = ..., isolation: _Optional[_Union[_types_pb2.Isolation, str]] = ..., limits: _Optional[_Union[_types_pb2.Limits, _Mapping]] = ..., retention: _Optional[_Union[_types_pb2.Retention, _Mapping]] = ...) -> None: ...

class UpdateMetadataRequest(_message.Message):
    __slots__ = ("job", "metadata_json", "replace")
    JOB_FIELD_NUMBER: _ClassVar[int]
    METADATA_JSON_FIELD_NUMBER: _ClassVar[int]
    REPLACE_FIELD_NUMBER: _ClassVar[int]
    job: str
    metadata_json: str
    replace: bool
    def __init__(self, job: _Optional[str] = ..., metadata_json: _Optional[str] = ..., replace: _Optional[bool] = ...) -> None: ...

class DeleteJobResponse(_message.Message):
    __slots__ = ("archived",)
    ARCHIVED_FIELD_NUMBER: _ClassVar[int]
    archived: bool
    def __init__(self, archived: _Optional[bool] = ...) -> None: ...

class DeployJobsRequest(_message.Message):
    __slots__ = ("jobs", "dry_run", "prune")
    JOBS_FIELD_NUMBER: _ClassVar[int]
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    PRUNE_FIELD_NUMBER: _ClassVar[int]
    jobs: _containers.RepeatedCompositeFieldContainer[_types_pb2.JobSpec]
    dry_run: bool
    prune: bool
    def __init__(self, jobs: _Optional[_Iterable[_Union[_types_pb2.JobSpec, _Mapping]]] = ..., dry_run: _Optional[bool] = ..., prune: _Optional[bool] = ...) -> None: ...

class DeployResult(_message.Message):
    __slots__ = ("name", "action", "job")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    JOB_FIELD_NUMBER: _ClassVar[int]
    name: str
    action: DeployAction
    job: _types_pb2.Job
    def __init__(self, name: _Optional[str] = ..., action: _Optional[_Union[DeployAction, str]] = ..., job: _Optional[_Union[_types_pb2.Job, _Mapping]] = ...) -> None: ...

class DeployJobsResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[DeployResult]
    def __init__(self, results: _Optional[_Iterable[_Union[DeployResult, _Mapping]]] = ...) -> None: ...

class TriggerJobRequest(_message.Message):
    __slots__ = ("job", "version_id", "version_number", "force", "wait", "wait_timeout_seconds")
    JOB_FIELD_NUMBER: _ClassVar[int]
    VERSION_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_NUMBER_FIELD_NUMBER: _ClassVar[int]
    FORCE_FIELD_NUMBER: _ClassVar[int]
    WAIT_FIELD_NUMBER: _ClassVar[int]
    WAIT_TIMEOUT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    job: str
    version_id: str
    version_number: int
    force: bool
    wait: bool
    wait_timeout_seconds: float
    def __init__(self, job: _Optional[str] = ..., version_id: _Optional[str] = ..., version_number: _Optional[int] = ..., force: _Optional[bool] = ..., wait: _Optional[bool] = ..., wait_timeout_seconds: _Optional[float] = ...) -> None: ...

class TriggerJobResponse(_message.Message):
    __slots__ = ("execution",)
    EXECUTION_FIELD_NUMBER: _ClassVar[int]
    execution: _types_pb2.Execution
    def __init__(self, execution: _Optional[_Union[_types_pb2.Execution, _Mapping]] = ...) -> None: ...

class ListVersionsResponse(_message.Message):
    __slots__ = ("versions",)
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    versions: _containers.RepeatedCompositeFieldContainer[_types_pb2.Version]
    def __init__(self, versions: _Optional[_Iterable[_Union[_types_pb2.Version, _Mapping]]] = ...) -> None: ...

class ActivateVersionRequest(_message.Message):
    __slots__ = ("job", "version_id", "version_number")
    JOB_FIELD_NUMBER: _ClassVar[int]
    VERSION_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_NUMBER_FIELD_NUMBER: _ClassVar[int]
    job: str
    version_id: str
    version_number: int
    def __init__(self, job: _Optional[str] = ..., version_id: _Optional[str] = ..., version_number: _Optional[int] = ...) -> None: ...

class PreviewScheduleRequest(_message.Message):
    __slots__ = ("schedule", "count", "after")
    SCHEDULE_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    AFTER_FIELD_NUMBER: _ClassVar[int]
    schedule: _types_pb2.Schedule
    count: int
    after: _timestamp_pb2.Timestamp
    def __init__(self, schedule: _Optional[_Union[_types_pb2.Schedule, _Mapping]] = ..., count: _Optional[int] = ..., after: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class PreviewScheduleResponse(_message.Message):
    __slots__ = ("fire_times", "schedule_human")
    FIRE_TIMES_FIELD_NUMBER: _ClassVar[int]
    SCHEDULE_HUMAN_FIELD_NUMBER: _ClassVar[int]
    fire_times: _containers.RepeatedCompositeFieldContainer[_timestamp_pb2.Timestamp]
    schedule_human: str
    def __init__(self, fire_times: _Optional[_Iterable[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]]] = ..., schedule_human: _Optional[str] = ...) -> None: ...
