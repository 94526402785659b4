"""Run one attempt of a user's ``execute(job)`` in an isolated child process.

This package is the security boundary. Layers, outermost first (SANDBOX.md section 9):

* **ingest** - ``check_source`` caps the source size, then parses, checks imports and the
  entry point and compiles in a sandboxed child, so a job that cannot run is refused at
  creation and hostile source is never compiled in the engine.
* **fork server** (``forkserver.py``; ``zygote.py`` is the engine's handle on it) - one
  small process (no grpc, no apsw, no threading; RestrictedPython and the runner
  pre-imported, ``gc.freeze()``-d) forks a fresh child per attempt. When
  bubblewrap works it runs inside it: new pid/net/ipc/uts namespaces, read-only binds of
  the system and the Python installation only, a size-capped tmpfs ``/tmp``, an empty
  environment, ``--die-with-parent``. Without it, ``unshare`` gives it network, ipc and
  mount namespaces with private tmpfs ``/tmp`` and ``/dev/shm``.
* **the child** - a new session, its own uid (``UID_BASE`` + n, no groups, no new
  privileges, not dumpable) so attempts cannot signal or trace each other or the engine,
  a seccomp deny-list (``seccomp.py``), only the channel and stdout/stderr as
  descriptors, a minimal environment, a fresh 0700 working directory.
* **rlimits** (``runner.py``) - address space, CPU seconds, file size, open files,
  processes and core dumps are limited before the child reads any user byte.
* **RestrictedPython** (``policy.py``) - restricted jobs are compiled by RP and run with
  guarded attribute/item/write hooks, vetted builtins and an import allow-list served
  through read-only module proxies.
* **supervisor** (``supervisor.py``, engine side) - a wall-clock deadline; at the end of
  every attempt, and at its timeout, the zygote kills every process of the attempt's uid
  (``kill(-1)`` from a short-lived process of that uid, which reaches ``setsid()``
  grandchildren), removes the working directory without following links, then frees
  the uid.
* **protocol** (``channel.py``, ``effects.py``) - length-capped strict-JSON frames; effect
  calls are validated, quota'd and authorized by the engine; identity is the channel;
  exactly one terminal frame; the engine decides the status and never unpickles.
* **the engine** sets ``PR_SET_DUMPABLE=0`` on itself (``engine/server.py``).

``Sandbox.layers()`` reports each layer as detected at run time; ``capsule doctor`` and
the start-up log show it.

Decisions, and approaches rejected:

* A fork server rather than a fresh ``python -I`` per attempt: an interpreter plus the
  RestrictedPython import costs 60-250 ms; a fork of a ~24 MiB zygote about 1.5 ms.
  The zygote stays small because fork cost grows with its memory (about 55 µs/MiB),
  and free of ``threading``, whose at-fork hook doubled each child's page faults: trusted
  children import cloudpickle (which imports threading) themselves, before they drop
  privileges, and so are forked fresh rather than taken from the warm ones.
* One bubblewrap around the zygote, not one per attempt: a bwrap per attempt would cost
  an exec and namespace set-up each time. The attempts share the zygote's namespaces, so
  they are separated from each other by uids (and seccomp), not by namespaces.
* Killing by uid, not by process group: ``killpg`` misses grandchildren that called
  ``setsid()``; a per-attempt uid makes "everything this attempt started" one kill(-1).
  Cgroups were not used: they are not delegated to us in every container.
* The zygote is started from one long-lived thread: ``PR_SET_PDEATHSIG`` (and bwrap's
  ``--die-with-parent``) fire when the *thread* that forked it ends.
* Compiled code is cached in the zygote per source digest, only for sources
  the engine marks ``admitted`` (they compiled in a sandboxed child at creation under the
  restricted policy) and at most 64 KiB; any other source is compiled by the child.
* After a terminal frame the engine does not wait for the child's exit: the zygote kills
  and cleans up on its own, and the uid is reused only after that.
* In-process timeouts (SIGALRM, threads): they cannot interrupt C loops such as
  ``sum(range(10**12))``; only a SIGKILL from outside stops every job.
* An import hook returning real modules: ``datetime.sys``, ``json.codecs`` and
  ``from datetime import sys`` reach ``os``; modules are served as attribute-allow-listed
  ``ModuleProxy`` objects instead, and ``from m import n`` is checked in the hook.
* Unpickling (or compiling) in the engine to "validate" a payload: unpickling is code
  execution and compiling hostile source can take seconds and gigabytes; both happen only
  in the child, under its limits.
* ``preexec_fn`` to set limits: unsafe in a threaded engine; the child limits itself first.
* Trusting the child's exit code: ``raise SystemExit(0)`` is user code too; only a
  terminal frame counts, and only the first.
* RestrictedPython as the boundary: RP restricts the language, not the process; a
  ``trusted`` job is arbitrary native code, held by the OS layers alone.

Residual risks: without root the children share the engine's uid (only the process
group is killed, and rlimits on processes do not bind); without bubblewrap the host's
files are protected by permissions only; kernel bugs reachable by allowed system calls.
Attempts running at the same time share the zygote's namespaces: they may reach each
other over loopback or abstract unix sockets, and share the capped tmpfs, so one attempt
can fill it for the others (each file is capped by RLIMIT_FSIZE, not their number).

Importing this package is cheap: RestrictedPython and cloudpickle are imported only in
the zygote and the child (and by ``policy`` functions that need RP, on first use).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sandbox.errors import EffectRefused, Problem, ProtocolError, SandboxError, SourceRejected
    from sandbox.launcher import (
        AttemptOutcome,
        AttemptRequest,
        Limits,
        Sandbox,
        check_source,
        default_sandbox,
        run_attempt,
    )
    from sandbox.policy import RESTRICTED, SANDBOX_BUILTIN_NAMES, TRUSTED, Policy

# Public names are loaded on first use (PEP 562): the fork server and the children
# import only the modules they run, which keeps the zygote small and its forks cheap.
_EXPORTS = {
    "errors": ("EffectRefused", "Problem", "ProtocolError", "SandboxError", "SourceRejected"),
    "launcher": ("AttemptOutcome", "AttemptRequest", "Limits", "Sandbox", "check_source", "default_sandbox",
                 "run_attempt"),
    "policy": ("RESTRICTED", "SANDBOX_BUILTIN_NAMES", "TRUSTED", "Policy"),
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'sandbox' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"sandbox.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_WHERE))


__all__ = [
    "RESTRICTED",
    "SANDBOX_BUILTIN_NAMES",
    "TRUSTED",
    "AttemptOutcome",
    "AttemptRequest",
    "EffectRefused",
    "Limits",
    "Policy",
    "Problem",
    "ProtocolError",
    "Sandbox",
    "SandboxError",
    "SourceRejected",
    "check_source",
    "default_sandbox",
    "run_attempt",
]
