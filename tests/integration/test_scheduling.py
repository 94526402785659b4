"""Scheduling driven by a manual clock: time moves only when the test says so."""

from __future__ import annotations

from datetime import timedelta

import pytest

from client import Jobs, interval, once
from support import wait_for

BUSY = "def execute(job):\n    while True:\n        pass\n"
QUICK = "def execute(job):\n    return job.attempt\n"


@pytest.fixture
def cjobs(clocked_engine):
    with Jobs.connect(clocked_engine.address, token=clocked_engine.admin_token) as client:
        yield client




def test_interval_fires_on_its_grid_as_the_clock_moves(cjobs, clock):
    start = clock.now()
    j = cjobs.create(name="tick", execute=QUICK, schedule=interval(60))
    assert j.next_run == start + timedelta(seconds=60)
    assert cjobs.history(j.id) == []  # nothing is due yet
    clock.advance(60)
    [ex] = wait_for(lambda: j.history())
    assert ex.scheduled_for == start + timedelta(seconds=60)
    assert ex.wait(timeout=20).status == "succeeded"
    # The loop slept through 5.5 periods: one run for the latest fire, a "coalesced"
    # row for each earlier one, then back on the grid.
    clock.advance(330)
    history = wait_for(lambda: (h := j.history()) and len(h) == 6 and h)
    assert [(e.scheduled_for - start).total_seconds() for e in reversed(history)] == [60, 120, 180, 240, 300, 360]
    assert [e.reason for e in reversed(history)][1:-1] == ["coalesced"] * 4
    assert history[0].status in ("queued", "running", "succeeded")
    assert j.refresh().next_run == start + timedelta(seconds=420)


def test_a_fire_during_a_run_is_recorded_as_skipped_overlap(cjobs, clock):
    j = cjobs.create(name="slow", execute=BUSY, schedule=interval(10), timeout=3)
    clock.advance(10)
    wait_for(lambda: [e for e in j.history() if e.status == "running"])
    clock.advance(10)
    skipped = wait_for(lambda: [e for e in j.history() if e.status == "skipped"])
    assert skipped[0].reason == "skipped: overlap"


def test_a_fire_missed_beyond_the_catchup_window_is_recorded_and_not_run(cjobs, clock):
    j = cjobs.create(name="late", execute=QUICK,
                     schedule=once(at=clock.now() + timedelta(seconds=10), catchup_window_seconds=60))
    clock.advance(3600)
    [ex] = wait_for(lambda: j.history())
    assert ex.status == "missed" and ex.reason == "missed: catchup_window"
    assert j.refresh().status == "completed"


def test_retries_wait_their_backoff_on_the_clock(cjobs, clock):
    from client import Retry
    j = cjobs.create(name="retry-later", execute="def execute(job):\n    raise ValueError('no')\n",
                     retry=Retry(max_attempts=2, backoff_seconds=300))
    first = j.trigger()
    retry = wait_for(lambda: [e for e in j.history() if e.attempt == 2])[0]
    assert first.refresh().status == "failed" and first.retried_by == retry.id
    assert retry.status == "queued"
    assert retry.scheduled_for == clock.now() + timedelta(seconds=300)
    clock.advance(300)
    assert retry.wait(timeout=20).status == "failed"


def test_a_paused_job_does_not_fire(cjobs, clock):
    j = cjobs.create(name="paused", execute=QUICK, schedule=interval(60))
    witness = cjobs.create(name="witness", execute=QUICK, schedule=interval(60))
    j.deactivate()
    clock.advance(600)
    # The witness fires in the same scheduler pass that would have fired the paused job.
    wait_for(lambda: witness.history())
    assert j.history() == []


def test_a_burst_starts_running_before_all_its_fires_are_recorded(clocked_engine, cjobs, clock):
    from engine.scheduler import FIRE_BATCH

    store = clocked_engine.store
    events: list[str] = []
    record_fires, start_ready = store.record_fires, store.start_ready

    def recording(fires, now):
        queued = record_fires(fires, now)
        events.append("record")
        return queued

    def starting(*args, **kwargs):
        started = start_ready(*args, **kwargs)
        if started:
            events.append("start")
        return started

    store.record_fires, store.start_ready = recording, starting
    due = clock.now() + timedelta(seconds=10)
    burst = [cjobs.create(name=f"burst-{i}", execute=QUICK, schedule=once(at=due)) for i in range(2 * FIRE_BATCH + 1)]
    clock.advance(10)
    wait_for(lambda: all(any(e.status == "succeeded" for e in j.history()) for j in burst), timeout=60)
    assert events.count("record") == 3
    # The fires were recorded a batch per transaction, and workers were busy before the
    # last batch was: the first attempts of a burst do not wait for the whole burst.
    assert events.index("start") < len(events) - 1 - events[::-1].index("record")


def test_a_trigger_racing_a_fire_cannot_slip_past_the_overlap_policy(clocked_engine, cjobs, clock):
    # The trigger arrives while the scheduler is deciding the fire (the job is idle at that
    # moment). Whichever commits second must see the other: one runs, one is skipped.
    import threading

    store = clocked_engine.store
    j = cjobs.create(name="racing", execute=QUICK, schedule=interval(60))
    job_busy = store.job_busy
    racing: list[threading.Thread] = []

    def busy_then_trigger(job_id):
        answer = job_busy(job_id)
        if threading.current_thread().name == "capsule-scheduler" and not racing:
            racing.append(threading.Thread(target=j.trigger))
            racing[0].start()
            racing[0].join(timeout=1)  # done at once unless the decision holds the write lock
        return answer

    store.job_busy = busy_then_trigger
    clock.advance(60)
    wait_for(lambda: racing and not racing[0].is_alive())
    history = wait_for(lambda: (h := j.history()) and len(h) == 2 and all(e.finished_at for e in h) and h)
    assert sorted(e.status for e in history) == ["skipped", "succeeded"]
    assert [e.reason for e in history if e.status == "skipped"] == ["skipped: overlap"]
