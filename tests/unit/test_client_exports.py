"""The public surface of `client` is explicit and pinned."""

from __future__ import annotations

import importlib

import pytest

import client

EXPECTED = [
    "Jobs", "Job", "Retry", "User", "once", "interval", "cron",
    "JobHandle", "Execution", "DeployResult", "Limits", "Retention",
    "errors", "CapsuleError", "InvalidArgument", "SelfContainmentError", "NotFound", "AlreadyExists",
    "PermissionDenied", "Unauthenticated", "FailedPrecondition", "ResourceExhausted", "Unavailable",
    "DeadlineExceeded",
]


def test_all_is_pinned():
    assert client.__all__ == EXPECTED


@pytest.mark.parametrize("name", EXPECTED)
def test_every_exported_name_is_importable(name):
    module = importlib.import_module("client")
    assert getattr(module, name) is not None


def test_design_names_come_from_the_shared_domain():
    from engine import model, schedules

    assert client.Retry is model.Retry and client.Limits is model.Limits
    assert client.once is schedules.once and client.interval is schedules.interval and client.cron is schedules.cron


def test_user_outside_a_running_job_says_where_it_works():
    with pytest.raises(RuntimeError, match="only available inside a running job"):
        client.User.get("user_42")
