"""Engine side of one child process: spawn, converse, time out, kill, reap, clean up.

One ``supervise_child`` call owns one child from spawn to reap. It multiplexes, on a
single thread, the protocol channel, the child's stdout/stderr and (where the kernel
has pidfds) the child's exit, until a terminal frame, an exit, a protocol violation or
the wall-clock deadline. Then it SIGKILLs the child's whole process group *before*
reaping the child, so the group id cannot have been reused, and reads whatever the
child had already written. It never interprets user data: frames are strict JSON,
stdout/stderr are capped bytes that are never parsed.

Later hardening (bubblewrap, a fork-server zygote, a dedicated uid, seccomp) changes
``_spawn`` and the kill in ``_kill_group``; the conversation stays the same.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from sandbox.channel import HEADER, FrameDecoder, encode_frame
from sandbox.errors import ProtocolError
from sandbox.forkserver import CHILD_ENV
from sandbox.zygote import Zygote

__all__ = ["ChildReport", "ChildSpec", "supervise_child"]

log = logging.getLogger(__name__)

# The parent of the `sandbox` package: on sys.path whether installed or checked out.
_PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
# -I ignores PYTHONPATH and user site, so the root is passed explicitly as argv[1].
_BOOTSTRAP = "import sys; sys.path.insert(0, sys.argv[1]); from sandbox.runner import main; main()"
# Nothing of the engine's environment reaches the child.
_READ_CHUNK = 1 << 16
# Frames the engine builds itself are not capped; the child checks their size.
_UNCAPPED = 1 << 62
# Without a pidfd, exits are noticed by polling at this interval.
_EXIT_POLL_SECONDS = 0.05
# A child that closed its channel exits at once; it is killed if it lingers longer.
_EXIT_GRACE_SECONDS = 0.2
_CPU_LIMIT_SIGNALS = (signal.SIGXCPU, signal.SIGKILL)


@dataclass(frozen=True)
class ChildSpec:
    """What to tell one child and how to bound it."""

    limits_frame: dict[str, Any]  # "request_bytes" is added here, once the request is encoded
    request_frame: dict[str, Any]
    terminal_types: frozenset[str]  # which terminal frames this request may end with
    accepts_calls: bool  # whether "call" frames are part of this conversation
    timeout_seconds: float
    cpu_seconds: int
    max_frame_bytes: int
    log_bytes: int
    # How long the child waits before the function starts (its request's start_at):
    # not part of the timeout nor of the duration.
    start_delay_seconds: float = 0.0


@dataclass(frozen=True)
class ChildReport:
    """How one child ended.

    ``ending`` is "terminal" (``terminal`` holds the frame), "timeout", "cpu_limit",
    "protocol" (``detail`` says what broke) or "exited" (no terminal frame; ``detail``
    describes the exit).
    """

    ending: str
    terminal: dict[str, Any] | None
    detail: str
    logs: str
    duration_ms: int


def supervise_child(
    spec: ChildSpec,
    on_call: Callable[[dict[str, Any]], dict[str, Any]],
    zygote: Zygote | None = None,
    admitted_source: str | None = None,
) -> ChildReport:
    """Run one child to its end; ``on_call`` turns each call frame into a reply frame.

    With a ``zygote`` the child is forked by it (``admitted_source`` may be compiled
    and cached there); without one a fresh interpreter is spawned. Raises ProtocolError
    before starting anything if the request is not strict JSON.
    """
    request = encode_frame(spec.request_frame, _UNCAPPED)
    limits = encode_frame({**spec.limits_frame, "request_bytes": len(request) - HEADER.size})
    started = time.monotonic()
    if zygote is not None:
        trusted = spec.request_frame.get("type") == "run" and spec.request_frame.get("isolation") == "trusted"
        child, parent_sock, unsent = zygote.fork(admitted_source, trusted, limits + request)
        with parent_sock:
            try:
                return _Session(spec, child, parent_sock, on_call, started).run(unsent)
            finally:
                child.close()
    with _scratch_dir() as workdir:
        parent_sock, child_sock = socket.socketpair()
        with parent_sock:
            try:
                spawned = _SpawnedChild(_spawn(workdir, child_sock.fileno()))
            finally:
                child_sock.close()  # the child holds its own copy now
            try:
                return _Session(spec, spawned, parent_sock, on_call, started).run(limits + request)
            finally:
                spawned.close()


def _spawn(workdir: str, child_fd: int) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-I", "-B", "-u", "-c", _BOOTSTRAP, _PACKAGE_ROOT, str(child_fd)]
    # No preexec_fn: it is unsafe in a threaded engine. The child sets its own rlimits.
    return subprocess.Popen(
        command,
        env=dict(CHILD_ENV, TMPDIR=workdir),  # as the fork server sets it (forkserver._isolate)
        cwd=workdir,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        close_fds=True,
        pass_fds=(child_fd,),
        process_group=0,
    )


class _SpawnedChild:
    """A child started as a fresh interpreter by this process (the fallback path)."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.proc = proc
        assert proc.stdout is not None and proc.stderr is not None
        self.stdout_fd = proc.stdout.fileno()
        self.stderr_fd = proc.stderr.fileno()
        self.pidfd = _open_pidfd(proc.pid)
        self.exit_fd = self.pidfd

    def has_exited(self) -> bool:
        return _has_exited(self.proc.pid)

    def kill(self, grace: float = 0.0) -> None:
        _kill_group(self.proc.pid)

    def wait(self) -> tuple[int, float]:
        return _reap(self.proc)

    def release(self) -> tuple[int, float]:
        self.kill()
        return self.wait()

    def close(self) -> None:
        _close_pipes(self.proc)
        if self.pidfd is not None:
            os.close(self.pidfd)
            self.pidfd = None


@contextlib.contextmanager
def _scratch_dir() -> Iterator[str]:
    path = tempfile.mkdtemp(prefix="capsule-attempt-")
    try:
        yield path
    finally:
        # rmtree removes symlinks the child left without following them.
        shutil.rmtree(path, onerror=_unlock_and_retry)


def _unlock_and_retry(func: Callable[[str], Any], path: str, _exc_info: Any) -> None:
    # A same-uid child may have chmod-ed a directory to 000; reopen the real dir it is in.
    parent = os.path.dirname(path)
    try:
        if not os.path.islink(parent):
            os.chmod(parent, 0o700)
        func(path)
    except OSError as exc:
        log.warning("could not remove %s: %s", path, exc, extra={"action": "scratch_cleanup"})


class _CappedBytes:
    """Keeps the first ``cap`` bytes of a stream and counts the rest."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.data = bytearray()
        self.dropped = 0

    def add(self, chunk: bytes) -> None:
        room = self.cap - len(self.data)
        self.data += chunk[: max(room, 0)]
        self.dropped += max(len(chunk) - max(room, 0), 0)

    def text(self) -> str:
        text = self.data.decode("utf-8", "replace")
        if self.dropped:
            text += f"\n[{self.dropped} more bytes dropped]\n"
        return text


class _Session:
    """The conversation with one spawned child; ``run`` is the only entry point."""

    def __init__(
        self,
        spec: ChildSpec,
        child: Any,
        sock: socket.socket,
        on_call: Callable[[dict[str, Any]], dict[str, Any]],
        started: float,
    ) -> None:
        self.spec = spec
        self.child = child
        self.sock = sock
        self.on_call = on_call
        self.started = started
        self.deadline = started + spec.start_delay_seconds + spec.timeout_seconds
        self.decoder = FrameDecoder(spec.max_frame_bytes)
        # The child caps prints at log_bytes and may add a short truncation notice.
        self.stdout = _CappedBytes(spec.log_bytes + 256)
        self.stderr = _CappedBytes(spec.log_bytes)
        self.terminal: dict[str, Any] | None = None
        self.problem = ""

    def run(self, opening: bytes) -> ChildReport:
        """Send ``opening`` (limits + request frames), converse, then kill and reap."""
        ending = ""
        try:
            ending = self._converse(self.child.exit_fd, opening)
        finally:
            if ending == "terminal":
                # The child reported: its exit status no longer matters. The zygote kills
                # and cleans up whatever is left without the engine waiting for it.
                status, cpu_seconds = self.child.release()
            else:
                # A child that closed its channel is about to exit by itself; let it,
                # briefly, so that its own exit status is the one reported.
                self.child.kill(_EXIT_GRACE_SECONDS if ending == "exited" else 0.0)
                status, cpu_seconds = self.child.wait()
        return self._report(ending, status, cpu_seconds)

    # -- conversation -----------------------------------------------------------------

    def _converse(self, pidfd: int | None, opening: bytes) -> str:
        ending = self._send(opening)
        if ending:
            return ending
        with selectors.DefaultSelector() as selector:
            self._register(selector, pidfd)
            return self._pump(selector, poll_exit=pidfd is None)

    def _send(self, data: bytes) -> str:
        """Write to the child within the deadline; an ending if that failed."""
        self.sock.settimeout(max(self.deadline - time.monotonic(), 0.001))
        try:
            self.sock.sendall(data)
        except TimeoutError:
            return "timeout"
        except OSError:  # the child is gone (or closed its end)
            return "exited"
        finally:
            # Reads happen only when select() says so and must never wait.
            self.sock.setblocking(False)
        return ""

    def _register(self, selector: selectors.BaseSelector, pidfd: int | None) -> None:
        selector.register(self.sock, selectors.EVENT_READ, "channel")
        for name, fd in (("stdout", self.child.stdout_fd), ("stderr", self.child.stderr_fd)):
            os.set_blocking(fd, False)
            selector.register(fd, selectors.EVENT_READ, name)
        if pidfd is not None:
            selector.register(pidfd, selectors.EVENT_READ, "exit")

    def _pump(self, selector: selectors.BaseSelector, poll_exit: bool) -> str:
        while True:
            remaining = self.deadline - time.monotonic()
            if remaining <= 0:
                return "timeout"
            wait = min(remaining, _EXIT_POLL_SECONDS) if poll_exit else remaining
            for key, _ in selector.select(wait):
                ending = self._on_ready(key, selector)
                if ending:
                    return ending
            if poll_exit and self.child.has_exited():
                return "exited"

    def _on_ready(self, key: selectors.SelectorKey, selector: selectors.BaseSelector) -> str:
        if key.data == "channel":
            return self._read_channel()
        if key.data == "exit":
            return "exited"
        stream = self.stdout if key.data == "stdout" else self.stderr
        if not _read_stream(key.fd, stream):
            selector.unregister(key.fd)  # at end of stream, or it would stay ready forever
        return ""

    def _read_channel(self) -> str:
        try:
            data = self.sock.recv(_READ_CHUNK)
        except BlockingIOError:
            return ""
        except OSError:
            return "exited"
        if not data:
            return "exited"
        return self._on_bytes(data)

    def _on_bytes(self, data: bytes) -> str:
        try:
            frames = self.decoder.feed(data)
        except ProtocolError as exc:
            return self._violation(str(exc))
        for index, frame in enumerate(frames):
            ending = self._on_frame(frame)
            if ending == "terminal" and (index + 1 < len(frames) or self.decoder.has_partial_frame):
                return self._violation("data after the terminal frame")
            if ending:
                return ending
        return ""

    def _on_frame(self, frame: dict[str, Any]) -> str:
        frame_type = frame["type"]
        if frame_type == "call" and self.spec.accepts_calls:
            return self._send(encode_frame(self.on_call(frame), _UNCAPPED))
        if frame_type in self.spec.terminal_types:
            self.terminal = frame
            return "terminal"
        # The type is from a closed enum, so echoing it is safe.
        return self._violation(f"unexpected {frame_type!r} frame from the child")

    def _violation(self, message: str) -> str:
        self.problem = message
        return "protocol"

    # -- after the child is gone --------------------------------------------------------

    def _report(self, ending: str, status: int, cpu_seconds: float) -> ChildReport:
        if ending == "exited":
            ending = self._salvage_terminal() or ending
        elif ending == "terminal" and self._read_leftovers():
            ending = self._violation("data after the terminal frame")
        self._drain_streams()
        if ending == "exited":
            ending, self.problem = _classify_exit(status, cpu_seconds, self.spec.cpu_seconds)
        return ChildReport(
            ending=ending,
            terminal=self.terminal if ending == "terminal" else None,
            detail=self.problem,
            logs=self._logs(),
            duration_ms=int(max(time.monotonic() - self.started - self.spec.start_delay_seconds, 0.0) * 1000),
        )

    def _salvage_terminal(self) -> str:
        """After an exit, a terminal frame may still sit unread in the socket buffer."""
        try:
            frames = self.decoder.feed(self._read_leftovers())
        except ProtocolError as exc:
            return self._violation(str(exc))
        terminals = [frame for frame in frames if frame["type"] in self.spec.terminal_types]
        if len(terminals) > 1:
            return self._violation("more than one terminal frame")
        # Calls left unanswered by a dead child are dropped: nobody can act on a reply.
        if terminals:
            self.terminal = terminals[0]
            return "terminal"
        return ""

    def _read_leftovers(self) -> bytes:
        self.sock.setblocking(False)  # already so, unless the conversation never started
        return _read_available(lambda: self.sock.recv(_READ_CHUNK))

    def _drain_streams(self) -> None:
        # Non-blocking: a grandchild that escaped the kill may still hold the pipes open.
        for fd, stream in ((self.child.stdout_fd, self.stdout), (self.child.stderr_fd, self.stderr)):
            os.set_blocking(fd, False)
            stream.add(_read_available(functools.partial(os.read, fd, _READ_CHUNK)))

    def _logs(self) -> str:
        logs = self.stdout.text()
        errors = self.stderr.text()
        if errors:
            separator = "" if not logs or logs.endswith("\n") else "\n"
            logs += f"{separator}[stderr]\n{errors}"
        return logs


def _read_stream(fd: int, stream: _CappedBytes) -> bool:
    """Read one chunk into ``stream``; False once the stream has ended."""
    try:
        chunk = os.read(fd, _READ_CHUNK)
    except BlockingIOError:
        return True
    except OSError:
        return False
    stream.add(chunk)
    return bool(chunk)


def _read_available(read: Callable[[], bytes]) -> bytes:
    data = bytearray()
    while True:
        try:
            chunk = read()
        except (BlockingIOError, OSError):
            return bytes(data)
        if not chunk:
            return bytes(data)
        data += chunk


def _close_pipes(proc: subprocess.Popen[bytes]) -> None:
    for pipe in (proc.stdout, proc.stderr):
        if pipe is not None:
            pipe.close()


def _open_pidfd(pid: int) -> int | None:
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):  # not Linux >= 5.3: fall back to polling
        return None


def _has_exited(pid: int) -> bool:
    # WNOWAIT: look without reaping, so the pid (and group id) stay reserved until the kill.
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


def _kill_group(pid: int) -> None:
    # The child leads its own group (process_group=0), so this also reaches anything it
    # forked and did not move out with setsid(); a PID namespace will close that gap.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def _reap(proc: subprocess.Popen[bytes]) -> tuple[int, float]:
    """Wait for the (killed) child; its wait status and the CPU seconds it used."""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)  # so Popen never waits again
    return status, usage.ru_utime + usage.ru_stime


def _classify_exit(status: int, cpu_used: float, cpu_limit: int) -> tuple[str, str]:
    if os.WIFSIGNALED(status):
        signum = os.WTERMSIG(status)
        # RLIMIT_CPU (soft == hard) ends in SIGXCPU or SIGKILL once the budget is spent.
        if signum in _CPU_LIMIT_SIGNALS and cpu_used >= cpu_limit - 0.5:
            return "cpu_limit", f"used its {cpu_limit} s of CPU time"
        return "exited", f"the sandboxed process was killed by {signal.Signals(signum).name}"
    code = os.WEXITSTATUS(status)
    return "exited", f"the sandboxed process exited with code {code} without reporting a result"
