"""Retention in the store, against a real SQLite file: which executions a job keeps."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from engine.model import Artifact, ExecutionStatus, JobSpec, Retention, Trigger
from engine.store import AttemptResult, Store

UTC = timezone.utc
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "capsule.db")
    yield s
    s.close()


def _ids(store, job_id):
    return [e.id for e, _ in store.list_executions(None, job_id=job_id, statuses=[], since=None, limit=100)]


def _finished(store, job, version, at: datetime, logs: str = "x") -> str:
    execution_id = store.enqueue(job, version.id, Trigger.MANUAL, at, at)
    assert store.start_ready(at, 10) == [execution_id]
    store.finish_attempt(AttemptResult(execution_id, ExecutionStatus.SUCCEEDED, at, 1, logs=logs), at)
    return execution_id


def test_keep_last_keeps_the_newest_finished_and_every_unfinished(store):
    job, version = store.create_job("acme", JobSpec("j", Artifact("def execute(job):\n    return 1\n")),
                                    60.0, NOW, None)
    done = [_finished(store, job, version, NOW + timedelta(minutes=i)) for i in range(5)]
    queued = store.enqueue(job, version.id, Trigger.MANUAL, NOW + timedelta(hours=1), NOW)
    assert store.prune_job_history(job.id, keep_last=2, before=NOW, dry_run=True) == (3, 3)
    assert set(_ids(store, job.id)) == {*done, queued}  # a dry run removes nothing
    assert store.prune_job_history(job.id, keep_last=2, before=NOW) == (3, 3)
    assert _ids(store, job.id) == [queued, done[4], done[3]]
    assert store.prune_job_history(job.id, keep_last=2, before=NOW) == (0, 0)


def test_the_age_limit_removes_older_finished_executions(store):
    job, version = store.create_job("acme", JobSpec("j", Artifact("def execute(job):\n    return 1\n")),
                                    60.0, NOW, None)
    old = _finished(store, job, version, NOW - timedelta(days=40))
    new = _finished(store, job, version, NOW - timedelta(days=1))
    assert store.prune_job_history(job.id, keep_last=1000, before=NOW - timedelta(days=30)) == (1, 1)
    assert _ids(store, job.id) == [new]
    assert old not in _ids(store, job.id)


def test_retention_is_stored_with_the_version(store):
    spec = JobSpec("j", Artifact("def execute(job):\n    return 1\n"), retention=Retention(keep_last=7))
    job, version = store.create_job("acme", spec, 60.0, NOW, None)
    assert store.get_version(job.id, version_id=version.id).retention == Retention(keep_last=7)
    plain, v2 = store.create_job("acme", JobSpec("k", Artifact("def execute(job):\n    return 2\n")), 60.0, NOW, None)
    assert store.get_version(plain.id, version_id=v2.id).retention == Retention()
    assert Retention(keep_last=7).effective() == Retention(keep_last=7, max_age_days=30.0)
