"""Frames between the engine and one child over a socketpair.

A frame is a 4-byte big-endian length followed by that many bytes of UTF-8 JSON that
must decode to an object whose ``"type"`` is one of ``FRAME_TYPES``. Both sides treat
the other's bytes as hostile (SANDBOX.md section 7): the length is checked against a cap
before any of the body is buffered, and decoding is strict (no NaN/Infinity, no
duplicate keys, no lone surrogates). Every decoding failure becomes one ``ProtocolError``.

The child reads with the blocking ``recv_frame``; the engine multiplexes the channel
with the child's stdout/stderr, so it feeds bytes into a ``FrameDecoder`` instead.
"""

from __future__ import annotations

import json
import math
import socket
import struct
from typing import Any

from sandbox.errors import ChannelClosed, ProtocolError

__all__ = [
    "CHILD_FRAME_TYPES",
    "DEFAULT_MAX_FRAME_BYTES",
    "ENGINE_FRAME_TYPES",
    "FRAME_TYPES",
    "FrameDecoder",
    "ProtocolError",
    "decode_frame",
    "encode_frame",
    "recv_frame",
    "send_frame",
]

DEFAULT_MAX_FRAME_BYTES = 1 << 20
# A "run" frame's start_at (the instant its function may start) is at most this far ahead.
MAX_START_DELAY_SECONDS = 1.0
HEADER = struct.Struct(">I")

# Engine -> child: rlimits first, then one request (run or check), then replies to calls.
ENGINE_FRAME_TYPES = frozenset({"limits", "run", "check", "reply"})
# Child -> engine: effect calls, then exactly one terminal frame (result, error or checked).
CHILD_FRAME_TYPES = frozenset({"call", "result", "error", "checked"})
FRAME_TYPES = ENGINE_FRAME_TYPES | CHILD_FRAME_TYPES

_MAX_DETAIL_CHARS = 200


def encode_frame(obj: dict[str, Any], max_bytes: int = DEFAULT_MAX_FRAME_BYTES) -> bytes:
    """Header plus body for ``obj``; raises ProtocolError when it is invalid or too large."""
    _check_frame_shape(obj)
    try:
        body = json.dumps(obj, allow_nan=False, ensure_ascii=False, separators=(",", ":"))
        data = body.encode("utf-8")
    except Exception as exc:  # noqa: BLE001 - cycles, sets, NaN, lone surrogates, deep nesting...
        raise ProtocolError(f"frame is not strict JSON: {_detail(exc)}") from None
    if len(data) > max_bytes:
        raise ProtocolError(f"frame of {len(data)} bytes exceeds the {max_bytes}-byte cap")
    return HEADER.pack(len(data)) + data


def decode_frame(body: bytes) -> dict[str, Any]:
    """Strictly decode one frame body; every failure is a ProtocolError."""
    try:
        obj = json.loads(
            body.decode("utf-8"),
            parse_constant=_refuse_constant,
            parse_float=_finite_float,
            object_pairs_hook=_unique_keys,
        )
        # json.loads accepts "\ud800" escapes that later fail to encode; refuse them now.
        json.dumps(obj, ensure_ascii=False).encode("utf-8")
    # Exception, not BaseException: RecursionError and MemoryError are covered, while a
    # KeyboardInterrupt in the engine must still stop the engine.
    except Exception as exc:  # noqa: BLE001
        raise ProtocolError(f"undecodable frame: {_detail(exc)}") from None
    return _check_frame_shape(obj)


def send_frame(sock: socket.socket, obj: dict[str, Any], max_bytes: int = DEFAULT_MAX_FRAME_BYTES) -> None:
    """Encode ``obj`` and write the whole frame (blocking)."""
    sock.sendall(encode_frame(obj, max_bytes))


def recv_frame(sock: socket.socket, max_bytes: int = DEFAULT_MAX_FRAME_BYTES) -> dict[str, Any]:
    """Read one frame (blocking); the length is checked before the body is read."""
    (length,) = HEADER.unpack(_recv_exactly(sock, HEADER.size, at_boundary=True))
    _check_length(length, max_bytes)
    return decode_frame(_recv_exactly(sock, length, at_boundary=False))


class FrameDecoder:
    """Incremental decoder for a non-blocking reader: feed bytes, get whole frames."""

    def __init__(self, max_bytes: int = DEFAULT_MAX_FRAME_BYTES) -> None:
        self.max_bytes = max_bytes
        self._buffer = bytearray()

    @property
    def has_partial_frame(self) -> bool:
        """True when bytes of an unfinished frame are buffered."""
        return bool(self._buffer)

    def feed(self, data: bytes) -> list[dict[str, Any]]:
        """Add ``data`` and return every frame it completes, in order."""
        self._buffer += data
        frames = []
        while (frame := self._next_frame()) is not None:
            frames.append(frame)
        return frames

    def _next_frame(self) -> dict[str, Any] | None:
        if len(self._buffer) < HEADER.size:
            return None
        (length,) = HEADER.unpack_from(self._buffer)
        # Checked as soon as the header is in, so an oversized frame is never buffered.
        _check_length(length, self.max_bytes)
        end = HEADER.size + length
        if len(self._buffer) < end:
            return None
        body = bytes(self._buffer[HEADER.size : end])
        del self._buffer[:end]
        return decode_frame(body)


def _recv_exactly(sock: socket.socket, size: int, *, at_boundary: bool) -> bytes:
    buffer = bytearray()
    while len(buffer) < size:
        chunk = sock.recv(size - len(buffer))
        if not chunk:
            where = "" if at_boundary and not buffer else " in the middle of a frame"
            raise ChannelClosed(f"channel closed{where}")
        buffer += chunk
    return bytes(buffer)


def _check_length(length: int, max_bytes: int) -> None:
    if length > max_bytes:
        raise ProtocolError(f"frame of {length} bytes exceeds the {max_bytes}-byte cap")


def _check_frame_shape(obj: object) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise ProtocolError(f"frame must be a JSON object, not {type(obj).__name__}")
    frame_type = obj.get("type")
    if not isinstance(frame_type, str) or frame_type not in FRAME_TYPES:
        raise ProtocolError(f"frame type must be one of {sorted(FRAME_TYPES)}")
    return obj


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # "1e999" parses to inf without passing parse_constant
        raise ValueError("non-finite number")
    return value


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise ValueError("duplicate key in object")
    return obj


def _detail(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:_MAX_DETAIL_CHARS]
