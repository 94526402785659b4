"""``match`` statements for restricted code, rewritten as guarded ``if`` statements.

RestrictedPython refuses ``match``: a pattern reads items and attributes in the
interpreter's own code, past the guards (a class pattern reads the names in
``__match_args__`` with a plain getattr). Rewritten as ordinary code, each read goes
through the same guard as the spelled-out form would::

    match command:                    _match_1_ = command
                                      _match_2_ = True  # no case has matched yet
        case ["go", n] if n > 0:      if _match_2_ and (_match_3_ := _match_sequence_(_match_1_, 2, None,
                                              "unpack")) is not None and _match_3_[0] == "go" \\
                                              and [_match_4_ := _match_3_[1]] and [n := _match_4_] and n > 0:
            ...                           _match_2_ = False
                                          ...
        case Point(x=0, y=y):         if _match_2_ and (_match_5_ := _match_class_(_match_1_, Point, 0,
                                              ("x", "y"))) is not None and ...
        case _:                       if _match_2_: ...

The hooks (``match_hooks``) return a list of what a pattern takes apart (items, values,
attributes), or None when the subject does not fit, in the order and by the rules of
CPython 3.11: sequences and mappings are told by the type flags the interpreter itself
reads (so ``str``, ``bytes`` and ``bytearray`` are not sequences), a sequence is measured,
then indexed or unpacked as the compiler would, a mapping's keys are evaluated and looked
up once its kind and size fit (its ``**rest`` copied once the values matched), class
patterns use ``isinstance`` and ``__match_args__``,
and the builtins that match themselves (``int(x)``) give the subject. Attributes are read
with the policy's ``getattr``. A capture is held in a temporary (inside a one-item list,
true without asking the value) and the name bound once the whole pattern matched, before
the guard, as CPython binds. The checks the compiler makes of a ``match`` (unreachable
cases, alternatives binding different names) come from compiling the original source
first (``policy.compile_restricted_source``).
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterator
from typing import Any

__all__ = ["desugar", "match_hooks", "matches_in_class_body"]

# The type flags CPython's pattern matching reads (Include/object.h).
_TPFLAGS_SEQUENCE = 1 << 5
_TPFLAGS_MAPPING = 1 << 6
_TPFLAGS_MATCH_SELF = 1 << 22
_ABSENT = object()
# A sub-pattern's test, made once the expression of the value it tests is known.
_Later = Callable[[ast.expr], "ast.expr | None"]


def matches_in_class_body(node: ast.ClassDef) -> list[ast.Match]:
    """``match`` statements run by the class body itself (not by its methods): their
    helper names would land in the class, which a job class may not hold."""
    found = []
    todo: list[ast.AST] = list(node.body)
    while todo:
        child = todo.pop()
        if isinstance(child, ast.Match):
            found.append(child)
        if not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            todo.extend(ast.iter_child_nodes(child))
    return found


def desugar(
    node: ast.Match,
    visit: Callable[[ast.AST], Any],
    check_name: Callable[[ast.AST, str], None],
    check_attribute: Callable[[ast.AST, str], None],
    temporaries: Iterator[int],
) -> list[ast.stmt]:
    """The statements that do what ``node`` does. ``visit`` transforms the user's own
    expressions and statements (subject, values, classes, guards, bodies); the glue
    around them is built here, after that, so the transformer never sees its names."""
    rewrite = _Rewrite(visit, check_name, check_attribute, temporaries)
    subject, open_ = rewrite.temporary(), rewrite.temporary()
    statements: list[ast.stmt] = [ast.Assign([_store(subject)], visit(node.subject)),
                                  ast.Assign([_store(open_)], ast.Constant(True))]
    for statement in statements:
        ast.copy_location(statement, node)
    # One flat `if` per case, each tried while no case has matched (`open_`): a chain of
    # elif would nest as deep as there are cases, and the compiler gives up near 1,000.
    for case in node.cases:
        rewrite.captures = {}
        test = rewrite.pattern(case.pattern, _load(subject))
        # As in CPython, the names are bound once the whole pattern matched, before the
        # guard: a pattern that fails half-way leaves them as they were.
        bindings = [ast.NamedExpr(_store(name), _load(held)) for name, held in rewrite.captures.items()]
        test = _and([_load(open_), test, ast.List(bindings, ast.Load()) if bindings else None])
        if case.guard is not None:
            test = _and([test, visit(case.guard)])
        body = [ast.Assign([_store(open_)], ast.Constant(False)), *rewrite.body(case.body)]
        statements.append(ast.copy_location(ast.If(test, body, []), case.pattern))
    return [ast.fix_missing_locations(statement) for statement in statements]


# How a sequence pattern takes its subject apart, as CPython 3.11 compiles it: only
# wildcards need its length alone; a `*_` reads the items it needs by index; otherwise
# the subject is unpacked (iterated).
_LENGTH, _INDEX, _UNPACK = "length", "index", "unpack"


class _Rewrite:
    def __init__(self, visit: Callable[[ast.AST], Any], check_name: Callable[[ast.AST, str], None],
                 check_attribute: Callable[[ast.AST, str], None], temporaries: Iterator[int]) -> None:
        self.visit = visit
        self.check_name = check_name
        self.check_attribute = check_attribute
        self.temporaries = temporaries
        self.captures: dict[str, str] = {}  # the case's names, each held in a temporary until it matched

    def temporary(self) -> str:
        return f"_match_{next(self.temporaries)}_"  # a `_` name: out of the job's reach

    def body(self, statements: list[ast.stmt]) -> list[ast.stmt]:
        out: list[ast.stmt] = []
        for statement in statements:
            done = self.visit(statement)
            if done is not None:
                out.extend(done if isinstance(done, list) else [done])
        return out or [ast.Pass()]

    def pattern(self, pattern: ast.pattern, subject: ast.expr) -> ast.expr | None:
        """A test that is true when ``subject`` matches; None for a pattern that always
        matches and captures nothing (``_``)."""
        if isinstance(pattern, ast.MatchValue):
            return ast.Compare(subject, [ast.Eq()], [self.visit(pattern.value)])
        if isinstance(pattern, ast.MatchSingleton):
            return ast.Compare(subject, [ast.Is()], [ast.Constant(pattern.value)])
        if isinstance(pattern, ast.MatchAs):
            inner = None if pattern.pattern is None else self.pattern(pattern.pattern, subject)
            return _and([inner, self.capture(pattern, pattern.name, subject)])
        if isinstance(pattern, ast.MatchOr):
            alternatives = [self.pattern(p, subject) for p in pattern.patterns]
            return None if None in alternatives else ast.BoolOp(ast.Or(), alternatives)
        if isinstance(pattern, ast.MatchSequence):
            return self.sequence(pattern, subject)
        if isinstance(pattern, ast.MatchMapping):
            return self.mapping(pattern, subject)
        if isinstance(pattern, ast.MatchClass):
            return self.class_(pattern, subject)
        raise SyntaxError(f"unexpected pattern {type(pattern).__name__}")  # MatchStar: only in a sequence

    def capture(self, pattern: ast.pattern, name: str | None, value: ast.expr) -> ast.expr | None:
        """``[held := value]``, true whatever the value (a one-item list); the name is
        bound from ``held`` once the case's pattern matched."""
        if name is None:
            return None
        self.check_name(pattern, name)
        held = self.captures.setdefault(name, self.temporary())  # alternatives share it
        return ast.List([ast.NamedExpr(_store(held), value)], ast.Load())

    def taken_apart(self, hook: str, args: list[ast.expr], parts: list[_Later | None],
                    then: Callable[[ast.expr], list[ast.expr | None]] = lambda held: []) -> ast.expr:
        """``(_match_N_ := hook(...)) is not None and <then> and <part 0 on _match_N_[0]> ...``"""
        held = self.temporary()
        call = ast.Call(ast.Name(hook, ast.Load()), args, [])
        test = ast.Compare(ast.NamedExpr(_store(held), call), [ast.IsNot()], [ast.Constant(None)])
        return _and([test, *then(_load(held)),
                     *(part(ast.Subscript(_load(held), ast.Constant(i), ast.Load()))
                       for i, part in enumerate(parts) if part is not None)])

    def sequence(self, pattern: ast.MatchSequence, subject: ast.expr) -> ast.expr:
        star = next((i for i, p in enumerate(pattern.patterns) if isinstance(p, ast.MatchStar)), None)
        parts = [self.later(p) for p in pattern.patterns]
        how = _LENGTH if all(part is None for part in parts) else \
            _INDEX if star is not None and pattern.patterns[star].name is None else _UNPACK  # type: ignore[attr-defined]
        args = [subject, ast.Constant(len(pattern.patterns)), ast.Constant(star), ast.Constant(how)]
        return self.taken_apart("_match_sequence_", args, parts)

    def mapping(self, pattern: ast.MatchMapping, subject: ast.expr) -> ast.expr:
        # As CPython: the subject's kind and size first, then the keys are evaluated and
        # looked up one by one, then the values tested, and only then the rest copied.
        parts = [self.later(p) for p in pattern.patterns]
        keys = self.temporary()
        listed = ast.NamedExpr(_store(keys), ast.Tuple([self.visit(key) for key in pattern.keys], ast.Load()))

        def values(mapping: ast.expr) -> list[ast.expr | None]:
            rest = None
            if pattern.rest is not None:
                remaining = ast.Call(ast.Name("_match_rest_", ast.Load()), [mapping, _load(keys)], [])
                rest = self.capture(pattern, pattern.rest, remaining)
            return [self.taken_apart("_match_keys_", [mapping, listed], parts), rest]

        return self.taken_apart("_match_mapping_", [subject, ast.Constant(len(pattern.keys))], [], values)

    def class_(self, pattern: ast.MatchClass, subject: ast.expr) -> ast.expr:
        for name in pattern.kwd_attrs:
            self.check_attribute(pattern, name)
        names = ast.Tuple([ast.Constant(name) for name in pattern.kwd_attrs], ast.Load())
        parts = [self.later(p) for p in [*pattern.patterns, *pattern.kwd_patterns]]
        return self.taken_apart("_match_class_",
                                [subject, self.visit(pattern.cls), ast.Constant(len(pattern.patterns)), names], parts)

    def later(self, pattern: ast.pattern) -> _Later | None:
        """A sub-pattern's test, to make once the expression of its value is known."""
        if isinstance(pattern, ast.MatchStar):
            return None if pattern.name is None else lambda value: self.capture(pattern, pattern.name, value)
        if isinstance(pattern, ast.MatchAs) and pattern.pattern is None and pattern.name is None:
            return None  # `_`
        return lambda value: self.pattern(pattern, value)


def _and(tests: list[ast.expr | None]) -> ast.expr | None:
    tests = [test for test in tests if test is not None]
    if not tests:
        return None
    return tests[0] if len(tests) == 1 else ast.BoolOp(ast.And(), tests)


def _load(name: str) -> ast.Name:
    return ast.Name(name, ast.Load())


def _store(name: str) -> ast.Name:
    return ast.Name(name, ast.Store())


# --- at run time -------------------------------------------------------------------


def match_hooks(getattr_: Callable[..., Any], real_class: Callable[[Any], Any]) -> dict[str, Callable[..., Any]]:
    """The hooks the rewritten code calls: attributes are read with ``getattr_``, and a
    class pattern tests ``real_class(cls)`` (the class a name the policy gives restricted
    code stands for, such as ``Enum`` or ``type``)."""

    def match_sequence(subject: Any, length: int, star: int | None, how: str) -> list[Any] | None:
        if not type(subject).__flags__ & _TPFLAGS_SEQUENCE:
            return None
        if star is None or length > 1:  # `[*_]` and `[*rest]` fit any length: not measured
            size = len(subject)
            if (size < length - 1) if star is not None else (size != length):
                return None
        if how == _LENGTH:
            return []
        if how == _INDEX:
            after = length - star - 1  # type: ignore[operator]
            return [*(subject[i] for i in range(star)), None,  # type: ignore[arg-type]
                    *(subject[size - after + i] for i in range(after))]
        items = list(subject)
        if star is None:
            if len(items) != length:
                raise ValueError(f"{'too many' if len(items) > length else 'not enough'} values to unpack "
                                 f"(expected {length}, got {len(items)})")
            return items
        if len(items) < length - 1:
            raise ValueError(f"not enough values to unpack (expected at least {length - 1}, got {len(items)})")
        end = len(items) - (length - star - 1)
        return [*items[:star], items[star:end], *items[end:]]

    def match_mapping(subject: Any, count: int) -> Any:
        if not type(subject).__flags__ & _TPFLAGS_MAPPING or len(subject) < count:
            return None
        return [subject]

    def match_keys(held: list[Any], keys: tuple[Any, ...]) -> list[Any] | None:
        values = []
        if keys:
            get, absent, seen = getattr_(held[0], "get"), object(), set()
            for key in keys:
                if key in seen:
                    raise ValueError(f"mapping pattern checks duplicate key ({key!r})")
                seen.add(key)
                value = get(key, absent)
                if value is absent:
                    return None
                values.append(value)
        return values

    def match_rest(held: list[Any], keys: tuple[Any, ...]) -> dict[Any, Any]:
        remaining = dict(held[0])
        for key in keys:
            del remaining[key]
        return remaining

    def match_class(subject: Any, cls: Any, positional: int, keywords: tuple[str, ...]) -> list[Any] | None:
        cls = real_class(cls)
        if not isinstance(cls, type):
            raise TypeError("called match pattern must be a class")
        if not isinstance(subject, cls):
            return None
        values: list[Any] = []
        names: list[str] = []
        if positional:
            # Set by dataclass or namedtuple from field names; a class statement of
            # restricted code cannot set it. Only read here, as names for getattr_.
            match_args = getattr(cls, "__match_args__", _ABSENT)
            if match_args is _ABSENT and cls.__flags__ & _TPFLAGS_MATCH_SELF:
                if positional > 1:
                    raise TypeError(f"{cls.__name__}() accepts 1 positional sub-pattern ({positional} given)")
                values.append(subject)
            else:
                match_args = () if match_args is _ABSENT else match_args
                if type(match_args) is not tuple:
                    raise TypeError(f"{cls.__name__}.__match_args__ must be a tuple (got {type(match_args).__name__})")
                if positional > len(match_args):
                    raise TypeError(f"{cls.__name__}() accepts {len(match_args)} positional sub-pattern"
                                    f"{'' if len(match_args) == 1 else 's'} ({positional} given)")
                names = list(match_args[:positional])
                if any(type(name) is not str for name in names):
                    raise TypeError("__match_args__ elements must be strings")
        for name in names + list(keywords):
            if names.count(name) + keywords.count(name) > 1:
                raise TypeError(f"{cls.__name__}() got multiple sub-patterns for attribute {name!r}")
            try:
                values.append(getattr_(subject, name))
            except AttributeError:  # missing, or refused by the guard: no match
                return None
        return values

    return {"_match_sequence_": match_sequence, "_match_mapping_": match_mapping, "_match_keys_": match_keys,
            "_match_rest_": match_rest, "_match_class_": match_class}
