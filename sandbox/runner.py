"""The child side of one attempt: limits first, then the request, then user code.

Order matters and is the point of this module:

1. read a small "limits" frame and apply the rlimits, before any user byte is read;
2. read the request ("run" or "check");
3. compile (restricted) or unpickle (trusted) - both are user input, so both happen here,
   under the limits, never in the engine;
4. run ``entrypoint(job)``; the handles send "call" frames and wait for "reply" frames;
5. send exactly one terminal frame ("result", "error" or "checked") and ``os._exit``.

Everything the engine gets back is formatted here, under the limits, and truncated: the
engine never calls ``repr``/``str`` on user objects. Prints go to stdout, which the
engine captures (capped) as the execution's logs, so they survive a timeout or a crash.

Launched by ``sandbox.launcher`` as ``python -I -B -u -c <bootstrap> <root> <fd>``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import resource
import socket
import sys
import time
import traceback
from collections.abc import Callable, Mapping
from types import CodeType, FunctionType, ModuleType
from typing import Any, cast

from sandbox.channel import MAX_START_DELAY_SECONDS, encode_frame, recv_frame
from sandbox.errors import ProtocolError, SourceRejected
from sandbox.handles import EffectBridge, JobHandle, UserDirectory
from sandbox.policy import (
    LogSink,
    Policy,
    check_problems,
    compile_restricted_source,
    register_entry_callers,
    register_entry_code,
    restricted_globals,
)

__all__ = ["apply_rlimits", "main"]

LIMITS_FRAME_BYTES = 4096
OPEN_FILES = 64
# Counted per uid: meaningful once children run as a dedicated uid; root ignores it.
MAX_PROCESSES = 16
MAX_ERROR_MESSAGE_CHARS = 4096
MAX_TRACEBACK_ENTRIES = 50
MAX_TRACEBACK_ENTRY_CHARS = 500
MAX_PROBLEMS = 50
MAX_RESULT_DEPTH = 200
# The engine enforces the real caps; this only bounds what the child tries to send.
MAX_TERMINAL_FRAME_BYTES = 64 << 20
# The file name of restricted code. One name for every job, so that jobs sharing a
# source (say, one reminder per user) share one compiled code object.
SOURCE_NAME = "<job>"
# Filled by the fork server (sandbox.forkserver) before it forks: code objects of admitted
# sources, keyed by the sha256 of the source. Empty in a spawned child.
CODE_CACHE: Mapping[str, CodeType] = {}

EXIT_OK = 0
EXIT_PROTOCOL_ERROR = 3
EXIT_INTERNAL_ERROR = 4

# Built before any user code runs, so an out-of-memory child can still report.
_OUT_OF_MEMORY_FRAME = encode_frame(
    {
        "type": "error",
        "error": {
            "type": "MemoryError",
            "message": "out of memory (the error could not be formatted)",
            "traceback": [],
        },
    }
)


def main(argv: list[str] | None = None) -> None:
    """Entry point: the channel's fd number is the last argument."""
    args = sys.argv if argv is None else argv
    sock = socket.socket(fileno=int(args[-1]))
    try:
        limits = _expect(recv_frame(sock, LIMITS_FRAME_BYTES), "limits")
        apply_rlimits(limits)
        frame = _serve(recv_frame(sock, int(limits["request_bytes"])), sock, limits)
        data = _encode_terminal(frame)
    except ProtocolError:
        # The engine broke the protocol or went away: nobody is listening for a report.
        os._exit(EXIT_PROTOCOL_ERROR)
    except MemoryError:
        # By now the user's frames are unwound and their memory is free again.
        data = _OUT_OF_MEMORY_FRAME
    except BaseException as exc:  # noqa: BLE001 - a runner bug must still end in a frame
        data = encode_frame(_internal_error_frame(exc))
    _send(sock, data)
    os._exit(EXIT_OK)


# --- limits --------------------------------------------------------------------------


def apply_rlimits(limits: dict[str, Any]) -> None:
    """Lower this process's rlimits from a "limits" frame (they can only go down)."""
    _lower(resource.RLIMIT_CORE, 0)
    _lower(resource.RLIMIT_AS, int(limits["memory_mb"]) << 20)
    # soft == hard: at the limit the kernel kills the process (SIGXCPU/SIGKILL).
    _lower(resource.RLIMIT_CPU, int(limits["cpu_seconds"]))
    _lower(resource.RLIMIT_FSIZE, int(limits["file_bytes"]))
    _lower(resource.RLIMIT_NOFILE, OPEN_FILES)
    if os.geteuid() != 0:
        _lower(resource.RLIMIT_NPROC, MAX_PROCESSES)


def _lower(kind: int, value: int) -> None:
    _, hard = resource.getrlimit(kind)
    if hard != resource.RLIM_INFINITY:
        value = min(value, hard)
    resource.setrlimit(kind, (value, value))


# --- requests ------------------------------------------------------------------------


def _serve(request: dict[str, Any], sock: socket.socket, limits: dict[str, Any]) -> dict[str, Any]:
    if request["type"] == "check":
        return _check(request)
    if request["type"] == "run":
        return _run(request, sock, limits)
    raise ProtocolError(f"expected a run or check request, got {request['type']!r}")


def _check(request: dict[str, Any]) -> dict[str, Any]:
    problems = check_problems(request["source"], _policy(request), request["entrypoint"])
    return {
        "type": "checked",
        "problems": [
            {"line": problem.line, "message": problem.message[:MAX_ERROR_MESSAGE_CHARS]}
            for problem in problems[:MAX_PROBLEMS]
        ],
    }


def _run(request: dict[str, Any], sock: socket.socket, limits: dict[str, Any]) -> dict[str, Any]:
    bridge = EffectBridge(sock)
    job = JobHandle(request["job"], bridge)
    users = UserDirectory(bridge)
    user_files = {SOURCE_NAME}
    start_at = request.get("start_at")
    try:
        if request["isolation"] == "trusted":
            func = _load_trusted(request["payload"], users, start_at)
            user_files.add(func.__code__.co_filename)
        else:
            func = _load_restricted(request, job, users, int(limits["log_bytes"]), start_at)
        value = func(job)
        return _result_frame(value, int(limits["output_bytes"]))
    except BaseException as exc:  # noqa: BLE001 - SystemExit/KeyboardInterrupt fail the attempt too
        return _error_frame(exc, user_files, request["source"].splitlines())


def _wait_until(start_at: Any) -> None:
    """Ready ahead of time: sleep until the instant the job is due to start. Called just
    before the first of the user's code runs (module-level statements, or unpickling)."""
    if isinstance(start_at, (int, float)):
        delay = min(start_at - time.time(), MAX_START_DELAY_SECONDS)
        if delay > 0:
            time.sleep(delay)


def _load_restricted(
    request: dict[str, Any], job: JobHandle, users: UserDirectory, log_bytes: int, start_at: Any
) -> Callable[..., Any]:
    code = CODE_CACHE.get(source_digest(request["source"]))
    if code is None:
        code, problems = compile_restricted_source(request["source"], SOURCE_NAME)
        if code is None:
            raise SourceRejected(problems)
    namespace = restricted_globals(job, users, LogSink(log_bytes, _write_stdout), _policy(request))
    # Annotations stay strings (RestrictedPython compiles with postponed evaluation), and
    # dataclasses looks such strings up in sys.modules[cls.__module__]: an empty module
    # there gives it nothing to find (user code cannot reach sys.modules).
    if namespace["__name__"] not in sys.modules:
        sys.modules[namespace["__name__"]] = ModuleType(namespace["__name__"])
    _wait_until(start_at)
    register_entry_code(code)
    exec(code, namespace)
    func = namespace.get(request["entrypoint"])
    # A function of the source, called straight from _run: nothing of C is between them
    # (policy._DROPPED counts on it). A partial of a builtin, say, would put C there.
    if func is None:
        raise NameError(f"the source defines no function {request['entrypoint']!r}")
    if type(func) is not FunctionType or func.__code__.co_filename != SOURCE_NAME:
        raise NameError(f"{request['entrypoint']!r} must be a function the source defines with def")
    register_entry_code(func.__code__)
    return func


# These call restricted code themselves (the module body, the entrypoint): only in that
# code may a safe point let go of what restricted code dropped (see policy._DROPPED).
register_entry_callers(_run.__code__, _load_restricted.__code__)


def _load_trusted(payload: str, users: UserDirectory, start_at: Any) -> Callable[..., Any]:
    # Unpickling runs arbitrary code: only here, in the child, under the rlimits.
    import cloudpickle

    data = base64.b64decode(payload, validate=True)
    _wait_until(start_at)
    func = cloudpickle.loads(data)
    if not callable(func) or not hasattr(func, "__code__"):
        raise TypeError(f"the payload must be a function, not {type(func).__name__}")
    # The child sees `User` as the engine's directory, whatever the name meant client-side
    # (the client's `User` is a stub that only explains where it works).
    if "User" in func.__code__.co_names or "User" in func.__globals__:
        func.__globals__["User"] = users
    return cast(Callable[..., Any], func)


def source_digest(source: str) -> str:
    """The key of a compiled source in ``CODE_CACHE``."""
    return hashlib.sha256(source.encode("utf-8")).hexdigest()


def _policy(request: dict[str, Any]) -> Policy:
    return Policy(request["isolation"], frozenset(request["allowed_modules"]))


def _expect(frame: dict[str, Any], frame_type: str) -> dict[str, Any]:
    if frame["type"] != frame_type:
        raise ProtocolError(f"expected a {frame_type} frame, got {frame['type']!r}")
    return frame


def _write_stdout(text: str) -> None:
    data = text.encode("utf-8")
    while data:
        try:
            written = os.write(1, data)
        except OSError:
            return  # the engine stopped reading; logs are best effort
        data = data[written:]


# --- terminal frames -----------------------------------------------------------------


def _result_frame(value: Any, output_bytes: int) -> dict[str, Any]:
    try:
        text = json.dumps(value, allow_nan=False, ensure_ascii=False)
        text.encode("utf-8")
    except (TypeError, ValueError, RecursionError) as exc:
        raise TypeError(f"result must be JSON: {exc}") from None
    if len(text.encode("utf-8")) > output_bytes:
        raise ValueError(f"result must be JSON of at most {output_bytes} bytes")
    if _json_depth(value) > MAX_RESULT_DEPTH:
        raise ValueError(f"result must be JSON nested at most {MAX_RESULT_DEPTH} levels deep")
    # Re-decoded so the frame carries plain JSON types, not user subclasses.
    return {"type": "result", "value": json.loads(text)}


def _json_depth(value: Any) -> int:
    """Nesting depth, iteratively, so deep values are measured without recursion."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children = list(item.values())
        elif isinstance(item, (list, tuple)):
            children = list(item)
        else:
            continue
        deepest = max(deepest, depth)
        if deepest > MAX_RESULT_DEPTH:
            break
        stack.extend((child, depth + 1) for child in children)
    return deepest


def _error_frame(exc: BaseException, user_files: set[str], source_lines: list[str]) -> dict[str, Any]:
    error = {
        "type": type(exc).__name__[:200],
        "message": _message(exc),
        "traceback": _user_traceback(exc, user_files, source_lines),
    }
    return {"type": "error", "error": error}


def _message(exc: BaseException) -> str:
    try:
        text = str(exc)
    except BaseException:  # noqa: BLE001 - a hostile __str__ must not stop the report
        text = f"<unprintable {type(exc).__name__}>"
    if not text and isinstance(exc, MemoryError):
        text = "out of memory: the attempt reached its memory limit"
    if len(text) > MAX_ERROR_MESSAGE_CHARS:
        text = text[:MAX_ERROR_MESSAGE_CHARS] + " [truncated]"
    return text.encode("utf-8", "replace").decode("utf-8")


def _user_traceback(exc: BaseException, user_files: set[str], source_lines: list[str]) -> list[str]:
    """Frames of the user's own code only, as "line N, in func: text"."""
    entries = []
    # walk_tb, not extract_tb: no linecache, so no file named by user code is read.
    for frame, lineno in traceback.walk_tb(exc.__traceback__):
        code = frame.f_code
        if code.co_filename in user_files:
            entries.append(_traceback_entry(lineno, code.co_name, code.co_filename, source_lines))
    return entries[-MAX_TRACEBACK_ENTRIES:]


def _traceback_entry(lineno: int, func: str, filename: str, source_lines: list[str]) -> str:
    entry = f"line {lineno}, in {func}"
    # Line numbers match the source only for restricted code compiled from it.
    if filename == SOURCE_NAME and 0 < lineno <= len(source_lines):
        entry += f": {source_lines[lineno - 1].strip()}"
    return entry[:MAX_TRACEBACK_ENTRY_CHARS]


def _internal_error_frame(exc: BaseException) -> dict[str, Any]:
    message = f"sandbox runner failed: {type(exc).__name__}: {_message(exc)}"
    return {"type": "error", "error": {"type": "SandboxError", "message": message, "traceback": []}}


def _encode_terminal(frame: dict[str, Any]) -> bytes:
    try:
        return encode_frame(frame, MAX_TERMINAL_FRAME_BYTES)
    except ProtocolError as exc:  # our own frame failed to encode: report, do not vanish
        return encode_frame(_internal_error_frame(exc))


def _send(sock: socket.socket, data: bytes) -> None:
    try:
        sock.sendall(data)
    except OSError:
        os._exit(EXIT_PROTOCOL_ERROR)
