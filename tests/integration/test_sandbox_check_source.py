"""check_source: refusals with lines and reasons, decided in a real child."""

from __future__ import annotations

import textwrap

import pytest

from sandbox import RESTRICTED, TRUSTED, SourceRejected, check_source

pytestmark = pytest.mark.timeout(30)

GOOD = """
import json
from datetime import timedelta

def execute(job):
    user = job.user()
    user.send([{"type": "text", "text": json.dumps(job.metadata)}])
    return {"success": True, "in": timedelta(minutes=10).total_seconds()}
"""


def rejected(source: str, entrypoint: str = "execute", policy=RESTRICTED) -> SourceRejected:
    with pytest.raises(SourceRejected) as caught:
        check_source(textwrap.dedent(source), entrypoint, policy)
    return caught.value


def test_accepts_a_normal_function() -> None:
    check_source(GOOD, "execute")


def test_rejects_import_os_with_its_line() -> None:
    error = rejected("import json\n\nimport os\n\ndef execute(job):\n    return os.getcwd()\n")
    assert str(error).startswith("line 3: import of 'os' is not allowed (allowed: base64, bisect, calendar, collections,")
    assert [(p.line, p.message[:20]) for p in error.problems] == [(3, "import of 'os' is no")]


def test_rejects_from_import_of_a_hidden_name() -> None:
    error = rejected("from datetime import sys\ndef execute(job):\n    return 1\n")
    assert error.problems[0].line == 1
    assert "cannot import name 'sys' from 'datetime'" in str(error)


@pytest.mark.parametrize(
    ("source", "line", "fragment"),
    [
        pytest.param("def execute(job):\n    return (1,\n", 2, "syntax error", id="unclosed"),
        pytest.param("def execute(job)\n    return 1\n", 1, "syntax error", id="missing-colon"),
        pytest.param(
            "x = 1\ndef execute(job):\n    return 1\nbreak\n", 4, "'break' outside loop", id="compile-stage"
        ),
    ],
)
def test_rejects_syntax_errors_with_their_line(source: str, line: int, fragment: str) -> None:
    error = rejected(source)
    assert error.problems[0].line == line and fragment in error.problems[0].message


@pytest.mark.parametrize(
    ("source", "fragment"),
    [
        pytest.param(
            "def execute(job):\n    return job.__class__\n",
            '"__class__" is an invalid attribute name',
            id="dunder-attribute",
        ),
        pytest.param("async def execute(job):\n    return 1\n", "AsyncFunctionDef", id="async"),
        pytest.param(
            "def execute(job):\n    return (1" + " + 1" * 400 + ")\n",
            "nested too deeply",
            id="deep-expression",
        ),
    ],
)
def test_rejects_what_restricted_python_refuses(source: str, fragment: str) -> None:
    assert fragment in str(rejected(source))


def test_rejects_a_missing_entrypoint() -> None:
    error = rejected("def run(job):\n    return 1\n")
    assert str(error) == "no top-level function 'execute': define `def execute(job): ...`"


def test_rejects_an_invalid_entrypoint_name() -> None:
    assert "must be an identifier" in str(rejected(GOOD, entrypoint="__init__"))


def test_rejects_a_too_large_source_before_compiling() -> None:
    source = GOOD + "#" * RESTRICTED.max_source_bytes
    error = rejected(source)
    assert error.problems[0].line == 0
    assert f"the limit is {RESTRICTED.max_source_bytes} bytes" in str(error)


def test_smaller_policy_limit_applies() -> None:
    assert "the limit is 50 bytes" in str(rejected(GOOD, policy=RESTRICTED.with_max_source_bytes(50)))


def test_rejects_lone_surrogates() -> None:
    assert "not valid Unicode" in str(rejected("def execute(job):\n    return '\ud800'\n"))


def test_reports_several_problems_in_line_order() -> None:
    error = rejected("import os\nimport sys\ndef execute(job):\n    return job.__class__\n")
    assert [problem.line for problem in error.problems] == [1, 2, 4]


def test_trusted_policy_allows_native_imports_but_checks_syntax_and_entrypoint() -> None:
    check_source("import os\n\ndef execute(job):\n    return os.getcwd()\n", "execute", TRUSTED)
    assert rejected("def execute(job):\n    return (\n", policy=TRUSTED).problems[0].line == 2
    assert "no top-level function" in str(rejected("import os\n", policy=TRUSTED))
