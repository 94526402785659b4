"""The objects user code sees in the child: ``job``, ``User`` and the users it returns.

Every public attribute here is reachable from restricted code (SANDBOX.md G6), so the
handles carry only the job's own data, use ``__slots__`` (no ``__dict__`` to poke at),
show a neutral ``repr``, and reach the engine solely through ``EffectBridge``: one
"call" frame out, one "reply" frame back. The engine checks every call; arguments are
validated here first so that a mistake gets a clear TypeError/ValueError at the line
that made it.
"""

from __future__ import annotations

import json
import socket
from typing import Any

from sandbox.channel import recv_frame, send_frame
from sandbox.effects import MAX_MESSAGE_BYTES, MAX_METADATA_BYTES, MAX_PARTS, MAX_USER_ID_CHARS
from sandbox.errors import ProtocolError

__all__ = ["EffectBridge", "JobHandle", "UserDirectory", "UserHandle", "normalize_parts"]

_REPLY_FRAME_BYTES = 64 << 10
_MAX_ERROR_CHARS = 2000

PREDEFINED_USER_ERROR = (
    "job.user() is only available to dynamic jobs created for a user; a predefined job "
    "should use User.get(job.metadata['userId']) (or whichever metadata key holds the "
    "user id)"
)

# How the engine's refusal kinds surface in user code.
_REFUSALS: dict[str, type[Exception]] = {
    "permission": PermissionError,
    "quota": RuntimeError,
    "invalid": ValueError,
}


class EffectBridge:
    """Sends one call frame and waits for its reply; a refusal raises in user code."""

    __slots__ = ("_sock",)

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock

    def __repr__(self) -> str:
        return "<effects>"

    def call(self, op: str, **args: Any) -> None:
        send_frame(self._sock, {"type": "call", "op": op, **args})
        reply = recv_frame(self._sock, _REPLY_FRAME_BYTES)
        if reply["type"] != "reply" or not isinstance(reply.get("ok"), bool):
            raise ProtocolError("expected a reply frame from the engine")
        if not reply["ok"]:
            raise _refusal(reply)


def _refusal(reply: dict[str, Any]) -> Exception:
    error_class = _REFUSALS.get(reply.get("error_type"), RuntimeError)  # type: ignore[arg-type]
    message = reply.get("error")
    return error_class(str(message)[:_MAX_ERROR_CHARS] if message else "refused by the engine")


class UserHandle:
    """A user the job may message: ``id`` and ``send(parts)``."""

    __slots__ = ("id", "_bridge")

    def __init__(self, user_id: str, bridge: EffectBridge) -> None:
        self.id = user_id
        self._bridge = bridge

    def __repr__(self) -> str:
        return f"<user {self.id}>"

    def send(self, parts: Any) -> None:
        """Send a message: a list of ``{"type": "text", "text": ...}`` parts, or a string."""
        self._bridge.call("send", user_id=self.id, parts=normalize_parts(parts))


class UserDirectory:
    """What user code calls ``User``: ``User.get(user_id)`` returns a user handle.

    An instance rather than a class, so user code cannot subclass it.
    """

    __slots__ = ("_bridge",)

    def __init__(self, bridge: EffectBridge) -> None:
        self._bridge = bridge

    def __repr__(self) -> str:
        return "<User>"

    def get(self, user_id: str) -> UserHandle:
        """A handle for ``user_id``; whether the job may message them is checked on send."""
        return UserHandle(_checked_user_id(user_id), self._bridge)


class JobHandle:
    """The ``job`` passed to ``execute(job)``: the job's data and its effect calls."""

    __slots__ = ("id", "name", "metadata", "active_version", "execution_id", "attempt", "_user_id", "_bridge")

    def __init__(self, fields: dict[str, Any], bridge: EffectBridge) -> None:
        self.id = fields["id"]
        self.name = fields["name"]
        # A plain copy: local edits are the job's own business until update_metadata.
        self.metadata = dict(fields["metadata"])
        self.active_version = fields["active_version"]
        self.execution_id = fields["execution_id"]
        self.attempt = fields["attempt"]
        is_dynamic = fields["kind"] == "dynamic"
        self._user_id = fields.get("user_id") if is_dynamic else None
        self._bridge = bridge

    def __repr__(self) -> str:
        return f"<job {self.name}>"

    def user(self) -> UserHandle:
        """The user a dynamic job was created for."""
        if not self._user_id:
            raise RuntimeError(PREDEFINED_USER_ERROR)
        return UserHandle(self._user_id, self._bridge)

    def update_metadata(self, changes: dict[str, Any]) -> None:
        """Merge ``changes`` (top-level keys) into the job's metadata, here and in the engine."""
        changes = _checked_metadata(changes)
        self._bridge.call("update_metadata", metadata=changes)
        self.metadata.update(changes)

    def deactivate(self) -> None:
        """Pause the job's schedule once this attempt succeeds."""
        self._bridge.call("deactivate")

    def delete(self) -> None:
        """Delete (or archive) the job once this attempt succeeds."""
        self._bridge.call("delete")


def normalize_parts(parts: Any) -> list[dict[str, str]]:
    """Message parts as plain dicts; a string is one text part."""
    if isinstance(parts, str):
        return [{"type": "text", "text": parts}]
    if not isinstance(parts, (list, tuple)):
        raise TypeError(
            "send() takes a list of parts such as [{'type': 'text', 'text': 'hi'}] "
            f"or a string, not {type(parts).__name__}"
        )
    if not parts:
        raise ValueError("send() needs at least one part")
    if len(parts) > MAX_PARTS:
        raise ValueError(f"a message may have at most {MAX_PARTS} parts, not {len(parts)}")
    normalized = [_normalize_part(index, part) for index, part in enumerate(parts)]
    size = sum(len(str.encode(part["text"], "utf-8")) for part in normalized)
    if size > MAX_MESSAGE_BYTES:
        raise ValueError(f"a message may hold at most {MAX_MESSAGE_BYTES} bytes of text, not {size}")
    return normalized


def _normalize_part(index: int, part: Any) -> dict[str, str]:
    if not isinstance(part, dict):
        raise TypeError(
            f"part {index} must be a dict such as {{'type': 'text', 'text': 'hi'}}, not {type(part).__name__}"
        )
    unknown = sorted(str(key) for key in part if key not in ("type", "text"))
    if unknown:
        raise ValueError(f"part {index} has unknown keys {unknown}; a part has 'type' and 'text'")
    if part.get("type") != "text":
        raise ValueError(f"part {index} has type {part.get('type')!r}; only 'text' parts exist")
    text = part.get("text")
    if not isinstance(text, str):
        raise TypeError(f"part {index} needs 'text' to be a string, not {type(text).__name__}")
    _require_utf8(text, f"part {index} text")
    return {"type": "text", "text": text}


def _checked_user_id(user_id: Any) -> str:
    if not isinstance(user_id, str) or not user_id:
        raise TypeError(f"User.get() takes a non-empty user id string, not {user_id!r}")
    if len(user_id) > MAX_USER_ID_CHARS:
        raise ValueError(f"user id is longer than {MAX_USER_ID_CHARS} characters")
    _require_utf8(user_id, "user id")
    return user_id


def _checked_metadata(changes: Any) -> dict[str, Any]:
    if not isinstance(changes, dict):
        raise TypeError(f"update_metadata() takes a dict, not {type(changes).__name__}")
    if not all(isinstance(key, str) for key in changes):
        raise TypeError("update_metadata() keys must be strings")
    try:
        text = json.dumps(changes, allow_nan=False, ensure_ascii=False)
        size = len(text.encode("utf-8"))  # lone surrogates would only fail later, in the frame
    except (TypeError, ValueError, RecursionError) as exc:
        raise TypeError(f"update_metadata() values must be JSON: {exc}") from None
    if size > MAX_METADATA_BYTES:
        raise ValueError(f"a metadata update may be at most {MAX_METADATA_BYTES} bytes of JSON, not {size}")
    # A round trip gives the engine plain JSON types, never user subclasses.
    return dict(json.loads(text))


def _require_utf8(text: str, what: str) -> None:
    try:
        str.encode(text, "utf-8")  # unbound: a str subclass may override encode()
    except UnicodeEncodeError:
        raise ValueError(f"{what} is not valid Unicode text (lone surrogate)") from None
