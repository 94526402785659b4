"""``match`` in restricted code (sandbox.patterns): the rewrite gives what CPython gives
on the same source, reads through the guards, and keeps the compiler's own checks."""

from __future__ import annotations

import json
import sys
import types

import pytest
from support import JOB_FIELDS, body, run_restricted

from sandbox.policy import compile_restricted_source

pytestmark = pytest.mark.timeout(30)

COMMON = '''
from dataclasses import dataclass
from collections import namedtuple
from enum import Enum

class Color(Enum):
    RED = 1
    GREEN = 2

@dataclass
class Point:
    x: int
    y: int

class Shape:
    def __init__(self, kind, size):
        self.kind = kind
        self.size = size

Pair = namedtuple("Pair", "left right")
'''

# Each returns a list of what every subject matched; compared with CPython running it.
SOURCES = {
    "literals-and-singletons": '''
def execute(job):
    out = []
    for v in [None, True, False, 0, 1, 1.0, -2, 2 + 3j, "s", b"b", 7]:
        match v:
            case None:
                out.append("none")
            case True | False:
                out.append("bool")
            case 0 | 1:
                out.append("small")
            case -2:
                out.append("minus two")
            case 2 + 3j:
                out.append("complex")
            case "s" | b"b":
                out.append("text")
            case other:
                out.append(("other", other))
    return out
''',
    "sequences": '''
def execute(job):
    out = []
    for v in [[], [1], [1, 2], (1, 2, 3), range(5), "abc", b"ab", {1: 2}, [1, [2, 3]], [[1, 2], [3, 4]]]:
        match v:
            case []:
                out.append("empty")
            case [1, [2, x]]:
                out.append(("nested", x))
            case [[p, q], [r, s]] if p + q < r + s:
                out.append(("grid", p, q, r, s))
            case [x]:
                out.append(("one", x))
            case [x, y]:
                out.append(("two", x, y))
            case [first, *middle, last]:
                out.append(("ends", first, middle, last))
            case _:
                out.append("no")
    return out
''',
    "star-wildcard": '''
def execute(job):
    out = []
    for v in [[1], [1, 2], [1, 2, 3, 4], (9, 8)]:
        match v:
            case [x, *_, y]:
                out.append((x, y))
            case [*_]:
                out.append("any")
    return out
''',
    "mappings": '''
def execute(job):
    out = []
    for v in [{}, {"a": 1}, {"a": 1, "b": 2, "c": 3}, {"b": 2}, {"type": "msg", "text": "hi"}, [("a", 1)]]:
        match v:
            case {"type": "msg", "text": str(text)}:
                out.append(("msg", text))
            case {"a": 1, **rest} if rest:
                out.append(("a+", sorted(rest.items())))
            case {"a": _}:
                out.append("a")
            case {**rest} if not rest:
                out.append("empty")
            case {}:
                out.append("mapping")
            case _:
                out.append("not a mapping")
    return out
''',
    "or-patterns-bind-alike": '''
def execute(job):
    out = []
    for v in [(1, 2), [2, 1], {"x": 5}, {"y": 6}, 7]:
        match v:
            case (1, n) | (n, 1):
                out.append(("pair", n))
            case {"x": n} | {"y": n}:
                out.append(("map", n))
            case n:
                out.append(("any", n))
    return out
''',
    "tuple-subject": '''
def execute(job):
    out = []
    for a in range(3):
        for b in range(3):
            match a, b:
                case 0, 0:
                    out.append("origin")
                case 0, y:
                    out.append(f"y{y}")
                case x, 0:
                    out.append(f"x{x}")
                case x, y if x == y:
                    out.append("diagonal")
                case _:
                    out.append("else")
    return out
''',
    "classes": COMMON + '''
def execute(job):
    out = []
    for v in [Point(0, 3), Point(2, 3), Shape("circle", 4), Shape("square", 1), Pair(1, 2),
              Pair("a", Color.RED), Color.GREEN, Color.RED, {Color.RED: 1}]:
        match v:
            case Point(x=0, y=y):
                out.append(f"on the y axis at {y}")
            case Point(a, b) as p:
                out.append(f"point {a},{b} {p.x}")
            case Shape(kind="circle", size=r):
                out.append(f"circle {r}")
            case Shape(missing=1):
                out.append("never")
            case Pair(left=1, right=r):
                out.append(f"pair {r}")
            case Pair(left, Color.RED):
                out.append(f"red pair {left}")
            case Color.GREEN:
                out.append("green")
            case Color():
                out.append(f"color {v.name}")
            case {Color.RED: n}:
                out.append(f"red key {n}")
            case _:
                out.append("other")
    return out
''',
    "builtin-classes-match-themselves": '''
def execute(job):
    out = []
    for v in [1, 2.0, "s", b"b", [1], (1,), {1: 2}, {3}, True, None, frozenset({1})]:
        match v:
            case bool(b):
                out.append(("bool", b))
            case int(i):
                out.append(("int", i))
            case float(f):
                out.append(("float", f))
            case str(s) | bytes(s):
                out.append(("text", len(s)))
            case list(items) | tuple(items):
                out.append(("sequence", len(items)))
            case dict(d):
                out.append(("dict", len(d)))
            case set(s) | frozenset(s):
                out.append(("set", len(s)))
            case _:
                out.append("other")
    return out
''',
    "control-flow-and-nesting": '''
def find(items):
    for item in items:
        match item:
            case "skip":
                continue
            case "stop":
                break
            case ("return", value):
                return value
            case ("nested", inner):
                match inner:
                    case [x, *_]:
                        return ("first", x)
    return "end"

def execute(job):
    return [find(["skip", ("return", 1)]), find(["stop", ("return", 2)]), find([("nested", [5, 6])]), find([])]
''',
    "module-level-and-names-after": '''
config = {"mode": "fast", "level": 3}
match config:
    case {"mode": mode, "level": int(level)}:
        settings = (mode, level)
    case _:
        settings = None

def execute(job):
    match job.metadata:
        case {"userId": str(user)} if user.startswith("u"):
            pass
        case _:
            user = None
    return [settings, mode, level, user]
''',
    "guards-run-in-order": '''
def execute(job):
    seen = []
    def note(tag, value):
        seen.append(tag)
        return value
    match [1, 2]:
        case [1, x] if note("first", x > 5):
            result = "one"
        case [y, 2] if note("second", True):
            result = "two"
        case _:
            result = "none"
    return [result, seen]
''',
    "methods": '''
class Interpreter:
    def __init__(self):
        self.stack = []

    def run(self, program):
        for op in program:
            match op:
                case ("push", value):
                    self.stack.append(value)
                case ("add",):
                    b, a = self.stack.pop(), self.stack.pop()
                    self.stack.append(a + b)
                case ("apply", "neg", *args):
                    self.stack.append(-args[0])
                case other:
                    raise ValueError(f"unknown {other}")
        return self.stack

def execute(job):
    return Interpreter().run([("push", 2), ("push", 3), ("add",), ("apply", "neg", 7)])
''',
    # What a pattern calls, and when, as in CPython 3.11 (found by a review of the rewrite).
    "names-bound-only-by-a-matching-pattern": '''
def execute(job):
    result = "default"
    match {"result": "from a failed case", "ok": False}:
        case {"result": result, "ok": True}:
            pass
        case [*rest] | {"rest": rest}:
            pass
    return result
''',
    "mapping-keys-evaluated-once-the-subject-fits": '''
class K:
    a = "x"
    b = "x"

def execute(job):
    out = []
    match 5:
        case {K.missing: 1}:
            out.append("mapping")
        case _:
            out.append("not a mapping")
    match {"y": 1}:
        case {"z": 1, K.a: 2, K.b: 3}:
            out.append("matched")
        case _:
            out.append("no match")
    return out
''',
    "fresh-default-for-each-get": '''
defaults = []

class Recording(dict):
    def get(self, key, default=None):
        defaults.append(default)
        return super().get(key, default)

def execute(job):
    for _ in range(2):
        match Recording(k=1):
            case {"k": 1}:
                pass
    return [defaults[0] is defaults[1], defaults[0] is None]
''',
    "sequences-measured-indexed-or-unpacked": '''
class Backwards(list):
    def __getitem__(self, i):
        return super().__getitem__(-1 - i)

class NoIter(list):
    def __iter__(self):
        raise RuntimeError("iterated")

def execute(job):
    out = []
    match range(10**20):
        case [*_]:
            out.append("any length, not measured")
    match range(10**12):
        case [first, *_, last]:
            out.append([first, last])
    match NoIter([1, 2]):
        case [_, _]:
            out.append("measured, not iterated")
    match Backwards([10, 20, 30]):
        case [a, *_, b]:
            out.append(["indexed", a, b])
    match Backwards([10, 20, 30]):
        case [a, *rest]:
            out.append(["unpacked", a, rest])
    return out
''',
    "classes-the-policy-stands-in-for": '''
from enum import Enum, IntEnum
from zoneinfo import ZoneInfo

class Color(Enum):
    RED = 1

class Level(IntEnum):
    LOW = 1

class A:
    pass

def execute(job):
    out = []
    for v in [Color.RED, Level.LOW, A, ZoneInfo("UTC"), A()]:
        match v:
            case IntEnum():
                out.append("int enum")
            case Enum(name=name):
                out.append(name)
            case type(__name__=name):
                out.append(f"class {name}")
            case ZoneInfo(key=key):
                out.append(key)
            case _:
                out.append("other")
    out.append([isinstance(Color.RED, Enum), issubclass(Level, (int, Enum)), isinstance(A, type)])
    return out
''',
    "isinstance-and-issubclass-through-stand-ins": '''
from collections import namedtuple
from enum import Enum, IntEnum, StrEnum
from typing import Optional
from zoneinfo import ZoneInfo

class C(IntEnum):
    A = 1

P = namedtuple("P", "a b")

def execute(job):
    return [issubclass(IntEnum, Enum), issubclass(IntEnum, int), issubclass(StrEnum, str),
            isinstance(C.A, int | Enum), isinstance(C.A, Optional[Enum]), isinstance(C.A, P(int, Enum)),
            isinstance(type, type), isinstance(ZoneInfo, type), issubclass(type, object),
            isinstance(P(1, 2), P), isinstance(P(1, 2), tuple), isinstance(3, (str, (int, float)))]
''',
    "rest-copied-once-the-values-matched": '''
class Grows:
    def __init__(self, target):
        self.target = target

    def __eq__(self, other):
        self.target["added"] = 1
        return True

class Holder:
    pass

class NoKeys(dict):
    def keys(self):
        raise ValueError("keys() called: the rest was copied for a case that failed")

def execute(job):
    subject = {"a": 0}
    holder = Holder()
    holder.grows = Grows(subject)
    match subject:
        case {"a": holder.grows, **rest}:
            grown = sorted(rest)
    match NoKeys(kind="a"):
        case {"kind": "b", **rest}:
            kind = "b"
        case {"kind": "a"}:
            kind = "a"
    return [grown, kind]
''',
    "more-cases-than-an-elif-chain-compiles": "def execute(job):\n    match job.metadata['userId']:\n"
    + "".join(f"        case 'u{n}':\n            return {n}\n" for n in range(1500, 0, -1))
    + "        case _:\n            return None\n",
}


class _Job:
    def __init__(self) -> None:
        self.metadata = dict(JOB_FIELDS["metadata"])


def _run_natively(source: str) -> object:
    module = types.ModuleType("native_job")  # dataclasses looks annotations up there
    sys.modules[module.__name__] = module
    try:
        exec(compile(source, "<native>", "exec", dont_inherit=True), module.__dict__)  # noqa: S102 - the tests' own source
        return module.execute(_Job())
    finally:
        del sys.modules[module.__name__]


@pytest.mark.parametrize("source", SOURCES.values(), ids=SOURCES.keys())
def test_match_gives_what_cpython_gives(source: str) -> None:
    expected = json.loads(json.dumps(_run_natively(source)))
    assert json.loads(json.dumps(run_restricted(source))) == expected


@pytest.mark.parametrize(
    ("lines", "error", "fragment"),
    [
        pytest.param(["match 1:", "    case len():", "        pass"], TypeError, "must be a class", id="not-a-class"),
        pytest.param(["class Plain:", "    pass", "match Plain():", "    case Plain(1):", "        pass"],
                     TypeError, "accepts 0 positional sub-patterns (1 given)", id="no-match-args"),
        pytest.param(["match 1:", "    case int(1, 2):", "        pass"],
                     TypeError, "accepts 1 positional sub-pattern (2 given)", id="self-matching-takes-one"),
        pytest.param(["k = 'a'", "class K:", "    a = 'a'", "match {'a': 1, 'b': 2}:", "    case {K.a: 1, 'a': 2}:",
                      "        pass"], ValueError, "duplicate key ('a')", id="duplicate-value-key"),
    ],
)
def test_match_errors_are_cpythons(lines: list[str], error: type, fragment: str) -> None:
    with pytest.raises(error, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        run_restricted(body(*lines))


@pytest.mark.parametrize(
    ("lines", "fragment"),
    [
        pytest.param(["match job:", "    case x:", "        pass", "    case 1:", "        pass"],
                     "makes remaining patterns unreachable", id="unreachable"),
        pytest.param(["match job:", "    case [x] | y:", "        pass"], "bind different names", id="or-names"),
        pytest.param(["match job:", "    case {'a': 1, 'a': 2}:", "        pass"], "duplicate key", id="literal-keys"),
        pytest.param(["match job:", "    case P(a=1, a=2):", "        pass"], "repeated", id="repeated-attribute"),
        pytest.param(["match job:", "    case P(__class__=c):", "        pass"], '"__class__" is an invalid attribute',
                     id="dunder-keyword"),
        pytest.param(["match job:", "    case job.__class__:", "        pass"], '"__class__" is an invalid attribute',
                     id="dunder-value"),
        pytest.param(["match job:", "    case [_hidden]:", "        pass"], '"_hidden" is an invalid variable name',
                     id="private-capture"),
        pytest.param(["match job:", "    case {**_rest}:", "        pass"], '"_rest" is an invalid variable name',
                     id="private-rest"),
        pytest.param(["match job:", "    case _match_1_:", "        pass"], '"_match_1_" is an invalid variable name',
                     id="helper-name"),
        pytest.param(["x = 1", "global _match_1_", "match job:", "    case x:", "        pass"],
                     '"_match_1_" is an invalid variable name', id="helper-made-global"),
    ],
)
def test_match_problems_are_found_at_compile_time(lines: list[str], fragment: str) -> None:
    code, problems = compile_restricted_source(body(*lines), "<job>")
    assert code is None
    assert any(fragment in problem.message and problem.line == 3 for problem in problems), problems


def test_match_in_a_class_body_is_refused_with_a_reason() -> None:
    source = "class Mode:\n    if True:\n        match 1:\n            case 1:\n                level = 1\n"
    code, problems = compile_restricted_source(source + body("return Mode.level"), "<job>")
    assert code is None
    assert [(p.line, p.message) for p in problems] == [
        (3, "match cannot be used in a class body itself; use it in a method or a function")]
    # In a method of the class, it works.
    method = "class Mode:\n    def level(self, x):\n        match x:\n            case 1:\n                return 'one'\n"
    assert run_restricted(method + body("return Mode().level(1)")) == "one"


def test_class_patterns_read_attributes_through_the_guard() -> None:
    # AttributeError.obj is refused by getattr; as a class pattern's attribute it does not match.
    source = body(
        "try:",
        "    job.missing",
        "except AttributeError as error:",
        "    match error:",
        "        case AttributeError(obj=held):",
        "            return held",
        "        case AttributeError(name=name):",
        "            return 'guarded ' + name",
    )
    assert run_restricted(source) == "guarded missing"


def test_sequence_and_mapping_patterns_follow_the_type_not_the_shape() -> None:
    # A str is not a sequence pattern's subject, a list of pairs not a mapping's, as in CPython.
    source = body(
        "out = []",
        "for v in ['ab', [('a', 1)], b'xy']:",
        "    match v:",
        "        case [a, b]:",
        "            out.append('sequence')",
        "        case {'a': a}:",
        "            out.append('mapping')",
        "        case _:",
        "            out.append('neither')",
        "return out",
    )
    assert run_restricted(source) == ["neither", "neither", "neither"]
