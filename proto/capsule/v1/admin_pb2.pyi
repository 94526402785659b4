import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GetServerInfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class IsolationLayer(_message.Message):
    __slots__ = ("name", "active", "detail")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    name: str
    active: bool
    detail: str
    def __init__(self, name: _Optional[str] = ..., active: _Optional[bool] = ..., detail: _Optional[str] = ...) -> None: ...

class ServerInfo(_message.Message):
    __slots__ = ("version", "store_path", "listen_address", "isolation_layers", "owner", "admin", "started_at", "python_version")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    STORE_PATH_FIELD_NUMBER: _ClassVar[int]
    LISTEN_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    ISOLATION_LAYERS_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    ADMIN_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    PYTHON_VERSION_FIELD_NUMBER: _ClassVar[int]
    version: str
    store_path: str
    listen_address: str
    isolation_layers: _containers.RepeatedCompositeFieldContainer[IsolationLayer]
    owner: str
    admin: bool
    started_at: _timestamp_pb2.Timestamp
    python_version: str
    def __init__(self, version: _Optional[str] = ..., store_path: _Optional[str] = ..., listen_address: _Optional[str] = ..., isolation_layers: _Optional[_Iterable[_Union[IsolationLayer, _Mapping]]] = ..., owner: _Optional[str] = ..., admin: _Optional[bool] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., python_version: _Optional[str] = ...) -> None: ...

class Owner(_message.Message):
    __slots__ = ("name", "created_at", "trusted_allowed", "limits")
    NAME_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    TRUSTED_ALLOWED_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    name: str
    created_at: _timestamp_pb2.Timestamp
    trusted_allowed: bool
    limits: OwnerLimits
    def __init__(self, name: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., trusted_allowed: _Optional[bool] = ..., limits: _Optional[_Union[OwnerLimits, _Mapping]] = ...) -> None: ...

class OwnerLimits(_message.Message):
    __slots__ = ("max_jobs", "max_artifact_bytes", "max_messages_per_attempt", "max_running")
    MAX_JOBS_FIELD_NUMBER: _ClassVar[int]
    MAX_ARTIFACT_BYTES_FIELD_NUMBER: _ClassVar[int]
    MAX_MESSAGES_PER_ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    MAX_RUNNING_FIELD_NUMBER: _ClassVar[int]
    max_jobs: int
    max_artifact_bytes: int
    max_messages_per_attempt: int
    max_running: int
    def __init__(self, max_jobs: _Optional[int] = ..., max_artifact_bytes: _Optional[int] = ..., max_messages_per_attempt: _Optional[int] = ..., max_running: _Optional[int] = ...) -> None: ...

class CreateOwnerRequest(_message.Message):
    __slots__ = ("name", "trusted_allowed", "limits")
    NAME_FIELD_NUMBER: _ClassVar[int]
    TRUSTED_ALLOWED_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    name: str
    trusted_allowed: bool
    limits: OwnerLimits
    def __init__(self, name: _Optional[str] = ..., trusted_allowed: _Optional[bool] = ..., limits: _Optional[_Union[OwnerLimits, _Mapping]] = ...) -> None: ...

class ListOwnersRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListOwnersResponse(_message.Message):
    __slots__ = ("owners",)
    OWNERS_FIELD_NUMBER: _ClassVar[int]
    owners: _containers.RepeatedCompositeFieldContainer[Owner]
    def __init__(self, owners: _Optional[_Iterable[_Union[Owner, _Mapping]]] = ...) -> None: ...

class CreateTokenRequest(_message.Message):
    __slots__ = ("owner", "label")
    OWNER_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    owner: str
    label: str
    def __init__(self, owner: _Optional[str] = ..., label: _Optional[str] = ...) -> None: ...

class CreateTokenResponse(_message.Message):
    __slots__ = ("token_id", "token")
    TOKEN_ID_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    token_id: str
    token: str
    def __init__(self, token_id: _Optional[str] = ..., token: _Optional[str] = ...) -> None: ...

class RevokeTokenRequest(_message.Message):
    __slots__ = ("token_id",)
    TOKEN_ID_FIELD_NUMBER: _ClassVar[int]
    token_id: str
    def __init__(self, token_id: _Optional[str] = ...) -> None: ...

class RevokeTokenResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...
