"""The restricted-mode policy, exercised in-process with real RestrictedPython.

In production restricted code is compiled and run only in the child; here the policy's
pieces are tested directly, which is safe because the sources are ours.
"""

from __future__ import annotations

import builtins
import types
from typing import Any

import pytest
from support import JOB_FIELDS, NoEffects, body, run_restricted

from sandbox.handles import JobHandle
from sandbox.policy import (
    MODULE_EXPORTS,
    PRIVATE_NAME,
    RESTRICTED,
    SANDBOX_BUILTIN_NAMES,
    TRUSTED,
    USER_DUNDERS,
    LogSink,
    ModuleProxy,
    Policy,
    Problem,
    check_problems,
    compile_restricted_source,
    module_proxies,
    proxy_attrs,
    restricted_globals,
    static_problems,
)

pytestmark = pytest.mark.timeout(30)

# --- imports -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        pytest.param(body("import json", "return json.dumps({'a': 1})"), '{"a": 1}', id="json"),
        pytest.param(body("import math", "return math.sqrt(16)"), 4.0, id="math"),
        pytest.param(
            body("from datetime import timedelta", "return timedelta(hours=1).total_seconds()"),
            3600.0,
            id="from-datetime",
        ),
        pytest.param(
            body(
                "from collections import Counter",
                "c = Counter('abca')",
                "c['z'] = 9",
                "return c['a'] + c['z']",
            ),
            11,
            id="counter-writable",
        ),
        pytest.param(body("import re", "return re.findall(r'\\d+', 'a1b22')"), ["1", "22"], id="re"),
        pytest.param(
            body("import hashlib", "return hashlib.sha256(b'x').hexdigest()[:8]"), "2d711642", id="hashlib"
        ),
        pytest.param(body("import uuid", "return len(str(uuid.uuid4()))"), 36, id="uuid4"),
        pytest.param(body("import statistics as st", "return st.mean([1, 2, 3])"), 2, id="import-as"),
    ],
)
def test_allowed_imports_work(source: str, expected: Any) -> None:
    assert run_restricted(source) == expected


@pytest.mark.parametrize(
    ("statement", "fragment"),
    [
        pytest.param("import os", "import of 'os' is not allowed (allowed: base64", id="os"),
        pytest.param("import os.path", "import of 'os.path' is not allowed", id="os-path"),
        pytest.param("import subprocess", "import of 'subprocess'", id="subprocess"),
        pytest.param(
            "from datetime import sys", "cannot import name 'sys' from 'datetime'", id="from-datetime-sys"
        ),
        pytest.param(
            "from json import codecs", "cannot import name 'codecs' from 'json'", id="from-json-codecs"
        ),
        pytest.param("from uuid import uuid1", "cannot import name 'uuid1' from 'uuid'", id="uuid1"),
        pytest.param("from collections import UserDict", "'UserDict'", id="user-dict"),
        pytest.param("from . import json", "relative imports are not allowed", id="relative"),
    ],
)
def test_refused_imports_raise_import_error(statement: str, fragment: str) -> None:
    with pytest.raises(ImportError) as caught:
        run_restricted(body(statement, "return 1"))
    assert fragment in str(caught.value)


def test_refused_import_lists_every_allowed_module() -> None:
    with pytest.raises(ImportError) as caught:
        run_restricted(body("import os", "return 1"))
    assert all(name in str(caught.value) for name in MODULE_EXPORTS)


@pytest.mark.parametrize(
    "expression",
    [
        pytest.param("json.codecs", id="json-codecs"),
        pytest.param("datetime.sys", id="datetime-sys"),
        pytest.param("re.enum", id="re-enum"),
        pytest.param("getattr(json, 'codecs')", id="getattr-codecs"),
    ],
)
def test_proxies_hide_unlisted_module_attributes(expression: str) -> None:
    source = body("import json", "import datetime", "import re", f"return {expression}")
    with pytest.raises(AttributeError):
        run_restricted(source)


def test_proxies_are_read_only() -> None:
    with pytest.raises(TypeError):
        run_restricted(body("import json", "json.dumps = None", "return 1"))


def test_no_proxy_value_is_a_module() -> None:
    for name, proxy in module_proxies().items():
        for attr, value in proxy_attrs(proxy).items():
            assert not isinstance(value, types.ModuleType), f"{name}.{attr} is a module"


def test_no_module_or_escape_builtin_reachable_through_public_attributes() -> None:
    """Walk three levels of non-underscore attributes below every proxy value."""
    forbidden = {id(getattr(builtins, name)) for name in _ESCAPE_BUILTINS}
    seen: set[int] = set()
    frontier = [
        (f"{name}.{attr}", value)
        for name, proxy in module_proxies().items()
        for attr, value in proxy_attrs(proxy).items()
    ]
    for _depth in range(3):
        next_frontier = []
        for path, value in frontier:
            for attr, child in _public_children(value):
                assert not isinstance(child, types.ModuleType), f"{path}.{attr} is a module"
                assert id(child) not in forbidden, f"{path}.{attr} is {child!r}"
                if id(child) not in seen:
                    seen.add(id(child))
                    next_frontier.append((f"{path}.{attr}", child))
        frontier = next_frontier


_ESCAPE_BUILTINS = ("open", "eval", "exec", "compile", "__import__", "globals", "vars", "type", "getattr")


def _public_children(value: object) -> list[tuple[str, object]]:
    children = []
    for attr in _public_attrs(value):
        try:
            children.append((attr, getattr(value, attr)))
        except Exception:  # noqa: BLE001 - properties that refuse on a class; nothing reachable
            continue
    return children


def _public_attrs(value: object) -> list[str]:
    try:
        return [attr for attr in dir(value) if not attr.startswith("_")]
    except Exception:  # noqa: BLE001 - some objects refuse dir(); nothing to walk then
        return []


def test_module_exports_all_exist() -> None:
    # module_proxies() raises AttributeError if an audited name is missing.
    assert set(module_proxies()) == set(MODULE_EXPORTS)
    assert all(isinstance(proxy, ModuleProxy) for proxy in module_proxies().values())


# --- attribute access ----------------------------------------------------------------


def outcome_of(source: str) -> str:
    """Either "compile" (RP refused the source) or the name of what running it raised."""
    _, problems = compile_restricted_source(source, "<job:test>")
    if problems:
        return "compile"
    try:
        run_restricted(source)
    except BaseException as exc:  # noqa: BLE001 - the type is what the test inspects
        return type(exc).__name__
    return "ran"


@pytest.mark.parametrize(
    ("statements", "stopped_by"),
    [
        pytest.param(["import json", "return json.codecs.open"], "AttributeError", id="json-codecs-open"),
        pytest.param(["import datetime", "return datetime.sys.modules"], "AttributeError", id="datetime-sys"),
        pytest.param(["import re", "return re.enum.sys"], "AttributeError", id="re-enum-sys"),
        pytest.param(["from datetime import sys", "return sys"], "ImportError", id="import-from-c-lookup"),
        pytest.param(["return '{0.__class__}'.format(job)"], "AttributeError", id="str-format-walk"),
        pytest.param(["return '{0.gi_frame}'.format((x for x in [1]))"], "AttributeError", id="str-format-frame"),
        pytest.param(["return str.format('{0.__class__}', job)"], "NotImplementedError", id="str-format-unbound"),
        pytest.param(["x = []", "x.__class__ += 1"], "compile", id="augmented-dunder-attribute"),
        pytest.param(["job.update_metadata += 1"], "TypeError", id="augmented-handle-method"),
        pytest.param(["return getattr(job, '__cl' + 'ass__')"], "AttributeError", id="computed-dunder"),
        pytest.param(
            ["return getattr(ValueError.mro()[-1], '__subclasses__')"],
            "AttributeError",
            id="object-subclasses",
        ),
        pytest.param(
            ["g = (x for x in [1])", "return getattr(g, 'gi_frame')"], "AttributeError", id="generator-frame"
        ),
        pytest.param(["return getattr(job.update_metadata, '__func__')"], "AttributeError", id="method-func"),
        pytest.param(["return open('/etc/passwd').read()"], "NameError", id="open"),
        pytest.param(["return type(job)"], "TypeError", id="type"),
        pytest.param(["return globals()"], "NameError", id="globals"),
        pytest.param(["return __import__('os')"], "compile", id="dunder-import"),
        pytest.param(["return eval('1')"], "compile", id="eval"),
        pytest.param(["return job.__class__"], "compile", id="dunder-attribute"),
        pytest.param(["return (x for x in [1]).gi_frame"], "compile", id="gi-frame-attribute"),
    ],
)
def test_known_escapes_are_stopped(statements: list[str], stopped_by: str) -> None:
    assert outcome_of(body(*statements)) == stopped_by


def test_str_subclass_attribute_names_are_refused() -> None:
    # RestrictedPython 7.2 fixed a bypass through a str subclass overriding startswith.
    source = ("class Name(str):\n    def startswith(self, prefix):\n        return False\n") + body(
        "return getattr(job, Name('__class__'))"
    )
    assert outcome_of(source) == "TypeError"


def test_format_of_a_str_subclass() -> None:
    # super() reaches str.format itself: it must go through SafeFormatter as well.
    source = "class S(str):\n    def format(self, *args):\n        return 'own'\n" + body(
        "return [S('x').format(1), super(S, S('{0}')).format(2)]")
    assert run_restricted(source) == ["own", "2"]
    assert outcome_of("class S(str):\n    pass\n" + body("return super(S, S('{0.__class__}')).format(1)")) == \
        "AttributeError"


def test_attribute_error_obj_is_not_available() -> None:
    # CVE-2024-47532: AttributeError.obj once handed out the real `string` module. C code
    # sets it to whatever a failed lookup was made on (the print collector, a library's
    # internals), so jobs never read it.
    source = body("import json", "try:", "    json.codecs", "except AttributeError as exc:", "    return exc.obj")
    assert outcome_of(source) == "AttributeError"
    assert run_restricted(body("try:", "    job.nope", "except AttributeError as exc:", "    return exc.name")) == "nope"


@pytest.mark.parametrize(
    "expression",
    [
        pytest.param("getattr(job, '__class__')", id="dunder"),
        pytest.param("getattr(job, '_bridge')", id="private"),
        pytest.param("getattr(job, 'gi_frame')", id="inspect-name"),
    ],
)
def test_getattr_of_underscore_or_inspect_names_is_refused(expression: str) -> None:
    with pytest.raises(AttributeError):
        run_restricted(body(f"return {expression}"))


def test_str_format_reads_fields_through_the_guards() -> None:
    assert run_restricted(body("return '{0.name}/{1[k]}/{n:>3}'.format(job, {'k': 2}, n=7)")) == (
        f"{run_restricted(body('return job.name'))}/2/  7")
    assert run_restricted(body("return '{a}'.format_map({'a': 1})")) == "1"
    with pytest.raises(AttributeError):
        run_restricted(body("return '{0._bridge}'.format(job)"))


def test_augmented_assignment_of_items_and_attributes_follows_python() -> None:
    source = (
        "class Counter:\n    def __init__(self):\n        self.n = 0\n\n"
        + body(
            "order = []",
            "d = {'k': 1}",
            "def key():",
            "    order.append('key')",
            "    return 'k'",
            "def value():",
            "    order.append('value')",
            "    d['k'] = 100",
            "    return 5",
            "d[key()] += value()",  # the item is read before the value is evaluated, as in Python
            "c = Counter()",
            "c.n += 2",
            "c.n *= 3",
            "items = [1, 2, 3]",
            "items[1:] += [4]",
            "total = 0",
            "def add(v):",
            "    nonlocal total",
            "    total += v",
            "add(4)",
            "return [order, d, c.n, items, total]",
        )
    )
    assert run_restricted(source) == [["key", "value"], {"k": 6}, 6, [1, 2, 3, 4], 4]


@pytest.mark.parametrize(
    ("name", "private"),
    [("_total", True), ("_x1", True), ("_a_b", True), ("_", False), ("__x", False), ("__init__", False),
     ("_getattr_", False), ("_write_", False), ("_print", False), ("_tmp0", False), ("_x_", False), ("x", False)],
)
def test_private_names_exclude_dunders_hooks_and_generated_names(name: str, private: bool) -> None:
    assert bool(PRIVATE_NAME.fullmatch(name)) is private


def test_private_attributes_only_of_the_users_own_objects() -> None:
    source = (
        "class Box:\n    def __init__(self):\n        self._v = 1\n    def _double(self):\n        return self._v * 2\n"
        + body("b = Box()", "b._v += 1", "return [b._double(), getattr(b, '_nope', 0), hasattr(b, '_v')]")
    )
    assert run_restricted(source) == [4, 0, True]
    for statements in (["return job._bridge"], ["return getattr(job, '_bridge', None)"], ["job._bridge = 1"]):
        assert outcome_of(body(*statements)) in ("AttributeError", "TypeError")


def test_a_job_comparison_never_answers_not_implemented() -> None:
    source = "class K:\n    def __eq__(self, other):\n        return super().__eq__(other)\n" \
             "    def __lt__(self, other):\n        return super().__lt__(other)\n" + body(
        "k = K()", "result = [k == k, k == K(), k != K()]", "try:", "    k < K()", "except TypeError as error:",
        "    result.append(str(error))", "return result")
    assert run_restricted(source) == [True, False, True, "'<' not supported between instances of 'K' and 'K'"]


def test_user_classes_may_not_define_hooks_on_attributes_classes_or_pickling() -> None:
    hooks = {
        "__getattr__", "__getattribute__", "__setattr__", "__delattr__", "__dir__", "__get__", "__set__",
        "__delete__", "__new__", "__init_subclass__", "__class_getitem__", "__set_name__", "__mro_entries__",
        "__prepare__", "__instancecheck__", "__subclasscheck__", "__del__", "__reduce__", "__reduce_ex__",
        "__getstate__", "__setstate__", "__copy__", "__deepcopy__",
    }
    assert not USER_DUNDERS & hooks
    for name in sorted(hooks):
        assert outcome_of(f"class X:\n    def {name}(self, *args):\n        pass\n\n" + body("return 1")) == "compile"


def test_a_dataclass_may_define_post_init() -> None:
    source = (
        "from dataclasses import dataclass\n\n"
        "@dataclass\nclass Span:\n    start: int\n    end: int\n\n"
        "    def __post_init__(self):\n        if self.end < self.start:\n"
        "            raise ValueError('end before start')\n        self.length = self.end - self.start\n\n"
        + body("try:", "    Span(3, 1)", "except ValueError as error:", "    refused = str(error)",
               "return [Span(1, 4).length, refused]")
    )
    assert run_restricted(source) == [3, "end before start"]


def test_special_methods_and_super_in_user_classes() -> None:
    source = (
        "class Base:\n    def __init__(self, v):\n        self.v = v\n    def __str__(self):\n        return 'base'\n"
        "class Child(Base):\n    def __init__(self, v):\n        super().__init__(v * 2)\n"
        "    def __str__(self):\n        return 'child/' + super().__str__()\n"
        "    def __lt__(self, other):\n        return self.v < other.v\n"
        + body("items = sorted([Child(3), Child(1)])", "return [[c.v for c in items], str(items[0])]")
    )
    assert run_restricted(source) == [[2, 6], "child/base"]
    assert outcome_of(body("d = {}", "return super(dict, d).update")) == "AttributeError"


def test_augmented_assignment_writes_only_where_assignment_may() -> None:
    for statements in (["t = (1, 2)", "t[0] += 1"], ["import math", "math.pi += 1"]):
        with pytest.raises(TypeError):
            run_restricted(body(*statements))


@pytest.mark.parametrize(
    "expression",
    [
        pytest.param("job.no_such_attribute", id="attribute"),
        pytest.param("getattr(job, 'no_such_attribute')", id="getattr"),
    ],
)
def test_missing_attributes_raise_instead_of_returning_none(expression: str) -> None:
    with pytest.raises(AttributeError):
        run_restricted(body(f"return {expression}"))


def test_getattr_default_and_hasattr() -> None:
    source = body("return [getattr(job, 'nope', 5), hasattr(job, 'name'), hasattr(job, '_bridge')]")
    assert run_restricted(source) == [5, True, False]


def test_job_handle_shows_only_its_fields() -> None:
    source = body("return [repr(job), job.name, job.metadata['userId'], job.active_version]")
    assert run_restricted(source) == ["<job daily-report>", "daily-report", "u1", 3]


# --- writes --------------------------------------------------------------------------


def test_user_classes_can_set_attributes() -> None:
    source = (
        "class Box:\n"
        "    def __init__(self, value):\n"
        "        self.value = value\n"
        "def execute(job):\n"
        "    box = Box(1)\n"
        "    box.value = box.value + 1\n"
        "    setattr(box, 'other', 3)\n"
        "    return [box.value, box.other]\n"
    )
    assert run_restricted(source) == [2, 3]


@pytest.mark.parametrize(
    ("statement", "error"),
    [
        pytest.param("job.name = 'other'", TypeError, id="engine-handle"),
        pytest.param("setattr(job, 'name', 'other')", TypeError, id="setattr-engine-handle"),
        pytest.param("setattr(Box, '__str__', None)", AttributeError, id="setattr-dunder"),
        pytest.param("delattr(Box(), '__init__')", AttributeError, id="delattr-dunder"),
    ],
)
def test_writes_to_engine_objects_and_dunders_are_refused(statement: str, error: type) -> None:
    source = "class Box:\n    pass\n" + body(statement, "return 1")
    with pytest.raises(error):
        run_restricted(source)


def test_metadata_is_a_mutable_copy() -> None:
    assert run_restricted(body("job.metadata['k'] = 1", "return job.metadata")) == {"userId": "u1", "k": 1}
    assert JOB_FIELDS["metadata"] == {"userId": "u1"}


def test_inplace_operators() -> None:
    source = body(
        "n = 1", "n += 2", "items = [1]", "items += [2]", "s = 'a'", "s *= 3", "return [n, items, s]"
    )
    assert run_restricted(source) == [3, [1, 2], "aaa"]


def test_vetted_builtins_work() -> None:
    source = body(
        "pairs = sorted(zip([3, 1, 2], 'cab'))",
        "return [pairs[0], list(reversed([1, 2])), dict(enumerate('ab')), min(4, 2), sum(range(4)),"
        " tuple(map(abs, [-1])), any([0, 1]), isinstance(1, int)]",
    )
    assert run_restricted(source) == [(1, "a"), [2, 1], {0: "a", 1: "b"}, 2, 6, (1,), True, True]


def test_sandbox_builtin_names_match_what_the_globals_provide() -> None:
    namespace = restricted_globals(object(), object(), LogSink(10, lambda text: None))
    provided = {name for name in namespace["__builtins__"] if not name.startswith("_")}
    provided |= {name for name in namespace if not name.startswith("_")}
    assert provided | {"print", "printed"} == SANDBOX_BUILTIN_NAMES


def test_dangerous_builtins_are_absent() -> None:
    namespace = restricted_globals(object(), object(), LogSink(10, lambda text: None))
    for name in ("open", "eval", "exec", "compile", "vars", "dir", "globals", "locals", "input", "id"):
        assert name not in namespace["__builtins__"]
    for name in ("getattr", "type"):
        assert namespace["__builtins__"][name] is not getattr(builtins, name)


# --- prints --------------------------------------------------------------------------


def test_prints_go_to_the_sink_under_a_shared_cap() -> None:
    written: list[str] = []
    sink = LogSink(50, written.append)
    source = (
        "def helper():\n"
        "    print('from helper')\n"
        "def execute(job):\n"
        "    helper()\n"
        "    for i in range(100):\n"
        "        print('line', i)\n"
        "    return 1\n"
    )
    run_restricted(source, sink)
    text = "".join(written)
    assert text.startswith("from helper\nline 0\n")
    assert sink.used_bytes <= 50 and sink.truncated
    assert "truncated at 50 bytes" in text
    assert text.count("truncated") == 1


def test_printed_returns_this_functions_output() -> None:
    source = body("print('a')", "print('b', end='')", "return printed")
    assert run_restricted(source) == "a\nb"


def test_log_sink_keeps_utf8_whole_and_replaces_lone_surrogates() -> None:
    written: list[str] = []
    sink = LogSink(5, written.append)
    assert sink.write("ééé") == "éé"  # 6 bytes would split the third character
    assert LogSink(10, written.append).write("a\ud800") == "a?"


# --- static problems -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        pytest.param("import json\n\nimport os\n", [(3, "import of 'os' is not allowed")], id="import-os"),
        pytest.param("from datetime import sys, date\n", [(1, "cannot import name 'sys'")], id="from-import"),
        pytest.param("from . import x\n", [(1, "relative imports are not allowed")], id="relative"),
        pytest.param("from json import *\n", [(1, "'from json import *' is not allowed")], id="star"),
        pytest.param(
            "def execute(job):\n    import socket\n    import math, sys\n",
            [(2, "'socket'"), (3, "'sys'")],
            id="nested-imports",
        ),
        pytest.param("def f(:\n", [(1, "syntax error")], id="syntax-error"),
        pytest.param("import json\nimport math\n", [], id="clean"),
    ],
)
def test_static_problems_report_lines(source: str, expected: list[tuple[int, str]]) -> None:
    problems = static_problems(source, RESTRICTED)
    assert [problem.line for problem in problems] == [line for line, _ in expected]
    for problem, (_, fragment) in zip(problems, expected, strict=True):
        assert fragment in problem.message


def test_static_problems_ignore_imports_for_trusted() -> None:
    assert static_problems("import os\n", TRUSTED) == []


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        pytest.param("x = 1\n", "no top-level function 'execute'", id="missing"),
        pytest.param("class execute:\n    pass\n", "no top-level function 'execute'", id="class"),
        pytest.param("def outer():\n    def execute(job):\n        pass\n", "no top-level", id="nested"),
    ],
)
def test_entrypoint_must_be_a_top_level_function(source: str, expected: str) -> None:
    (problem,) = static_problems(source, RESTRICTED, entrypoint="execute")
    assert problem.line == 0 and expected in problem.message


def test_an_entrypoint_named_print_is_refused_with_another_name_offered() -> None:
    (problem,) = static_problems("x = 1\n", RESTRICTED, entrypoint="print")
    assert "cannot define" in problem.message and "'execute'" in problem.message


@pytest.mark.parametrize(
    ("source", "line", "fragment"),
    [
        pytest.param(
            body("return job.__class__"), 2, '"__class__" is an invalid attribute name', id="dunder"
        ),
        pytest.param("class C:\n    match 1:\n        case 1:\n            pass\n\n" + body("return 1"), 2,
                     "match cannot be used in a class body", id="match-in-class-body"),
        pytest.param(body("match job.attempt:", "    case x:", "        pass", "    case 1:", "        pass"), 3,
                     "makes remaining patterns unreachable", id="match-compile-stage"),
        pytest.param(
            "return 1\ndef execute(job):\n    pass\n", 1, "'return' outside function", id="compile-stage"
        ),
        pytest.param(body("return (1" + " + 1" * 400 + ")"), 0, "nested too deeply", id="deep-expression"),
    ],
)
def test_check_problems_include_restricted_compile_errors(source: str, line: int, fragment: str) -> None:
    problems = check_problems(source, RESTRICTED, "execute")
    assert any(p.line == line and fragment in p.message for p in problems), problems


def test_problem_renders_with_its_line() -> None:
    assert str(Problem(3, "bad")) == "line 3: bad"
    assert str(Problem(0, "bad")) == "bad"


# --- the profile ---------------------------------------------------------------------


def test_presets() -> None:
    assert RESTRICTED.is_restricted and not TRUSTED.is_restricted
    assert RESTRICTED.allowed_modules == frozenset(MODULE_EXPORTS)
    assert RESTRICTED.max_source_bytes == 256 * 1024


def test_with_methods_return_changed_copies() -> None:
    smaller = RESTRICTED.without_modules("random").with_max_source_bytes(1000)
    assert "random" not in smaller.allowed_modules and smaller.max_source_bytes == 1000
    assert "random" in RESTRICTED.allowed_modules
    assert "random" in smaller.with_modules("random").allowed_modules


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda: RESTRICTED.with_modules("os"), id="unaudited-module"),
        pytest.param(lambda: Policy("sandboxed"), id="unknown-name"),
        pytest.param(lambda: RESTRICTED.with_max_source_bytes(0), id="zero-size"),
    ],
)
def test_invalid_policies_are_refused(make: Any) -> None:
    with pytest.raises(ValueError):
        make()


def test_policy_without_a_module_refuses_it_at_runtime() -> None:
    code, _ = compile_restricted_source(body("import random", "return 1"), "<job:test>")
    job = JobHandle(JOB_FIELDS, NoEffects())  # type: ignore[arg-type]
    policy = RESTRICTED.without_modules("random")
    namespace = restricted_globals(job, object(), LogSink(10, lambda text: None), policy)
    exec(code, namespace)
    with pytest.raises(ImportError, match="'random' is not allowed"):
        namespace["execute"](job)


def test_what_code_drops_from_a_list_is_kept_until_a_safe_point_of_the_entrypoint() -> None:
    from sandbox import policy

    policy.register_entry_callers(run_restricted.__code__)  # as the runner registers its own
    policy._DROPPED.clear()
    source = """
def helper(rows):
    rows.pop()
    del rows[0]
    rows.clear()
    for row in [1]:
        pass  # a loop in a helper: C may be below it, so no safe point here

def execute(job):
    rows = [("a",), ("b",), ("c",), 4]
    helper(rows)
    return len(rows)
"""
    assert run_restricted(source) == 0
    # Kept, numbers aside: nothing of the entrypoint's frame ran a safe point since.
    assert sorted(policy._DROPPED) == [("a",), ("b",), ("c",)]
    looping = body("rows = [('x',), ('y',)]", "for _ in range(2):", "    rows.pop()", "return len(rows)")
    assert run_restricted(looping) == 0
    # The entrypoint's start let the first run's go, its loop the first pop's.
    assert policy._DROPPED == [("x",)]


def test_a_safe_point_acts_only_in_entry_code_the_runner_called() -> None:
    from sandbox import policy

    code, problems = compile_restricted_source("def helper():\n    for _ in [1]:\n        pass\n", "<job:test>")
    assert problems == []
    namespace = restricted_globals(object(), object(), LogSink(10, lambda text: None))
    exec(code, namespace)
    helper = namespace["helper"]

    def runner_like(function: Any) -> None:
        function()

    policy.register_entry_callers(runner_like.__code__)
    policy._DROPPED[:] = [("kept",)]
    runner_like(helper)  # called by a runner function, but not entry code (a generator's finally, say)
    assert policy._DROPPED == [("kept",)]
    policy.register_entry_code(helper.__code__)
    helper()  # entry code, not called by the runner
    assert policy._DROPPED == [("kept",)]
    runner_like(helper)
    assert policy._DROPPED == []
