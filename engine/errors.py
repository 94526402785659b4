"""Errors the engine raises on purpose, each mapped to one gRPC status.

    CapsuleError                 (INTERNAL; never raised directly)
    ├── InvalidArgument          bad field: names it and says the fix
    ├── NotFound                 no such job/version/execution for this owner
    ├── AlreadyExists            a live job of this owner has the name
    ├── PermissionDenied         the caller may not do this
    ├── Unauthenticated          no token, or an unknown/revoked one
    ├── FailedPrecondition       the thing exists but is in the wrong state
    └── ResourceExhausted        over a size cap or quota
        └── QuotaExceeded        over one of the owner's limits

Each subclass formats its own message from fields so messages stay consistent;
`engine/services.py` turns them into statuses in one place.
"""

from __future__ import annotations

import grpc


class CapsuleError(Exception):
    status = grpc.StatusCode.INTERNAL

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidArgument(CapsuleError):
    status = grpc.StatusCode.INVALID_ARGUMENT

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field


class NotFound(CapsuleError):
    status = grpc.StatusCode.NOT_FOUND

    def __init__(self, kind: str, ref: str) -> None:
        shown = ref if len(ref) <= 100 else ref[:100] + "..."
        super().__init__(f"{kind} {shown!r} not found; check the id or name (and that your token's owner has it)")
        self.kind = kind
        self.ref = ref


class AlreadyExists(CapsuleError):
    status = grpc.StatusCode.ALREADY_EXISTS


class PermissionDenied(CapsuleError):
    status = grpc.StatusCode.PERMISSION_DENIED


class Unauthenticated(CapsuleError):
    status = grpc.StatusCode.UNAUTHENTICATED


class FailedPrecondition(CapsuleError):
    status = grpc.StatusCode.FAILED_PRECONDITION


class ResourceExhausted(CapsuleError):
    status = grpc.StatusCode.RESOURCE_EXHAUSTED

    def __init__(self, field: str, size: int, cap: int) -> None:
        super().__init__(f"{field}: {size} bytes is over the cap of {cap} bytes; make it smaller")
        self.field = field


class QuotaExceeded(ResourceExhausted):
    """An owner's limit (`max_jobs`, `max_artifact_bytes`, ...) would be exceeded."""

    def __init__(self, limit: str, problem: str) -> None:
        CapsuleError.__init__(self, f"{limit}: {problem}")
        self.field = limit
