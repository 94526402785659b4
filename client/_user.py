"""`User`, as application code sees it: a name for code completion and docs.

The class a running job receives is injected by the sandbox; outside a job there is
no engine channel to send through, so every call explains where `User` works.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

_ONLY_IN_JOBS = (
    "User is only available inside a running job: the sandbox injects it into execute(job). "
    "From application code, read a user's messages with Jobs.messages(user_id)."
)


class User:
    """A user a job can message: `User.get(user_id).send([...])`, or `job.user()`.

    `send` takes a list of parts such as `[{"type": "text", "text": "hello"}]`, or a
    plain string (one text part). Messages are committed when the attempt succeeds.
    """

    id: str

    @classmethod
    def get(cls, user_id: str) -> "User":
        """The user with this id (inside a running job only)."""
        raise RuntimeError(_ONLY_IN_JOBS)

    def send(self, parts: str | Sequence[Mapping[str, Any]]) -> None:
        """Deliver a message to this user's inbox (inside a running job only)."""
        raise RuntimeError(_ONLY_IN_JOBS)
