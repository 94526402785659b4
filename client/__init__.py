"""Capsule's Python client: create, deploy, trigger and watch jobs on a Capsule engine.

    from client import Jobs, Job, Retry, User, once, interval, cron

    jobs = Jobs.connect()        # $CAPSULE_ADDRESS / $CAPSULE_TOKEN, else the local engine
    job = jobs.create(name="user-reminder", execute=remind, user_id="user_42",
                      metadata={"message": "Team meeting in 10 minutes"},
                      schedule=once(at=now + timedelta(minutes=10)))
    execution = job.trigger(wait=True)

Errors are `client.errors.CapsuleError` and its subclasses, also importable from here.
"""

from __future__ import annotations

from client import errors
from client._user import User
from client.errors import (
    AlreadyExists,
    CapsuleError,
    DeadlineExceeded,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    SelfContainmentError,
    Unauthenticated,
    Unavailable,
)
from client.jobs import DeployResult, Execution, Job, JobHandle, Jobs
from engine.model import Limits, Retention, Retry
from engine.schedules import cron, interval, once

__all__ = [
    # DESIGN's names
    "Jobs",
    "Job",
    "Retry",
    "User",
    "once",
    "interval",
    "cron",
    # what they return and take
    "JobHandle",
    "Execution",
    "DeployResult",
    "Limits",
    "Retention",
    # errors
    "errors",
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
]
