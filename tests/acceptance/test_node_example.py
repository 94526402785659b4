"""The Node.js example, run as a new user runs it: `npm ci` in examples/node, then
`node index.js` against a real engine. Node and npm are required, not optional: a
machine without them fails here with a sentence saying so, rather than skipping."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "node"
NPM_CI_SECONDS = 240
RUN_SECONDS = 120

pytestmark = pytest.mark.timeout(NPM_CI_SECONDS + RUN_SECONDS + 60)


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"`{name}` is not on PATH; the Node.js example needs Node.js 18 or newer with npm "
                    "(install it, e.g. from https://nodejs.org, and run the tests again)", pytrace=False)
    return path


@pytest.fixture(scope="module")
def installed():
    """examples/node with its locked dependencies installed by `npm ci`; yields `node`."""
    node = _tool("node")
    npm = _tool("npm")
    done = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=EXAMPLE, capture_output=True,
                          text=True, timeout=NPM_CI_SECONDS)
    assert done.returncode == 0, f"npm ci failed in {EXAMPLE}:\n{done.stdout}\n{done.stderr}"
    return node


def run_example(node: str, tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith("CAPSULE_")}
    # An empty home: the example must not fall back on a token of this machine's engine.
    base["CAPSULE_HOME"] = str(tmp_path / "no-home")
    return subprocess.run([node, "index.js"], cwd=EXAMPLE, env={**base, **env}, capture_output=True,
                          text=True, timeout=RUN_SECONDS)


def test_creates_triggers_waits_and_reads_the_message(installed, engine, jobs, tmp_path):
    done = run_example(installed, tmp_path, CAPSULE_ADDRESS=engine.address, CAPSULE_TOKEN=engine.admin_token)

    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert re.search(r"^created job node-greeting-\d+ \(job_\w+\), version 1", out, re.M), out
    assert re.search(r"^execution exe_\w+: EXECUTION_STATUS_SUCCEEDED", out, re.M), out
    assert 'result: {"sent":true,"words":5}' in out
    assert "user_42 has 1 message(s); this run sent 1:" in out
    assert "Hello from Node.js (attempt 1)" in out
    # The Python client sees the same job, run and message.
    job = jobs.get_job(re.search(r"created job (\S+)", out).group(1))
    assert job.user_id == "user_42" and job.run_count == 1
    [message] = jobs.messages(user_id="user_42")
    assert message.job_id == job.id
    assert message.parts[0]["text"] == "Hello from Node.js (attempt 1)"


def test_running_it_again_makes_a_new_job(installed, engine, tmp_path):
    env = dict(CAPSULE_ADDRESS=engine.address, CAPSULE_TOKEN=engine.admin_token)
    first = run_example(installed, tmp_path, **env)
    second = run_example(installed, tmp_path, **env)

    assert first.returncode == 0 and second.returncode == 0, second.stdout + second.stderr
    assert "user_42 has 2 message(s); this run sent 1:" in second.stdout


def test_the_token_comes_from_capsule_home_by_default(installed, engine, tmp_path):
    # The engine wrote its admin token into its home, as `capsule serve` does.
    done = run_example(installed, tmp_path, CAPSULE_ADDRESS=engine.address, CAPSULE_HOME=str(engine.home))

    assert done.returncode == 0, done.stdout + done.stderr


def test_a_refused_call_prints_its_status_and_fails(installed, engine, tmp_path):
    done = run_example(installed, tmp_path, CAPSULE_ADDRESS=engine.address, CAPSULE_TOKEN="cap_wrong")

    assert done.returncode == 1
    assert "CreateJob failed: UNAUTHENTICATED: the token is unknown or revoked" in done.stderr


def test_without_a_token_it_says_where_it_looked(installed, tmp_path):
    done = run_example(installed, tmp_path, CAPSULE_ADDRESS="127.0.0.1:1")

    assert done.returncode == 1
    assert "no token: set CAPSULE_TOKEN" in done.stderr and "admin.token" in done.stderr


def test_the_lockfile_pins_every_package_with_no_machine_paths():
    lock = json.loads((EXAMPLE / "package-lock.json").read_text())
    manifest = json.loads((EXAMPLE / "package.json").read_text())

    assert lock["packages"][""]["dependencies"] == manifest["dependencies"]
    packages = {k: v for k, v in lock["packages"].items() if k}
    assert {"node_modules/@grpc/grpc-js", "node_modules/@grpc/proto-loader"} <= set(packages)
    for name, entry in packages.items():
        assert name.startswith("node_modules/") and "version" in entry, name
        assert entry.get("resolved", "https://registry.npmjs.org/").startswith("https://registry.npmjs.org/"), \
            f"{name} resolves from {entry['resolved']}; regenerate the lockfile against the public registry"
        assert entry["integrity"].startswith("sha512-"), name


def test_the_example_loads_the_repository_protos_rather_than_a_copy():
    copies = [p for p in EXAMPLE.rglob("*.proto") if "node_modules" not in p.parts]
    assert copies == []
    assert "path.resolve(__dirname, '..', '..', 'proto')" in (EXAMPLE / "index.js").read_text()


def test_the_readme_snippet_runs(installed, engine, tmp_path):
    """The "From another language" lines of the README, run from examples/node with the
    engine's address in place of the default one and its token in ~/.capsule."""
    readme = (EXAMPLE.parents[1] / "README.md").read_text()
    snippet = re.search(r"## From another language\n.*?```js\n(.*?)```", readme, re.S).group(1)
    home = tmp_path / "user"
    (home / ".capsule").mkdir(parents=True)
    (home / ".capsule" / "admin.token").write_text(engine.admin_token + "\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAPSULE_")}

    done = subprocess.run([installed, "-e", snippet.replace("127.0.0.1:50051", engine.address)], cwd=EXAMPLE,
                          env={**env, "HOME": str(home)}, capture_output=True, text=True, timeout=RUN_SECONDS)

    assert done.returncode == 0, done.stdout + done.stderr
    assert 'EXECUTION_STATUS_SUCCEEDED {"sent":true}' in done.stdout
    assert 'Hello from Node.js' in done.stdout
