"""Kill -9 at random moments: a real `capsule serve` under a load of interval and cron
jobs is killed and restarted a few times; afterwards every job's fires are counted
against its grid. None lost, none doubled, every fire that did not run explained.

This is the one scheduling test that runs on the wall clock: it is about process death.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from pathlib import Path

from client import Jobs, Retry, cron, interval
from engine import schedules
from engine.model import ExecutionStatus, Trigger
from engine.store import Store
from support import start_serve

QUICK = "def execute(job):\n    return job.attempt\n"
KILLS = 4


def serve(home: Path, n: int) -> tuple[subprocess.Popen, str]:
    return start_serve(home, home.parent / f"serve-{n}.log")


def grid(schedule, first, end):
    """The fires of `schedule` from `first` up to (not including) `end`."""
    fires, t = [], first
    while t is not None and t < end:
        fires.append(t)
        t = schedules.next_fire(schedule, t)
    return fires


def test_no_fire_is_lost_or_doubled_across_kill_9(tmp_path):
    seed = int(os.environ.get("CAPSULE_KILL_SEED", random.randrange(1 << 30)))
    rng = random.Random(seed)
    home = tmp_path / "home"
    proc, address = serve(home, 0)
    token = (home / "admin.token").read_text().strip()
    with Jobs.connect(address, token=token) as jobs:
        ids = [
            jobs.create(name="every-second", execute=QUICK, schedule=interval(1)).id,
            jobs.create(name="every-two", execute=QUICK, schedule=interval(2), retry=Retry(max_attempts=3)).id,
            jobs.create(name="cron-seconds", execute=QUICK, schedule=cron("* * * * * *")).id,
            jobs.create(name="cron-every-three", execute=QUICK, schedule=cron("*/3 * * * * *", misfire="all"),
                        retry=Retry(max_attempts=2)).id,
        ]
    try:
        for n in range(1, KILLS + 1):
            time.sleep(rng.uniform(1.0, 4.0))
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
            time.sleep(rng.uniform(0.0, 1.5))
            proc, address = serve(home, n)
        time.sleep(3.0)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0, f"seed {seed}"

    store = Store(home / "capsule.db")
    try:
        for job_id in ids:
            check_job(store, job_id, seed)
    finally:
        store.close()


def check_job(store: Store, job_id: str, seed: int) -> None:
    job = store.get_job(None, job_id)
    version = store.get_version(job_id, version_id=job.active_version_id)
    rows = [e for e, _ in store.list_executions(None, job_id=job_id, statuses=[], since=None, limit=100_000)]
    fired = sorted(e.scheduled_for for e in rows if e.trigger is Trigger.SCHEDULE)
    where = f"job {job.name}, seed {seed}"
    assert len(fired) == len(set(fired)), f"a fire was recorded twice ({where})"
    expected = grid(version.schedule, schedules.first_fire(version.schedule, job.created_at), job.next_run)
    assert fired == expected, f"fires lost or off the grid ({where})"
    assert len(fired) >= 4, where  # at least 9 s of grid passed: the job did fire
    for e in rows:
        if e.status in (ExecutionStatus.MISSED, ExecutionStatus.SKIPPED):
            assert e.reason, f"{e.id} did not run and says nothing ({where})"
        elif e.status is ExecutionStatus.CRASHED:
            assert e.error and e.error.type == "EngineStopped", where
            assert e.retried_by or e.attempt == version.retry.max_attempts, f"{e.id} not retried ({where})"
        else:
            assert e.status in (ExecutionStatus.SUCCEEDED, ExecutionStatus.QUEUED), f"{e.id}: {e.status} ({where})"
