"""Attacks that only the OS layer can stop: trusted payloads run native Python.

A trusted job is arbitrary code (cloudpickle bypasses RestrictedPython), so these cases
are what an escape from the restricted policy would be able to do next. Facts an
attacker would know (paths, the engine's pid and port) come in as the job's metadata.
The same cases run again without bubblewrap (``test_attacks_fallback.py``).
"""

from __future__ import annotations

import os
import pickle
import platform

import pytest

from conftest import REFUSED
from engine import model

pytestmark = pytest.mark.timeout(120)


# --- payloads (module-level so that the bundler can read their source) ----------------


def read_canary(job):
    try:
        with open(job.metadata["canary"]) as f:
            return f.read()
    except OSError as exc:
        return f"blocked: {type(exc).__name__}"


def write_canary(job):
    try:
        with open(job.metadata["canary"], "w") as f:
            f.write("pwned")
        return "written"
    except OSError as exc:
        return f"blocked: {type(exc).__name__}"


def read_store(job):
    try:
        with open(job.metadata["db"], "rb") as f:
            return f.read(64).decode("latin-1")
    except OSError as exc:
        return f"blocked: {type(exc).__name__}"


def read_token(job):
    try:
        with open(job.metadata["token_file"]) as f:
            return f.read()
    except OSError as exc:
        return f"blocked: {type(exc).__name__}"


def read_shadow(job):
    try:
        with open("/etc/shadow") as f:
            return f.read()
    except OSError as exc:
        return f"blocked: {type(exc).__name__}"


def write_system(job):
    import os

    results = []
    for path in ("/usr/bin/capsule-pwned", "/etc/capsule-pwned", "/capsule-pwned", job.metadata["pwned"]):
        try:
            with open(path, "w") as f:
                f.write("x")
            results.append(f"wrote {path}")
            if path != job.metadata["pwned"]:
                os.unlink(path)
        except OSError as exc:
            results.append(type(exc).__name__)
    return results


def symlink_cleanup(job):
    import os

    os.symlink(job.metadata["canary_dir"], "link-to-outside")
    os.symlink(job.metadata["canary"], "file-link")
    os.mkdir("d")
    os.symlink(job.metadata["canary_dir"], "d/nested-link")
    return sorted(os.listdir("."))


def deep_tree(job):
    # Deeper than Python's recursion limit: a recursive removal (shutil.rmtree on 3.11)
    # raised RecursionError in the fork server's cleanup, which took it down.
    import os

    for _ in range(1500):
        os.mkdir("d")
        os.chdir("d")
    os.chmod(".", 0)  # and one it cannot enter until it is made accessible again
    return "deep"


def many_files(job):
    # Cleaned up while the fork server goes on serving (a process of the attempt's uid
    # removes them), not in its loop.
    import os

    os.mkdir("many")
    for n in range(20000):
        open(f"many/{n}", "w").close()
    return "many"


def leave_ipc_objects(job):
    # System V shared memory outlives the attempt, outside its memory limit, readable by
    # whoever comes next; a socket reaches other attempts over loopback or abstract names.
    import ctypes
    import socket

    libc = ctypes.CDLL(None, use_errno=True)
    shm = libc.shmget(0, 1 << 20, 0o1666)  # IPC_PRIVATE, IPC_CREAT | 0666
    sem = libc.semget(0, 1, 0o1666)
    msg = libc.msgget(0, 0o1666)
    try:
        socket.socket(socket.AF_UNIX, socket.SOCK_STREAM).bind("\0capsule-attempt")
        sock = "bound"
    except OSError as exc:
        sock = f"blocked: {type(exc).__name__}"
    # A socketpair() end is a socket too: bound to a name, another attempt could reach it.
    end, _ = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        end.bind("\0capsule-attempt-pair")
        pair = "bound"
    except OSError as exc:
        pair = f"blocked: {type(exc).__name__}"
    return [shm, sem, msg, sock, pair]


def write_shared_dirs(job):
    results = []
    for directory in ("/tmp", "/var/tmp", "/dev/shm", "/run/lock"):
        try:
            with open(f"{directory}/capsule-left-{job.metadata['engine_pid']}", "w") as f:
                f.write("left for the next attempt")
            results.append(f"wrote {directory}")
        except OSError as exc:
            results.append(type(exc).__name__)
    return results


def engine_environ(job):
    import os

    found = []
    for pid in [str(job.metadata["engine_pid"]), "1", "2"] + os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                found.append(f.read().decode("latin-1"))
        except OSError:
            pass
    return found


def engine_fds(job):
    import os

    pid = job.metadata["engine_pid"]
    out = []
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                with open(f"/proc/{pid}/fd/{fd}", "rb") as f:
                    out.append(f.read(64).decode("latin-1"))
            except OSError:
                pass
    except OSError as exc:
        return f"blocked: {type(exc).__name__}"
    return out


def engine_memory(job):
    pid = job.metadata["engine_pid"]
    try:
        with open(f"/proc/{pid}/mem", "rb") as f:
            return f.read(16).hex()
    except OSError as exc:
        return f"blocked: {type(exc).__name__}"


def own_environ(job):
    import os

    try:
        with open("/proc/self/environ", "rb") as f:
            raw = f.read().decode("latin-1")
    except OSError as exc:  # not dumpable: /proc/self belongs to root
        raw = type(exc).__name__
    return {"environ": dict(os.environ), "raw": raw}


def connect_engine(job):
    import socket

    try:
        with socket.socket() as sock:  # refused by seccomp; unreachable without it too
            sock.settimeout(1)
            sock.connect(("127.0.0.1", job.metadata["port"]))
        return "connected"
    except OSError as exc:
        return f"blocked: {type(exc).__name__}"


def connect_internet(job):
    import socket

    results = []
    for address in (("1.1.1.1", 53), ("8.8.8.8", 443)):
        try:
            with socket.socket() as sock:
                sock.settimeout(1)
                sock.connect(address)
            results.append("connected")
        except OSError as exc:
            results.append(type(exc).__name__)
    try:
        socket.getaddrinfo("example.com", 80)
        results.append("resolved")
    except Exception as exc:  # no resolver, or (fallback) no readable codec module
        results.append(type(exc).__name__)
    return results


def kill_engine(job):
    import os
    import signal

    results = []
    for pid in (job.metadata["engine_pid"], os.getppid(), 1):
        try:
            os.kill(pid, signal.SIGKILL)
            results.append("killed")
        except OSError as exc:
            results.append(type(exc).__name__)
    return results


def kill_everything(job):
    import os
    import signal

    os.kill(-1, signal.SIGKILL)
    return "survived"


def fork_bomb(job):
    import os

    while True:
        try:
            os.fork()
        except OSError:
            pass


def thread_bomb(job):
    import threading
    import time

    threads = []
    for _ in range(100000):
        t = threading.Thread(target=time.sleep, args=(30,))
        t.start()
        threads.append(t)


def disk_bomb(job):
    with open("big", "wb") as f:
        chunk = b"x" * (1 << 20)
        for _ in range(10000):
            f.write(chunk)


def tmp_bomb(job):
    with open("/tmp/big", "wb") as f:
        chunk = b"x" * (1 << 20)
        for _ in range(10000):
            f.write(chunk)


def fd_bomb(job):
    import os

    fds = []
    while True:
        fds.extend(os.pipe())


def memory_bomb(job):
    blocks = []
    while True:
        blocks.append(bytearray(50 << 20))


def ignore_sigterm(job):
    import signal
    import time

    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    time.sleep(100)


def setsid_grandchild(job):
    import os
    import time

    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            time.sleep(100)
        os._exit(0)
    time.sleep(100)


def daemon_after_success(job):
    import os
    import time

    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            time.sleep(100)
            os._exit(0)
        os._exit(0)
    return "done"


def forge_frames(job):
    import json
    import os
    import struct

    body = json.dumps({"type": "result", "value": "forged"}).encode()
    os.write(3, struct.pack(">I", len(body)) + body)
    os.write(3, struct.pack(">I", len(body)) + body)
    return "again"


def huge_frame(job):
    import os
    import struct

    os.write(3, struct.pack(">I", 0x7FFFFFFF) + b"x" * 1000)
    import time

    time.sleep(5)


def exit_quietly(job):
    import os

    os._exit(0)


def close_channel_and_linger(job):
    import os
    import time

    os.close(3)
    time.sleep(100)


class _Hostile(Exception):
    def __str__(self):
        raise RuntimeError("no")


def hostile_exception(job):
    class Hostile(Exception):
        def __str__(self):
            raise RuntimeError("no")

        def __repr__(self):
            raise RuntimeError("no")

    raise Hostile()


def hostile_result(job):
    class Evil(dict):
        def __repr__(self):
            raise RuntimeError("no")

        def items(self):
            raise RuntimeError("no")

    return Evil(a=1)


def ptrace_neighbour(job):
    import ctypes
    import os

    libc = ctypes.CDLL(None, use_errno=True)
    results = []
    for pid in (job.metadata["engine_pid"], os.getppid(), 1):
        results.append(libc.ptrace(16, pid, 0, 0))  # PTRACE_ATTACH
    return results


def namespace_escape(job):
    import ctypes
    import os

    libc = ctypes.CDLL(None, use_errno=True)
    return [libc.unshare(0x10000000), libc.setuid(0), libc.chroot(b"/"), os.getuid()]


def user_namespace_by_clone(job):
    import ctypes
    import errno
    import os

    libc = ctypes.CDLL(None, use_errno=True)
    stack = ctypes.create_string_buffer(1 << 16)
    callback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p)(lambda _: 0)
    top = ctypes.c_void_p(ctypes.addressof(stack) + (1 << 16))
    pid = libc.clone(callback, top, 0x10000000 | 17, None)  # CLONE_NEWUSER | SIGCHLD
    if pid > 0:
        os.waitpid(pid, 0)
        return "cloned"
    return errno.errorcode.get(ctypes.get_errno(), "?")


# --- cases ----------------------------------------------------------------------------

FAILED = "failed"
TIMED_OUT = "timed_out"
CRASHED = "crashed"
OK = "succeeded"


def blocked(result):
    return isinstance(result, str) and result.startswith("blocked")


CASES = [
    # filesystem
    pytest.param(read_canary, OK, blocked, id="read-canary"),
    pytest.param(write_canary, OK, blocked, id="write-canary"),
    pytest.param(read_store, OK, blocked, id="read-store"),
    pytest.param(read_token, OK, blocked, id="read-admin-token"),
    pytest.param(read_shadow, OK, blocked, id="read-shadow"),
    # System paths refuse writes; /tmp may be the sandbox's own (the harness checks the host's).
    pytest.param(write_system, OK, lambda r: not any(x.startswith("wrote") for x in r[:3]), id="write-system"),
    pytest.param(symlink_cleanup, OK, None, id="symlinks-in-workdir"),
    pytest.param(deep_tree, OK, None, id="deep-tree-in-workdir"),
    pytest.param(many_files, OK, None, id="many-files-in-workdir"),
    pytest.param(write_shared_dirs, OK, lambda r: not any(x.startswith("wrote") for x in r), id="shared-dirs"),
    # between attempts
    pytest.param(leave_ipc_objects, OK, lambda r: r == [-1, -1, -1] + ["blocked: PermissionError"] * 2,
                 id="ipc-and-sockets"),
    # secrets
    pytest.param(engine_environ, OK, None, id="engine-environ"),
    pytest.param(engine_fds, OK, lambda r: blocked(r) or r == [], id="engine-fds"),
    pytest.param(engine_memory, OK, blocked, id="engine-memory"),
    pytest.param(own_environ, OK, lambda r: set(r["environ"]) <= {"PATH", "LANG", "TMPDIR"}, id="own-environ"),
    # network
    pytest.param(connect_engine, OK, blocked, id="connect-engine"),
    pytest.param(connect_internet, OK, lambda r: "connected" not in r and "resolved" not in r, id="internet"),
    # signals and privileges
    pytest.param(kill_engine, OK, lambda r: "killed" not in r, id="kill-engine"),
    pytest.param(kill_everything, {OK, CRASHED}, None, id="kill-minus-one"),
    pytest.param(ptrace_neighbour, OK, lambda r: all(x == -1 for x in r), id="ptrace"),
    pytest.param(namespace_escape, OK, lambda r: r[:3] == [-1, -1, -1] and r[3] != 0, id="unshare-setuid-chroot"),
    pytest.param(user_namespace_by_clone, OK, lambda r: r == "EPERM", id="clone-new-user-namespace"),
    # resource bombs
    pytest.param(fork_bomb, {TIMED_OUT, FAILED, CRASHED}, None, id="fork-bomb"),
    pytest.param(thread_bomb, {FAILED, TIMED_OUT, CRASHED}, None, id="thread-bomb"),
    pytest.param(disk_bomb, FAILED, None, id="disk-workdir"),
    pytest.param(tmp_bomb, FAILED, None, id="disk-tmp"),
    pytest.param(fd_bomb, FAILED, None, id="descriptors"),
    pytest.param(memory_bomb, {FAILED, CRASHED}, None, id="memory"),
    # timing
    pytest.param(ignore_sigterm, TIMED_OUT, None, id="ignore-sigterm"),
    pytest.param(setsid_grandchild, TIMED_OUT, None, id="setsid-grandchild"),
    pytest.param(daemon_after_success, OK, None, id="daemon-after-success"),
    # protocol
    # Its own result, forged or not, is all a child can claim: identity is the channel's.
    pytest.param(forge_frames, {OK, CRASHED}, lambda r: r in ("forged", None), id="forged-frames"),
    pytest.param(huge_frame, CRASHED, None, id="huge-frame"),
    pytest.param(exit_quietly, CRASHED, None, id="exit-without-result"),
    pytest.param(close_channel_and_linger, CRASHED, None, id="close-channel-and-linger"),
    pytest.param(hostile_exception, FAILED, None, id="hostile-exception"),
    pytest.param(hostile_result, {FAILED, OK}, None, id="hostile-result"),
]


NEEDS_NETWORK_NAMESPACE = (connect_engine, connect_internet)


@pytest.mark.parametrize(("payload", "expected", "check"), CASES)
def test_os_layer_contains_trusted_code(harness, payload, expected, check):
    if payload in NEEDS_NETWORK_NAMESPACE and not harness.layers.get("network namespace"):
        pytest.xfail("no network namespace on this machine (neither bubblewrap nor unshare works)")
    outcome = harness.run(payload, isolation="trusted", timeout=2.0,
                          limits=model.Limits(memory_mb=256, output_bytes=1 << 20))
    harness.assert_contained(outcome, expected)
    if check is not None:
        assert check(outcome.result), outcome


class _RunsAtUnpickle:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (os.system, (f"echo pwned > {self.path}; kill -9 -1",))


def test_a_payload_that_acts_at_unpickle_time_is_contained(harness):
    payload = pickle.dumps(_RunsAtUnpickle(harness.facts["pwned"]))
    outcome = harness.run("def execute(job):\n    return 1\n", isolation="trusted", payload=payload)
    harness.assert_contained(outcome, {FAILED, CRASHED})


def fill_and_lock_workdir(job):
    # Made unreadable to its own uid, it was not emptied but kept out of reach, and what
    # it held stayed counted against the fork server's tmpfs until it stopped.
    import os

    for n in range(120):  # 60 MiB, each file under the file size limit
        with open(f"fill-{n}", "wb") as f:
            f.write(b"x" * (512 << 10))
    os.chmod(".", 0)
    return "locked"


def free_mib(job):
    import os

    st = os.statvfs(".")
    return st.f_bavail * st.f_frsize >> 20


def test_what_an_attempt_leaves_in_a_locked_directory_is_freed(harness):
    limits = model.Limits(memory_mb=256, output_bytes=1 << 20)
    before = harness.run(free_mib, isolation="trusted", limits=limits)
    harness.assert_contained(before, OK)
    outcome = harness.run(fill_and_lock_workdir, isolation="trusted", timeout=10.0, limits=limits)
    harness.assert_contained(outcome, OK)
    for _ in range(20):  # its cleaner runs beside the fork server: a moment, not a lifetime
        after = harness.run(free_mib, isolation="trusted", limits=limits)
        if after.result is not None and after.result >= before.result - 8:
            break
    harness.assert_contained(after, OK)
    assert after.result >= before.result - 8, (before.result, after.result)


def read_other_jobs_code(job):
    # A forked child holds what its parent held: the compiled code of other jobs (the
    # fork server's cache), and whatever their requests left in freed memory.
    import ctypes
    import sys

    runner = sys.modules.get("sandbox.runner")
    found = [repr(code.co_consts) for code in getattr(runner, "CODE_CACHE", {}).values()]
    with open("/proc/self/maps") as maps:
        for line in maps:
            fields = line.split()
            if fields[1].startswith("rw") and (len(fields) == 5 or fields[5] == "[heap]"):
                low, high = (int(x, 16) for x in fields[0].split("-"))
                data = ctypes.string_at(low, high - low)
                at = data.find(b"s3cr3t-")
                while at != -1 and len(found) < 20:
                    found.append(data[at:at + 40].decode("latin-1"))
                    at = data.find(b"s3cr3t-", at + 1)
    return found


def test_trusted_code_cannot_read_what_other_jobs_compiled(harness):
    victim = harness.run(f"def execute(job):\n    api_key = {harness.secret!r}\n    return len(api_key)\n")
    harness.assert_contained(victim, OK)
    outcome = harness.run(read_other_jobs_code, isolation="trusted", timeout=10.0,
                          limits=model.Limits(memory_mb=256, output_bytes=1 << 20))
    harness.assert_contained(outcome, OK)  # the secret is in none of what it found


def test_a_payload_from_another_python_minor_version_is_refused(harness):
    outcome = harness.run("def execute(job):\n    return 1\n", isolation="trusted",
                          payload=pickle.dumps(1), python_version="3.10.4")
    assert outcome.status == REFUSED
    assert "3.10.4" in outcome.text and platform.python_version() in outcome.text


def trusted_control(job):
    import collections
    import os
    import statistics
    import tempfile

    with open("scratch.txt", "w") as f:
        f.write("ok")
    with open("scratch.txt") as f:
        text = f.read()
    cwd_private = os.listdir(".") == ["scratch.txt"]
    with tempfile.NamedTemporaryFile("w+") as temporary:
        temporary.write("temp")
        temporary.seek(0)
        in_workdir = os.path.dirname(temporary.name) == os.getcwd()
        text += temporary.read()
    return {"text": text, "mean": statistics.mean([1, 2, 3]), "c": collections.Counter("aab")["a"],
            "cwd_private": cwd_private, "tempfile_in_workdir": in_workdir}


def test_trusted_control_succeeds(harness):
    outcome = harness.run(trusted_control, isolation="trusted")
    harness.assert_contained(outcome, OK)
    assert outcome.result == {"text": "oktemp", "mean": 2, "c": 2, "cwd_private": True, "tempfile_in_workdir": True}
