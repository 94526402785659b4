"""kill -9 during a burst of writes loses nothing that was acknowledged.

`capsule serve` runs as a subprocess on its own home. Client threads create jobs and
trigger them as fast as they can, recording every create the engine acknowledged and
every execution they saw finished. The engine is killed with SIGKILL in the middle of
the burst, then restarted on the same home: every acknowledged job and every recorded
result is there, unchanged, and the database passes `PRAGMA integrity_check`.

Why this holds: the store commits each write in one transaction under WAL, and a
commit has reached the WAL file (in the OS page cache) before the engine answers, so
a process kill cannot undo it (engine/store.py explains the synchronous setting).
"""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from pathlib import Path

import apsw

from client import Jobs
from client.errors import CapsuleError
from support import start_serve

SOURCE = "def execute(job):\n    return {'n': job.metadata['n']}\n"
WRITERS = 6
MIN_CREATES = 40   # kill once this much was acknowledged (a slow machine just takes longer)
MIN_FINISHED = 10


def _serve(home: Path, log_path: Path) -> tuple[subprocess.Popen, str]:
    return start_serve(home, log_path)


class Burst:
    """Writer threads that remember what the engine acknowledged."""

    def __init__(self, address: str, token: str) -> None:
        self.address, self.token = address, token
        self.created: dict[str, int] = {}            # job id -> n, for every acknowledged create
        self.finished: dict[str, tuple] = {}         # execution id -> (status, result_json)
        self.lock = threading.Lock()
        self.stop = threading.Event()

    def wait_for(self, *, creates: int, finished: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.created) >= creates and len(self.finished) >= finished:
                    return
            time.sleep(0.02)

    def run(self, writer: int) -> None:
        with Jobs.connect(self.address, token=self.token, timeout=5) as jobs:
            n = 0
            while not self.stop.is_set():
                n += 1
                try:
                    job = jobs.create(f"w{writer}-{n}", SOURCE, metadata={"n": n})
                    with self.lock:
                        self.created[job.id] = n
                    run = job.trigger(wait=n % 2 == 0, timeout=5)
                except CapsuleError:
                    return  # the engine is gone
                if run.finished:
                    with self.lock:
                        self.finished[run.id] = (run.status, run.result_json)


def test_sigkill_mid_burst_loses_no_acknowledged_write(tmp_path):
    home = tmp_path / "home"
    proc, address = _serve(home, tmp_path / "first.log")
    try:
        token = (home / "admin.token").read_text().strip()
        burst = Burst(address, token)
        threads = [threading.Thread(target=burst.run, args=(i,), daemon=True) for i in range(WRITERS)]
        for t in threads:
            t.start()
        burst.wait_for(creates=MIN_CREATES, finished=MIN_FINISHED, timeout=60)
        proc.send_signal(signal.SIGKILL)  # mid-burst: the writers are still writing
        proc.wait(timeout=10)
        burst.stop.set()
        for t in threads:
            t.join(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    assert len(burst.created) >= MIN_CREATES and len(burst.finished) >= MIN_FINISHED, \
        f"too few writes to prove anything: {len(burst.created)} creates, {len(burst.finished)} finished"
    print(f"acknowledged creates: {len(burst.created)}, finished executions seen: {len(burst.finished)}")

    with apsw.Connection(str(home / "capsule.db")) as db:  # as the kill left it, before any restart
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        stored = dict(db.execute("SELECT id, json_extract(metadata, '$.n') FROM jobs").fetchall())
    assert {job_id: stored.get(job_id) for job_id in burst.created} == burst.created

    proc, address = _serve(home, tmp_path / "second.log")
    try:
        with Jobs.connect(address, token=token, timeout=10) as jobs:
            for job_id, n in burst.created.items():
                assert jobs.get_job(job_id).metadata == {"n": n}
            for execution_id, (status, result_json) in burst.finished.items():
                execution = jobs.execution(execution_id)
                assert (execution.status, execution.result_json) == (status, result_json)
            assert jobs.server_info()["admin"]
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0, (tmp_path / "second.log").read_text()[-3000:]
    with apsw.Connection(str(home / "capsule.db")) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
