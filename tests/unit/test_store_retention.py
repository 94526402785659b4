"""Retention in the store, against a real SQLite file: which executions a job keeps."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import pytest

from engine import queries as q
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


def _history(store, job, version, rng: random.Random, size: int) -> list[tuple[str, float | None, int]]:
    """A job history in creation order, as (id, finished_at or None, bytes): attempts
    finished at random instants (not in creation order), skipped rows, and queued and
    running attempts anywhere among them."""
    rows = []
    for _ in range(size):
        kind = rng.choice(["finished", "finished", "finished", "skipped", "queued", "running"])
        at = NOW - timedelta(hours=rng.randrange(0, 240))
        if kind == "skipped":
            rows.append((store.record_skipped(job, version.id, Trigger.MANUAL, at, "skipped: overlap"),
                         at.timestamp(), 0))
        elif kind == "queued":
            rows.append((store.enqueue(job, version.id, Trigger.MANUAL, NOW + timedelta(days=9), NOW), None, 0))
        else:
            execution_id = store.enqueue(job, version.id, Trigger.MANUAL, NOW, NOW, concurrent=True)
            assert store.start_ready(NOW, 100) == [execution_id]
            logs = "x" * rng.randrange(1, 50)
            if kind == "finished":
                store.finish_attempt(AttemptResult(execution_id, ExecutionStatus.SUCCEEDED, at, 1, logs=logs), at)
            rows.append((execution_id, at.timestamp() if kind == "finished" else None, len(logs)))
    return rows


@pytest.mark.parametrize("seed", range(12))
def test_pruning_matches_the_rule_on_random_histories(tmp_path, seed):
    """keep_last is exact; the age limit is exact in an exact pass, and after an attempt
    removes exactly the expired executions created before the oldest one kept by age."""
    rng = random.Random(seed)
    store = Store(tmp_path / "capsule.db")
    job, version = store.create_job("acme", JobSpec("j", Artifact("def execute(job):\n    return 1\n")),
                                    60.0, NOW, None)
    rows = _history(store, job, version, rng, rng.randrange(0, 30))
    keep_last, before = rng.randrange(1, 10), NOW - timedelta(hours=rng.randrange(0, 260))
    finished = [r for r in rows if r[1] is not None]
    over_count = {r[0] for r in finished[:max(len(finished) - keep_last, 0)]}
    expired = [r[0] for r in finished if r[1] < before.timestamp()]
    first_kept = next((i for i, r in enumerate(rows) if r[1] is not None and r[1] >= before.timestamp()), len(rows))
    created_before = {r[0] for r in rows[:first_kept]}
    exact = over_count | set(expired)
    quick = over_count | {e for e in expired if e in created_before}

    def outcome(removed: set[str]) -> tuple[int, int]:
        return len(removed), sum(r[2] for r in rows if r[0] in removed)

    for exact_age, removed in ((False, quick), (True, exact)):
        assert store.prune_job_history(job.id, keep_last=keep_last, before=before, dry_run=True,
                                       exact_age=exact_age) == outcome(removed)
    assert store.prune_job_history(job.id, keep_last=keep_last, before=before, exact_age=False) == outcome(quick)
    assert set(_ids(store, job.id)) == {r[0] for r in rows} - quick
    store.prune_job_history(job.id, keep_last=keep_last, before=before)
    assert set(_ids(store, job.id)) == {r[0] for r in rows} - exact
    store.close()


def test_a_retry_outlives_the_attempt_it_retried(store):
    job, version = store.create_job("acme", JobSpec("j", Artifact("def execute(job):\n    return 1\n")),
                                    60.0, NOW, None)
    first = store.enqueue(job, version.id, Trigger.MANUAL, NOW, NOW)
    assert store.start_ready(NOW, 10) == [first]
    retry = store.finish_attempt(AttemptResult(first, ExecutionStatus.FAILED, NOW, 1, retry_at=NOW), NOW)
    assert store.start_ready(NOW, 10) == [retry]
    store.finish_attempt(AttemptResult(retry, ExecutionStatus.SUCCEEDED, NOW, 1), NOW)
    assert store.prune_job_history(job.id, keep_last=1, before=NOW - timedelta(days=1), exact_age=False)[0] == 1
    assert _ids(store, job.id) == [retry]
    assert store.get_execution(None, retry).retry_of is None


def test_the_check_after_an_attempt_reads_indexes_not_the_history(store):
    def plan(sql, **params):
        return " | ".join(row[3] for row in store._all("EXPLAIN QUERY PLAN " + sql, params))

    assert "COVERING INDEX executions_job " in plan(q.RETENTION_NTH_NEWEST, job_id="j", keep_last=1000)
    unfinished = plan(q.RETENTION_UNFINISHED_AFTER, job_id="j", seq=1)
    assert "COVERING INDEX executions_job_queued (job_id=? AND rowid>?)" in unfinished
    assert "COVERING INDEX executions_running (job_id=? AND rowid>?)" in unfinished
    assert "executions_job (job_id=? AND seq<?)" in plan(q.RETENTION_SELECT, job_id="j", below_seq=1,
                                                          cutoff_seq=0, before=0.0)
