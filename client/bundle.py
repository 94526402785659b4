"""The bundler: turns `execute` (a function or its source text) into an Artifact.

A job runs far from where it was written: in a child process that sees its own source,
`job`, `User` and the sandbox's builtins, nothing else. So the bundler refuses, before
anything is sent, code that reads names it will not find there:

- a function that reads its enclosing scope (a closure: `__code__.co_freevars`);
- any global name the source references that the sandbox does not provide and the
  source does not define or import itself (found with `symtable`, nested scopes
  included).

The artifact always carries the source. It carries a cloudpickle payload only for
the trusted profile; restricted jobs carry none, so their digest depends on the
source alone and redeploying unchanged code makes no new version.

Decorators are not part of a job: the bundler sends the undecorated function (it
follows `functools.wraps`' `__wrapped__` and strips decorator lines from the source).
"""

from __future__ import annotations

import ast
import builtins
import functools
import importlib.metadata
import inspect
import platform
import symtable
import textwrap
import types
from typing import Callable, Iterator

from client.errors import InvalidArgument, SelfContainmentError
from engine import model

__all__ = ["bundle", "isolation_of", "sandbox_names"]

# Names the sandbox injects into every job's scope.
_INJECTED = frozenset({"job", "User"})

# The module name a trusted payload's function claims, so cloudpickle pickles it by
# value instead of by a reference to a module the child cannot import.
_PAYLOAD_MODULE = "__capsule_job__"


def bundle(execute: Callable[..., object] | str, *, isolation: str | model.Isolation = "restricted") -> model.Artifact:
    """The artifact for `execute`, after checking that it is self-contained.

    Raises InvalidArgument (not a `def` function, no entrypoint, syntax error, source
    text with the trusted profile) or SelfContainmentError (names the sandbox lacks).
    """
    profile = isolation_of(isolation)
    if isinstance(execute, str):
        return _bundle_text(execute, profile)
    return _bundle_function(execute, profile)


def isolation_of(value: str | model.Isolation) -> model.Isolation:
    """The isolation profile named by `value` ("restricted" or "trusted")."""
    try:
        return model.Isolation(value)
    except ValueError:
        choices = ", ".join(repr(i.value) for i in model.Isolation)
        raise InvalidArgument(f"isolation: {value!r} is not a profile; use one of {choices}") from None


@functools.cache
def sandbox_names() -> frozenset[str]:
    """The builtin and global names the restricted sandbox gives user code."""
    from sandbox.policy import SANDBOX_BUILTIN_NAMES  # RestrictedPython: loaded only when bundling

    return frozenset(SANDBOX_BUILTIN_NAMES) | _INJECTED


def _allowed_names(profile: model.Isolation) -> frozenset[str]:
    if profile is model.Isolation.TRUSTED:
        return frozenset(vars(builtins)) | sandbox_names()
    return sandbox_names()


# -- source text --------------------------------------------------------------------------

def _bundle_text(text: str, profile: model.Isolation) -> model.Artifact:
    if profile is model.Isolation.TRUSTED:
        raise InvalidArgument(
            "execute: the trusted profile runs a cloudpickle payload, which needs a function; "
            "pass the function itself, or use isolation='restricted' with source text"
        )
    source = textwrap.dedent(text)
    entrypoint = _text_entrypoint(_parse(source, "execute"))
    _check_globals(source, entrypoint, closure=(), allowed=_allowed_names(profile))
    return _artifact(source, entrypoint, payload=None)


def _text_entrypoint(tree: ast.Module) -> str:
    """`execute` when the source defines it, else its only top-level function."""
    names = [node.name for node in tree.body if isinstance(node, ast.FunctionDef)]
    if "execute" in names:
        return "execute"
    if len(names) == 1:
        return names[0]
    found = ", ".join(names) if names else "none"
    raise InvalidArgument(
        f"execute: the source must define `def execute(job): ...` (or exactly one top-level "
        f"function); top-level functions found: {found}"
    )


# -- functions ------------------------------------------------------------------------------

def _bundle_function(execute: Callable[..., object], profile: model.Isolation) -> model.Artifact:
    function = _plain_function(execute)
    source = _function_source(function)
    closure = tuple(n for n in function.__code__.co_freevars if n != function.__name__)
    _check_globals(source, function.__name__, closure=closure, allowed=_allowed_names(profile))
    payload = _payload(function) if profile is model.Isolation.TRUSTED else None
    return _artifact(source, function.__name__, payload)


def _plain_function(execute: object) -> types.FunctionType:
    """The undecorated `def` function behind `execute`, or a clear refusal."""
    if not inspect.isfunction(execute):
        raise InvalidArgument(
            f"execute must be a function defined with `def` (or its source text), "
            f"got {type(execute).__name__}: {execute!r}"
        )
    function = inspect.unwrap(execute)
    if not inspect.isfunction(function):
        raise InvalidArgument(f"execute wraps {function!r}, which is not a `def` function")
    if function.__name__ == "<lambda>":
        raise InvalidArgument(
            "execute is a lambda; define it with `def execute(job): ...` so its source can be sent"
        )
    if inspect.iscoroutinefunction(function) or inspect.isasyncgenfunction(function) or inspect.isgeneratorfunction(function):
        raise InvalidArgument(
            f"execute: {function.__name__} is an async or generator function; a job is a plain "
            "`def` function that returns a JSON value"
        )
    return function


def _function_source(function: types.FunctionType) -> str:
    """The function's own dedented source, decorators stripped."""
    name = function.__name__
    try:
        raw = inspect.getsource(function)
    except (OSError, TypeError) as exc:
        raise InvalidArgument(
            f"execute: cannot read the source of {name} ({exc}); define it in a .py file, "
            "or pass its source text instead"
        ) from None
    source = textwrap.dedent(raw)
    tree = _parse(source, name)
    node = tree.body[0] if len(tree.body) == 1 else None
    if not isinstance(node, ast.FunctionDef) or node.name != name:
        raise InvalidArgument(
            f"execute: the source of {name} does not define `def {name}(...)` at its top level; "
            "pass its source text instead"
        )
    if node.decorator_list:
        source = "".join(source.splitlines(keepends=True)[node.lineno - 1:])
    return source


def _payload(function: types.FunctionType) -> bytes:
    """cloudpickle bytes of the function alone, detached from its module."""
    import cloudpickle

    detached = types.FunctionType(
        function.__code__, {"__name__": _PAYLOAD_MODULE}, function.__name__,
        function.__defaults__, function.__closure__,
    )
    detached.__kwdefaults__ = function.__kwdefaults__
    detached.__qualname__ = function.__name__
    detached.__doc__ = function.__doc__
    return cloudpickle.dumps(detached)


# -- the self-containment check --------------------------------------------------------------

def _check_globals(source: str, entrypoint: str, *, closure: tuple[str, ...], allowed: frozenset[str]) -> None:
    """Refuse closures and globals the sandbox lacks, naming each one."""
    missing = sorted(_unresolved_globals(source) - allowed - set(closure))
    if closure or missing:
        raise SelfContainmentError(_self_containment_message(entrypoint, closure, missing), [*closure, *missing])


def _unresolved_globals(source: str) -> set[str]:
    """Global names the source reads but neither defines nor imports."""
    top = symtable.symtable(source, "<execute>", "exec")
    referenced: set[str] = set()
    defined = {s.get_name() for s in top.get_symbols() if s.is_assigned() or s.is_imported() or s.is_namespace()}
    for table in _tables(top):
        for symbol in table.get_symbols():
            if symbol.is_referenced() and symbol.is_global():
                referenced.add(symbol.get_name())
            if symbol.is_declared_global() and symbol.is_assigned():
                defined.add(symbol.get_name())
    return referenced - defined


def _tables(table: symtable.SymbolTable) -> Iterator[symtable.SymbolTable]:
    yield table
    for child in table.get_children():
        yield from _tables(child)


def _self_containment_message(entrypoint: str, closure: tuple[str, ...], missing: list[str]) -> str:
    python_builtins = [name for name in missing if hasattr(builtins, name)]
    outside = [name for name in missing if name not in python_builtins]
    parts = []
    if closure:
        parts.append(f"variables of its enclosing function: {', '.join(closure)}")
    if outside:
        parts.append(f"names from outside it that the sandbox does not have: {', '.join(outside)}")
    message = f"execute: function `{entrypoint}` is not self-contained; it reads {'; and '.join(parts)}. " if parts \
        else f"execute: function `{entrypoint}` uses what restricted jobs do not have. "
    if closure or outside:
        example = (closure or tuple(outside))[0]
        message += (f"A job sees only its own code, `job` and `User`: pass values through `metadata` "
                    f"(read them as job.metadata[\"{example}\"]), and define helpers and do imports "
                    f"inside the function.")
    if python_builtins:
        message += (f"{' ' if closure or outside else ''}Python builtins restricted jobs do not get: "
                    f"{', '.join(python_builtins)} (trusted jobs have every builtin, where the owner is allowed "
                    f"isolation=\"trusted\").")
    return message


# -- the artifact ------------------------------------------------------------------------------

def _artifact(source: str, entrypoint: str, payload: bytes | None) -> model.Artifact:
    return model.Artifact(
        source=source,
        entrypoint=entrypoint,
        payload=payload,
        payload_encoding="cloudpickle" if payload is not None else None,
        python_version=platform.python_version(),
        library_versions=dict(_library_versions()),
    )


def _parse(source: str, name: str) -> ast.Module:
    try:
        return ast.parse(source)
    except SyntaxError as exc:
        raise InvalidArgument(f"execute: the source of {name} does not parse: line {exc.lineno}: {exc.msg}") from None
    except (RecursionError, MemoryError):
        raise InvalidArgument(f"execute: the source of {name} does not parse: an expression is nested too deeply; "
                              f"split it into smaller statements") from None


@functools.cache
def _library_versions() -> dict[str, str]:
    return {name: _version(name) for name in ("cloudpickle", "capsule-jobs")}


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"
