"""The SQL in engine/queries.py: the parameter convention, and that it changes no plan."""

from __future__ import annotations

import re

import pytest

from engine import queries as q
from engine.store import Store

BARE_PARAMETER = re.compile(r"(?<![\w+])(\?|:[a-z_]+)")


def statements() -> dict[str, str]:
    """Every statement with parameters but INSERTs (whose values no plan looks at)."""
    return {name: value for name, value in vars(q).items()
            if name.isupper() and isinstance(value, str) and BARE_PARAMETER.search(value.replace("+", ""))
            and not value.lstrip().upper().startswith("INSERT")}


def whole_statements() -> list[str]:
    """The statements that can be planned on their own (not fragments like RETENTION_WHERE)."""
    return sorted(name for name, sql in statements().items()
                  if sql.lstrip().upper().startswith(("SELECT", "UPDATE", "DELETE")))


def hidden(sql: str) -> bool:
    """Whether every parameter is written +:name / +?, outside the value-aware listings."""
    for name in q.VALUE_AWARE:
        sql = sql.replace(getattr(q, name), "")
    return not BARE_PARAMETER.search(sql)


def test_convention_is_checkable():
    assert hidden("SELECT 1 FROM jobs WHERE id = +? AND owner = +:owner")
    assert not hidden("SELECT 1 FROM jobs WHERE id = ?")
    assert not hidden("SELECT 1 FROM jobs WHERE id = +:id AND owner = :owner")


@pytest.mark.parametrize("name", sorted(set(statements()) - q.VALUE_AWARE))
def test_parameters_are_hidden_from_the_planner(name):
    assert hidden(getattr(q, name)), f"{name}: write its parameters as +:name (see engine/queries.py)"


@pytest.mark.parametrize("name", [n for n in whole_statements() if n not in q.VALUE_AWARE])
def test_hiding_a_value_keeps_the_plan(tmp_path, name):
    """`+:x` must use the same indexes as `:x` would."""
    sql = getattr(q, name)
    store = Store(tmp_path / "capsule.db")
    try:
        names = set(re.findall(r":([a-z_]+)", sql))
        params = dict.fromkeys(names, "x") if names else ("x",) * sql.count("?")

        def plan(text: str) -> list[str]:
            return [row[3] for row in store._all("EXPLAIN QUERY PLAN " + text, params)]

        assert plan(sql) == plan(sql.replace("+:", ":").replace("+?", "?"))
    finally:
        store.close()
