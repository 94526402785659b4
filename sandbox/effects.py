"""Engine-side handling of the child's "call" frames: shape, quotas, authorization.

A call frame comes from the child, so it is hostile until proven otherwise: its op must
be one of four, its fields exactly those of the op, its sizes under the quotas below.
Only then is ``authorize`` asked (the engine's owner check); an accepted call is
recorded as an effect and the child gets ``{"ok": true}``; anything else gets a refusal
whose kind (``invalid``, ``quota``, ``permission``) decides the exception raised in user
code. Identity never comes from the frame: the engine knows which job the channel
belongs to, and ``authorize`` decides whether that job may reach ``user_id``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from sandbox.errors import EffectRefused

__all__ = [
    "MAX_MESSAGE_BYTES",
    "MAX_METADATA_BYTES",
    "MAX_PARTS",
    "EffectGate",
    "InvalidCall",
    "validate_call",
]

MAX_PARTS = 32
MAX_MESSAGE_BYTES = 64 << 10  # UTF-8 text of one message, all parts together
MAX_METADATA_BYTES = 64 << 10  # JSON of one update_metadata call
MAX_USER_ID_CHARS = 256

_FIELDS = {
    "send": frozenset({"user_id", "parts"}),
    "update_metadata": frozenset({"metadata"}),
    "deactivate": frozenset(),
    "delete": frozenset(),
}


class InvalidCall(ValueError):
    """A call frame whose shape or size is wrong; the message is engine-made text."""


class EffectGate:
    """Decides each call of one attempt and keeps the accepted ones in order."""

    def __init__(self, max_calls: int, authorize: Callable[[dict[str, Any]], None] | None) -> None:
        self.max_calls = max_calls
        self.calls_seen = 0
        self.effects: list[dict[str, Any]] = []
        self._authorize = authorize

    def handle(self, frame: dict[str, Any]) -> dict[str, Any]:
        """The reply frame for one call frame."""
        self.calls_seen += 1
        if self.calls_seen > self.max_calls:
            return _refused("quota", f"an attempt may make at most {self.max_calls} calls")
        try:
            effect = validate_call(frame)
        except InvalidCall as exc:
            return _refused("invalid", str(exc))
        try:
            if self._authorize is not None:
                self._authorize(dict(effect))
        except EffectRefused as exc:
            return _refused("permission", exc.message)
        self.effects.append(effect)
        return {"type": "reply", "ok": True}


def _refused(kind: str, message: str) -> dict[str, Any]:
    return {"type": "reply", "ok": False, "error_type": kind, "error": message}


def validate_call(frame: dict[str, Any]) -> dict[str, Any]:
    """The effect a call frame asks for, as a fresh dict; raises InvalidCall."""
    op = frame.get("op")
    if not isinstance(op, str) or op not in _FIELDS:
        raise InvalidCall(f"unknown call; expected one of {sorted(_FIELDS)}")
    fields = frozenset(frame) - {"type", "op"}
    if fields != _FIELDS[op]:
        raise InvalidCall(f"{op} takes exactly the fields {sorted(_FIELDS[op])}")
    if op == "send":
        return _send_effect(frame["user_id"], frame["parts"])
    if op == "update_metadata":
        return _metadata_effect(frame["metadata"])
    return {"op": op}


def _send_effect(user_id: Any, parts: Any) -> dict[str, Any]:
    if not isinstance(user_id, str) or not 0 < len(user_id) <= MAX_USER_ID_CHARS:
        raise InvalidCall(f"user_id must be a string of 1 to {MAX_USER_ID_CHARS} characters")
    if not isinstance(parts, list) or not 0 < len(parts) <= MAX_PARTS:
        raise InvalidCall(f"parts must be a list of 1 to {MAX_PARTS} parts")
    texts = [_part_text(part) for part in parts]
    size = sum(len(text.encode("utf-8")) for text in texts)
    if size > MAX_MESSAGE_BYTES:
        raise InvalidCall(f"a message may hold at most {MAX_MESSAGE_BYTES} bytes of text, not {size}")
    return {"op": "send", "user_id": user_id, "parts": [{"type": "text", "text": t} for t in texts]}


def _part_text(part: Any) -> str:
    if not isinstance(part, dict) or part.keys() != {"type", "text"} or part["type"] != "text":
        raise InvalidCall('each part must be {"type": "text", "text": "..."}')
    if not isinstance(part["text"], str):
        raise InvalidCall("a text part's text must be a string")
    return part["text"]


def _metadata_effect(metadata: Any) -> dict[str, Any]:
    if not isinstance(metadata, dict):
        raise InvalidCall("metadata must be an object")
    size = len(json.dumps(metadata, ensure_ascii=False).encode("utf-8"))
    if size > MAX_METADATA_BYTES:
        raise InvalidCall(f"a metadata update may be at most {MAX_METADATA_BYTES} bytes of JSON, not {size}")
    return {"op": "update_metadata", "metadata": metadata}
