"""Worker slots: a finishing attempt claims the next ready one in its own transaction."""

from __future__ import annotations

import pytest

from client import Jobs
from conftest import start_engine

# Long enough that every trigger is queued before the first attempt finishes.
SLOW = "import time\n\ndef execute(job):\n    time.sleep(0.3)\n    return job.attempt\n"


@pytest.fixture
def one_worker(tmp_path):
    server = start_engine(tmp_path, workers=1)
    yield server
    server.stop(grace=1)


def test_one_worker_runs_queued_attempts_in_order_one_at_a_time(one_worker):
    with Jobs.connect(one_worker.address, token=one_worker.admin_token) as jobs:
        job = jobs.create(name="chain", execute=SLOW)
        runs = [job.trigger(force=True) for _ in range(4)]
        done = [run.wait(timeout=30) for run in runs]
    assert [run.status for run in done] == ["succeeded"] * 4
    ordered = sorted(done, key=lambda run: run.started_at)
    assert [run.id for run in ordered] == [run.id for run in runs]  # due order
    for earlier, later in zip(ordered, ordered[1:]):
        assert later.started_at >= earlier.finished_at  # never two at once with one slot


def test_a_claim_that_fails_leaves_the_finish_committed_and_the_next_attempt_runs(one_worker, monkeypatch):
    store = one_worker.store
    real_start_ready = store.start_ready
    failed = []

    def start_ready(*args, **kwargs):
        # Fault injection: the first claim made inside a finish's transaction fails
        # after its writes. They must be undone, or the claimed attempt would be left
        # "running" with no worker to run it.
        started = real_start_ready(*args, **kwargs)
        if store._local.depth and started and not failed:
            failed.append(True)
            raise RuntimeError("injected claim failure")
        return started

    monkeypatch.setattr(store, "start_ready", start_ready)
    with Jobs.connect(one_worker.address, token=one_worker.admin_token) as jobs:
        job = jobs.create(name="claim", execute=SLOW)
        first, second = job.trigger(force=True), job.trigger(force=True)
        assert first.wait(timeout=30).status == "succeeded"
        assert second.wait(timeout=30).status == "succeeded"
    assert failed  # the fault was hit, and neither attempt was lost to it
