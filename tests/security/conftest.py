"""The attack suite's harness: one real engine per module, attacked through the public API.

Every case ends with the same proofs (``Harness.assert_contained``):

* the outcome is the expected one (refused at creation, failed, timed out, crashed);
* nothing the attack returned, printed or raised carries the engine's secrets (an
  environment variable set in the engine only, the admin token, the canary's text);
* nothing outside the sandbox changed: a canary file and directory next to the engine's
  home are intact, no marker file appeared in the host's /tmp, the store still answers;
* no process of the attempt survives it (no process runs under a sandbox uid);
* the engine still serves: a control job runs and succeeds.
"""

from __future__ import annotations

import os
import platform
import secrets
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from capsule.v1 import jobs_pb2
from support import process_table, real_uid

from client import Jobs
from client.bundle import bundle
from client.errors import CapsuleError
from engine import convert, model
from engine.server import EngineServer
from sandbox.forkserver import WARM_CHILDREN, WARM_NAME

REFUSED = "refused"
SECRET_ENV = "CAPSULE_ATTACK_SUITE_SECRET"
# The marker an attack tries to write on the host; named after this test process, so
# files left by other runs (or other suites) do not count.
PWNED = Path(f"/tmp/capsule-pwned-{os.getpid()}")
CONTROL_SOURCE = "def execute(job):\n    return 6 * 7\n"


@dataclass
class Outcome:
    status: str  # "refused" or an execution status
    result: Any = None
    text: str = ""  # everything the attacker got back: result JSON, logs, error


class Harness:
    def __init__(self, server: EngineServer, jobs: Jobs, canary: Path, secret: str,
                 layers: dict[str, bool], box: Any) -> None:
        self.server = server
        self.box = box  # the sandbox under test
        self.fork_server_restarts = box.fork_server_restarts()
        self.layers = layers  # what the sandbox under test reports as in force
        self.jobs = jobs
        self.canary = canary
        self.canary_text = canary.read_text()
        self.canary_dir = canary.parent / "canary-dir"
        self.secret = secret
        self.counter = 0
        self.control = jobs.create(name="control", execute=CONTROL_SOURCE)

    @property
    def facts(self) -> dict[str, Any]:
        """What an attacker is assumed to know, handed to trusted payloads as metadata."""
        return {
            "canary": str(self.canary),
            "canary_dir": str(self.canary_dir),
            "db": str(self.server.store.path),
            "token_file": str(Path(self.server.home) / "admin.token"),
            "engine_pid": os.getpid(),
            "port": self.server.port,
            "pwned": str(PWNED),
        }

    def run(self, execute: Any, *, isolation: str = "restricted", timeout: float = 2.0,
            limits: model.Limits | None = None, payload: bytes | None = None,
            python_version: str | None = None) -> Outcome:
        """Create a job from ``execute`` (source text or a function) and run it once.

        Source text is sent as is, without the client's local checks, so that the engine
        itself must refuse what it refuses.
        """
        self.counter += 1
        name = f"attack-{self.counter}"
        if isinstance(execute, str) and payload is None and isolation == "restricted":
            artifact = model.Artifact(source=execute)
        elif payload is not None:
            artifact = model.Artifact(source=execute, payload=payload, payload_encoding="cloudpickle",
                                      python_version=python_version or platform.python_version())
        else:
            artifact = bundle(execute, isolation=isolation)
        spec = model.JobSpec(name=name, artifact=artifact, metadata=self.facts, timeout_seconds=timeout,
                             isolation=model.Isolation(isolation), limits=limits or model.Limits())
        try:
            response = self.jobs._call(self.jobs._jobs.CreateJob,
                                       jobs_pb2.CreateJobRequest(spec=convert.spec_to_pb(spec)))
        except CapsuleError as exc:
            return Outcome(REFUSED, None, str(exc))
        handle = self.jobs._handle(response.job)
        ex = handle.trigger(wait=True, timeout=timeout + 30)
        error = ex.error
        text = (ex.result_json or "") + ex.logs + (f"{error.type}: {error.message} {error.traceback}" if error else "")
        result = ex.result if ex.status == "succeeded" else None
        return Outcome(ex.status, result, text)

    def assert_contained(self, outcome: Outcome, expected: set[str] | str) -> None:
        expected = {expected} if isinstance(expected, str) else expected
        assert outcome.status in expected, outcome
        for secret in (self.secret, self.server.admin_token, self.canary_text):
            assert secret not in outcome.text, f"a secret leaked: {outcome.text[:300]!r}"
        assert self.canary.read_text() == self.canary_text
        assert sorted(p.name for p in self.canary_dir.iterdir()) == ["keep.txt"]
        assert not PWNED.exists(), "the attack wrote to the host's /tmp"
        self.assert_no_sandbox_processes()
        ex = self.control.trigger(wait=True, timeout=30)
        assert ex.status == "succeeded" and ex.result == 42, ex
        # No attack may take the fork server down: every attempt it runs would go with it.
        restarts, self.fork_server_restarts = self.fork_server_restarts, self.box.fork_server_restarts()
        assert self.fork_server_restarts == restarts, "the fork server died and was restarted"

    def assert_no_sandbox_processes(self) -> None:
        deadline = time.monotonic() + 5
        while True:
            # Those of this engine's attempts (other engines may run beside it); asked
            # each time, as trusted attempts get a fork server of their own when they come.
            left = sandbox_processes(self.box.attempt_uids())
            if not left or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert not left, f"processes of the attempt survived it: {left}"


def sandbox_processes(uids: frozenset[int] | None) -> list[str]:
    """Processes running under one of ``uids``, but for the fork servers' waiting children.

    A zygote keeps up to WARM_CHILDREN children forked ahead of time (named
    "capsule-warm", idle until an attempt arrives); more than that under one parent
    means something else took the name, and counts as a survivor too.
    """
    found, warm = [], Counter()
    table = process_table()
    for pid, fields in table.items():
        uid = real_uid(fields)
        if uids is None or uid not in uids or fields["State"].startswith("Z"):
            continue
        name, parent = fields["Name"], fields["PPid"]
        parent_uid = real_uid(table[int(parent)]) if int(parent) in table else None
        # A name anyone can take: it counts only under a fork server (not a sandbox uid,
        # not init, which a survivor of a dead parent is under).
        if name == WARM_NAME.decode() and parent != "1" and parent_uid not in uids:
            warm[parent] += 1
        else:
            found.append(f"{pid} uid={uid} {name} (parent {parent})")
    found += [f"{count} waiting children under {ppid}" for ppid, count in warm.items() if count > WARM_CHILDREN]
    return found


def _start(tmp: Path, secret: str, box: Any) -> tuple[EngineServer, Path]:
    canary = tmp / "canary.txt"
    canary.write_text("canary " + secrets.token_hex(16))
    (tmp / "canary-dir").mkdir()
    (tmp / "canary-dir" / "keep.txt").write_text("keep")
    os.environ[SECRET_ENV] = secret
    options: dict[str, Any] = {}
    if box is not None:
        options = {"run_attempt": box.run_attempt, "check_source": box.check_source}
    server = EngineServer(home=tmp / "home", listen="127.0.0.1:0", workers=4, **options).start()
    return server, canary


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Any:
    import sandbox

    mode = getattr(request.module, "SANDBOX_MODE", None)
    box = sandbox.Sandbox(mode).start() if mode is not None else None
    layers = {name: active for name, active, _ in (box or sandbox.default_sandbox()).layers()}
    # Attacks aimed at the OS layer are only meaningful, and only safe to run, against
    # the fork server: without it the suite would test the spawn fallback instead.
    assert layers["fork server"], f"the fork server did not start (mode {mode or 'auto'}); see the engine log"
    # Trusted payloads here signal every process they can reach (kill(-1)); that is
    # contained only by a uid of their own or a pid namespace. Without either they would
    # reach the processes of whoever runs the tests.
    assert layers["separate uid"] or layers["pid namespace"], (
        "the attack suite needs a separate uid per attempt (run the tests as root) or a pid "
        "namespace (install bubblewrap); without them its attacks would reach your own processes")
    secret = "s3cr3t-" + secrets.token_hex(12)
    server, canary = _start(tmp_path_factory.mktemp("attacks"), secret, box)
    try:
        with Jobs.connect(server.address, token=server.admin_token) as jobs:
            yield Harness(server, jobs, canary, secret, layers, box or sandbox.default_sandbox())
        assert server.store.path.exists()
        with open(server.store.path, "rb") as db:
            assert db.read(16) == b"SQLite format 3\x00", "the store was damaged"
    finally:
        server.stop(grace=1)
        if box is not None:
            box.stop()
        os.environ.pop(SECRET_ENV, None)
