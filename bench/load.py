"""A bounded loopback load test: many concurrent clients creating, triggering and
reading jobs for a fixed time against a real `capsule serve`, then an audit.

    python bench/load.py [--clients 8] [--seconds 10] [--baseline-seconds 3]

The engine runs as its own process on a fresh home under a temporary directory, on an
OS-chosen port. First a baseline: the same clients call GetServerInfo (an echo-like
call: authentication plus a reply, no store write) for --baseline-seconds. Then the
creates only: the same clients call CreateJob, for --baseline-seconds. Then the mixed
load: each client loops create -> trigger and wait for the result -> get the job ->
list its history, for --seconds. Afterwards every acknowledged create is looked up
and every waited-for execution re-read. It prints ops/s and p50/p99 per operation,
the error count and the lost-job count, and exits 1 unless both are zero.

This is a benchmark, not a test: numbers depend on the machine and on what else runs
on it, so compare ratios taken in the same run.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from client import Jobs  # noqa: E402
from client.errors import CapsuleError  # noqa: E402

SOURCE = "def execute(job):\n    return {'n': job.metadata['n'] * 2}\n"
CAPSULE = shutil.which("capsule", path=str(Path(sys.executable).parent)) or "capsule"


def start_engine(home: Path) -> tuple[subprocess.Popen, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAPSULE_")}
    env["CAPSULE_HOME"] = str(home)
    log_path = home.parent / "engine.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen([CAPSULE, "serve", "--listen", "127.0.0.1:0"], env=env, stderr=log)
    deadline = time.monotonic() + 30
    while not (m := re.search(r"engine listening on (\S+),", log_path.read_text())):
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            raise SystemExit(f"the engine did not start:\n{log_path.read_text()}")
        time.sleep(0.05)
    return proc, m.group(1)


class Recorder:
    def __init__(self) -> None:
        self.latency: dict[str, list[float]] = defaultdict(list)
        self.errors: list[str] = []
        self.created: dict[str, int] = {}
        self.results: dict[str, str | None] = {}
        self.lock = threading.Lock()

    def timed(self, op: str, fn):
        start = time.perf_counter()
        try:
            value = fn()
        except CapsuleError as exc:
            with self.lock:
                self.errors.append(f"{op}: {type(exc).__name__}: {exc.message}")
            return None
        with self.lock:
            self.latency[op].append(time.perf_counter() - start)
        return value


def baseline_client(jobs: Jobs, rec: Recorder, until: float) -> None:
    while time.monotonic() < until:
        rec.timed("GetServerInfo (baseline)", jobs.server_info)


def create_client(jobs: Jobs, rec: Recorder, until: float, client: int) -> None:
    n = 0
    while time.monotonic() < until:
        n += 1
        job = rec.timed("CreateJob (only)", lambda: jobs.create(f"only{client}-{n}", SOURCE, metadata={"n": n}))
        if job is not None:
            with rec.lock:
                rec.created[job.id] = n


def load_client(jobs: Jobs, rec: Recorder, until: float, client: int) -> None:
    n = 0
    while time.monotonic() < until:
        n += 1
        job = rec.timed("CreateJob", lambda: jobs.create(f"c{client}-{n}", SOURCE, metadata={"n": n}))
        if job is None:
            continue
        with rec.lock:
            rec.created[job.id] = n
        run = rec.timed("TriggerJob (wait)", lambda: job.trigger(wait=True, timeout=30))
        if run is not None:
            if not run.succeeded:
                with rec.lock:
                    rec.errors.append(f"run {run.id}: {run.status} {run.error}")
            with rec.lock:
                rec.results[run.id] = run.result_json
        rec.timed("GetJob", lambda: jobs.get_job(job.id))
        rec.timed("ListExecutions", lambda: job.history(limit=5))


def run_phase(address: str, token: str, clients: int, seconds: float, target, rec: Recorder) -> float:
    connections = [Jobs.connect(address, token=token, timeout=60) for _ in range(clients)]
    until = time.monotonic() + seconds
    threads = [threading.Thread(target=target, args=(c, rec, until) + ((i,) if target is not baseline_client else ()))
               for i, c in enumerate(connections)]
    start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - start
    for c in connections:
        c.close()
    return elapsed


def audit(address: str, token: str, rec: Recorder) -> int:
    """Acknowledged jobs missing or changed, plus recorded results that differ."""
    lost = 0
    with Jobs.connect(address, token=token, timeout=60) as jobs:
        for job_id, n in rec.created.items():
            try:
                if jobs.get_job(job_id).metadata != {"n": n}:
                    lost += 1
            except CapsuleError:
                lost += 1
        for execution_id, result in rec.results.items():
            if jobs.execution(execution_id).result_json != result:
                lost += 1
    return lost


def report(rec: Recorder, elapsed: float, title: str) -> None:
    print(f"\n{title} ({elapsed:.1f} s)")
    print(f"{'operation':<26}{'count':>8}{'ops/s':>10}{'p50 ms':>10}{'p99 ms':>10}")
    for op, samples in rec.latency.items():
        ordered = sorted(samples)
        p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
        print(f"{op:<26}{len(samples):>8}{len(samples) / elapsed:>10.1f}"
              f"{statistics.median(ordered) * 1000:>10.2f}{p99 * 1000:>10.2f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--baseline-seconds", type=float, default=3.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="capsule-load-") as tmp:
        home = Path(tmp) / "home"
        proc, address = start_engine(home)
        try:
            token = (home / "admin.token").read_text().strip()
            with Jobs.connect(address, token=token, timeout=60) as jobs:  # warm-up: the source's first
                jobs.create("warm-up", SOURCE, metadata={"n": 0}).trigger(wait=True, timeout=60)  # check, a run
            base = Recorder()
            report(base, run_phase(address, token, args.clients, args.baseline_seconds, baseline_client, base),
                   f"baseline: {args.clients} clients calling GetServerInfo")
            only = Recorder()
            only_elapsed = run_phase(address, token, args.clients, args.baseline_seconds, create_client, only)
            report(only, only_elapsed, f"creates only: {args.clients} clients calling CreateJob")
            rec = Recorder()
            elapsed = run_phase(address, token, args.clients, args.seconds, load_client, rec)
            report(rec, elapsed, f"load: {args.clients} clients, create -> trigger+wait -> get -> history")
            lost = audit(address, token, rec) + audit(address, token, only)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
    calls = sum(len(s) for s in rec.latency.values())
    base_rate = len(base.latency["GetServerInfo (baseline)"]) / args.baseline_seconds
    create_rate = len(only.latency["CreateJob (only)"]) / only_elapsed
    print(f"\ncalls: {calls} ({calls / elapsed:.0f}/s), jobs created: {len(rec.created)}, "
          f"runs waited for: {len(rec.results)}")
    print(f"CreateJob (only) rate / GetServerInfo baseline rate, same run: {create_rate / base_rate:.2f}")
    errors = base.errors + only.errors + rec.errors
    print(f"errors: {len(errors)}   lost jobs or results: {lost}")
    for line in errors[:10]:
        print("  ", line)
    return 0 if not errors and not lost else 1


if __name__ == "__main__":
    sys.exit(main())
