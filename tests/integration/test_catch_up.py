"""Late fires against a real engine on a manual clock: restarts, pauses, caps."""

from __future__ import annotations

from datetime import timedelta

import pytest

from client import Jobs, interval
from engine.server import EngineServer
from support import wait_for

QUICK = "def execute(job):\n    return job.attempt\n"
BUSY = "def execute(job):\n    while True:\n        pass\n"


def start_engine(tmp_path, clock):
    return EngineServer(home=tmp_path / "home", listen="127.0.0.1:0", clock=clock).start()




def settled(handle, count):
    """The job's history, oldest first, once it has `count` rows and none is pending."""
    def check():
        rows = list(reversed(handle.history(limit=100)))
        return rows if len(rows) == count and all(r.status not in ("queued", "running") for r in rows) else None
    return wait_for(check)


def offsets(rows, start):
    return [((r.scheduled_for - start).total_seconds(), r.status, r.reason) for r in rows]


@pytest.mark.parametrize("misfire, expected", [
    pytest.param("coalesce", [(60, "missed", "coalesced"), (120, "missed", "coalesced"),
                              (180, "succeeded", None)], id="coalesce"),
    pytest.param("all", [(60, "succeeded", None), (120, "succeeded", None), (180, "succeeded", None)], id="all"),
    pytest.param("skip", [(60, "missed", "missed: misfire skip"), (120, "missed", "missed: misfire skip"),
                          (180, "missed", "missed: misfire skip")], id="skip"),
])
def test_fires_missed_while_the_engine_was_down_follow_the_misfire_policy(tmp_path, clock, misfire, expected):
    start = clock.now()
    server = start_engine(tmp_path, clock=clock)
    with Jobs.connect(server.address, token=server.admin_token) as jobs:
        job_id = jobs.create(name="tick", execute=QUICK, schedule=interval(60, misfire=misfire)).id
    server.stop(grace=1)
    clock.advance(200)  # down for three fires
    server = start_engine(tmp_path, clock=clock)
    try:
        with Jobs.connect(server.address, token=server.admin_token) as jobs:
            j = jobs.get_job(job_id)
            assert offsets(settled(j, 3), start) == expected
            assert j.refresh().next_run == start + timedelta(seconds=240)  # still on the grid
    finally:
        server.stop(grace=1)


def test_a_resumed_job_goes_on_from_its_grid_and_records_the_pause(clocked_engine, clock):
    start = clock.now()
    with Jobs.connect(clocked_engine.address, token=clocked_engine.admin_token) as jobs:
        j = jobs.create(name="pausable", execute=QUICK, schedule=interval(60))
        j.deactivate()
        clock.advance(150)
        assert j.history() == []
        j.activate()
        assert offsets(settled(j, 2), start) == [(60, "skipped", "paused"), (120, "succeeded", None)]
        assert j.refresh().next_run == start + timedelta(seconds=180)


def test_a_job_that_deactivates_itself_keeps_its_grid(clocked_engine, clock):
    start = clock.now()
    with Jobs.connect(clocked_engine.address, token=clocked_engine.admin_token) as jobs:
        j = jobs.create(name="self-pause", execute="def execute(job):\n    job.deactivate()\n",
                        schedule=interval(60, misfire="skip"))
        clock.advance(60)
        settled(j, 1)
        assert j.refresh().active is False
        clock.advance(130)  # two fires pass while it is paused
        j.activate()
        rows = settled(j, 3)
        assert offsets(rows, start)[1:] == [(120, "skipped", "paused"), (180, "skipped", "paused")]
        assert j.refresh().next_run == start + timedelta(seconds=240)


def test_the_per_job_cap_queues_attempts_in_order(clocked_engine, clock):
    with Jobs.connect(clocked_engine.address, token=clocked_engine.admin_token) as jobs:
        j = jobs.create(name="capped", execute=BUSY, timeout=2,
                        schedule=interval(3600, overlap="allow", max_running=1))
        first, second = j.trigger(), j.trigger()
        wait_for(lambda: first.refresh().status == "running")
        assert second.refresh().status == "queued"  # held by the cap, not skipped
        assert first.wait(timeout=20).status == "timed_out"
        assert second.wait(timeout=20).status == "timed_out"
        assert second.refresh().started_at >= first.refresh().finished_at


def test_an_attempt_of_a_dead_engine_is_crashed_and_retried_after_its_backoff(tmp_path, clock):
    from client import Retry
    from engine.model import Trigger
    from engine.store import Store

    server = start_engine(tmp_path, clock=clock)
    with Jobs.connect(server.address, token=server.admin_token) as jobs:
        job_id = jobs.create(name="survivor", execute=QUICK, retry=Retry(max_attempts=2, backoff_seconds=30)).id
    server.stop(grace=1)
    store = Store(tmp_path / "home" / "capsule.db")  # what a killed engine leaves: a claimed attempt
    job = store.get_job(None, job_id)
    lost = store.enqueue(job, job.active_version_id, Trigger.MANUAL, clock.now(), clock.now())
    assert store.start_ready(clock.now(), 1, "eng_dead") == [lost]
    store.close()
    server = start_engine(tmp_path, clock=clock)
    try:
        with Jobs.connect(server.address, token=server.admin_token) as jobs:
            [retry, crashed] = wait_for(lambda: (h := jobs.get_job(job_id).history()) and len(h) == 2 and h)
            assert (crashed.status, crashed.error.type, crashed.retried_by) == ("crashed", "EngineStopped", retry.id)
            assert retry.status == "queued" and retry.scheduled_for == clock.now() + timedelta(seconds=30)
            clock.advance(30)
            assert retry.wait(timeout=20).status == "succeeded"
    finally:
        server.stop(grace=1)
