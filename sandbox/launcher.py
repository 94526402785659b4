"""The engine's entry points: ``run_attempt`` and ``check_source``.

Both start a fresh child (``sandbox.supervisor``) running ``sandbox.runner``; nothing
the user wrote is compiled, unpickled or executed in the calling process. The engine,
not the child, decides an attempt's status:

============  ==================================================================
succeeded     the child sent a "result" frame whose value is strict JSON
failed        the child sent an "error" frame (user exception, non-JSON result,
              MemoryError under RLIMIT_AS, SystemExit...)
timed_out     the wall clock ran out (the whole process group is SIGKILLed), or
              the kernel killed the child at its RLIMIT_CPU
crashed       the child exited without a terminal frame, or broke the protocol
              (oversized or malformed frame, anything after its terminal frame)
============  ==================================================================

``AttemptOutcome.effects`` lists the calls the engine accepted, in order, whatever the
status; the engine commits them with a succeeded outcome and discards them otherwise
(DESIGN.md: effects are transactional), so a retry never repeats a message.
"""

from __future__ import annotations

import atexit
import base64
import json
import logging
import math
import os
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from sandbox.channel import DEFAULT_MAX_FRAME_BYTES, MAX_START_DELAY_SECONDS
from sandbox.effects import EffectGate
from sandbox.errors import EffectRefused, Problem, ProtocolError, SourceRejected
from sandbox.forkserver import MAX_CHILDREN, UID_BASE
from sandbox.policy import ISOLATIONS, RESTRICTED, Policy, policy_for
from sandbox.supervisor import ChildReport, ChildSpec, supervise_child
from sandbox.zygote import Zygote, ZygoteError, ZygoteOptions, bwrap_works, unshare_net_works

log = logging.getLogger(__name__)

__all__ = [
    "AttemptOutcome",
    "AttemptRequest",
    "EffectRefused",
    "Limits",
    "Sandbox",
    "SourceRejected",
    "default_sandbox",
    "check_source",
    "run_attempt",
]

STATUSES = ("succeeded", "failed", "timed_out", "crashed")
JOB_FIELDS = frozenset(
    {"id", "name", "kind", "user_id", "metadata", "active_version", "execution_id", "attempt"}
)
_MAX_ERROR_TYPE_CHARS = 200
_MAX_ERROR_MESSAGE_CHARS = 4096 + 64
_MAX_TRACEBACK_ENTRIES = 50
_MAX_TRACEBACK_ENTRY_CHARS = 500
_MAX_PROBLEMS = 50


def _is_strict_json(value: Any) -> bool:
    try:
        json.dumps(value, allow_nan=False, ensure_ascii=False).encode("utf-8")
    except (TypeError, ValueError, RecursionError):
        return False
    return True


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


@dataclass(frozen=True)
class Limits:
    """Resource bounds of one attempt; ``cpu_seconds`` defaults to ceil(timeout) + 1."""

    timeout_seconds: float = 60.0
    memory_mb: int = 512
    cpu_seconds: int | None = None
    output_bytes: int = 1 << 20  # result JSON cap
    log_bytes: int = 64 << 10  # captured prints/stdout cap
    max_calls: int = 100  # effect calls per attempt

    def __post_init__(self) -> None:
        _require(self.timeout_seconds > 0, "timeout_seconds must be positive")
        _require(self.memory_mb >= 64, "memory_mb must be at least 64")
        _require(self.cpu_seconds is None or self.cpu_seconds >= 1, "cpu_seconds must be >= 1")
        _require(self.output_bytes > 0, "output_bytes must be positive")
        _require(self.log_bytes >= 0, "log_bytes must not be negative")
        _require(self.max_calls >= 0, "max_calls must not be negative")

    @property
    def effective_cpu_seconds(self) -> int:
        # One second over the wall clock: the wall clock should normally win.
        return self.cpu_seconds or math.ceil(self.timeout_seconds) + 1


@dataclass(frozen=True)
class AttemptRequest:
    """One attempt of one artifact.

    ``job`` holds the fields the child's ``job`` handle shows: id, name, kind
    ("dynamic" | "predefined"), user_id, metadata, active_version, execution_id, attempt.
    ``payload`` (cloudpickle bytes) is used only with ``isolation="trusted"``, and is
    unpickled only inside the child. ``start_at`` (a ``time.time()`` instant, at most
    ``MAX_START_DELAY_SECONDS`` ahead) is when the function may start: the child is
    forked and set up at once, and waits for it; the timeout counts from then.
    """

    source: str
    entrypoint: str
    job: dict[str, Any]
    isolation: str = "restricted"
    payload: bytes | None = None
    limits: Limits = field(default_factory=Limits)
    # True when the engine admitted this exact source with ``check_source`` (it compiled
    # in a sandboxed child then), so the fork server may compile and cache it.
    admitted: bool = False
    start_at: float | None = None

    def __post_init__(self) -> None:
        _require(self.start_at is None or (isinstance(self.start_at, (int, float))
                                           and math.isfinite(self.start_at)), "start_at must be a finite number")
        _require(self.isolation in ISOLATIONS, f"isolation must be one of {ISOLATIONS}")
        _require(isinstance(self.source, str), "source must be a str")
        _require(isinstance(self.entrypoint, str) and bool(self.entrypoint), "entrypoint is required")
        missing = sorted(JOB_FIELDS - set(self.job))
        _require(not missing, f"job is missing {missing}")
        _require(self.job["kind"] in ("dynamic", "predefined"), "job kind must be dynamic or predefined")
        _require(
            self.isolation != "trusted" or isinstance(self.payload, bytes),
            "trusted isolation needs a cloudpickle payload (bytes)",
        )
        _require(_is_strict_json(self.job), "job must hold only JSON values (no NaN, no sets)")


@dataclass(frozen=True)
class AttemptOutcome:
    """How an attempt ended, as decided by the engine from what the child reported."""

    status: str  # "succeeded" | "failed" | "timed_out" | "crashed"
    result_json: str | None  # compact JSON of the return value (its key order kept), when succeeded
    error: dict[str, Any] | None  # {"type": str, "message": str, "traceback": [str, ...]}
    logs: str
    effects: tuple[dict[str, Any], ...]  # accepted calls, in order; commit only on success
    duration_ms: int


MODES = ("auto", "nobwrap", "spawn")


class Sandbox:
    """The engine's long-lived sandbox: a fork server (zygote) and the layers around it.

    ``mode``: "auto" uses bubblewrap when it works here; "nobwrap" forces the fallback
    (zygote without bubblewrap: separate uids, a network namespace through ``unshare``
    when permitted); "spawn" starts a fresh interpreter per attempt (slow, no zygote).
    The default comes from the ``CAPSULE_SANDBOX`` environment variable, else "auto".
    If the zygote cannot start, the sandbox falls back to "spawn" and says so in
    ``layers()``.
    """

    def __init__(self, mode: str | None = None) -> None:
        mode = mode or os.environ.get("CAPSULE_SANDBOX") or "auto"
        _require(mode in MODES, f"sandbox mode must be one of {MODES}")
        self.mode = mode
        self._zygote: Zygote | None = None
        # Trusted attempts fork from a fork server of their own, started when the first
        # one comes: the main one holds other jobs' compiled sources (its code cache, and
        # what its requests left in freed memory), which a forked child inherits and full
        # Python can read. This one is never sent a source.
        self._trusted_zygote: Zygote | None = None
        self._lock = threading.Lock()
        self._started = False
        self._bwrap_detail = "not used (mode {mode})".format(mode=mode)
        self._bwrap = False
        self._netns = False

    def start(self) -> Sandbox:
        with self._lock:
            if not self._started:
                self._start_locked()
        return self

    def _start_locked(self) -> None:
        self._started = True
        if self.mode == "spawn":
            return
        bwrap = shutil.which("bwrap") if self.mode == "auto" else None
        if bwrap:
            works, why = bwrap_works(bwrap)
            self._bwrap_detail = "in use" if works else f"installed but unusable here: {why}"
            bwrap = bwrap if works else None
        elif self.mode == "auto":
            self._bwrap_detail = "not installed (apt-get install bubblewrap)"
        self._netns = bool(bwrap) or unshare_net_works()
        try:
            try:
                self._zygote = Zygote(ZygoteOptions(bwrap=bwrap, unshare_net=self._netns and not bwrap)).start()
                self._bwrap = bool(bwrap)
            except (ZygoteError, OSError) as exc:
                if not bwrap:
                    raise
                log.error("the fork server did not start in bubblewrap, starting it without: %s", exc,
                          extra={"action": "zygote_start"})
                self._bwrap_detail = f"installed, but the fork server failed in it: {exc}"
                self._netns = unshare_net_works()
                self._zygote = Zygote(ZygoteOptions(bwrap=None, unshare_net=self._netns)).start()
        except (ZygoteError, OSError) as exc:
            log.error("fork server unavailable, spawning a fresh interpreter per attempt: %s", exc,
                      extra={"action": "zygote_start"})
            self._zygote, self._bwrap, self._netns = None, False, False

    def stop(self) -> None:
        with self._lock:
            for zygote in (self._zygote, self._trusted_zygote):
                if zygote is not None:
                    zygote.stop()
            self._zygote = self._trusted_zygote = None
            self._started = False

    def _fork_server_for(self, request: AttemptRequest) -> Zygote | None:
        if request.isolation != "trusted" or self._zygote is None:
            return self._zygote
        with self._lock:
            if self._trusted_zygote is None:
                options = replace(self._zygote.options, warm_children=0, own_uid_block=True)
                self._trusted_zygote = Zygote(options).start()
            return self._trusted_zygote

    def run_attempt(
        self, request: AttemptRequest, authorize: Callable[[dict[str, Any]], None] | None = None
    ) -> AttemptOutcome:
        """Run one attempt in a fresh child and report how it ended.

        ``authorize(effect)`` is called for every well-formed call the child makes (e.g.
        ``{"op": "send", "user_id": "u1", "parts": [...]}``); raising ``EffectRefused``
        refuses it and raises PermissionError in the user's code. Other exceptions from
        ``authorize`` propagate after the child is killed.
        """
        self.start()
        if request.isolation == "trusted" and self._zygote is None and os.geteuid() == 0:
            # Without the fork server a child would be a root process sharing the engine's
            # uid: full Python there could signal or ptrace anything on the machine.
            return AttemptOutcome("failed", None, _engine_error(
                "TrustedUnavailable", "trusted jobs need the fork server's separate uid, which is not "
                "running on this engine (see `capsule doctor`); use restricted isolation or fix the "
                "sandbox"), "", (), 0)
        try:
            zygote = self._fork_server_for(request)
        except (ZygoteError, OSError) as exc:
            return AttemptOutcome("failed", None, _engine_error(
                "TrustedUnavailable", f"the fork server for trusted jobs could not start: {exc}"), "", (), 0)
        gate = EffectGate(request.limits.max_calls, authorize)
        admitted = request.source if request.admitted and request.isolation == "restricted" else None
        report = supervise_child(_attempt_spec(request), gate.handle, zygote, admitted)
        return _outcome(report, request.limits, tuple(gate.effects))

    def check_source(self, source: str, entrypoint: str, policy: Policy = RESTRICTED) -> None:
        """Refuse a source that cannot run under ``policy``; raises SourceRejected.

        The size is checked here; parsing, the import allow-list, compiling (with
        RestrictedPython for restricted policies) and the entry point are checked in a
        child under rlimits, because compiling hostile source is itself attack surface.
        """
        size_problem = _source_size_problem(source, policy)
        if size_problem is not None:
            raise SourceRejected([size_problem])
        self.start()
        report = supervise_child(_check_spec(source, entrypoint, policy), _refuse_call, self._zygote)
        problems = _check_problems(report)
        if problems:
            raise SourceRejected(problems)

    def attempt_uids(self) -> frozenset[int] | None:
        """The uids this sandbox's attempts run as, so far (None: they share the engine's)."""
        self.start()
        info = self._zygote.info if self._zygote is not None else {}
        if not info.get("separate_uids"):
            return None
        blocks = [zygote.info["uid_base"] for zygote in (self._zygote, self._trusted_zygote) if zygote is not None]
        return frozenset(uid for base in blocks for uid in range(base, base + MAX_CHILDREN))

    def fork_server_restarts(self) -> int:
        """How many times a fork server died and was started again (with it went every
        attempt it was running)."""
        return sum(zygote.starts - 1 for zygote in (self._zygote, self._trusted_zygote)
                   if zygote is not None and zygote.starts)

    def layers(self) -> list[tuple[str, bool, str]]:
        """(layer, in force, detail) as detected on this machine, for doctor and the log."""
        self.start()
        zygote = self._zygote
        info = zygote.info if zygote is not None else {}
        root = os.geteuid() == 0
        separate = bool(info.get("separate_uids"))
        pidns = bool(info.get("pid_namespace"))
        return [
            ("fork server", zygote is not None,
             "a small pre-imported zygote forks one fresh child per attempt" if zygote is not None
             else f"off (mode {self.mode}): a fresh interpreter per attempt"),
            ("child process", True, "a new process and session per attempt, killed at the timeout"),
            ("separate uid", separate,
             f"each running attempt has its own uid from {info.get('uid_base', UID_BASE)}, no groups, "
             f"no new privileges"
             if separate else ("the engine is not root: children share its uid" if not root
                               else "off: needs the fork server")),
            ("kill whole sandbox", separate,
             "every process of the attempt's uid is SIGKILLed at its end, setsid() grandchildren too"
             if separate else "the child's process group is SIGKILLed (setsid() grandchildren may escape)"),
            ("bubblewrap", self._bwrap, self._bwrap_detail),
            ("pid namespace", pidns, "the engine and the host's processes are invisible" if pidns else "off"),
            ("seccomp", bool(info.get("seccomp")),
             "a deny-list refuses namespaces, mounts, ptrace, bpf, io_uring, keyrings, modules, sockets, "
             "IPC objects and the like"
             if info.get("seccomp") else "off: needs the fork server on x86_64 or aarch64"),
            ("network namespace", self._netns, "no network interfaces but loopback" if self._netns else "off"),
            ("private tmpfs", self._bwrap, "a size-capped /tmp, read-only system directories" if self._bwrap
             else "off: attempts get a private 0700 directory on the host's /tmp"),
            ("rlimits", True, "address space, CPU seconds, file size, open files, processes, core dumps=0, "
                              "set in the child before any user byte is read"),
            ("restricted python", True, "RestrictedPython policy with an import allow-list (restricted profile)"),
            ("scrubbed environment", True, "the child gets a minimal environment, only the channel and its "
                                           "output pipes as descriptors, and a fresh empty working directory"),
            ("engine not dumpable", _engine_undumpable(), "PR_SET_DUMPABLE=0: other processes of the engine's "
                                                          "uid cannot read its memory, environment or descriptors"),
        ]


def _engine_undumpable() -> bool:
    import ctypes

    try:
        return ctypes.CDLL(None).prctl(3, 0, 0, 0, 0) == 0  # PR_GET_DUMPABLE
    except (OSError, AttributeError):
        return False


_DEFAULT: Sandbox | None = None
_DEFAULT_LOCK = threading.Lock()


def default_sandbox() -> Sandbox:
    """The process-wide sandbox used by ``run_attempt``/``check_source``; started on use."""
    global _DEFAULT
    with _DEFAULT_LOCK:
        if _DEFAULT is None:
            _DEFAULT = Sandbox()
            atexit.register(_DEFAULT.stop)
        return _DEFAULT


def run_attempt(
    request: AttemptRequest, authorize: Callable[[dict[str, Any]], None] | None = None
) -> AttemptOutcome:
    """``Sandbox.run_attempt`` on the process-wide sandbox."""
    return default_sandbox().run_attempt(request, authorize)


def check_source(source: str, entrypoint: str, policy: Policy = RESTRICTED) -> None:
    """``Sandbox.check_source`` on the process-wide sandbox."""
    default_sandbox().check_source(source, entrypoint, policy)


# --- requests to the child -----------------------------------------------------------

CHECK_LIMITS = Limits(timeout_seconds=10.0, memory_mb=512, output_bytes=64 << 10, log_bytes=4 << 10)


def _attempt_spec(request: AttemptRequest) -> ChildSpec:
    payload = request.payload if request.isolation == "trusted" else None
    frame = {
        "type": "run",
        "isolation": request.isolation,
        "allowed_modules": sorted(policy_for(request.isolation).allowed_modules),
        "source": request.source,
        "entrypoint": request.entrypoint,
        "job": {name: request.job[name] for name in sorted(JOB_FIELDS)},
        # A restricted child never receives a pickle, even if the artifact has one.
        "payload": base64.b64encode(payload).decode("ascii") if payload is not None else None,
    }
    now = time.time()
    delay = 0.0 if request.start_at is None else max(0.0, min(request.start_at - now, MAX_START_DELAY_SECONDS))
    if delay:
        frame["start_at"] = now + delay
    return _spec(frame, request.limits, frozenset({"result", "error"}), accepts_calls=True, start_delay=delay)


def _check_spec(source: str, entrypoint: str, policy: Policy) -> ChildSpec:
    frame = {
        "type": "check",
        "isolation": policy.name,
        "allowed_modules": sorted(policy.allowed_modules),
        "source": source,
        "entrypoint": entrypoint,
    }
    return _spec(frame, CHECK_LIMITS, frozenset({"checked", "error"}), accepts_calls=False)


def _spec(frame: dict[str, Any], limits: Limits, terminals: frozenset[str], accepts_calls: bool,
          start_delay: float = 0.0) -> ChildSpec:
    return ChildSpec(
        limits_frame={
            "type": "limits",
            "memory_mb": limits.memory_mb,
            "cpu_seconds": limits.effective_cpu_seconds,
            "file_bytes": limits.output_bytes,
            "output_bytes": limits.output_bytes,
            "log_bytes": limits.log_bytes,
        },
        request_frame=frame,
        terminal_types=terminals,
        accepts_calls=accepts_calls,
        timeout_seconds=limits.timeout_seconds,
        start_delay_seconds=start_delay,
        cpu_seconds=limits.effective_cpu_seconds,
        # Room for the result plus the frame's own bytes; calls are far smaller.
        max_frame_bytes=max(DEFAULT_MAX_FRAME_BYTES, limits.output_bytes + (64 << 10)),
        log_bytes=limits.log_bytes,
    )


def _refuse_call(frame: dict[str, Any]) -> dict[str, Any]:
    return {"type": "reply", "ok": False, "error_type": "invalid", "error": "no calls while checking"}


# --- reports to outcomes -------------------------------------------------------------


def _outcome(report: ChildReport, limits: Limits, effects: tuple[dict[str, Any], ...]) -> AttemptOutcome:
    try:
        status, result_json, error = _verdict(report, limits)
    except ProtocolError as exc:  # the terminal frame itself was malformed
        status, result_json, error = "crashed", None, _engine_error("ProtocolError", str(exc))
    return AttemptOutcome(status, result_json, error, report.logs, effects, report.duration_ms)


def _verdict(report: ChildReport, limits: Limits) -> tuple[str, str | None, dict[str, Any] | None]:
    if report.ending == "timeout":
        message = f"the attempt exceeded its {limits.timeout_seconds:g} s timeout and was killed"
        return "timed_out", None, _engine_error("TimeoutError", message)
    if report.ending == "cpu_limit":
        message = f"the attempt {report.detail} and was killed"
        return "timed_out", None, _engine_error("TimeoutError", message)
    if report.ending == "protocol":
        return "crashed", None, _engine_error("ProtocolError", report.detail)
    if report.ending != "terminal" or report.terminal is None:
        return "crashed", None, _engine_error("Crashed", report.detail)
    if report.terminal["type"] == "result":
        return "succeeded", _canonical_result(report.terminal, limits.output_bytes), None
    return "failed", None, _child_error(report.terminal)


def _canonical_result(frame: dict[str, Any], output_bytes: int) -> str:
    # Compact and re-encoded from what was decoded, in the job's own key order: a dict
    # returned as a ranking or a table keeps its order, as it does in Python.
    _require_fields(frame, {"type", "value"})
    try:
        text = json.dumps(frame["value"], separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (ValueError, RecursionError) as exc:
        raise ProtocolError(f"result could not be re-encoded: {type(exc).__name__}") from None
    if len(text.encode("utf-8")) > output_bytes:
        raise ProtocolError(f"result exceeds the {output_bytes}-byte cap")
    return text


def _child_error(frame: dict[str, Any]) -> dict[str, Any]:
    """The child's error report, checked field by field and re-capped here."""
    _require_fields(frame, {"type", "error"})
    error = frame["error"]
    if not isinstance(error, dict) or error.keys() != {"type", "message", "traceback"}:
        raise ProtocolError("error frame must hold type, message and traceback")
    kind, message, lines = error["type"], error["message"], error["traceback"]
    if not (isinstance(kind, str) and isinstance(message, str) and isinstance(lines, list)):
        raise ProtocolError("error frame fields have the wrong types")
    if not all(isinstance(line, str) for line in lines):
        raise ProtocolError("traceback entries must be strings")
    return {
        "type": kind[:_MAX_ERROR_TYPE_CHARS],
        "message": message[:_MAX_ERROR_MESSAGE_CHARS],
        "traceback": [line[:_MAX_TRACEBACK_ENTRY_CHARS] for line in lines[-_MAX_TRACEBACK_ENTRIES:]],
    }


def _engine_error(kind: str, message: str) -> dict[str, Any]:
    return {"type": kind, "message": message, "traceback": []}


def _require_fields(frame: dict[str, Any], expected: set[str]) -> None:
    if frame.keys() != expected:
        raise ProtocolError(f"{frame['type']} frame must hold exactly {sorted(expected)}")


# --- check reports to problems -------------------------------------------------------


def _source_size_problem(source: str, policy: Policy) -> Problem | None:
    if not isinstance(source, str):
        raise TypeError(f"source must be a str, not {type(source).__name__}")
    try:
        size = len(source.encode("utf-8"))
    except UnicodeEncodeError:
        return Problem(0, "source is not valid Unicode text (it contains a lone surrogate)")
    if size > policy.max_source_bytes:
        return Problem(0, f"source is {size} bytes; the limit is {policy.max_source_bytes} bytes")
    return None


def _check_problems(report: ChildReport) -> list[Problem]:
    try:
        if report.ending == "terminal" and report.terminal is not None:
            if report.terminal["type"] == "checked":
                return _checked_problems(report.terminal)
            error = _child_error(report.terminal)
            return [Problem(0, f"source could not be checked: {error['type']}: {error['message']}")]
    except ProtocolError as exc:
        return [Problem(0, f"source could not be checked: {exc}")]
    if report.ending in ("timeout", "cpu_limit"):
        return [Problem(0, f"checking the source took longer than {CHECK_LIMITS.timeout_seconds:g} s")]
    return [Problem(0, f"source could not be checked: {report.detail}")]


def _checked_problems(frame: dict[str, Any]) -> list[Problem]:
    _require_fields(frame, {"type", "problems"})
    raw = frame["problems"]
    if not isinstance(raw, list):
        raise ProtocolError("problems must be a list")
    return [_problem(item) for item in raw[:_MAX_PROBLEMS]]


def _problem(item: Any) -> Problem:
    if not isinstance(item, dict) or item.keys() != {"line", "message"}:
        raise ProtocolError("a problem must hold exactly line and message")
    line, message = item["line"], item["message"]
    if type(line) is not int or line < 0 or not isinstance(message, str):
        raise ProtocolError("a problem's line must be an int >= 0 and its message a str")
    return Problem(line, message[:_MAX_ERROR_MESSAGE_CHARS])
