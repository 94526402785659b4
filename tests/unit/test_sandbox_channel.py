"""The frame protocol over a real socketpair: caps and strict decoding."""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterator

import pytest

from sandbox.channel import (
    DEFAULT_MAX_FRAME_BYTES,
    FrameDecoder,
    decode_frame,
    encode_frame,
    recv_frame,
    send_frame,
)
from sandbox.errors import ChannelClosed, ProtocolError

pytestmark = pytest.mark.timeout(10)


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    left, right = socket.socketpair()
    with left, right:
        right.settimeout(5)  # a bug that blocks fails the test instead of hanging it
        yield left, right


def raw(body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + body


def test_roundtrip(pair: tuple[socket.socket, socket.socket]) -> None:
    left, right = pair
    frame = {"type": "call", "op": "send", "parts": [{"type": "text", "text": "héllo ✓ 🎉"}], "n": 1.5}
    send_frame(left, frame)
    send_frame(left, {"type": "reply", "ok": True})
    assert recv_frame(right) == frame
    assert recv_frame(right) == {"type": "reply", "ok": True}


def test_oversized_frame_is_refused_before_its_body_is_read(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    left, right = pair
    left.sendall(struct.pack(">I", 10 * DEFAULT_MAX_FRAME_BYTES))  # header only, no body follows
    with pytest.raises(ProtocolError, match="exceeds"):
        recv_frame(right)  # would block for the body if it tried to read it


def test_decoder_refuses_oversized_frame_from_its_header_alone() -> None:
    decoder = FrameDecoder(max_bytes=100)
    with pytest.raises(ProtocolError, match="exceeds the 100-byte cap"):
        decoder.feed(struct.pack(">I", 101))


def test_encoder_refuses_frames_over_the_cap() -> None:
    with pytest.raises(ProtocolError, match="exceeds"):
        encode_frame({"type": "result", "value": "x" * 200}, max_bytes=100)


def test_decoder_reassembles_frames_fed_byte_by_byte() -> None:
    data = encode_frame({"type": "call", "op": "delete"}) + encode_frame({"type": "result", "value": [1]})
    decoder = FrameDecoder()
    frames = [frame for byte in data for frame in decoder.feed(bytes([byte]))]
    assert frames == [{"type": "call", "op": "delete"}, {"type": "result", "value": [1]}]
    assert not decoder.has_partial_frame


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b'{"type": "result", "value": NaN}', id="nan"),
        pytest.param(b'{"type": "result", "value": -Infinity}', id="infinity"),
        pytest.param(b'{"type": "result", "value": 1e999}', id="overflowing-float"),
        pytest.param(b"[" * 100_000 + b"]" * 100_000, id="deep-nesting"),
        pytest.param(b'{"type": "result", "value": ' + b"9" * 5000 + b"}", id="huge-int"),
        pytest.param(b"[1, 2]", id="array"),
        pytest.param(b'"result"', id="string"),
        pytest.param(b"{}", id="no-type"),
        pytest.param(b'{"type": 1}', id="type-not-a-string"),
        pytest.param(b'{"type": "exec"}', id="unknown-type"),
        pytest.param(b'{"type": "reply", "type": "result"}', id="duplicate-key"),
        pytest.param(b'{"type": "result", "value": "\\ud800"}', id="lone-surrogate"),
        pytest.param(b"\xff\xfe\x00garbage", id="garbage-bytes"),
        pytest.param(b'{"type": "result", "value": ', id="truncated-json"),
        pytest.param(b"", id="empty"),
    ],
)
def test_strict_decoding_refuses(body: bytes) -> None:
    with pytest.raises(ProtocolError):
        decode_frame(body)


def test_garbage_on_the_socket_is_a_protocol_error(pair: tuple[socket.socket, socket.socket]) -> None:
    left, right = pair
    left.sendall(raw(b"\x00\x01\x02not json"))
    with pytest.raises(ProtocolError, match="undecodable"):
        recv_frame(right)


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(float("nan"), id="nan"),
        pytest.param({1, 2}, id="set"),
        pytest.param(b"bytes", id="bytes"),
        pytest.param("\ud800", id="lone-surrogate"),
    ],
)
def test_encoding_refuses_non_json(value: object) -> None:
    with pytest.raises(ProtocolError):
        encode_frame({"type": "result", "value": value})


def test_encoding_refuses_non_frames() -> None:
    with pytest.raises(ProtocolError):
        encode_frame({"type": "nonsense"})
    with pytest.raises(ProtocolError):
        encode_frame(["type", "result"])  # type: ignore[arg-type]


def test_closed_channel(pair: tuple[socket.socket, socket.socket]) -> None:
    left, right = pair
    left.sendall(encode_frame({"type": "reply", "ok": True})[:6])
    left.shutdown(socket.SHUT_WR)
    with pytest.raises(ChannelClosed, match="in the middle of a frame"):
        recv_frame(right)


def test_closed_channel_between_frames(pair: tuple[socket.socket, socket.socket]) -> None:
    left, right = pair
    left.shutdown(socket.SHUT_WR)
    with pytest.raises(ChannelClosed, match=r"^channel closed$"):
        recv_frame(right)
