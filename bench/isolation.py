"""Isolated execution: the engine's full path against a raw fork loop, in the same run.

    .venv/bin/python bench/isolation.py [--attempts 400] [--workers 2] [--repeats 3]

Measures, on this machine and in this run:

* ``fork_pipe``: the physical limit - a lean Python process forks a child that writes
  a small result to a pipe and exits; the parent reads it and reaps (``waitpid``).
  ``--workers`` threads do this concurrently.
* ``sandbox``: the sandbox alone, in this process: ``Sandbox.run_attempt`` of the same
  restricted job (fork server, bubblewrap, uid, seccomp, rlimits, RestrictedPython,
  channel), ``--workers`` threads back to back, no gRPC and no store.
* ``engine``: the whole path through a real engine (in its own process, as
  ``capsule serve`` runs, with ``--workers`` attempt workers; gRPC on loopback, SQLite): a client triggers a restricted job, the scheduler forks an
  attempt from the zygote, the result is committed. Throughput triggers ``--attempts``
  runs at once and times until the last is stored; latency is one trigger at a time,
  from the client's call to its answer once the result is stored (``wait=True``).

Prints figures and ratios (sandbox and engine, each / fork_pipe); medians of ``--repeats``
runs. Nothing is asserted: speed is judged by the ratios, which cancel out how fast the
machine is.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

JOB = "def execute(job):\n    return {'sum': 1 + 1, 'attempt': job.attempt}\n"

# Runs in a fresh, lean interpreter: the anchor must not pay for the engine's memory.
FORK_LOOP = r"""
import os, sys, threading, time
n, workers, mode = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
lat = []
def one():
    r, w = os.pipe()
    t = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        os.close(r); os.write(w, b'{"sum": 2}'); os._exit(0)
    os.close(w)
    while os.read(r, 4096):
        pass
    os.close(r); os.waitpid(pid, 0)
    lat.append(time.perf_counter() - t)
def loop(k):
    for _ in range(k):
        one()
for _ in range(20):
    one()
lat.clear()
if mode == "latency":
    loop(n)
    print(sorted(lat)[len(lat) // 2] * 1000, sorted(lat)[int(len(lat) * 0.99)] * 1000)
else:
    threads = [threading.Thread(target=loop, args=(n // workers,)) for _ in range(workers)]
    t = time.perf_counter()
    for th in threads: th.start()
    for th in threads: th.join()
    print(n / (time.perf_counter() - t))
"""


def fork_pipe(n: int, workers: int, mode: str) -> list[float]:
    out = subprocess.run([sys.executable, "-I", "-c", FORK_LOOP, str(n), str(workers), mode],
                         capture_output=True, text=True, check=True).stdout.split()
    return [float(x) for x in out]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(len(ordered) * q), len(ordered) - 1)]


ENGINE = """
import sys
sys.path.insert(0, sys.argv[1])
from pathlib import Path
from engine.server import EngineServer
EngineServer(home=Path(sys.argv[2]), listen=sys.argv[3], workers=int(sys.argv[4])).serve_forever()
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def sandbox_run(n: int, workers: int, latency_n: int) -> tuple[float, float, float]:
    """Sandbox.run_attempt alone: the isolation's own cost, without the engine around it."""
    import sandbox
    from sandbox import AttemptRequest
    from sandbox.launcher import JOB_FIELDS

    job = {**dict.fromkeys(JOB_FIELDS), "id": "job_bench", "name": "bench", "kind": "dynamic",
           "metadata": {}, "active_version": 1, "execution_id": "exe_bench", "attempt": 1}
    request = AttemptRequest(source=JOB, entrypoint="execute", job=job, admitted=True)
    box = sandbox.Sandbox().start()
    try:
        def one() -> float:
            t = time.perf_counter()
            outcome = box.run_attempt(request)
            assert outcome.status == "succeeded", outcome
            return time.perf_counter() - t

        for _ in range(20):
            one()
        lat = [one() for _ in range(latency_n)]
        started = time.perf_counter()
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(lambda _: one(), range(n)))
        rate = n / (time.perf_counter() - started)
    finally:
        box.stop()
    return rate, percentile(lat, 0.5) * 1000, percentile(lat, 0.99) * 1000


def engine_run(n: int, workers: int, latency_n: int) -> tuple[float, float, float]:
    """The engine in its own process, as `capsule serve` runs it; the client here."""
    from client import Jobs

    with tempfile.TemporaryDirectory() as home:
        address = f"127.0.0.1:{free_port()}"
        proc = subprocess.Popen([sys.executable, "-c", ENGINE, str(ROOT), home, address, str(workers)],
                                stderr=subprocess.DEVNULL)
        try:
            token_file = Path(home) / "admin.token"
            deadline = time.monotonic() + 30
            while True:
                try:
                    jobs = Jobs.connect(address, token=token_file.read_text().strip())
                    jobs.server_info()
                    break
                except Exception:  # noqa: BLE001 - not up yet
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)
            with jobs:
                job = jobs.create(name="bench", execute=JOB, timeout=10)
                for _ in range(20):  # warm: compile cache, connections
                    job.trigger(wait=True, force=True)
                lat = []
                for _ in range(latency_n):
                    t = time.perf_counter()
                    ex = job.trigger(wait=True, force=True)
                    lat.append(time.perf_counter() - t)
                    assert ex.status == "succeeded", ex
                started = time.perf_counter()
                with ThreadPoolExecutor(8) as pool:
                    runs = list(pool.map(lambda _: job.trigger(force=True), range(n)))
                # Server-side waits (no polling): each answers as soon as its run is stored.
                for run in runs:
                    ex = run.wait(timeout=60)
                    assert ex.status == "succeeded", ex
                rate = n / (time.perf_counter() - started)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
    return rate, percentile(lat, 0.5) * 1000, percentile(lat, 0.99) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--attempts", type=int, default=400)
    parser.add_argument("--latency-attempts", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    import sandbox

    layers = {name: active for name, active, _ in sandbox.default_sandbox().layers()}
    print(f"cpus {os.cpu_count()}, python {sys.version.split()[0]}, sandbox mode "
          f"{sandbox.default_sandbox().mode}, bubblewrap {'on' if layers.get('bubblewrap') else 'off'}, "
          f"fork server {'on' if layers.get('fork server') else 'off'}")
    rows = []
    for _ in range(args.repeats):
        fork_rate = fork_pipe(args.attempts * 2, args.workers, "rate")[0]
        fork_p50, fork_p99 = fork_pipe(args.latency_attempts, 1, "latency")
        box_rate, box_p50, box_p99 = sandbox_run(args.attempts, args.workers, args.latency_attempts)
        rate, p50, p99 = engine_run(args.attempts, args.workers, args.latency_attempts)
        rows.append((fork_rate, fork_p50, fork_p99, box_rate, box_p50, box_p99, rate, p50, p99))
        print(f"  run: fork_pipe {fork_rate:5.0f}/s p50 {fork_p50:.2f} p99 {fork_p99:.2f} ms | "
              f"sandbox {box_rate:4.0f}/s p50 {box_p50:.2f} p99 {box_p99:.2f} ms | "
              f"engine {rate:4.0f}/s p50 {p50:.2f} p99 {p99:.2f} ms", flush=True)
    med = [statistics.median(col) for col in zip(*rows)]
    fork_rate, fork_p50, fork_p99, box_rate, box_p50, box_p99, rate, p50, p99 = med
    print(f"\nmedian of {args.repeats} (W={args.workers}):")
    print(f"  fork_pipe  {fork_rate:8.0f} attempts/s   p50 {fork_p50:6.2f} ms   p99 {fork_p99:6.2f} ms")
    for name, r, a, b in (("sandbox", box_rate, box_p50, box_p99), ("engine", rate, p50, p99)):
        print(f"  {name:9s}  {r:8.0f} attempts/s   p50 {a:6.2f} ms   p99 {b:6.2f} ms   "
              f"ratio {r / fork_rate:.2f}x throughput, p50 {a / fork_p50:.1f}x, p99 {b / fork_p99:.1f}x")
    print("  goals (engine): throughput >= 0.63x the fork loop, p99 <= 3x")


if __name__ == "__main__":
    main()
