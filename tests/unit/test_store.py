"""The store against a real SQLite file: transactions, scoping, versions, attempts."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from engine.errors import AlreadyExists, NotFound
from engine.model import (
    DEFAULT_OWNER_LIMITS, Artifact, ExecutionError, ExecutionStatus, JobKind, JobSpec, JobStatus, OwnerLimits,
    Retry, Trigger,
)
from engine.schedules import interval
from engine import queries as q
from engine.store import AttemptResult, Fire, FireRecord, Store

UTC = timezone.utc
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
SOURCE = "def execute(job):\n    return 1\n"


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "capsule.db")
    yield s
    s.close()


def spec(name="reminder", **kw) -> JobSpec:
    return JobSpec(name=name, artifact=Artifact(kw.pop("source", SOURCE)), user_id="u1",
                   metadata={"message": "hi"}, **kw)


def test_schema_is_migrated_once(tmp_path):
    Store(tmp_path / "c.db").close()
    again = Store(tmp_path / "c.db")
    assert again.schema_version == len(q.MIGRATIONS)
    assert again.integrity_check() == "ok"


def test_create_and_find_by_id_and_name(store):
    job, version = store.create_job("acme", spec(), 60.0, NOW, None)
    assert job.id.startswith("job_") and version.number == 1
    assert store.get_job("acme", "reminder").id == job.id
    assert store.get_job("acme", job.id).active_version_id == version.id
    assert store.get_job(None, job.id).owner == "acme"  # the admin sees every owner


def test_other_owners_cannot_see_a_job(store):
    job, _ = store.create_job("acme", spec(), 60.0, NOW, None)
    with pytest.raises(NotFound):
        store.get_job("globex", job.id)
    with pytest.raises(NotFound):
        store.get_job("globex", "reminder")


def test_names_are_unique_per_owner_among_live_jobs(store):
    store.create_job("acme", spec(), 60.0, NOW, None)
    with pytest.raises(AlreadyExists, match="reminder"):
        store.create_job("acme", spec(), 60.0, NOW, None)
    store.create_job("globex", spec(), 60.0, NOW, None)  # another owner may reuse it


def test_a_failed_transaction_writes_nothing(store):
    with pytest.raises(RuntimeError):
        with store.transaction() as conn:
            conn.execute("INSERT INTO owners (name, trusted_allowed, created_at) VALUES ('x', 0, 0)")
            raise RuntimeError("boom")
    assert store.owners() == []


def test_versions_number_up_and_share_artifacts(store):
    job, v1 = store.create_job("acme", spec(), 60.0, NOW, None)
    store.add_version(job.id, spec(source=SOURCE + "# v2\n"), 60.0, NOW, None, JobStatus.ACTIVE)
    assert [v.number for v in store.list_versions(job.id)] == [2, 1]
    assert store.get_job("acme", job.id).active_version_number == 2
    assert store.get_artifact(v1.artifact_digest).source == SOURCE
    assert store.get_version(job.id, number=1).id == v1.id


def test_due_fires_become_executions_exactly_once(store):
    job, version = store.create_job("acme", spec(schedule=interval(60)), 60.0, NOW, NOW)
    due = store.due_jobs(NOW, 10)
    assert due == [(job.id, version.id, NOW)]
    fire = Fire(job.id, version.id, NOW, NOW + timedelta(minutes=1), (FireRecord(NOW, ExecutionStatus.QUEUED),))
    assert len(store.record_fires([fire], NOW)) == 1
    assert store.record_fires([fire], NOW) == []  # next_run moved: a second claim is refused
    assert store.due_jobs(NOW, 10) == []
    assert store.get_job("acme", job.id).next_run == NOW + timedelta(minutes=1)


def test_a_fire_records_every_row_it_owed_at_once(store):
    job, version = store.create_job("acme", spec(schedule=interval(60)), 60.0, NOW, NOW)
    records = (FireRecord(NOW, ExecutionStatus.MISSED, "coalesced"),
               FireRecord(NOW + timedelta(minutes=1), ExecutionStatus.QUEUED))
    [queued] = store.record_fires([Fire(job.id, version.id, NOW, NOW + timedelta(minutes=2), records)], NOW)
    history = store.list_executions("acme", job_id=job.id, statuses=[], since=None, limit=10)
    assert [(e.status, e.reason) for e, _ in reversed(history)] == [
        (ExecutionStatus.MISSED, "coalesced"), (ExecutionStatus.QUEUED, None)]
    assert history[0][0].id == queued


def test_a_claimed_attempt_holds_a_lease_and_is_abandoned_by_a_new_engine(store):
    job, version = store.create_job("acme", spec(), 60.0, NOW, None)
    a = store.enqueue(job, version.id, Trigger.MANUAL, NOW, NOW)
    assert store.start_ready(NOW, 10, "eng_1", 30.0) == [a]
    until = store._one("SELECT claimed_by, claimed_until FROM executions WHERE id = ?", (a,))
    assert until == ("eng_1", (NOW + timedelta(seconds=90)).timestamp())  # timeout 60 + grace 30
    assert store.abandoned_executions("eng_1") == []
    assert store.abandoned_executions("eng_2") == [a]


def test_attempts_due_within_the_claim_ahead_window_start_at_their_due_time(store):
    job, version = store.create_job("acme", spec(), 60.0, NOW, None)
    soon = store.enqueue(job, version.id, Trigger.SCHEDULE, NOW + timedelta(milliseconds=15), NOW)
    later = store.enqueue(job, version.id, Trigger.SCHEDULE, NOW + timedelta(milliseconds=30), NOW, concurrent=True)
    assert store.start_ready(NOW, 10, "eng_1", 30.0, ahead_seconds=0.02) == [soon]
    started, until = store._one("SELECT started_at, claimed_until FROM executions WHERE id = ?", (soon,))
    assert started == (NOW + timedelta(milliseconds=15)).timestamp()  # not the claim's instant
    assert until == started + 90
    assert store.start_ready(NOW, 10, "eng_1", 30.0) == []  # `later` is not due, not even ahead
    assert store.start_ready(NOW + timedelta(milliseconds=10), 10, "eng_1", 30.0, ahead_seconds=0.02) == [later]


def test_the_per_job_cap_holds_concurrent_attempts_in_order(store):
    job, version = store.create_job("acme", spec(schedule=interval(60, overlap="allow", max_running=2)),
                                    60.0, NOW, None)
    ids = [store.enqueue(job, version.id, Trigger.MANUAL, NOW, NOW, concurrent=True) for _ in range(4)]
    assert store.start_ready(NOW, 10) == ids[:2]
    assert store.start_ready(NOW, 10) == []
    store.finish_attempt(AttemptResult(ids[0], ExecutionStatus.SUCCEEDED, NOW, 1), NOW)
    assert store.start_ready(NOW, 10) == [ids[2]]


def test_an_owner_at_its_cap_does_not_hold_back_other_owners(store):
    store.create_owner("capped", False, NOW, OwnerLimits(max_running=1))
    capped, capped_version = store.create_job("capped", spec(schedule=interval(60, overlap="allow")), 60.0, NOW, None)
    other, other_version = store.create_job("acme", spec(), 60.0, NOW, None)
    first = store.enqueue(capped, capped_version.id, Trigger.MANUAL, NOW, NOW, concurrent=True)
    assert store.start_ready(NOW, 1) == [first]
    for _ in range(3):
        store.enqueue(capped, capped_version.id, Trigger.MANUAL, NOW, NOW, concurrent=True)
    behind = store.enqueue(other, other_version.id, Trigger.MANUAL, NOW, NOW)
    # One free slot: the capped owner's attempts are first in line but may not start.
    assert store.start_ready(NOW, 1) == [behind]


def test_the_wakeup_ignores_due_attempts_that_cannot_start(store):
    job, version = store.create_job("acme", spec(), 60.0, NOW, None)
    store.enqueue(job, version.id, Trigger.MANUAL, NOW, NOW)
    store.start_ready(NOW, 10)
    store.enqueue(job, version.id, Trigger.MANUAL, NOW, NOW)  # waits for the running one
    assert store.next_wakeup(NOW) is None
    later = store.enqueue(job, version.id, Trigger.RETRY, NOW + timedelta(seconds=5), NOW)
    assert later and store.next_wakeup(NOW) == NOW + timedelta(seconds=5)


def test_success_commits_effects_and_failure_commits_none(store):
    job, version = store.create_job("acme", spec(retry=Retry(max_attempts=2)), 60.0, NOW, None)
    effects = ({"op": "send", "user_id": "u1", "parts": [{"type": "text", "text": "hi"}]},
               {"op": "update_metadata", "metadata": {"seen": True}})
    first = store.enqueue(job, version.id, Trigger.MANUAL, NOW, NOW)
    assert store.start_ready(NOW, 10) == [first]
    retry_id = store.finish_attempt(AttemptResult(
        first, ExecutionStatus.FAILED, NOW, 5, error=ExecutionError("ValueError", "no"), effects=effects,
        retry_at=NOW), NOW)
    assert store.list_messages("acme", "u1", None, 10) == []
    assert "seen" not in store.get_job("acme", job.id).metadata
    assert store.get_execution("acme", first).retried_by == retry_id

    assert store.start_ready(NOW, 10) == [retry_id]
    store.finish_attempt(AttemptResult(retry_id, ExecutionStatus.SUCCEEDED, NOW, 5,
                                       result_json=json.dumps({"ok": True}), effects=effects), NOW)
    [message] = store.list_messages("acme", "u1", None, 10)
    assert message.parts == ({"type": "text", "text": "hi"},)
    assert store.get_job("acme", job.id).metadata == {"message": "hi", "seen": True}
    assert store.get_job("acme", job.id).run_count == 2


def test_one_attempt_per_job_at_a_time_unless_concurrent(store):
    job, version = store.create_job("acme", spec(), 60.0, NOW, None)
    a = store.enqueue(job, version.id, Trigger.MANUAL, NOW, NOW)
    b = store.enqueue(job, version.id, Trigger.MANUAL, NOW, NOW)
    c = store.enqueue(job, version.id, Trigger.MANUAL, NOW, NOW, concurrent=True)
    assert store.start_ready(NOW, 10) == [a, c]
    assert store.get_execution(None, b).status is ExecutionStatus.QUEUED


def test_delete_archives_with_history_and_removes_without(store):
    kept, version = store.create_job("acme", spec("kept"), 60.0, NOW, None)
    store.enqueue(kept, version.id, Trigger.MANUAL, NOW, NOW)
    gone, _ = store.create_job("acme", spec("gone"), 60.0, NOW, None)
    assert store.delete_job(kept.id, NOW) is True
    assert store.delete_job(gone.id, NOW) is False
    assert store.get_job("acme", kept.id).status is JobStatus.ARCHIVED
    with pytest.raises(NotFound):
        store.get_job("acme", gone.id)
    store.create_job("acme", spec("kept"), 60.0, NOW, None)  # the name is free again


def test_cleanup_dry_run_changes_nothing(store):
    job, version = store.create_job("acme", spec(), 60.0, NOW, None)
    store.record_skipped(job, version.id, Trigger.MANUAL, NOW, "skipped: overlap")
    later = NOW + timedelta(days=10)
    assert store.cleanup_executions("acme", later, job_id=None, dry_run=True)[0] == 1
    assert len(store.list_executions("acme", job_id=None, statuses=[], since=None, limit=10)) == 1
    assert store.cleanup_executions("acme", later, job_id=None, dry_run=False)[0] == 1
    assert store.list_executions("acme", job_id=None, statuses=[], since=None, limit=10) == []


def test_tokens_are_stored_hashed(store):
    store.create_owner("acme", False, NOW)
    token_id, secret = store.create_token("acme", "svc", NOW)
    assert store.resolve_token(secret).owner == "acme"
    raw = store._all("SELECT secret_sha256 FROM tokens")
    assert all(secret not in row[0] for row in raw)
    store.revoke_token(token_id, NOW)
    assert store.resolve_token(secret) is None


def test_a_token_revoked_during_its_lookup_is_refused_from_the_next_call(store):
    """Resolved tokens are cached; a lookup that read the token before a revoke
    committed must not keep it."""
    store.create_owner("acme", False, NOW)
    token_id, secret = store.create_token("acme", "svc", NOW)
    lookup = store._one

    def revoke_right_after_the_read(sql, params=()):
        row = lookup(sql, params)
        if sql == q.SELECT_TOKEN_BY_SECRET:
            store.revoke_token(token_id, NOW)
        return row

    store._one = revoke_right_after_the_read
    assert store.resolve_token(secret).owner == "acme"  # read before the revoke
    store._one = lookup
    assert store.resolve_token(secret) is None


def test_a_replaced_admin_token_stops_working_at_once(store):
    store.ensure_admin_token("cap_admin_old", NOW)
    assert store.resolve_token("cap_admin_old").admin
    store.ensure_admin_token("cap_admin_new", NOW)
    assert store.resolve_token("cap_admin_old") is None
    assert store.resolve_token("cap_admin_new").admin


def test_versions_are_found_only_under_their_own_job(store):
    job, version = store.create_job("acme", spec(), 60.0, NOW, None)
    other, _ = store.create_job("acme", spec("other"), 60.0, NOW, None)
    for _ in range(2):  # read from the store, then from memory
        assert store.get_version(job.id, version_id=version.id) == version
        with pytest.raises(NotFound):
            store.get_version(other.id, version_id=version.id)


def test_an_attempt_context_has_the_execution_its_job_and_the_owners_limits(store):
    store.create_owner("acme", False, NOW, OwnerLimits(max_messages_per_attempt=3))
    for owner, messages in (("acme", 3), ("admin", DEFAULT_OWNER_LIMITS.max_messages_per_attempt)):
        job, version = store.create_job(owner, spec(), 60.0, NOW, None)
        execution_id = store.enqueue(job, version.id, Trigger.MANUAL, NOW, NOW)
        assert store.start_ready(NOW, 10) == [execution_id]
        ctx = store.attempt_context(execution_id)
        assert ctx.execution == store.get_execution(None, execution_id)
        assert ctx.job == store.get_job(None, job.id) and ctx.job.active_version_number == 1
        assert (ctx.version, ctx.owner) == (version, owner)
        assert ctx.artifact.source == SOURCE
        assert ctx.owner_limits.max_messages_per_attempt == messages
        store.finish_attempt(AttemptResult(execution_id, ExecutionStatus.SUCCEEDED, NOW, 1), NOW)
    with pytest.raises(NotFound):
        store.attempt_context("exe_nope")


def test_the_job_status_after_an_attempt(store):
    job, version = store.create_job("acme", spec(schedule=interval(60, overlap="allow")), 60.0, NOW, None)
    a, b = (store.enqueue(job, version.id, Trigger.MANUAL, NOW, NOW, concurrent=True) for _ in range(2))
    assert store.start_ready(NOW, 10) == [a, b]
    assert store.get_job(None, job.id).status is JobStatus.RUNNING
    store.finish_attempt(AttemptResult(a, ExecutionStatus.SUCCEEDED, NOW, 1, job_status=JobStatus.ACTIVE), NOW)
    assert store.get_job(None, job.id).status is JobStatus.RUNNING  # b still runs
    store.finish_attempt(AttemptResult(b, ExecutionStatus.FAILED, NOW, 1, job_status=JobStatus.ACTIVE), NOW)
    done = store.get_job(None, job.id)
    assert (done.status, done.run_count, done.last_status) == (JobStatus.ACTIVE, 2, ExecutionStatus.FAILED)
    assert store.finish_attempt(AttemptResult(b, ExecutionStatus.SUCCEEDED, NOW, 1), NOW) is None  # finished
    assert store.get_job(None, job.id).run_count == 2

    once, version = store.create_job("acme", spec("once"), 60.0, NOW, NOW + timedelta(hours=1))
    c = store.enqueue(once, version.id, Trigger.MANUAL, NOW, NOW)
    assert store.start_ready(NOW, 10) == [c]
    store.finish_attempt(AttemptResult(c, ExecutionStatus.SUCCEEDED, NOW, 1, job_status=JobStatus.COMPLETED), NOW)
    assert (store.get_job(None, once.id).status, store.get_job(None, once.id).next_run) == (JobStatus.COMPLETED, None)

    gone, version = store.create_job("acme", spec("gone"), 60.0, NOW, None)
    d = store.enqueue(gone, version.id, Trigger.MANUAL, NOW, NOW)
    assert store.start_ready(NOW, 10) == [d]
    assert store.delete_job(gone.id, NOW)  # during its attempt
    store.finish_attempt(AttemptResult(d, ExecutionStatus.SUCCEEDED, NOW, 1, job_status=JobStatus.ACTIVE), NOW)
    assert store.get_job(None, gone.id).status is JobStatus.ARCHIVED


def test_busy_counts_queued_and_running_attempts(store):
    job, version = store.create_job("acme", spec(), 60.0, NOW, None)
    assert store.job_busy(job.id) == (0, 0)
    a = store.enqueue(job, version.id, Trigger.MANUAL, NOW, NOW)
    store.enqueue(job, version.id, Trigger.MANUAL, NOW, NOW)
    assert store.job_busy(job.id) == (2, 2) and store.queued_count("acme") == 2
    assert store.start_ready(NOW, 10) == [a]
    assert store.job_busy(job.id) == (2, 1) and store.queued_count("acme") == 1
    store.finish_attempt(AttemptResult(a, ExecutionStatus.SUCCEEDED, NOW, 1), NOW)
    assert store.job_busy(job.id) == (1, 1) and store.queued_count("globex") == 0


def _plan(store, sql, params) -> str:
    return " | ".join(row[3] for row in store._all("EXPLAIN QUERY PLAN " + sql, params))


def test_counting_waiting_attempts_reads_no_history(store):
    """Checked at every trigger and fire: they must not read the job's or the owner's
    finished executions, only the partial indexes of queued and running ones."""
    busy = _plan(store, q.JOB_BUSY, dict(job_id="j"))
    assert "COVERING INDEX executions_job_queued" in busy and "COVERING INDEX executions_running" in busy
    assert "executions_job " not in busy
    assert "COVERING INDEX executions_owner_queued" in _plan(store, q.COUNT_OWNER_QUEUED, ("acme",))


def test_kind_is_kept(store):
    job, _ = store.create_job("acme", spec(kind=JobKind.PREDEFINED), 300.0, NOW, None)
    assert store.predefined_jobs("acme") == {"reminder": job.id}
