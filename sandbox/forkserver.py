"""The fork server (zygote) process: one small process that forks a fresh child per attempt.

It runs as ``python -I -B`` (started by ``sandbox.zygote.Zygote``, inside bubblewrap
when available), imports the sandbox runner and RestrictedPython once and nothing of the
engine, and is single-threaded, so forking it is safe and cheap.

What it imports decides what every attempt costs: a fork copies its page tables and the
child takes copy-on-write faults on whatever Python touches. ``threading`` (which
``logging`` and ``cloudpickle`` import) registers an at-fork hook that runs Python code
in every child and doubles its page faults, so this module and ``preload`` keep it out;
``test_forkserver_preload_stays_lean`` checks that. Trusted attempts import cloudpickle
in their own child, before they drop privileges (but for the fallback with a private
/tmp, see ``main``).

One attempt, as the zygote sees it: a request on the control socket carries four
descriptors (the channel, stdout and stderr pipes, and a per-attempt control socket).
The zygote hands them to a child it forked ahead of time (or forks one): each child has
its own unprivileged uid (from a block of ``MAX_CHILDREN`` the engine claimed for this
zygote, ``UID_BASE`` up; see ``sandbox.zygote.claim_uid_block``) and an empty
working directory owned by it. The child starts a new session, keeps only the channel
(fd 3) and stdout/stderr, drops to that uid (no groups, no new privileges), and runs
``sandbox.runner``, which applies the rlimits before it reads any user byte. When the
child exits, or the engine asks for a kill, the zygote kills every process of that uid
(``kill(-1, SIGKILL)`` from a short-lived process running as the uid, which also
reaches grandchildren that called ``setsid()``), removes the working directory without
following links, and only then reports the exit status and CPU time on the attempt's
control socket and frees the uid.

Compiled code is cached here per source digest, but only for sources the
engine marks as admitted: they already compiled in a sandboxed child under limits when
the job was created (``check_source``). Every other source is compiled by the child
itself, under its own limits.
"""

from __future__ import annotations

import _signal
import array
import contextlib
import ctypes
import gc
import io
import json
import os
import select
import selectors
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from sandbox import seccomp

__all__ = ["CHANNEL_FD", "UID_BASE", "main", "preload", "set_dumpable"]

CHANNEL_FD = 3
UID_BASE = 61000
MAX_CHILDREN = 256
# Sources larger than this are compiled by the child; the cache stays small.
MAX_CACHED_SOURCE_BYTES = 64 << 10
MAX_CACHED_CODES = 256
# Children forked ahead of time, so that an attempt does not wait for fork and set-up.
WARM_CHILDREN = 2
# Process names (comm) of waiting children and of children running an attempt.
WARM_NAME = b"capsule-warm"
ATTEMPT_NAME = b"capsule-job"
CONTROL_BYTES = 256 << 10
TMPFS_BYTES = 256 << 20
CHILD_ENV = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
_PR_SET_PDEATHSIG = 1
_PR_SET_NAME = 15
_PR_SET_DUMPABLE = 4
_PR_SET_CHILD_SUBREAPER = 36
_PR_SET_NO_NEW_PRIVS = 38


def set_dumpable(flag: bool) -> bool:
    """prctl(PR_SET_DUMPABLE): with 0, same-uid processes cannot read our /proc files."""
    return _prctl(_PR_SET_DUMPABLE, 1 if flag else 0)


def _prctl(option: int, value: int) -> bool:
    libc = _libc()
    if libc is None:
        return False
    try:
        return libc.prctl(option, ctypes.c_ulong(value), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


_LIBC: Any = None


def _libc() -> Any:
    global _LIBC
    if _LIBC is None:
        try:
            _LIBC = ctypes.CDLL(None, use_errno=True)
        except OSError:
            return None
    return _LIBC



@dataclass
class _Attempt:
    pid: int
    uid: int | None
    ctl: socket.socket | None  # None for a warm child that died before its attempt
    workdir: str


@dataclass
class _Warm:
    """A child forked ahead of time, isolated, waiting for its attempt's descriptors."""

    pid: int
    uid: int | None
    workdir: str
    sock: socket.socket


class _Server:
    def __init__(self, control: socket.socket, warm_children: int, uid_base: int) -> None:
        self.control = control
        self.warm_children = warm_children
        self.as_root = os.geteuid() == 0
        self.uid_base = uid_base
        self.free_uids = [uid_base + n for n in range(MAX_CHILDREN)] if self.as_root else []
        self.attempts: dict[int, _Attempt] = {}
        self.by_ctl: dict[int, _Attempt] = {}
        self.warm: list[_Warm] = []
        self.warm_by_pid: dict[int, _Warm] = {}
        self.codes: OrderedDict[str, Any] = OrderedDict()
        self.base = tempfile.mkdtemp(prefix="capsule-attempts-")
        os.chmod(self.base, 0o711)
        # Working directories a cleaner could not empty: root's only, removed at shutdown.
        self.trash = tempfile.mkdtemp(prefix="trash-", dir=self.base)
        os.chmod(self.trash, 0o700)
        self.cleaners: dict[int, tuple[int | None, str]] = {}  # pid: (uid, working dir)
        self.slots = 0  # working directories made
        self.selector = selectors.DefaultSelector()
        # Single-threaded, so the main thread's children are all of the zygote's.
        self.children_file = f"/proc/self/task/{os.getpid()}/children"
        self.wakeup_r, self.wakeup_w = os.pipe()
        os.set_blocking(self.wakeup_w, False)
        os.set_blocking(self.wakeup_r, False)

    def serve(self) -> None:
        if self.as_root:
            # A fork server of this uid block that died with attempts running left their
            # grandchildren alive (nothing reaped them into _finish): none may live on
            # into an attempt that gets their uid again.
            for uid in _uids_running(range(self.uid_base, self.uid_base + MAX_CHILDREN)):
                _kill_uid(uid)
        signal.set_wakeup_fd(self.wakeup_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        self.selector.register(self.control, selectors.EVENT_READ, "control")
        self.selector.register(self.wakeup_r, selectors.EVENT_READ, "signal")
        info = {"ready": True, "pid": os.getpid(), "uid": os.geteuid(), "separate_uids": self.as_root,
                "uid_base": self.uid_base, "pid_namespace": os.getpid() <= 3, "seccomp": _seccomp_works()}
        self.control.send(json.dumps(info).encode())
        self._guarded(self._fill_warm)
        while True:
            for key, _ in self.selector.select(1.0):
                if key.data == "control":
                    if not self._on_request():
                        self._shutdown()
                        return
                elif key.data == "signal":
                    with contextlib.suppress(OSError):
                        os.read(self.wakeup_r, 4096)
                else:
                    self._guarded(self._on_ctl, key.data)
            self._reap()
            # After the replies: the next attempts find a child already forked.
            self._guarded(self._fill_warm)

    def _guarded(self, handler: Any, *args: Any) -> None:
        """Run one event's handler; what goes wrong there must not stop the zygote, which
        every running attempt depends on (a full disk, an attempt's odd leftovers)."""
        try:
            handler(*args)
        except Exception as exc:  # noqa: BLE001 - report and keep serving
            with contextlib.suppress(Exception):
                print(f"capsule fork server: {handler.__name__} failed: {type(exc).__name__}: {exc}"[:500],
                      file=sys.stderr, flush=True)

    # -- requests ---------------------------------------------------------------------

    def _on_request(self) -> bool:
        try:
            data, ancdata, _, _ = self.control.recvmsg(CONTROL_BYTES, socket.CMSG_SPACE(16 * 4))
        except InterruptedError:
            return True
        except OSError:
            return False
        fds = _received_fds(ancdata)
        if not data:
            for fd in fds:
                os.close(fd)
            return False
        if len(fds) != 4:
            for fd in fds:
                os.close(fd)
            return True
        chan, out_w, err_w, ctl_fd = fds
        ctl = socket.socket(fileno=ctl_fd)
        try:
            request = json.loads(data)
            self._start(request, chan, out_w, err_w, ctl)
        except Exception as exc:  # noqa: BLE001 - refuse this attempt, keep serving
            with contextlib.suppress(OSError):
                ctl.send(json.dumps({"error": f"{type(exc).__name__}: {exc}"[:200]}).encode())
            ctl.close()
        finally:
            for fd in (chan, out_w, err_w):
                with contextlib.suppress(OSError):
                    os.close(fd)
        return True

    def _start(self, request: dict[str, Any], chan: int, out_w: int, err_w: int, ctl: socket.socket) -> None:
        source = request.get("source")
        if isinstance(source, str):
            self._cache(source)
        trusted = request.get("trusted") is True
        # A trusted child imports cloudpickle itself, so warm children cannot serve it.
        warm = None if trusted else self._take_warm(chan, out_w, err_w)
        if warm is not None:
            pid, uid, workdir = warm.pid, warm.uid, warm.workdir
        else:
            uid, workdir = self._new_slot()
            pid = os.fork()
            if pid == 0:
                _child(chan, out_w, err_w, uid, workdir, trusted)  # never returns
        attempt = _Attempt(pid, uid, ctl, workdir)
        self.attempts[pid] = attempt
        try:
            ctl.send(json.dumps({"pid": pid}).encode())
        except OSError:
            # The engine gave up waiting for this reply: the child must not run
            # unsupervised. It is reaped and cleaned up like any other.
            _kill_child(pid)
            attempt.ctl = None
            ctl.close()
            return
        self.by_ctl[ctl.fileno()] = attempt
        self.selector.register(ctl, selectors.EVENT_READ, ctl.fileno())

    def _new_slot(self) -> tuple[int | None, str]:
        """A free uid (when root) and a fresh working directory owned by it."""
        if self.as_root and not self.free_uids:
            raise RuntimeError("too many attempts at once")
        uid = self.free_uids[0] if self.as_root else None
        # Named by a counter: the base is root's and not listable, the directory its uid's
        # only, so an unguessable name would protect nothing, and mkdtemp's name-making
        # touches (and so copies, after every fork) pages of this process.
        while True:
            self.slots += 1
            workdir = f"{self.base}/a-{self.slots}"
            try:
                os.mkdir(workdir, 0o700)  # a full disk raises here, and the uid stays free
                break
            except FileExistsError:  # only root writes the base; still, never reuse a name
                continue
        if uid is not None:
            os.chown(workdir, uid, uid)
            self.free_uids.pop(0)
        os.chmod(workdir, 0o700)
        return uid, workdir

    def _fill_warm(self) -> None:
        while len(self.warm) < self.warm_children and (
                not self.as_root or len(self.free_uids) > self.warm_children):
            if select.select([self.control], [], [], 0)[0]:
                return  # a request is waiting: serve it first, fill later
            uid, workdir = self._new_slot()
            ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            pid = os.fork()
            if pid == 0:
                _warm_child(theirs.fileno(), uid, workdir)  # never returns
            theirs.close()
            warm = _Warm(pid, uid, workdir, ours)
            self.warm.append(warm)
            self.warm_by_pid[pid] = warm

    def _take_warm(self, chan: int, out_w: int, err_w: int) -> _Warm | None:
        """Hand the attempt's descriptors to a waiting child; None if there is none."""
        while self.warm:
            warm = self.warm.pop(0)
            del self.warm_by_pid[warm.pid]
            try:
                warm.sock.sendmsg([b"go"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                                             array.array("i", [chan, out_w, err_w]))])
                return warm
            except OSError:
                # It died waiting; reaped and cleaned up like an attempt that ended at once.
                _kill_child(warm.pid)
                self.attempts[warm.pid] = _Attempt(warm.pid, warm.uid, None, warm.workdir)
            finally:
                warm.sock.close()
        return None

    def _cache(self, source: str) -> None:
        """Compile an admitted source once; children inherit the code object."""
        from sandbox import runner
        from sandbox.policy import compile_restricted_source

        key = runner.source_digest(source)
        if key in self.codes:
            self.codes.move_to_end(key)
            return
        try:
            code, _ = compile_restricted_source(source, runner.SOURCE_NAME)
        except BaseException:  # noqa: BLE001 - the child will compile it and report
            code = None
        if code is None:
            return
        self.codes[key] = code
        while len(self.codes) > MAX_CACHED_CODES:
            self.codes.popitem(last=False)
        runner.CODE_CACHE = self.codes

    def _on_ctl(self, fileno: int) -> None:
        attempt = self.by_ctl.get(fileno)
        if attempt is None:
            return
        try:
            data = attempt.ctl.recv(64)
        except OSError:
            data = b""
        if data == b"kill" or not data:
            # The child dies here; when it is reaped, _finish kills the rest of its uid.
            _kill_child(attempt.pid)
            if not data:  # released, or the engine went away: stop watching the socket
                self.selector.unregister(attempt.ctl)
                self.by_ctl.pop(fileno, None)

    # -- exits ------------------------------------------------------------------------

    def _reap(self) -> None:
        while True:
            try:
                pid, status, usage = os.wait4(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            cleaned = self.cleaners.pop(pid, None)
            if cleaned is not None:
                self._guarded(self._release, *cleaned)
                continue
            attempt = self.attempts.pop(pid, None)
            warm = self.warm_by_pid.pop(pid, None)
            if warm is not None:  # died while waiting: nothing ran, just clean up
                self.warm.remove(warm)
                warm.sock.close()
                attempt = _Attempt(pid, warm.uid, None, warm.workdir)
            if attempt is not None:
                self._guarded(self._finish, attempt, status, usage.ru_utime + usage.ru_stime)

    def _finish(self, attempt: _Attempt, status: int, cpu: float) -> None:
        # Nothing of the attempt outlives it: grandchildren included, then its files.
        # (Not killpg: the child is reaped, so its pid may already belong to another.)
        if attempt.uid is not None and self._may_have_survivors():
            _kill_uid(attempt.uid)
        try:
            os.rmdir(attempt.workdir)  # the common case: the attempt left nothing
            left_files = False
        except OSError:
            left_files = True
        if attempt.ctl is not None:
            if self.by_ctl.get(attempt.ctl.fileno()) is attempt:
                self.by_ctl.pop(attempt.ctl.fileno())
                self.selector.unregister(attempt.ctl)
            with contextlib.suppress(OSError):
                attempt.ctl.send(json.dumps({"status": status, "cpu": cpu}).encode())
            attempt.ctl.close()
        if left_files:
            # Removed by a process of the attempt's own uid, so that no link or depth it
            # planted makes root act on anything else, nor this loop wait for it. The uid
            # is free again once its files are gone.
            try:
                self.cleaners[_start_cleaner(attempt.uid, attempt.workdir)] = (attempt.uid, attempt.workdir)
                return
            except OSError:  # no process to spare: out of reach now, removed at shutdown
                pass
        self._release(attempt.uid, attempt.workdir if left_files else None)

    def _release(self, uid: int | None, workdir: str | None) -> None:
        """Free ``uid`` for another attempt, once ``workdir`` (if any) is removed; what a
        cleaner could not remove moves out of every uid's reach first."""
        if workdir is not None:
            try:
                os.rmdir(workdir)
            except OSError:
                os.rename(workdir, os.path.join(self.trash, os.path.basename(workdir)))
        if uid is not None:
            self.free_uids.append(uid)

    def _may_have_survivors(self) -> bool:
        """Whether a process other than a running attempt's child may be alive.

        The zygote is a child subreaper: when an attempt's child exits, whatever it
        started and is still alive has the zygote as an ancestor, and the top-most
        survivor is a direct child of the zygote. So if every child of the zygote is a
        running attempt's child, nothing else survived and the kill can be skipped.
        """
        try:
            fd = os.open(self.children_file, os.O_RDONLY)  # not open(): fewer objects, fewer pages
            try:
                children = {int(pid) for pid in os.read(fd, 1 << 16).split()}
            finally:
                os.close(fd)
        except (OSError, ValueError):
            return True  # cannot tell: kill
        return not children <= self.attempts.keys() | self.warm_by_pid.keys() | self.cleaners.keys()

    def _shutdown(self) -> None:
        for warm in self.warm:
            warm.sock.close()  # it exits when its socket closes
            self.attempts[warm.pid] = _Attempt(warm.pid, warm.uid, None, warm.workdir)
        self.warm.clear()
        self.warm_by_pid.clear()
        for attempt in list(self.attempts.values()):
            _kill_child(attempt.pid)
        deadline = time.monotonic() + 5
        while (self.attempts or self.cleaners) and time.monotonic() < deadline:
            self._reap()
            time.sleep(0.01)
        # As root, and a setsid() grandchild may still run: rmtree's descriptor-based walk
        # resists a directory swapped for a link under it, which _empty_tree does not. A
        # tree too deep for it stays behind, in a tmpfs that goes with the sandbox.
        with contextlib.suppress(Exception):
            shutil.rmtree(self.base, ignore_errors=True)


def _received_fds(ancdata: list[tuple[int, int, bytes]]) -> list[int]:
    fds: list[int] = []
    for level, kind, data in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            values = array.array("i")
            values.frombytes(data[: len(data) - (len(data) % values.itemsize)])
            fds.extend(values)
    return fds


def _kill_child(pid: int) -> None:
    """SIGKILL a child of ours (not reaped yet, so the pid is still its) and its process
    group: a child forked a moment ago may not have made the group yet (setsid)."""
    for kill in (os.killpg, os.kill):
        with contextlib.suppress(OSError):
            kill(pid, signal.SIGKILL)


def _kill_uid(uid: int) -> None:
    """SIGKILL every process of ``uid``: kill(-1) from a short-lived process running as it.

    One pass is enough: the kernel signals the whole task list under its lock, and a
    process caught mid-fork sees the fatal signal before its new child is created.
    """
    pid = os.fork()
    if pid == 0:
        try:
            os.setgroups([])
            os.setresgid(uid, uid, uid)
            os.setresuid(uid, uid, uid)
            with contextlib.suppress(ProcessLookupError):
                os.kill(-1, signal.SIGKILL)
        finally:
            os._exit(0)
    os.waitpid(pid, 0)



def _uids_running(uids: range) -> set[int]:
    """The real uids among ``uids`` that some process visible here runs as."""
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/status") as f:
                    uid = int(next(line for line in f if line.startswith("Uid:")).split()[1])
            except (OSError, StopIteration, ValueError, IndexError):
                continue  # gone, or not a process
            if uid in uids:
                found.add(uid)
    return found


def _start_cleaner(uid: int | None, workdir: str) -> int:
    """Fork a process that drops to ``uid`` and empties ``workdir``; its pid."""
    pid = os.fork()
    if pid == 0:
        try:
            os.closerange(3, 1 << 16)  # none of the zygote's descriptors
            if uid is not None:
                os.setgroups([])
                os.setresgid(uid, uid, uid)
                os.setresuid(uid, uid, uid)
            _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)  # after the uid change, which clears it
            _empty_tree(workdir)
        finally:
            os._exit(0)
    return pid


def _empty_tree(path: str) -> None:
    """Remove everything under ``path`` without following a link and without recursion
    (a tree may be thousands of levels deep): walk down with chdir, one level at a time,
    and back up with "..". Only as the uid that owns the tree: a process of that uid
    could swap a directory for a link between the check and the chdir."""
    os.chmod(path, 0o700)  # it may have been made unreadable: by its owner, this uid
    os.chdir(path)
    below: list[str] = []
    while True:
        subdir = None
        with os.scandir(".") as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    subdir = entry.name
                    break
                os.unlink(entry.name)
        if subdir is not None:
            os.chmod(subdir, 0o700)  # a directory (not a link): is_dir did not follow
            os.chdir(subdir)
            below.append(subdir)
        elif below:
            os.chdir("..")
            os.rmdir(below.pop())
        else:
            return


def _mount_tmpfs(target: str, size: int, read_only: bool = False) -> bool:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        options = f"size={size},mode=0755".encode()
        flags = 0x2 | 0x4 | (0x1 if read_only else 0)  # NOSUID|NODEV, RDONLY
        return libc.mount(b"tmpfs", target.encode(), b"tmpfs", flags, options) == 0
    except (OSError, AttributeError):
        return False


def _seccomp_works() -> bool:
    """Whether a child can install the filter here (probed once, in a throwaway fork)."""
    pid = os.fork()
    if pid == 0:
        _prctl(_PR_SET_NO_NEW_PRIVS, 1)
        os._exit(0 if seccomp.install() else 1)
    _, status = os.waitpid(pid, 0)
    return os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0


# Plain ints, reset through _signal rather than signal: signal's enum conversions touch
# (and so copy) pages of the zygote's heap in every child, for the same effect.
_DEFAULT_SIGNALS = tuple(int(sig) for sig in (signal.SIGCHLD, signal.SIGINT, signal.SIGTERM, signal.SIGPIPE))


def _isolate(uid: int | None, workdir: str, trusted: bool = False) -> None:
    """The child's own set-up, before it can receive anything of an attempt."""
    signal.set_wakeup_fd(-1)
    for sig in _DEFAULT_SIGNALS:
        _signal.signal(sig, _signal.SIG_DFL)
    os.setsid()
    os.chdir(workdir)
    if trusted:
        # Trusted code's tempfile writes in the attempt's own directory: the sandbox's
        # /tmp is shared by every attempt and not writable by their uids. (Restricted
        # code reaches neither the environment nor the file system.)
        os.environ["TMPDIR"] = workdir
        tempfile.tempdir = None
    os.umask(0o077)
    if uid is not None:
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)
    _prctl(_PR_SET_NO_NEW_PRIVS, 1)
    _prctl(_PR_SET_DUMPABLE, 0)
    # After the uid change, which clears it: die with the zygote.
    _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    seccomp.install()


def _run(chan: int, out_w: int, err_w: int) -> None:
    """Wire the attempt's descriptors in (fd 3 is the channel) and run it."""
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(out_w, 1)
    os.dup2(err_w, 2)
    os.dup2(chan, CHANNEL_FD)
    os.closerange(CHANNEL_FD + 1, 1 << 16)
    # Unbuffered, like the spawned child's `python -u`: prints reach the engine even
    # if the child is killed, and nothing the zygote buffered is written twice.
    sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), encoding="utf-8",
                                  errors="backslashreplace", write_through=True)
    sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), encoding="utf-8",
                                  errors="backslashreplace", write_through=True)
    sys.stdin = None  # type: ignore[assignment]
    from sandbox import runner

    runner.main(["zygote-child", str(CHANNEL_FD)])


def _child(chan: int, out_w: int, err_w: int, uid: int | None, workdir: str, trusted: bool) -> None:
    """In a child forked for an attempt: isolate, then run it. Never returns."""
    try:
        if trusted:
            # Needed to load the payload. Imported here, before the uid changes (the
            # installation need not be readable by it) and before any user byte is read.
            import cloudpickle  # noqa: F401

        # Keep only what the attempt needs before anything else happens.
        for fd in (chan, out_w, err_w):
            os.set_inheritable(fd, True)
        keep = {chan, out_w, err_w}
        for fd in _open_fds():
            if fd > 2 and fd not in keep:
                with contextlib.suppress(OSError):
                    os.close(fd)
        _isolate(uid, workdir, trusted)
        _run(chan, out_w, err_w)
    except BaseException:  # noqa: BLE001 - a child must never return into the zygote
        pass
    os._exit(5)


def _warm_child(sock_fd: int, uid: int | None, workdir: str) -> None:
    """In a child forked ahead of time: isolate, wait for an attempt, run it."""
    try:
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
        os.dup2(sock_fd, CHANNEL_FD)
        os.closerange(CHANNEL_FD + 1, 1 << 16)
        _isolate(uid, workdir)
        _set_name(WARM_NAME)
        sock = socket.socket(fileno=CHANNEL_FD)
        data, ancdata, _, _ = sock.recvmsg(16, socket.CMSG_SPACE(3 * 4))
        fds = _received_fds(ancdata)
        if data != b"go" or len(fds) != 3:
            os._exit(0)  # the zygote went away, or sent nonsense
        sock.close()  # frees fd 3 for the channel
        _set_name(ATTEMPT_NAME)
        _run(*fds)
    except BaseException:  # noqa: BLE001 - a child must never return into the zygote
        pass
    os._exit(5)


def _set_name(name: bytes) -> None:
    libc = _libc()
    if libc is not None:
        libc.prctl(_PR_SET_NAME, ctypes.c_char_p(name), 0, 0, 0)


def _open_fds() -> list[int]:
    try:
        return [int(fd) for fd in os.listdir("/proc/self/fd")]
    except OSError:
        return list(range(3, 1 << 16))


def preload() -> None:
    """Import what every child needs, so forks start warm (and so that children, which
    run as other uids, need not read the Python installation at all)."""
    import RestrictedPython  # noqa: F401

    from sandbox import handles, policy, runner  # noqa: F401

    policy.warm_up()


def main(argv: list[str] | None = None) -> None:
    """The fork server's entry point: the control socket's fd number is the last argument."""
    args = sys.argv if argv is None else argv
    private_tmp = args[-1] == "private-tmp"
    if private_tmp:
        args = args[:-1]
    control = socket.socket(fileno=int(args[-1]))
    options = dict(arg.split("=", 1) for arg in args[:-1] if arg.startswith(("warm=", "uids=")))
    warm = int(options.get("warm", WARM_CHILDREN))
    uid_base = int(options.get("uids", UID_BASE))
    _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() == 1 and os.getpid() > 3:
        os._exit(0)  # the engine is already gone
    _prctl(_PR_SET_DUMPABLE, 0)
    _prctl(_PR_SET_CHILD_SUBREAPER, 1)
    # Children inherit this environment: scrubbed once here rather than in each of them.
    os.environ.clear()
    os.environ.update(CHILD_ENV)
    preload()
    if private_tmp:
        # In our own mount namespace: what attempts write to /tmp and /dev/shm stays in
        # memory we cap, and vanishes with the zygote, instead of landing on the host.
        # Mounted only now, after the imports: the installation may itself live under
        # /tmp (a checkout or a virtual environment there), and the tmpfs hides it. For
        # the same reason trusted children could not import cloudpickle afterwards, so
        # this fallback imports it here and pays threading's fork hook on every child.
        import cloudpickle  # noqa: F401

        # Owned by root and closed to the attempts' uids, as in bubblewrap: an attempt
        # writes only in its own working directory (TMPDIR), so nothing one leaves is
        # there for the next, and the host's other world-writable places are covered.
        for target in ("/tmp", "/dev/shm"):
            _mount_tmpfs(target, TMPFS_BYTES)
        for target in ("/var/tmp", "/run/lock", "/var/lock"):
            if os.path.isdir(target) and not os.path.islink(target):
                _mount_tmpfs(target, 4096, read_only=True)
    # Children are forks: keep the garbage collector from touching (and so copying) the
    # zygote's objects in every child.
    gc.collect()
    gc.freeze()
    _Server(control, min(max(warm, 0), 16), uid_base).serve()
    os._exit(0)
