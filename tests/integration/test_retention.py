"""Retention against a real engine and a real SQLite file: keep-last-N right after an
attempt, the age limit on the hourly sweep, per-job settings as versioned config."""

from __future__ import annotations

import pytest

from client import InvalidArgument, Job, Jobs, Retention
from support import wait_for

SOURCE = "def execute(job):\n    print('run', job.execution_id)\n    return 1\n"


@pytest.fixture
def cjobs(clocked_engine):
    with Jobs.connect(clocked_engine.address, token=clocked_engine.admin_token) as client:
        yield client


def test_a_job_keeps_only_its_last_n_finished_executions(jobs):
    job = jobs.create(name="chatty", execute=SOURCE, retention=Retention(keep_last=2))
    runs = [job.trigger(wait=True, timeout=30) for _ in range(4)]
    assert all(r.succeeded for r in runs)
    assert wait_for(lambda: [e.id for e in job.history(limit=10)] == [runs[3].id, runs[2].id])
    assert job.refresh().retention == Retention(keep_last=2, max_age_days=30.0)


def test_the_defaults_are_filled_in_and_shown(jobs):
    job = jobs.create(name="plain", execute=SOURCE)
    assert job.retention == Retention(keep_last=1000, max_age_days=30.0)
    [version] = job.versions()
    assert version.retention == Retention()  # as sent: the engine's defaults apply


def test_the_sweep_removes_executions_past_their_age(clocked_engine, cjobs, clock):
    short = cjobs.create(name="short-lived", execute=SOURCE, retention=Retention(max_age_days=1))
    kept = cjobs.create(name="long-lived", execute=SOURCE)
    for job in (short, kept):
        assert job.trigger(wait=True, timeout=30).succeeded
    clock.advance(2 * 86400)
    removed, size = clocked_engine.retention.sweep()
    assert removed == 1 and size > 0
    assert short.history() == [] and len(kept.history()) == 1


def test_retention_is_versioned_config_and_deploy_stays_idempotent(jobs):
    definition = Job(name="kept", execute=SOURCE, retention=Retention(keep_last=5, max_age_days=7))
    assert [r.action for r in jobs.deploy([definition])] == ["created"]
    assert [r.action for r in jobs.deploy([definition])] == ["unchanged"]
    changed = Job(name="kept", execute=SOURCE, retention=Retention(keep_last=6, max_age_days=7))
    [result] = jobs.deploy([changed])
    assert result.action == "new_version" and result.job.retention.keep_last == 6
    job = jobs.get_job("kept").update(retention=Retention(keep_last=9))
    assert (job.version, job.retention) == (3, Retention(keep_last=9, max_age_days=30.0))


@pytest.mark.parametrize("retention, field", [
    pytest.param(Retention(keep_last=-1), "keep_last", id="negative-keep-last"),
    pytest.param(Retention(max_age_days=-2.0), "max_age_days", id="negative-age"),
    pytest.param(Retention(keep_last=2_000_000), "keep_last", id="keep-last-too-large"),
])
def test_bad_retention_is_refused_naming_the_field(jobs, retention, field):
    with pytest.raises(InvalidArgument, match=f"retention.{field}"):
        jobs.create(name="bad-retention", execute=SOURCE, retention=retention)
