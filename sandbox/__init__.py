"""Run one attempt of a user's ``execute(job)`` in an isolated child process.

Layers, outermost first (SANDBOX.md section 9):

* **ingest** - ``check_source`` caps the source size, then parses, checks imports and the
  entry point and compiles in a child, so a job that cannot run is refused at creation.
* **supervisor** (``supervisor.py``, engine side) - a new child per attempt with a scrubbed
  environment, an empty scratch directory, no inherited descriptors but the channel, its
  own process group; a wall-clock deadline that SIGKILLs the group; capped stdout/stderr.
* **rlimits** (``runner.py``, child side) - address space, CPU seconds, file size, open
  files and core dumps are limited before the child reads any user byte.
* **RestrictedPython** (``policy.py``) - restricted jobs are compiled by RP and run with
  guarded attribute/item/write hooks, vetted builtins and an import allow-list.
* **protocol** (``channel.py``, ``effects.py``) - length-capped strict-JSON frames; effect
  calls are validated, quota'd and authorized by the engine; exactly one terminal frame;
  the engine decides the status.

Approaches rejected, and why:

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
* RestrictedPython as the boundary: RP restricts the language, not the process. The OS
  layer (bubblewrap namespaces, a dedicated uid, seccomp, a fork-server zygote) is the
  next step and plugs into ``supervisor._spawn``/``_kill_group``; until then, a
  ``trusted`` job is arbitrary code running as the engine's uid.

Importing this package is cheap: RestrictedPython and cloudpickle are imported only in
the child (and by ``policy`` functions that need RP, on first use).
"""

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
