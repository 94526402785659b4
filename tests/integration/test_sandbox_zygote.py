"""The fork server: its layers, uids per attempt, the compile cache, and recovery."""

from __future__ import annotations

import json
import os
import signal
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import cloudpickle
import pytest
from support import process_table, real_uid

import sandbox
from sandbox import AttemptRequest, Limits

pytestmark = pytest.mark.timeout(60)

JOB = {"id": "job_1", "name": "zygote", "kind": "dynamic", "user_id": "u1", "metadata": {},
       "active_version": 1, "execution_id": "ex_1", "attempt": 1}


def trusted(source: str, **options: Any) -> AttemptRequest:
    namespace: dict[str, Any] = {"__name__": "__capsule_test_job__"}
    exec(compile(textwrap.dedent(source), "/jobs.py", "exec"), namespace)
    return AttemptRequest(source=source, entrypoint="execute", job=JOB, isolation="trusted",
                          payload=cloudpickle.dumps(namespace["execute"]), **options)


@pytest.fixture(scope="module", params=["auto", "nobwrap"])
def box(request):
    sb = sandbox.Sandbox(request.param).start()
    yield sb
    sb.stop()


def layers(box) -> dict[str, bool]:
    return {name: active for name, active, _ in box.layers()}


def test_layers_are_reported_as_detected(box):
    found = layers(box)
    assert found["fork server"] and found["rlimits"] and found["restricted python"]
    if box.mode == "nobwrap":
        assert not found["bubblewrap"] and not found["private tmpfs"]
    assert found["separate uid"] == (os.geteuid() == 0)


def test_concurrent_attempts_run_under_distinct_unprivileged_uids(box):
    if not layers(box)["separate uid"]:
        pytest.skip("the engine is not root: children share its uid")
    request = trusted("""
        import os, time

        def execute(job):
            time.sleep(0.3)
            return [os.getuid(), os.getgid(), os.getgroups()]
    """)
    with ThreadPoolExecutor(4) as pool:
        outcomes = list(pool.map(lambda _: box.run_attempt(request), range(4)))
    results = [json.loads(o.result_json or "null") for o in outcomes]
    assert all(o.status == "succeeded" for o in outcomes), outcomes
    uids = {uid for uid, _, _ in results}
    assert len(uids) == 4 and all(uid >= 61000 for uid in uids)
    assert all(gid == uid and groups == [] for uid, gid, groups in results)


def test_two_fork_servers_use_disjoint_uid_blocks(box):
    if not layers(box)["separate uid"]:
        pytest.skip("the engine is not root: children share its uid")
    other = sandbox.Sandbox(box.mode).start()
    try:
        request = trusted("import os\n\ndef execute(job):\n    return os.getuid()\n")
        their_uid = json.loads(other.run_attempt(request).result_json or "null")
        my_uid = json.loads(box.run_attempt(request).result_json or "null")
        # Asked after the trusted attempts, which get a fork server (and block) of their own.
        mine, theirs = box.attempt_uids(), other.attempt_uids()
        assert mine is not None and theirs is not None and not mine & theirs
        assert their_uid in theirs and my_uid in mine
    finally:
        other.stop()
    # A stopped fork server's block is free again.
    base, lock = sandbox.zygote.claim_uid_block()
    try:
        assert base <= min(theirs)
    finally:
        if lock is not None:
            lock.close()


def test_uid_blocks_are_locked_only_in_a_directory_only_root_can_write(tmp_path, monkeypatch):
    from sandbox import zygote

    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)  # like /run/lock: an attempt could plant links there
    monkeypatch.setattr(zygote, "UID_LOCK_DIR", str(shared))
    assert zygote.claim_uid_block() == (zygote.UID_BASE, None)
    # A second fork server of an engine (trusted attempts) refuses to share it instead.
    with pytest.raises(zygote.ZygoteError, match="no uid block is free"):
        zygote.claim_uid_block(shared_fallback=False)
    assert list(shared.iterdir()) == []

    private = tmp_path / "private"
    private.mkdir(0o755)
    monkeypatch.setattr(zygote, "UID_LOCK_DIR", str(private))
    target = tmp_path / "planted-target"
    (private / f"uids-{zygote.UID_BASE}.lock").symlink_to(target)  # as if planted before
    base, lock = zygote.claim_uid_block()
    try:
        if os.geteuid() == 0:
            # The link is not followed: that block is skipped, the next one is taken.
            assert base == zygote.UID_BASE + zygote.MAX_CHILDREN and lock is not None
        else:
            assert (base, lock) == (zygote.UID_BASE, None)  # not root-owned: no lock at all
        assert not target.exists()
    finally:
        if lock is not None:
            lock.close()


@pytest.mark.skipif(os.geteuid() != 0, reason="uid blocks are claimed only by a root engine")
def test_a_uid_block_with_an_account_of_the_machine_is_skipped(tmp_path, monkeypatch):
    # Attempts' ends kill every process of their uid: none may be a user's or a service's
    # (systemd's DynamicUser range, 61184-65519, overlaps the blocks).
    from sandbox import zygote

    private = tmp_path / "private"
    private.mkdir(0o755)
    monkeypatch.setattr(zygote, "UID_LOCK_DIR", str(private))
    monkeypatch.setattr(zygote, "_account_uids", lambda: {zygote.UID_BASE + 7})
    base, lock = zygote.claim_uid_block()
    try:
        assert base == zygote.UID_BASE + zygote.MAX_CHILDREN and lock is not None
    finally:
        lock.close()


def test_each_attempt_gets_a_fresh_private_directory(box):
    request = trusted("""
        import os

        def execute(job):
            before = os.listdir(".")
            with open("left-behind", "w") as f:
                f.write("x")
            return {"before": before, "mode": oct(os.stat(".").st_mode & 0o777)}
    """)
    for _ in range(3):
        outcome = box.run_attempt(request)
        assert json.loads(outcome.result_json or "null") == {"before": [], "mode": "0o700"}


def test_admitted_sources_run_from_the_cache_and_others_compile_in_the_child(box):
    source = "def execute(job):\n    return job.attempt\n"
    for admitted in (True, True, False):
        outcome = box.run_attempt(AttemptRequest(source, "execute", JOB, admitted=admitted))
        assert outcome.status == "succeeded" and outcome.result_json == "1"


def test_jobs_sharing_an_admitted_source_share_its_code_but_not_their_scope(box):
    source = "def execute(job):\n    raise ValueError(job.name)\n"
    for name in ("reminder-a", "reminder-b", "reminder-a"):
        outcome = box.run_attempt(AttemptRequest(source, "execute", {**JOB, "name": name}, admitted=True))
        assert outcome.status == "failed" and outcome.error is not None
        assert outcome.error["message"] == name
        assert outcome.error["traceback"] == ["line 2, in execute: raise ValueError(job.name)"]


def test_a_dead_fork_server_is_restarted(box):
    request = AttemptRequest("def execute(job):\n    return 1\n", "execute", JOB)
    assert box.run_attempt(request).status == "succeeded"
    os.kill(box._zygote._proc.pid, signal.SIGKILL)
    time.sleep(0.2)
    assert box.run_attempt(request).status == "succeeded"
    assert box.run_attempt(request).status == "succeeded"


def test_an_attempt_the_engine_gave_up_on_is_killed_and_the_fork_server_serves_on(monkeypatch):
    # A fork server too busy to answer in time (here: stopped) makes the engine give up
    # on the attempt. When it gets to the request, its reply fails: the child it started
    # must not run on unsupervised, and the fork server must not trip over the attempt.
    import sandbox.zygote

    box = sandbox.Sandbox("nobwrap").start()  # without bubblewrap its pid is the zygote's
    try:
        monkeypatch.setattr(sandbox.zygote, "_REPLY_TIMEOUT_SECONDS", 0.5)
        spinner = AttemptRequest("def execute(job):\n    while True:\n        pass\n", "execute", JOB,
                                 limits=Limits(timeout_seconds=30))
        zygote = box._zygote._proc.pid
        os.kill(zygote, signal.SIGSTOP)
        try:
            with pytest.raises(sandbox.zygote.ZygoteError):
                box.run_attempt(spinner)
        finally:
            os.kill(zygote, signal.SIGCONT)
        request = AttemptRequest("def execute(job):\n    return 1\n", "execute", JOB)
        for _ in range(3):
            assert box.run_attempt(request).status == "succeeded"
        assert box.fork_server_restarts() == 0, "the fork server died"
        uids = box.attempt_uids()
        deadline = time.monotonic() + 5
        while (running := _running_attempts(uids)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert running == [], "the abandoned attempt runs on"
    finally:
        box.stop()


def _running_attempts(uids: frozenset[int] | None) -> list[str]:
    """Processes of the sandbox's uids but its waiting children (or, without separate
    uids, processes named as running an attempt)."""
    return [f"{pid} {fields['Name']} uid={real_uid(fields)} {fields['State']}"
            for pid, fields in process_table().items()
            if fields["Name"] != "capsule-warm" and not fields["State"].startswith("Z")
            and (real_uid(fields) in uids if uids is not None else fields["Name"] == "capsule-job")]


def test_the_timeout_kills_a_child_that_ignores_signals(box):
    request = trusted("""
        import signal, time

        def execute(job):
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            time.sleep(30)
    """, limits=Limits(timeout_seconds=0.5))
    started = time.monotonic()
    outcome = box.run_attempt(request)
    assert outcome.status == "timed_out"
    assert time.monotonic() - started < 5


@pytest.mark.skipif(os.geteuid() != 0, reason="only a root engine has children that could act as root")
def test_without_the_fork_server_a_root_engine_refuses_trusted_attempts():
    box = sandbox.Sandbox("spawn").start()
    try:
        outcome = box.run_attempt(trusted("""
            def execute(job):
                return "ran as the engine's uid"
        """))
    finally:
        box.stop()
    assert outcome.status == "failed"
    assert outcome.error["type"] == "TrustedUnavailable" and "capsule doctor" in outcome.error["message"]
