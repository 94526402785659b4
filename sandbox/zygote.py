"""The engine's handle on the fork server (``sandbox.forkserver``).

``Zygote`` starts the fork server (inside bubblewrap when available), hands it the
child's descriptors for each attempt, and restarts it if it dies. ``ZygoteChild`` is
one forked child as the engine sees it: its pipes, and kill and wait through the fork
server. The fork server itself lives in its own module, because what it imports is
what every attempt pays for.
"""

from __future__ import annotations

import array
import contextlib
import json
import logging
import os
import queue
import select
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sandbox.forkserver import CHILD_ENV, CONTROL_BYTES, MAX_CACHED_SOURCE_BYTES, MAX_CHILDREN, UID_BASE, set_dumpable

__all__ = ["Zygote", "ZygoteChild", "ZygoteError", "ZygoteOptions", "bwrap_works", "claim_uid_block",
           "set_dumpable", "unshare_net_works"]

log = logging.getLogger(__name__)

_START_TIMEOUT_SECONDS = 20.0
_REPLY_TIMEOUT_SECONDS = 10.0

_PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
_BOOTSTRAP = "import sys; sys.path.insert(0, sys.argv[1]); from sandbox.forkserver import main; main()"


class ZygoteError(RuntimeError):
    """The zygote could not be started or did not answer."""


# Blocks of MAX_CHILDREN uids from UID_BASE, one per running zygote on the machine (other
# engines' too), claimed with a lock file: two zygotes sharing a uid would share its
# process limit, and an attempt's end kills every process of its uid. The locks live in
# a directory only root can write: an attempt (without bubblewrap it sees the host's
# /run/lock) must not plant a link there for root to follow.
UID_BLOCKS = 16
UID_LOCK_DIR = "/run/capsule"


def claim_uid_block(shared_fallback: bool = True) -> tuple[int, Any]:
    """The first uid block no other zygote holds and no account of the machine uses, and
    the open lock file that holds it (close it to release). All taken, or nowhere safe to
    lock: the first block and None, or ZygoteError without ``shared_fallback``."""
    import fcntl

    if _lock_dir_is_safe():
        accounts = _account_uids()
        for n in range(UID_BLOCKS):
            base = UID_BASE + n * MAX_CHILDREN
            if any(uid in accounts for uid in range(base, base + MAX_CHILDREN)):
                continue  # a user or service of this machine (systemd's DynamicUser range overlaps)
            try:
                fd = os.open(os.path.join(UID_LOCK_DIR, f"uids-{base}.lock"),
                             os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            except OSError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                continue
            return base, os.fdopen(fd, "r+")
    if not shared_fallback:
        raise ZygoteError(f"no uid block is free (locks in {UID_LOCK_DIR}: {UID_BLOCKS} blocks from {UID_BASE}, "
                          "two per engine); stop another engine on this machine")
    log.warning("no uid block could be claimed in %s; attempts use uids from %d, which another engine on "
                "this machine may use too", UID_LOCK_DIR, UID_BASE, extra={"action": "sandbox_uids"})
    return UID_BASE, None


def _account_uids() -> set[int]:
    """The uids of the machine's users and services, as the user database lists them."""
    import pwd

    try:
        return {entry.pw_uid for entry in pwd.getpwall()}
    except OSError:
        return set()


def _lock_dir_is_safe() -> bool:
    """UID_LOCK_DIR exists, or is made, as a real directory only root can write."""
    import stat

    try:
        os.mkdir(UID_LOCK_DIR, 0o755)
    except FileExistsError:
        pass
    except OSError:
        return False
    try:
        info = os.lstat(UID_LOCK_DIR)
    except OSError:
        return False
    return stat.S_ISDIR(info.st_mode) and info.st_uid == 0 and not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


@dataclass(frozen=True)
class ZygoteOptions:
    bwrap: str | None  # path of bwrap, or None to run without it
    tmpfs_bytes: int = 256 << 20
    # Fallback without bubblewrap: network, ipc and mount namespaces through `unshare`;
    # the zygote then mounts private tmpfs on /tmp and /dev/shm itself.
    unshare_net: bool = False
    warm_children: int = 2  # children forked ahead of time
    # Without a uid block of its own, refuse to start rather than share the first one
    # (a second fork server of the same engine would kill the first one's attempts).
    own_uid_block: bool = False


class ZygoteChild:
    """One forked child, seen from the engine: its pipes, and kill/wait through the zygote."""

    def __init__(self, ctl: socket.socket, stdout_fd: int, stderr_fd: int, pid: int) -> None:
        self.ctl = ctl
        self.stdout_fd = stdout_fd
        self.stderr_fd = stderr_fd
        self.pid = pid  # in the zygote's PID namespace: for logs only
        self._exit: tuple[int, float] | None = None

    def has_exited(self) -> bool:
        return False  # exit_fd tells

    @property
    def exit_fd(self) -> int:
        """Readable once the zygote reports the child's exit."""
        return self.ctl.fileno()

    def kill(self, grace: float = 0.0) -> None:
        """Ask the zygote to kill the sandbox, unless the child exits within ``grace``."""
        if grace > 0 and select.select([self.ctl], [], [], grace)[0]:
            return  # it exited; the zygote cleans up whatever it left
        with contextlib.suppress(OSError):
            self.ctl.send(b"kill")

    def wait(self) -> tuple[int, float]:
        """The wait status and CPU seconds, after the whole sandbox of this attempt is gone."""
        if self._exit is None:
            self.ctl.settimeout(_REPLY_TIMEOUT_SECONDS * 3)
            try:
                data = self.ctl.recv(4096)
                message = json.loads(data) if data else None
            except (OSError, ValueError):
                message = None
            if not isinstance(message, dict) or "status" not in message:
                # The zygote died with the child: report a kill; nothing of it can survive
                # (bubblewrap's --die-with-parent, the zygote's PDEATHSIG).
                self._exit = (signal.SIGKILL, 0.0)
            else:
                self._exit = (int(message["status"]), float(message["cpu"]))
        return self._exit

    def release(self) -> tuple[int, float]:
        """Hand the child back: closing its control socket makes the zygote kill what is
        left of the attempt and clean up, while the engine carries on."""
        self.ctl.close()
        return 0, 0.0

    def close(self) -> None:
        for fd in (self.stdout_fd, self.stderr_fd):
            with contextlib.suppress(OSError):
                os.close(fd)
        self.ctl.close()


class Zygote:
    """The engine's handle on one fork server; thread-safe; restarts a dead zygote."""

    def __init__(self, options: ZygoteOptions) -> None:
        self.options = options
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._control: socket.socket | None = None
        self.info: dict[str, Any] = {}
        self._uid_lock: Any = None
        self.starts = 0  # fork servers started; more than one means one died

    def start(self) -> Zygote:
        with self._lock:
            self._start_locked()
        return self

    def stop(self) -> None:
        with self._lock:
            self._stop_locked()

    def _start_locked(self) -> None:
        self._stop_locked()
        engine_end, zygote_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        for sock in (engine_end, zygote_end):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, CONTROL_BYTES)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, CONTROL_BYTES)
        uid_base, self._uid_lock = (claim_uid_block(not self.options.own_uid_block) if os.geteuid() == 0
                                    else (UID_BASE, None))
        command = [sys.executable, "-I", "-B", "-c", _BOOTSTRAP, _PACKAGE_ROOT,
                   f"warm={self.options.warm_children}", f"uids={uid_base}", str(zygote_end.fileno())]
        if self.options.bwrap:
            command = _bwrap_command(self.options) + command
        elif self.options.unshare_net:
            command = ["unshare", "--net", "--ipc", "--mount", "--propagation", "private", "--"] + command
            command.append("private-tmp")
        try:
            proc = _in_keeper_thread(lambda: subprocess.Popen(
                command,
                env={} if self.options.bwrap else dict(CHILD_ENV),
                cwd="/",
                stdin=subprocess.DEVNULL,
                close_fds=True,
                pass_fds=(zygote_end.fileno(),),
                process_group=0,
                # bubblewrap creates the bind targets' parents with this umask; they
                # must be traversable by the children's uids.
                umask=0o022,
            ))
        finally:
            zygote_end.close()
        engine_end.settimeout(_START_TIMEOUT_SECONDS)
        try:
            ready = json.loads(engine_end.recv(4096) or b"null")
        except (OSError, ValueError):
            ready = None
        if not isinstance(ready, dict) or ready.get("ready") is not True:
            with contextlib.suppress(OSError):
                proc.kill()
            proc.wait()
            engine_end.close()
            raise ZygoteError(f"the fork server did not start (command: {command[0]})")
        engine_end.settimeout(_REPLY_TIMEOUT_SECONDS)
        self._proc, self._control, self.info = proc, engine_end, ready
        self.starts += 1

    def _stop_locked(self) -> None:
        if self._control is not None:
            self._control.close()  # the zygote kills its children and exits on EOF
            self._control = None
        if self._proc is not None:
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            self._proc = None
        if self._uid_lock is not None:
            self._uid_lock.close()  # after the zygote (and so every child of it) is gone
            self._uid_lock = None

    def fork(self, admitted_source: str | None, trusted: bool = False,
             opening: bytes = b"") -> tuple[ZygoteChild, socket.socket, bytes]:
        """A new child; returns it, the engine's end of its channel, and what of
        ``opening`` (the first bytes for the child) is still to be sent. A ``trusted``
        child loads cloudpickle before it drops privileges."""
        engine_chan, child_chan = socket.socketpair()
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        engine_ctl, child_ctl = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        request: dict[str, Any] = {"trusted": trusted}
        if admitted_source is not None and len(admitted_source.encode("utf-8")) <= MAX_CACHED_SOURCE_BYTES:
            request["source"] = admitted_source
        fds = [child_chan.fileno(), out_w, err_w, child_ctl.fileno()]
        try:
            self._send(json.dumps(request).encode("utf-8"), fds)
        except BaseException:
            for fd in (out_r, err_r):
                os.close(fd)
            engine_chan.close()
            engine_ctl.close()
            raise
        finally:
            child_chan.close()
            child_ctl.close()
            os.close(out_w)
            os.close(err_w)
        # Queued before the fork server's reply, so that the child finds them the moment
        # it starts instead of waiting one more round trip through the engine.
        sent = 0
        engine_chan.setblocking(False)
        with contextlib.suppress(OSError):  # full, or the child is gone: the session sends
            sent = engine_chan.send(opening)
        engine_ctl.settimeout(_REPLY_TIMEOUT_SECONDS)
        try:
            reply = json.loads(engine_ctl.recv(4096) or b"null")
        except (OSError, ValueError):
            reply = None
        if not isinstance(reply, dict) or not isinstance(reply.get("pid"), int):
            for fd in (out_r, err_r):
                os.close(fd)
            engine_chan.close()
            engine_ctl.close()
            raise ZygoteError(f"the fork server refused the attempt: {reply!r}"[:300])
        engine_ctl.settimeout(None)
        return ZygoteChild(engine_ctl, out_r, err_r, reply["pid"]), engine_chan, opening[sent:]

    def _send(self, data: bytes, fds: list[int]) -> None:
        with self._lock:
            for attempt in (1, 2):
                if self._control is None or (self._proc is not None and self._proc.poll() is not None):
                    log.warning("restarting the fork server", extra={"action": "zygote_restart"})
                    self._start_locked()
                assert self._control is not None
                try:
                    self._control.sendmsg([data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))])
                    return
                except OSError:
                    if attempt == 2:
                        raise
                    self._stop_locked()


_keeper_lock = threading.Lock()
_keeper_jobs: queue.SimpleQueue[tuple[Callable[[], Any], list[Any], threading.Event]] = queue.SimpleQueue()
_keeper: threading.Thread | None = None


def _in_keeper_thread(start: Callable[[], Any]) -> Any:
    """Run ``start`` in one thread that lives as long as the engine.

    The zygote dies with its parent (PR_SET_PDEATHSIG, bubblewrap's --die-with-parent),
    and Linux means the parent *thread*: started from a worker or gRPC thread, the zygote
    would be killed when that thread ends.
    """
    global _keeper
    with _keeper_lock:
        if _keeper is None or not _keeper.is_alive():
            _keeper = threading.Thread(target=_keep, name="capsule-zygote-keeper", daemon=True)
            _keeper.start()
    box: list[Any] = []
    done = threading.Event()
    _keeper_jobs.put((start, box, done))
    done.wait()
    if isinstance(box[0], BaseException):
        raise box[0]
    return box[0]


def _keep() -> None:
    while True:
        start, box, done = _keeper_jobs.get()
        try:
            box.append(start())
        except BaseException as exc:  # noqa: BLE001 - handed back to the caller
            box.append(exc)
        done.set()


def _bwrap_command(options: ZygoteOptions) -> list[str]:
    """bubblewrap around the zygote: new pid/net/ipc/uts namespaces, read-only system."""
    command = [
        options.bwrap or "bwrap",
        "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
        "--die-with-parent", "--new-session",
        "--hostname", "capsule",
        "--proc", "/proc", "--dev", "/dev",
        "--size", str(options.tmpfs_bytes), "--tmpfs", "/tmp",
        "--clearenv", "--chdir", "/",
    ]
    for name, value in CHILD_ENV.items():
        command += ["--setenv", name, value]
    binds = ["/usr", "/bin", "/lib", "/lib64", "/lib32", "/libx32", "/sbin"]
    targets: set[str] = set()
    for path in binds + _python_dirs():
        for target in (os.path.abspath(path), os.path.realpath(path)):
            if target != "/" and os.path.exists(target):
                targets.add(target)
    # Parents bubblewrap would create 0700 are made traversable, and parents are bound
    # before their children so that nothing is shadowed.
    parents = {parent for target in targets for parent in _ancestors(target)} - targets
    for parent in sorted(parents, key=len):
        command += ["--perms", "0755", "--dir", parent]
    for target in sorted(targets, key=lambda t: (t.count("/"), t)):
        command += ["--ro-bind", target, target]
    if os.getuid() == 0:
        # Root inside the namespaces, so the zygote can give each child its own uid;
        # the children lose every capability when they drop to that uid.
        command += ["--cap-add", "CAP_SETUID,CAP_SETGID,CAP_KILL,CAP_CHOWN,CAP_FOWNER,CAP_DAC_OVERRIDE"]
    return command


def _ancestors(path: str) -> list[str]:
    parts = path.strip("/").split("/")[:-1]
    return ["/" + "/".join(parts[: n + 1]) for n in range(len(parts))]


def _python_dirs() -> list[str]:
    """What the interpreter, its standard library, this package and its dependencies need."""
    dirs = [sys.prefix, sys.exec_prefix, sys.base_prefix, sys.base_exec_prefix,
            os.path.dirname(os.path.realpath(sys.executable)), os.path.dirname(os.path.abspath(sys.executable)),
            _PACKAGE_ROOT]
    for name in ("RestrictedPython", "cloudpickle"):
        with contextlib.suppress(Exception):
            module = __import__(name)
            dirs.append(os.path.dirname(os.path.dirname(os.path.realpath(module.__file__ or ""))))
    for path in sys.path:
        if path and os.path.isdir(path) and "site-packages" in path:
            dirs.append(path)
    # Nested paths are covered by their parents; binding a parent twice is harmless.
    return [d for d in dirs if d and d != "/"]


def bwrap_works(bwrap: str) -> tuple[bool, str]:
    """Whether bubblewrap can create the namespaces here (it can be installed but blocked)."""
    try:
        done = subprocess.run(
            [bwrap, "--unshare-pid", "--unshare-net", "--ro-bind", "/", "/", "--proc", "/proc",
             "--dev", "/dev", "true"],
            env={}, capture_output=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, str(exc)
    if done.returncode != 0:
        return False, done.stderr.decode("utf-8", "replace").strip()[:200]
    return True, ""


def unshare_net_works() -> bool:
    try:
        done = subprocess.run(["unshare", "--net", "--ipc", "--mount", "--propagation", "private", "--", "true"],
                              env={}, capture_output=True,
                              timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0
