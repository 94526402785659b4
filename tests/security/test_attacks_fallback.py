"""The OS-layer attacks again, with bubblewrap forced off (the fallback path).

Without bubblewrap the zygote still gives each attempt its own uid, a seccomp
deny-list, rlimits, a network namespace and private /tmp and /dev/shm (through
``unshare``), and kills every process of the uid at the end; the engine's files are
protected by their permissions instead of by being absent.
"""

from __future__ import annotations

import pytest

from test_attacks_os import (
    CASES,
    test_a_payload_that_acts_at_unpickle_time_is_contained,
    test_trusted_code_cannot_read_what_other_jobs_compiled,
    test_trusted_control_succeeds,
    test_what_an_attempt_leaves_in_a_locked_directory_is_freed,
)
from test_attacks_os import test_os_layer_contains_trusted_code as test_fallback_contains_trusted_code

SANDBOX_MODE = "nobwrap"

pytestmark = pytest.mark.timeout(120)

__all__ = [
    "CASES",
    "test_a_payload_that_acts_at_unpickle_time_is_contained",
    "test_fallback_contains_trusted_code",
    "test_trusted_code_cannot_read_what_other_jobs_compiled",
    "test_trusted_control_succeeds",
    "test_what_an_attempt_leaves_in_a_locked_directory_is_freed",
]
