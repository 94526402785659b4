"""Owners' limits in the store: defaults, the live-job count the triggers keep, and
the max_jobs check inside the create transaction."""

from __future__ import annotations

import random
from datetime import datetime, timezone

import pytest

from engine import queries as q
from engine.errors import AlreadyExists, QuotaExceeded
from engine.model import DEFAULT_OWNER_LIMITS, Artifact, JobKind, JobSpec, JobStatus, OwnerLimits, Trigger
from engine.store import Store

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
STATUSES = [s for s in JobStatus]


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "capsule.db")
    yield s
    s.close()


def spec(name: str) -> JobSpec:
    return JobSpec(name=name, kind=JobKind.DYNAMIC, artifact=Artifact("def execute(job):\n    return 1\n"))


def slow_count(store: Store, owner: str) -> int:
    return store._one(q.COUNT_LIVE_JOBS_SLOW, (owner,))[0]


def test_limits_default_and_can_be_set(store):
    store.create_owner("acme", False, NOW, OwnerLimits(max_jobs=5))
    limits = store.owner_limits("acme")
    assert limits.max_jobs == 5
    assert limits.max_messages_per_attempt == DEFAULT_OWNER_LIMITS.max_messages_per_attempt
    assert store.owner_limits("admin") == DEFAULT_OWNER_LIMITS
    with pytest.raises(AlreadyExists):
        store.create_owner("admin", False, NOW)


def test_the_live_job_count_follows_every_status_change(store):
    rng = random.Random(7)
    jobs = []
    for i in range(40):
        owner = rng.choice(["acme", "globex", "admin"])
        job, version = store.create_job(owner, spec(f"j{i}"), 60.0, NOW, None)
        jobs.append((job, version))
    for _ in range(300):
        if not jobs:
            break
        job, version = rng.choice(jobs)
        action = rng.random()
        if action < 0.6:
            store._conn().execute("UPDATE jobs SET status = ? WHERE id = ?", (rng.choice(STATUSES).value, job.id))
        elif action < 0.8:
            store.enqueue(job, version.id, Trigger.MANUAL, NOW, NOW)
        elif not store.delete_job(job.id, NOW):
            jobs.remove((job, version))  # removed (it had no history), not archived
    counts = {owner: slow_count(store, owner) for owner in ("acme", "globex", "admin")}
    assert {owner: store.live_job_count(owner) for owner in counts} == counts
    assert any(counts.values()) and store._one("SELECT count(*) FROM jobs WHERE status = 'archived'")[0]


def test_max_jobs_is_checked_in_the_create_transaction(store):
    store.create_owner("acme", False, NOW, OwnerLimits(max_jobs=2))
    first, _ = store.create_job("acme", spec("a"), 60.0, NOW, None)
    store.create_job("acme", spec("b"), 60.0, NOW, None)
    with pytest.raises(QuotaExceeded, match="max_jobs"):
        store.create_job("acme", spec("c"), 60.0, NOW, None)
    store._conn().execute("UPDATE jobs SET status = 'completed' WHERE id = ?", (first.id,))
    store.create_job("acme", spec("c"), 60.0, NOW, None)
    assert store.live_job_count("acme") == 2


def test_migrating_an_existing_store_counts_the_jobs_already_there(tmp_path):
    """Migration 2 seeds the counts from the jobs that exist when it runs."""
    import apsw

    path = tmp_path / "old.db"
    conn = apsw.Connection(str(path))
    conn.execute(q.MIGRATIONS[0])
    conn.execute("PRAGMA user_version = 1")
    for i, status in enumerate(["active", "completed", "pending", "archived"]):
        conn.execute("INSERT INTO jobs (id, owner, name, description, kind, metadata, active, status, created_at) "
                     "VALUES (?, 'acme', ?, '', 'dynamic', '{}', 1, ?, 0)", (f"job_{i}", f"n{i}", status))
    conn.close()
    store = Store(path)
    assert store.live_job_count("acme") == 2
    store.close()
