"""Helpers the test tiers share: `capsule serve` as a real subprocess, and polling a
real engine for a condition (children run in real time)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

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


def wait_for(predicate: Callable[[], Any], timeout: float = 20.0) -> Any:
    """The first truthy value of `predicate`, polled until `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met in time")
