"""The sandbox's exceptions, one root for all of them.

    SandboxError
    ├── SourceRejected   check_source refused the source (carries its problems)
    ├── EffectRefused    raised by the engine's ``authorize`` callback to refuse one call
    └── ProtocolError    a frame on the engine/child channel broke the protocol
        └── ChannelClosed    the other end closed the channel

This module imports nothing heavy so the engine can catch these cheaply.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "ChannelClosed",
    "EffectRefused",
    "Problem",
    "ProtocolError",
    "SandboxError",
    "SourceRejected",
]


@dataclass(frozen=True)
class Problem:
    """One reason a source cannot run; ``line`` is 0 when it concerns the whole source."""

    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}" if self.line > 0 else self.message


class SandboxError(Exception):
    """Root of every exception the sandbox package raises on purpose."""


class SourceRejected(SandboxError):
    """The source cannot run under the policy; ``problems`` says where and why."""

    def __init__(self, problems: list[Problem] | tuple[Problem, ...]) -> None:
        self.problems: tuple[Problem, ...] = tuple(problems)
        super().__init__("; ".join(str(problem) for problem in self.problems))


class EffectRefused(SandboxError):
    """Raised by an ``authorize`` callback; the message is shown to the user's code."""

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)


class ProtocolError(SandboxError):
    """A frame was oversized, malformed, of an unexpected type, or arrived out of turn."""


class ChannelClosed(ProtocolError):
    """The other end closed the channel (between frames or in the middle of one)."""
