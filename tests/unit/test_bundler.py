"""The bundler: functions and source text become artifacts; code that reads names the
sandbox will not have is refused before anything is sent, naming each name."""

from __future__ import annotations

import functools
import math

import cloudpickle
import pytest

from client.bundle import bundle, sandbox_names
from client.errors import InvalidArgument, SelfContainmentError

API_KEY = "secret"
LIMIT = 10


def remind(job):
    job.user().send([{"type": "text", "text": job.metadata["message"]}])
    return {"success": True}


def uses_module_names(job):
    return {"key": API_KEY, "limit": LIMIT}


def uses_an_imported_module(job):
    return math.sqrt(job.metadata["n"])


def imports_inside(job):
    import json
    from datetime import datetime, timezone

    return json.loads(json.dumps({"at": datetime.now(timezone.utc).isoformat()}))


def uses_builtins(job):
    values = sorted(int(v) for v in job.metadata.get("values", []))
    return {"total": sum(values), "count": len(values), "max": max(values, default=None)}


def nested_helpers(job):
    def double(x):
        return x * 2

    class Counter:
        def __init__(self):
            self.n = 0

    counter = Counter()
    counter.n = double(3)
    return [double(v) for v in range(counter.n)]


def uses_injected_names(job):
    User.get(job.metadata["user_id"]).send("hello")
    return job.id


def make_closure():
    secret = "captured"
    limit = 3

    def execute(job):
        return secret * limit

    return execute


def _decorate(function):
    @functools.wraps(function)
    def wrapper(*args):
        return function(*args)

    return wrapper


@_decorate
def decorated(job):
    return {"decorated": True}


class Holder:
    @staticmethod
    def run(job):
        return 1


# -- functions -------------------------------------------------------------------------------------

def test_a_function_becomes_an_artifact_with_its_dedented_source():
    artifact = bundle(remind)
    assert artifact.entrypoint == "remind"
    assert artifact.source.startswith("def remind(job):\n")
    assert "job.user().send" in artifact.source
    assert artifact.python_version.count(".") == 2
    assert artifact.library_versions["cloudpickle"] == cloudpickle.__version__
    assert "capsule-jobs" in artifact.library_versions


def test_a_nested_function_is_dedented():
    def execute(job):
        return {"ok": True}

    artifact = bundle(execute)
    assert artifact.source == 'def execute(job):\n    return {"ok": True}\n'
    assert artifact.entrypoint == "execute"


def test_restricted_artifacts_carry_no_payload_and_a_stable_digest():
    first, second = bundle(remind), bundle(remind)
    assert first.payload is None and first.payload_encoding is None
    assert first.digest == second.digest


def test_trusted_artifacts_carry_a_cloudpickle_payload_of_the_function_alone():
    artifact = bundle(uses_builtins, isolation="trusted")
    assert artifact.payload_encoding == "cloudpickle"
    function = cloudpickle.loads(artifact.payload)
    assert function.__name__ == "uses_builtins"
    assert function.__module__ != __name__  # pickled by value, not as a reference to this module
    assert function(type("J", (), {"metadata": {"values": ["2", "1"]}})()) == {"total": 3, "count": 2, "max": 2}


def test_decorators_are_stripped():
    artifact = bundle(decorated)
    assert artifact.source == 'def decorated(job):\n    return {"decorated": True}\n'
    assert artifact.entrypoint == "decorated"


def test_a_static_method_is_bundled_as_a_plain_function():
    artifact = bundle(Holder.run)
    assert artifact.source == "def run(job):\n    return 1\n"


@pytest.mark.parametrize("execute", [
    pytest.param(imports_inside, id="imports-inside"),
    pytest.param(uses_builtins, id="builtins"),
    pytest.param(nested_helpers, id="nested-helper-function-and-class"),
    pytest.param(uses_injected_names, id="job-and-User"),
    pytest.param(remind, id="job-user-send"),
])
def test_self_contained_functions_are_accepted(execute):
    assert bundle(execute).entrypoint == execute.__name__


# -- refusals -------------------------------------------------------------------------------------

def test_a_closure_is_refused_naming_the_captured_names():
    with pytest.raises(SelfContainmentError) as info:
        bundle(make_closure())
    assert set(info.value.names) == {"secret", "limit"}
    assert "secret" in str(info.value) and "limit" in str(info.value)
    assert "metadata" in str(info.value)


def test_module_level_names_are_refused_naming_each_and_pointing_to_metadata():
    with pytest.raises(SelfContainmentError) as info:
        bundle(uses_module_names)
    assert set(info.value.names) == {"API_KEY", "LIMIT"}
    message = str(info.value)
    assert "API_KEY" in message and "LIMIT" in message
    assert "metadata" in message and 'job.metadata["' in message
    assert "inside the function" in message


def test_a_module_imported_outside_the_function_is_refused():
    with pytest.raises(SelfContainmentError) as info:
        bundle(uses_an_imported_module)
    assert info.value.names == ("math",)


def test_self_containment_errors_are_invalid_arguments_raised_locally():
    with pytest.raises(InvalidArgument) as info:
        bundle(uses_module_names)
    assert info.value.status is None


def test_trusted_functions_may_use_every_python_builtin():
    def execute(job):
        return open.__name__

    with pytest.raises(SelfContainmentError) as info:
        bundle(execute)
    assert "builtins restricted jobs do not get: open" in str(info.value)
    assert "metadata" not in str(info.value)  # a builtin is not a value to pass in
    assert bundle(execute, isolation="trusted").entrypoint == "execute"


@pytest.mark.parametrize("execute, words", [
    pytest.param(lambda job: 1, "lambda", id="lambda"),
    pytest.param(len, "function", id="builtin"),
    pytest.param(functools.partial(remind), "function", id="partial"),
    pytest.param(Holder(), "function", id="instance"),
    pytest.param(42, "function", id="number"),
])
def test_non_functions_are_refused(execute, words):
    with pytest.raises(InvalidArgument) as info:
        bundle(execute)
    assert words in str(info.value)


def test_generator_functions_are_refused():
    def execute(job):
        yield 1

    with pytest.raises(InvalidArgument, match="generator"):
        bundle(execute)


@pytest.mark.parametrize("source, words", [
    pytest.param("def execute(job):\n    return (\n", "does not parse: line", id="syntax"),
    pytest.param("def execute(job):\n    return " + "1+" * 5000 + "1\n", "nested too deeply", id="deep"),
])
def test_source_that_does_not_parse_is_an_invalid_argument(source, words):
    with pytest.raises(InvalidArgument, match=words):
        bundle(source)


def test_an_unknown_isolation_profile_is_refused():
    with pytest.raises(InvalidArgument, match="restricted"):
        bundle(remind, isolation="sandboxed")


# -- source text ------------------------------------------------------------------------------------

@pytest.mark.parametrize("source, entrypoint", [
    pytest.param("def execute(job):\n    return 1\n", "execute", id="execute"),
    pytest.param("def helper(x):\n    return x\n\ndef execute(job):\n    return helper(1)\n", "execute",
                 id="execute-among-helpers"),
    pytest.param("def remind(job):\n    return 1\n", "remind", id="only-function"),
    pytest.param("    def execute(job):\n        return 1\n", "execute", id="indented"),
    pytest.param("import json\nLIMIT = 3\n\ndef execute(job):\n    return json.dumps(LIMIT)\n", "execute",
                 id="module-level-names-defined-in-the-source"),
])
def test_source_text_becomes_an_artifact(source, entrypoint):
    artifact = bundle(source)
    assert artifact.entrypoint == entrypoint
    assert artifact.payload is None
    assert "def " in artifact.source


@pytest.mark.parametrize("source, words", [
    pytest.param("def a(job):\n    pass\n\ndef b(job):\n    pass\n", "a, b", id="two-functions"),
    pytest.param("x = 1\n", "none", id="no-function"),
    pytest.param("def execute(job)\n    return 1\n", "line 1", id="syntax-error"),
])
def test_source_text_without_a_clear_entrypoint_is_refused(source, words):
    with pytest.raises(InvalidArgument) as info:
        bundle(source)
    assert words in str(info.value)


def test_source_text_reading_undefined_names_is_refused():
    with pytest.raises(SelfContainmentError) as info:
        bundle("def execute(job):\n    return TOKEN + other\n")
    assert info.value.names == ("TOKEN", "other")


def test_source_text_cannot_be_trusted():
    with pytest.raises(InvalidArgument, match="trusted"):
        bundle("def execute(job):\n    return 1\n", isolation="trusted")


def test_the_sandbox_names_include_the_injected_handles():
    names = sandbox_names()
    assert {"job", "User", "len", "dict"} <= names
    assert "open" not in names and "__import__" not in names
