"""gRPC statuses become typed client errors that keep the engine's message."""

from __future__ import annotations

import grpc
import pytest

from client import errors
from client.errors import CapsuleError, from_rpc_error


class FailedCall(grpc.RpcError):
    """What a failed unary call raises: a grpc.RpcError that is also a grpc.Call."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        self._code, self._details = code, details

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details


@pytest.mark.parametrize("status, cls", [
    pytest.param(grpc.StatusCode.INVALID_ARGUMENT, errors.InvalidArgument, id="invalid-argument"),
    pytest.param(grpc.StatusCode.NOT_FOUND, errors.NotFound, id="not-found"),
    pytest.param(grpc.StatusCode.ALREADY_EXISTS, errors.AlreadyExists, id="already-exists"),
    pytest.param(grpc.StatusCode.PERMISSION_DENIED, errors.PermissionDenied, id="permission-denied"),
    pytest.param(grpc.StatusCode.UNAUTHENTICATED, errors.Unauthenticated, id="unauthenticated"),
    pytest.param(grpc.StatusCode.FAILED_PRECONDITION, errors.FailedPrecondition, id="failed-precondition"),
    pytest.param(grpc.StatusCode.RESOURCE_EXHAUSTED, errors.ResourceExhausted, id="resource-exhausted"),
    pytest.param(grpc.StatusCode.UNAVAILABLE, errors.Unavailable, id="unavailable"),
    pytest.param(grpc.StatusCode.DEADLINE_EXCEEDED, errors.DeadlineExceeded, id="deadline-exceeded"),
    pytest.param(grpc.StatusCode.INTERNAL, CapsuleError, id="internal-is-the-root"),
    pytest.param(grpc.StatusCode.UNKNOWN, CapsuleError, id="unknown-is-the-root"),
])
def test_each_status_maps_to_its_class_keeping_status_and_message(status, cls):
    error = from_rpc_error(FailedCall(status, "spec.name: must match [a-z0-9][a-z0-9_-]*"))
    assert type(error) is cls
    assert isinstance(error, CapsuleError)
    assert error.status is status
    assert error.message == "spec.name: must match [a-z0-9][a-z0-9_-]*"
    assert str(error) == error.message


def test_unavailable_with_an_address_says_what_to_do():
    error = from_rpc_error(FailedCall(grpc.StatusCode.UNAVAILABLE, "failed to connect"), address="127.0.0.1:50051")
    assert isinstance(error, errors.Unavailable)
    assert "127.0.0.1:50051" in error.message
    assert "capsule serve" in error.message and "CAPSULE_ADDRESS" in error.message
    assert "failed to connect" in error.message


def test_an_empty_details_string_still_gives_a_message():
    error = from_rpc_error(FailedCall(grpc.StatusCode.NOT_FOUND, ""))
    assert error.message == "NOT_FOUND"


def test_local_errors_have_no_status():
    error = errors.InvalidArgument("timeout: must be > 0")
    assert error.status is None and error.message == "timeout: must be > 0"


def test_the_self_containment_error_is_an_invalid_argument_carrying_the_names():
    error = errors.SelfContainmentError("reads API_KEY", ["API_KEY"])
    assert isinstance(error, errors.InvalidArgument)
    assert error.names == ("API_KEY",)
    assert error.status is None


def test_every_class_derives_from_the_root():
    for name in errors.__all__:
        value = getattr(errors, name)
        if isinstance(value, type):
            assert issubclass(value, CapsuleError), name
