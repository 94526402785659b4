"""The whole mission through the public client: a real engine on loopback, a real
SQLite file, a real child process per attempt."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import pytest

from client import Job, Retry, cron, interval, once
from client.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound, SelfContainmentError
from support import wait_for

UTC = timezone.utc


def remind(job):
    job.user().send([{"type": "text", "text": job.metadata["message"]}])
    return {"success": True}


def test_a_reminder_runs_in_a_child_and_its_user_gets_the_message(jobs):
    j = jobs.create(name="user-reminder", execute=remind, user_id="user_42",
                    metadata={"message": "Team meeting in 10 minutes"})
    ex = j.trigger(wait=True)
    assert ex.status == "succeeded", ex.error
    assert ex.result == {"success": True}
    assert ex.attempt == 1 and ex.duration_ms is not None
    [message] = list(jobs.messages(user_id="user_42"))
    assert message.parts == ({"type": "text", "text": "Team meeting in 10 minutes"},)
    assert message.job_id == j.id and message.execution_id == ex.id


def test_a_once_job_fires_by_itself_and_completes(jobs):
    j = jobs.create(name="soon", execute=remind, user_id="user_7", metadata={"message": "now"},
                    schedule=once(at=datetime.now(UTC) + timedelta(seconds=1)))
    assert len(j.next_fire_times) == 1
    stream = jobs.messages(user_id="user_7", follow=True)
    first = next(iter(stream))
    assert first.parts[0]["text"] == "now"
    [ex] = j.history()
    assert ex.wait(timeout=10).status == "succeeded"
    assert ex.trigger == "schedule"
    assert j.refresh().status == "completed"


def test_a_fire_claimed_ahead_never_starts_before_it_is_due(jobs):
    due = datetime.now(UTC) + timedelta(seconds=1)
    j = jobs.create(name="punctual", execute="import time\ndef execute(job):\n    return time.time()\n",
                    schedule=once(at=due))
    deadline = time.monotonic() + 30
    while not (history := j.history()) and time.monotonic() < deadline:
        time.sleep(0.05)
    [ex] = history
    ex = ex.wait(timeout=10)
    assert ex.status == "succeeded", ex.error
    # The attempt was claimed and its child forked before `due`; the function waited for it.
    assert ex.result >= due.timestamp()
    assert ex.started_at >= due


def test_create_answers_with_the_next_five_fire_times(jobs):
    j = jobs.create(name="hourly", execute="def execute(job):\n    return 1\n",
                    schedule=interval(3600))
    times = j.next_fire_times
    assert len(times) == 5
    assert all(b - a == timedelta(hours=1) for a, b in zip(times, times[1:]))


def test_prints_become_logs_and_exceptions_fail_with_the_users_traceback(jobs):
    source = "def execute(job):\n    print('working on', job.name)\n    raise ValueError('bad input')\n"
    ex = jobs.create(name="broken", execute=source).trigger(wait=True)
    assert ex.status == "failed"
    assert ex.error.type == "ValueError" and ex.error.message == "bad input"
    assert any("line 3" in line for line in ex.error.traceback)
    assert "working on broken" in ex.logs


def test_a_failing_job_is_retried_and_a_failed_attempt_sends_nothing(jobs):
    source = (
        "def execute(job):\n"
        "    User.get('user_9').send('this must never arrive')\n"
        "    raise RuntimeError('flaky')\n"
    )
    j = jobs.create(name="flaky", execute=source, retry=Retry(max_attempts=3, backoff_seconds=0))
    last = j.trigger(wait=True, timeout=60)
    assert last.status == "failed" and last.attempt == 3
    history = j.history()
    assert sorted(e.attempt for e in history) == [1, 2, 3]
    assert {e.trigger for e in history} == {"manual", "retry"}
    assert list(jobs.messages(user_id="user_9")) == []


def test_a_retry_starts_when_its_backoff_ends(jobs):
    j = jobs.create(name="later", execute="def execute(job):\n    raise RuntimeError('not yet')\n",
                    retry=Retry(max_attempts=2, backoff_seconds=1))
    last = j.trigger(wait=True, timeout=30)
    assert (last.status, last.attempt) == ("failed", 2)
    first = jobs.execution(last.retry_of)
    # Not woken for it, the loop would sleep on with nothing else due: the retry would never start.
    assert timedelta(seconds=1) <= last.started_at - first.finished_at < timedelta(seconds=10)


def test_a_runaway_job_is_timed_out(jobs):
    ex = jobs.create(name="runaway", execute="def execute(job):\n    while True:\n        pass\n",
                     timeout=1).trigger(wait=True)
    assert ex.status == "timed_out", ex.error
    assert ex.duration_ms < 10_000


def test_metadata_updates_commit_with_success(jobs):
    source = "def execute(job):\n    job.update_metadata({'count': job.metadata.get('count', 0) + 1})\n    return job.metadata['count']\n"
    j = jobs.create(name="counter", execute=source, metadata={"count": 1})
    assert j.trigger(wait=True).result == 2
    assert j.trigger(wait=True).result == 3
    assert j.refresh().metadata == {"count": 3}
    j.update_metadata({"note": "hi"})
    assert j.refresh().metadata == {"count": 3, "note": "hi"}


def running(job):
    """A run of ``job``, once it has started (its source sleeps, to leave a moment)."""
    run = job.trigger()
    wait_for(lambda: run.refresh().status == "running", timeout=30)
    return run


def test_metadata_updates_are_capped_in_total_not_only_each(jobs):
    # Each update is small; their sum would be megabytes, past what the API accepts and
    # what a reply can carry (GetJob, ListJobs).
    source = (
        "def execute(job):\n"
        "    done = 0\n"
        "    try:\n"
        "        for n in range(90):\n"
        "            job.update_metadata({f'k{n}': 'x' * 60000})\n"
        "            done += 1\n"
        "    except PermissionError as error:\n"
        "        return [done, str(error)]\n"
    )
    j = jobs.create(name="hoarder", execute=source, metadata={"keep": 1})
    ex = j.trigger(wait=True)
    assert ex.status == "succeeded", ex.error
    done, message = ex.result
    assert done == 1 and "over the cap of 65536" in message
    stored = j.refresh().metadata
    assert stored["keep"] == 1 and set(stored) == {"keep", "k0"}
    assert "hoarder" in [item.name for item in jobs.get_all(include_dynamic=True)]  # the listing fits a reply


def test_what_an_attempt_does_after_its_job_is_deleted_is_dropped(jobs):
    source = (
        "import time\n"
        "def execute(job):\n"
        "    time.sleep(1.5)\n"
        "    job.update_metadata({'after': 'delete'})\n"
        "    User.get('deleted-job-user').send('sent by a deleted job')\n"
        "    return 'done'\n"
    )
    j = jobs.create(name="deleted-meanwhile", execute=source, metadata={"before": 1})
    run = running(j)
    j.delete()
    assert run.wait(timeout=30).status == "succeeded"
    assert list(jobs.messages(user_id="deleted-job-user")) == []
    assert jobs.get_job(j.id).metadata == {"before": 1}


def test_an_attempts_metadata_updates_commit_all_or_none(jobs):
    # Each fitted as the attempt ran; metadata set through the API meanwhile leaves no
    # room for their sum: none is stored, rather than a state the job never produced.
    source = (
        "import time\n"
        "def execute(job):\n"
        "    time.sleep(1.5)\n"
        "    job.update_metadata({'counter': 'A' * 20000, 'step': 1})\n"
        "    job.update_metadata({'step': 2, 'done': True})\n"
        "    return 'both accepted'\n"
    )
    j = jobs.create(name="racing-updates", execute=source, metadata={"seed": 1})
    run = running(j)
    j.update_metadata({"api": "B" * 50000})
    assert run.wait(timeout=30).result == "both accepted"
    assert set(jobs.get_job(j.id).metadata) == {"seed", "api"}


def test_a_job_deleted_while_its_attempt_runs_is_not_retried(jobs):
    source = "import time\ndef execute(job):\n    time.sleep(1.5)\n    raise RuntimeError('fails')\n"
    j = jobs.create(name="deleted-before-retry", execute=source, retry=Retry(max_attempts=3, backoff_seconds=0))
    run = running(j)
    j.delete()
    last = run.wait(timeout=30)
    assert (last.status, last.attempt) == ("failed", 1)
    assert [ex.attempt for ex in j.history()] == [1]


def test_a_job_can_deactivate_and_delete_itself(jobs):
    off = jobs.create(name="self-off", execute="def execute(job):\n    job.deactivate()\n",
                      schedule=interval(3600))
    off.trigger(wait=True)
    assert off.refresh().active is False
    gone = jobs.create(name="self-delete", execute="def execute(job):\n    job.delete()\n")
    gone.trigger(wait=True)
    assert gone.refresh().status == "archived"


def test_predefined_jobs_are_told_to_use_user_get(jobs):
    [result] = jobs.deploy([Job(name="report", execute=remind, metadata={"message": "x"})])
    ex = result.job.trigger(wait=True)
    assert ex.status == "failed"
    assert "User.get" in ex.error.message


def test_deploy_is_idempotent_and_versions_changes(jobs):
    def report(job):
        return {"team": job.metadata["team"]}

    spec = Job(name="daily-report", execute=report, schedule=cron("0 9 * * *", timezone="America/New_York"),
               metadata={"team": "core"})
    assert [r.action for r in jobs.deploy([spec])] == ["created"]
    assert [r.action for r in jobs.deploy([spec])] == ["unchanged"]
    changed = Job(name="daily-report", execute=report, schedule=cron("0 10 * * *", timezone="America/New_York"),
                  metadata={"team": "core"})
    [result] = jobs.deploy([changed])
    assert result.action == "new_version"
    handle = jobs.get_job("daily-report")
    assert [v.number for v in handle.versions()] == [2, 1]
    assert handle.schedule_human == "every day at 10:00 America/New_York"
    assert handle.kind == "predefined"
    assert [j.name for j in jobs.get_all()] == ["daily-report"]


def test_trigger_an_older_version_and_roll_back(jobs):
    j = jobs.create(name="versioned", execute="def execute(job):\n    return 'v1'\n")
    j.update(execute="def execute(job):\n    return 'v2'\n")
    assert j.version == 2
    assert j.trigger(wait=True).result == "v2"
    assert j.trigger(version=1, wait=True).result == "v1"
    j.rollback(1)
    assert j.refresh().version == 1 and j.trigger(wait=True).result == "v1"


def test_deactivated_jobs_still_run_by_hand_and_activate_again(jobs):
    j = jobs.create(name="pausable", execute="def execute(job):\n    return 1\n", schedule=interval(3600))
    j.deactivate()
    assert j.active is False and j.next_run is None
    assert j.trigger(wait=True).status == "succeeded"
    j.activate()
    assert j.active is True and j.next_run is not None


def test_delete_archives_a_job_with_history_and_removes_one_without(jobs):
    used = jobs.create(name="used", execute="def execute(job):\n    return 1\n")
    used.trigger(wait=True)
    assert used.delete() is True
    unused = jobs.create(name="unused", execute="def execute(job):\n    return 1\n")
    assert unused.delete() is False
    with pytest.raises(NotFound):
        jobs.get_job(unused.id)
    with pytest.raises(FailedPrecondition):
        used.trigger()


def test_closures_are_refused_before_anything_is_sent(jobs):
    secret = "s3cr3t"

    def leaky(job):
        return secret

    with pytest.raises(SelfContainmentError, match="secret.*metadata"):
        jobs.create(name="leaky", execute=leaky)
    assert jobs.get_all(include_dynamic=True) == []


@pytest.mark.parametrize("source, match", [
    pytest.param("def execute(job):\n    import os\n    return os.getcwd()\n", "line 2.*os", id="forbidden-import"),
    pytest.param("def execute(job):\n    return job.__class__\n", "line 2", id="dunder-attribute"),
    pytest.param("def execute(job)\n    return 1\n", "line 1", id="syntax-error"),
    pytest.param("def run(job):\n    return 1\ndef other(job):\n    return 2\n", "execute", id="no-entrypoint"),
])
def test_restricted_code_is_refused_at_creation_with_the_line(jobs, source, match):
    with pytest.raises(InvalidArgument, match=match):
        jobs.create(name="bad-code", execute=source)


@pytest.mark.parametrize("schedule, match", [
    pytest.param(lambda: cron("61 * * * *"), "5 fields", id="bad-cron"),
    pytest.param(lambda: cron("* * *"), "5 fields", id="three-fields"),
    pytest.param(lambda: once(at=datetime(2026, 1, 1, 9, 0)), "naive", id="naive-once"),
    pytest.param(lambda: cron("0 9 * * *", timezone="Nowhere/City"), "IANA", id="bad-zone"),
])
def test_bad_schedules_are_refused_with_reasons(jobs, schedule, match):
    with pytest.raises(Exception, match=match):
        jobs.create(name="bad-schedule", execute=remind, schedule=schedule())


def test_names_are_unique_and_validated(jobs):
    jobs.create(name="taken", execute=remind)
    with pytest.raises(AlreadyExists, match="taken"):
        jobs.create(name="taken", execute=remind)
    with pytest.raises(InvalidArgument, match="name"):
        jobs.create(name="Not Valid!", execute=remind)


def test_get_job_by_id_or_name_and_list(jobs):
    j = jobs.create(name="findable", execute=remind, user_id="u1")
    assert jobs.get_job("findable").id == j.id
    assert jobs.get_job(j.id).name == "findable"
    assert [x.name for x in jobs.get_all(include_dynamic=True)] == ["findable"]
    assert jobs.get_all() == []  # dynamic jobs are listed only when asked


def test_a_trusted_job_runs_full_python_in_the_child(jobs):
    def trusted(job):
        import os
        return {"cwd_is_scratch": os.getcwd() != "/", "pid": os.getpid() > 0}

    j = jobs.create(name="trusted", execute=trusted, isolation="trusted")
    ex = j.trigger(wait=True)
    assert ex.status == "succeeded", ex.error
    assert ex.result == {"cwd_is_scratch": True, "pid": True}


def test_runs_queued_while_every_worker_is_busy_start_as_each_one_finishes(tmp_path):
    from client import Jobs
    from engine.server import EngineServer

    server = EngineServer(home=tmp_path / "home", listen="127.0.0.1:0", workers=1).start()
    try:
        with Jobs.connect(server.address, token=server.admin_token) as jobs:
            job = jobs.create(name="count", execute="def execute(job):\n    return sum(range(300_000))\n")
            runs = [job.trigger(force=True) for _ in range(4)]  # the first takes the only worker
            done = [run.wait(timeout=60) for run in runs]
        assert [r.status for r in done] == ["succeeded"] * 4
        ordered = sorted(done, key=lambda r: r.started_at)
        for earlier, later in zip(ordered, ordered[1:]):
            assert earlier.finished_at <= later.started_at < earlier.finished_at + timedelta(seconds=2)
    finally:
        server.stop(grace=1)


def test_a_triggers_reply_is_the_row_it_wrote(jobs):
    from dataclasses import replace

    job = jobs.create(name="spin", execute="def execute(job):\n    while True:\n        pass\n", timeout=3)
    running = job.trigger()
    assert (running.status, running.started_at, running.finished_at) == ("queued", None, None)
    wait_for(lambda: running.refresh().status == "running")
    skipped = job.trigger()  # overlap "skip": recorded, never run
    assert (skipped.status, skipped.reason) == ("skipped", "skipped: overlap")
    assert skipped._record == jobs.execution(skipped.id)._record
    queued = job.trigger(force=True)
    stored = jobs.execution(queued.id)._record
    assert queued.status == "queued" and queued._record == replace(stored, status=queued._record.status,
                                                                   started_at=None)
    assert (queued.job_name, queued._record.version_number, queued.attempt) == ("spin", 1, 1)
