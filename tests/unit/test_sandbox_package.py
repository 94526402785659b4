"""The package's public surface, and that importing it stays light."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import sandbox
from sandbox.launcher import JOB_FIELDS

pytestmark = pytest.mark.timeout(30)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(sandbox.__file__)))


def test_public_names_are_pinned() -> None:
    assert sorted(sandbox.__all__) == [
        "AttemptOutcome",
        "AttemptRequest",
        "EffectRefused",
        "Limits",
        "Policy",
        "Problem",
        "ProtocolError",
        "RESTRICTED",
        "SANDBOX_BUILTIN_NAMES",
        "Sandbox",
        "SandboxError",
        "SourceRejected",
        "TRUSTED",
        "check_source",
        "default_sandbox",
        "run_attempt",
    ]
    assert all(hasattr(sandbox, name) for name in sandbox.__all__)


def test_import_does_not_load_restricted_python_or_cloudpickle() -> None:
    probe = (
        "import sys, sandbox; "
        "print(sorted(m for m in ('RestrictedPython', 'cloudpickle') if m in sys.modules))"
    )
    output = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert output.strip() == "[]"


def test_forkserver_preload_stays_lean() -> None:
    # Every attempt is a fork of this process: threading (also pulled in by logging and
    # cloudpickle) adds an at-fork hook that doubles each child's page faults.
    probe = (
        "import sys; from sandbox import forkserver; forkserver.preload(); "
        "print(sorted(m for m in ('threading', 'logging', 'cloudpickle', 'subprocess', 'grpc', 'apsw') "
        "if m in sys.modules))"
    )
    output = subprocess.run(
        [sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {ROOT!r}); {probe}"],
        capture_output=True, text=True, check=True,
    ).stdout
    assert output.strip() == "[]"


def test_error_hierarchy() -> None:
    for error in (sandbox.SourceRejected, sandbox.EffectRefused, sandbox.ProtocolError):
        assert issubclass(error, sandbox.SandboxError)


def test_limits_defaults_and_validation() -> None:
    limits = sandbox.Limits()
    assert (limits.timeout_seconds, limits.memory_mb, limits.output_bytes, limits.log_bytes) == (
        60.0,
        512,
        1 << 20,
        64 << 10,
    )
    assert limits.effective_cpu_seconds == 61
    assert sandbox.Limits(timeout_seconds=2.5).effective_cpu_seconds == 4
    with pytest.raises(ValueError, match="timeout_seconds"):
        sandbox.Limits(timeout_seconds=0)


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        pytest.param({"isolation": "docker"}, "isolation must be one of", id="isolation"),
        pytest.param({"isolation": "trusted"}, "needs a cloudpickle payload", id="trusted-without-payload"),
        pytest.param({"job": {"id": "j"}}, "job is missing", id="job-fields"),
        pytest.param(
            {"job": {**dict.fromkeys(JOB_FIELDS), "kind": "dynamic", "metadata": {1, 2}}},
            "only JSON values",
            id="job-not-json",
        ),
    ],
)
def test_attempt_request_validation(changes: dict[str, object], fragment: str) -> None:
    job = {**dict.fromkeys(JOB_FIELDS), "kind": "dynamic", "metadata": {}}
    fields: dict[str, object] = {"source": "", "entrypoint": "execute", "job": job, **changes}
    with pytest.raises(ValueError, match=fragment):
        sandbox.AttemptRequest(**fields)  # type: ignore[arg-type]
