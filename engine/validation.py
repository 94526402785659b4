"""Checks of caller input that need no store: each failure names the field and the fix.

Sizes over a cap raise ResourceExhausted; everything else InvalidArgument.
"""

from __future__ import annotations

import json
import platform
import re
from typing import Any, Mapping

from engine.errors import InvalidArgument, ResourceExhausted
from engine.model import Isolation, JobSpec, Limits, Retention

NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]*")
MAX_NAME = 100
MAX_DESCRIPTION = 2000
MAX_USER_ID = 200
MAX_SOURCE_BYTES = 256 * 1024
MAX_PAYLOAD_BYTES = 1024 * 1024
MAX_METADATA_BYTES = 64 * 1024
MAX_TIMEOUT_SECONDS = 24 * 3600.0
MAX_ATTEMPTS = 100
MAX_BACKOFF_SECONDS = 7 * 24 * 3600.0
MAX_KEEP_LAST = 1_000_000
MAX_AGE_DAYS = 36500.0
# Per-job resource limits: (smallest, largest) an owner may ask for; unset means the
# engine's default (engine/scheduler.py: 512 MiB, timeout + 1 s of CPU, 1 MiB, 64 KiB).
LIMIT_RANGES = {
    "memory_mb": (64, 4096),
    "cpu_seconds": (1, 3600),
    "output_bytes": (1, 2 * 1024 * 1024),
    "log_bytes": (1, 1024 * 1024),
}
ENTRYPOINT_PATTERN = re.compile(r"[A-Za-z][A-Za-z0-9_]*")


def check_name(name: str, field: str = "name", what: str = "job", example: str = "daily-report") -> None:
    if not name:
        raise InvalidArgument(field, f"is required; use lowercase letters, digits, '-' and '_', e.g. '{example}'")
    if len(name) > MAX_NAME or not NAME_PATTERN.fullmatch(name):
        raise InvalidArgument(field, f"{name[:120]!r} is not a valid {what} name; use [a-z0-9][a-z0-9_-]* "
                                     f"(at most {MAX_NAME} characters), e.g. '{example}'")


def metadata_bytes(metadata: Mapping[str, Any]) -> int:
    """The size a job's metadata is capped by: its JSON, as stored."""
    return len(json.dumps(dict(metadata)).encode())


def check_metadata(metadata: Mapping[str, Any], field: str = "metadata_json") -> None:
    size = metadata_bytes(metadata)
    if size > MAX_METADATA_BYTES:
        raise ResourceExhausted(field, size, MAX_METADATA_BYTES)


def check_spec(spec: JobSpec, field: str = "spec") -> None:
    """Everything about a spec that can be judged without the store or a sandbox."""
    check_name(spec.name, f"{field}.name")
    if len(spec.description) > MAX_DESCRIPTION:
        raise InvalidArgument(f"{field}.description", f"is {len(spec.description)} characters; keep it under {MAX_DESCRIPTION}")
    if spec.user_id is not None and (len(spec.user_id) > MAX_USER_ID or not spec.user_id.strip()):
        raise InvalidArgument(f"{field}.user_id", f"must be a non-blank string of at most {MAX_USER_ID} characters")
    check_metadata(spec.metadata, f"{field}.metadata_json")
    _check_artifact(spec, f"{field}.artifact")
    _check_timeout(spec.timeout_seconds, f"{field}.timeout_seconds")
    _check_retry(spec, f"{field}.retry")
    check_retention(spec.retention, f"{field}.retention")
    check_limits(spec.limits, f"{field}.limits")


def check_retention(retention: Retention, field: str = "retention") -> None:
    keep, age = retention.keep_last, retention.max_age_days
    if keep is not None and not 1 <= keep <= MAX_KEEP_LAST:
        raise InvalidArgument(f"{field}.keep_last", f"must be between 1 and {MAX_KEEP_LAST}, got {keep} "
                                                    "(0 or unset means the default, 1000)")
    if age is not None and not 0 < age <= MAX_AGE_DAYS:
        raise InvalidArgument(f"{field}.max_age_days", f"must be more than 0 and at most {MAX_AGE_DAYS:.0f}, "
                                                       f"got {age} (0 or unset means the default, 30)")


def check_limits(limits: Limits, field: str) -> None:
    """Each set limit within the engine's documented range; the message names field and bounds."""
    for name, (low, high) in LIMIT_RANGES.items():
        value = getattr(limits, name)
        if value is not None and not low <= value <= high:
            raise InvalidArgument(f"{field}.{name}", f"must be between {low} and {high} (0 = the engine's default), got {value}")


def _check_artifact(spec: JobSpec, field: str) -> None:
    art = spec.artifact
    size = len(art.source.encode())
    if size == 0:
        raise InvalidArgument(f"{field}.source", "is empty; send the source of a function `def execute(job): ...`")
    if size > MAX_SOURCE_BYTES:
        raise ResourceExhausted(f"{field}.source", size, MAX_SOURCE_BYTES)
    if not ENTRYPOINT_PATTERN.fullmatch(art.entrypoint):
        raise InvalidArgument(f"{field}.entrypoint", f"{art.entrypoint[:100]!r} is not a public function name; "
                                                     "name a top-level function such as 'execute'")
    if art.payload is not None and len(art.payload) > MAX_PAYLOAD_BYTES:
        raise ResourceExhausted(f"{field}.payload", len(art.payload), MAX_PAYLOAD_BYTES)
    if spec.isolation is Isolation.TRUSTED:
        _check_trusted_payload(spec, field)


def _check_trusted_payload(spec: JobSpec, field: str) -> None:
    art = spec.artifact
    if not art.payload or art.payload_encoding != "cloudpickle":
        raise InvalidArgument(f"{field}.payload", "trusted isolation runs a cloudpickle payload; "
                                                  "bundle the function with isolation='trusted'")
    ours = platform.python_version_tuple()[:2]
    theirs = tuple(art.python_version.split(".")[:2])
    if theirs != ours:
        raise InvalidArgument(
            f"{field}.python_version",
            f"the payload was made with Python {art.python_version or 'unknown'} but the engine runs "
            f"Python {platform.python_version()}; cloudpickle needs the same minor version, so bundle "
            f"it with Python {'.'.join(ours)} or use restricted isolation")


def _check_timeout(timeout: float | None, field: str) -> None:
    if timeout is not None and not 0 < timeout <= MAX_TIMEOUT_SECONDS:
        raise InvalidArgument(field, f"must be more than 0 and at most {MAX_TIMEOUT_SECONDS:.0f} seconds, got {timeout}")


def _check_retry(spec: JobSpec, field: str) -> None:
    r = spec.retry
    if not 1 <= r.max_attempts <= MAX_ATTEMPTS:
        raise InvalidArgument(f"{field}.max_attempts", f"must be between 1 and {MAX_ATTEMPTS}, got {r.max_attempts}")
    if not 0 <= r.backoff_seconds <= MAX_BACKOFF_SECONDS:
        raise InvalidArgument(f"{field}.backoff_seconds", f"must be between 0 and {MAX_BACKOFF_SECONDS:.0f}, got {r.backoff_seconds}")
    if not 1 <= r.factor <= 10:
        raise InvalidArgument(f"{field}.factor", f"must be between 1 and 10, got {r.factor}")
    if r.max_backoff_seconds is not None and not 0 < r.max_backoff_seconds <= MAX_BACKOFF_SECONDS:
        raise InvalidArgument(f"{field}.max_backoff_seconds", f"must be more than 0 and at most {MAX_BACKOFF_SECONDS:.0f}")
