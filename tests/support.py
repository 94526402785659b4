"""Helpers the test tiers share: `capsule serve` as a real subprocess, polling a real
engine for a condition (children run in real time), and restricted code run in-process."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import types
from pathlib import Path
from typing import Any, Callable

from sandbox.handles import JobHandle, UserDirectory
from sandbox.policy import (
    LogSink,
    compile_restricted_source,
    register_entry_code,
    restricted_globals,
)

CAPSULE = shutil.which("capsule", path=str(Path(sys.executable).parent)) or "capsule"


def serve_env(home: Path) -> dict[str, str]:
    """This process's environment without any CAPSULE_ setting, for an engine in `home`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAPSULE_")}
    env["CAPSULE_HOME"] = str(home)
    return env


def start_serve(home: Path, log_path: Path, *options: str) -> tuple[subprocess.Popen, str]:
    """Starts `capsule serve` on an OS-chosen loopback port; returns it and its address.

    The log goes to a file, not a pipe nobody drains, so the engine never blocks on it.
    """
    with open(log_path, "w") as log:
        proc = subprocess.Popen([CAPSULE, "serve", "--listen", "127.0.0.1:0", *options],
                                env=serve_env(home), stderr=log)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and proc.poll() is None:
        if m := re.search(r"engine listening on (\S+),", log_path.read_text()):
            return proc, m.group(1)
        time.sleep(0.02)
    proc.kill()
    raise AssertionError(f"the engine did not start:\n{log_path.read_text()}")


def process_table() -> dict[int, dict[str, str]]:
    """Every process visible here, by pid: the fields of its /proc/<pid>/status (Name,
    State, PPid, Uid...), stripped. Processes that end meanwhile are left out."""
    table = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                status = Path(f"/proc/{entry}/status").read_text()
            except OSError:
                continue
            table[int(entry)] = {key: value.strip() for key, value in
                                 (line.split(":", 1) for line in status.splitlines() if ":" in line)}
    return table


def real_uid(fields: dict[str, str]) -> int:
    return int(fields["Uid"].split()[0])


def wait_for(predicate: Callable[[], Any], timeout: float = 20.0) -> Any:
    """The first truthy value of `predicate`, polled until `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


# --- restricted code in-process --------------------------------------------------------
# In production restricted code is compiled and run only in the sandboxed child; tests of
# the policy's pieces run it here, which is safe because the sources are the tests' own.

JOB_FIELDS = {
    "id": "job_1",
    "name": "daily-report",
    "kind": "predefined",
    "user_id": None,
    "metadata": {"userId": "u1"},
    "active_version": 3,
    "execution_id": "ex_1",
    "attempt": 1,
}


class NoEffects:
    """Stands in for the channel: these tests never make effect calls."""

    def call(self, op: str, **args: Any) -> None:
        raise AssertionError(f"unexpected effect call {op}")


def run_restricted(source: str, sink: LogSink | None = None) -> Any:
    """Compile ``source`` with RP, exec it under the policy, call ``execute(job)``."""
    code, problems = compile_restricted_source(source, "<job:test>")
    assert problems == [], problems
    job = JobHandle(JOB_FIELDS, NoEffects())  # type: ignore[arg-type]
    sink = sink or LogSink(10_000, lambda text: None)
    namespace = restricted_globals(job, UserDirectory(NoEffects()), sink)  # type: ignore[arg-type]
    # As the runner does: dataclasses looks string annotations up in the job's module.
    sys.modules.setdefault(namespace["__name__"], types.ModuleType(namespace["__name__"]))
    exec(code, namespace)
    register_entry_code(namespace["execute"].__code__)  # as the runner does (see policy._DROPPED)
    return namespace["execute"](job)


def body(*lines: str) -> str:
    """A source defining ``execute(job)`` with ``lines`` as its body."""
    return "def execute(job):\n" + "".join(f"    {line}\n" for line in lines)
