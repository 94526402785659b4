"""The errors the Capsule client raises.

Every refusal from the engine arrives as a gRPC status; the client raises the class
that matches it, keeping the engine's message (which names the field and the fix).
Checks the client makes itself, before anything is sent, raise the same classes with
`status` None.

    Exception
     └── CapsuleError                 .status (grpc.StatusCode | None), .message
          ├── InvalidArgument         INVALID_ARGUMENT: a field is wrong; the message says which
          │    └── SelfContainmentError   local: `execute` reads names the sandbox lacks (.names)
          ├── NotFound                NOT_FOUND: no such job, version or execution (for you)
          ├── AlreadyExists           ALREADY_EXISTS: a live job already has that name
          ├── PermissionDenied        PERMISSION_DENIED: the token may not do this
          ├── Unauthenticated         UNAUTHENTICATED: no token, or a wrong one
          ├── FailedPrecondition      FAILED_PRECONDITION: not in this state (archived, overlap...)
          ├── ResourceExhausted       RESOURCE_EXHAUSTED: over a size cap
          ├── Unavailable             UNAVAILABLE: the engine cannot be reached
          └── DeadlineExceeded        DEADLINE_EXCEEDED: no answer in time

Any other status (INTERNAL, UNKNOWN, ...) raises `CapsuleError` itself.
"""

from __future__ import annotations

from typing import Iterable

import grpc

__all__ = [
    "CapsuleError",
    "InvalidArgument",
    "SelfContainmentError",
    "NotFound",
    "AlreadyExists",
    "PermissionDenied",
    "Unauthenticated",
    "FailedPrecondition",
    "ResourceExhausted",
    "Unavailable",
    "DeadlineExceeded",
    "from_rpc_error",
]


class CapsuleError(Exception):
    """Root of every error the client raises.

    `status` is the gRPC status the engine answered with, or None when the client
    refused the call itself; `message` is the sentence to show a person.
    """

    def __init__(self, message: str, status: grpc.StatusCode | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status

    def __str__(self) -> str:
        return self.message


class InvalidArgument(CapsuleError):
    """A request field is wrong; the message names it and says how to fix it."""


class NotFound(CapsuleError):
    """No such job, version or execution among the caller's own."""


class AlreadyExists(CapsuleError):
    """A live job of this owner already has the name."""


class PermissionDenied(CapsuleError):
    """The token is valid but may not do this (e.g. trusted isolation, admin calls)."""


class Unauthenticated(CapsuleError):
    """No bearer token, or one the engine does not know."""


class FailedPrecondition(CapsuleError):
    """The job or execution is not in a state that allows this (archived, overlap...)."""


class ResourceExhausted(CapsuleError):
    """Source, artifact, metadata or a result is over its cap."""


class Unavailable(CapsuleError):
    """The engine cannot be reached."""


class DeadlineExceeded(CapsuleError):
    """The engine did not answer within the call's timeout."""


class SelfContainmentError(InvalidArgument):
    """`execute` reads names from outside itself that the sandbox will not provide.

    Raised by the bundler before anything is sent; `names` lists each such name.
    """

    def __init__(self, message: str, names: Iterable[str]) -> None:
        super().__init__(message)
        self.names: tuple[str, ...] = tuple(names)


_BY_STATUS: dict[grpc.StatusCode, type[CapsuleError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgument,
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExists,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDenied,
    grpc.StatusCode.UNAUTHENTICATED: Unauthenticated,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPrecondition,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhausted,
    grpc.StatusCode.UNAVAILABLE: Unavailable,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceeded,
}


def error_class(status: grpc.StatusCode | None) -> type[CapsuleError]:
    """The class raised for a gRPC status (CapsuleError for unmapped ones)."""
    return _BY_STATUS.get(status, CapsuleError) if status is not None else CapsuleError


def from_rpc_error(error: grpc.RpcError, *, address: str | None = None) -> CapsuleError:
    """The typed error for a failed call, keeping the engine's message.

    `address` (the engine's) makes an UNAVAILABLE error say what to do.
    """
    status = _status_of(error)
    details = _details_of(error) or (status.name if status else "the call failed")
    if status is grpc.StatusCode.UNAVAILABLE and address:
        details = (
            f"cannot reach the Capsule engine at {address} ({details}); "
            "start one with `capsule serve` or point CAPSULE_ADDRESS at a running engine"
        )
    return error_class(status)(details, status)


def _status_of(error: grpc.RpcError) -> grpc.StatusCode | None:
    code = getattr(error, "code", None)
    return code() if callable(code) else None


def _details_of(error: grpc.RpcError) -> str:
    details = getattr(error, "details", None)
    return (details() if callable(details) else "") or ""
