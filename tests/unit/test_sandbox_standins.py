"""The stand-ins restricted jobs get for OrderedDict, deque, namedtuple and groupby behave
like the originals on ordinary code; the operator wrapping of job classes keeps Python's
answers but never hands CPython a NotImplemented after job code ran."""

from __future__ import annotations

import collections
import copy
import itertools
import json
import operator

import pytest

from sandbox import standins
from sandbox.policy import UserClassMeta, UserNamedTuple, user_namedtuple

pytestmark = pytest.mark.timeout(30)


@pytest.mark.parametrize(
    "data",
    [[], [1], [1, 1, 2, 2, 2, 1], "aabbbcdd", [("a", 1), ("a", 2), ("b", 3)], [3, 1, 4, 1, 5, 9, 2, 6]],
)
@pytest.mark.parametrize("key", [None, lambda x: x[0] if isinstance(x, tuple) else x, lambda x: str(x) < "3"])
def test_groupby_matches_itertools(data, key):
    expected = [(k, list(g)) for k, g in itertools.groupby(data, key)]
    assert [(k, list(g)) for k, g in standins.groupby(data, key)] == expected


def test_groupby_groups_are_invalidated_like_itertools():
    # Moving on without reading a group empties it, as in itertools.
    for groupby in (itertools.groupby, standins.groupby):
        groups = list(groupby("aabbc"))
        assert [(k, list(g)) for k, g in groups] == [("a", []), ("b", []), ("c", [])]


def test_groupby_refuses_reentry():
    state = {}

    def key(x):
        next(state["g"], None)
        return x

    state["g"] = standins.groupby([1, 2, 3], key)
    with pytest.raises(ValueError, match="generator already executing"):
        list(state["g"])


def test_ordered_dict_matches_collections():
    ours, theirs = standins.OrderedDict(b=1, a=2, c=3), collections.OrderedDict(b=1, a=2, c=3)
    for od in (ours, theirs):
        od.move_to_end("b")
        od.move_to_end("c", last=False)
        od["d"] = 4
    assert list(ours.items()) == list(theirs.items())
    assert repr(ours) == repr(theirs) and repr(standins.OrderedDict()) == repr(collections.OrderedDict())
    assert ours.popitem() == theirs.popitem() and ours.popitem(last=False) == theirs.popitem(last=False)
    assert ours == standins.OrderedDict(a=2, b=1) and ours != standins.OrderedDict(b=1, a=2)
    assert ours == {"b": 1, "a": 2}
    assert isinstance(ours.copy(), standins.OrderedDict) and (ours | {"z": 0}) == standins.OrderedDict(a=2, b=1, z=0)
    assert json.loads('{"z": 1, "a": 2}', object_pairs_hook=standins.OrderedDict) == standins.OrderedDict(z=1, a=2)
    with pytest.raises(KeyError):
        ours.move_to_end("missing")
    with pytest.raises(KeyError):
        standins.OrderedDict().popitem()
    with pytest.raises(TypeError):
        hash(ours)


def test_deque_index_matches_collections_and_keeps_its_references():
    items = [5, 1, 5, 2, 5]
    ours, theirs = standins.deque(items, maxlen=10), collections.deque(items, maxlen=10)
    for args in ((5,), (5, 1), (5, 1, 3), (5, -3), (2, 0, 4)):
        assert ours.index(*args) == theirs.index(*args)
    with pytest.raises(ValueError, match="9 is not in deque"):
        ours.index(9)
    assert repr(ours) == "deque([5, 1, 5, 2, 5], maxlen=10)"
    assert copy.copy(ours) == ours and type(copy.copy(ours)) is standins.deque

    box = [ours]

    class Clears:
        def __eq__(self, other):
            box[0].clear()
            return False

    ours.extend([[Clears(), 0]])  # the item being compared is a list the deque alone holds
    with pytest.raises(ValueError):
        ours.index([0, 0])


def test_namedtuple_matches_collections():
    Ours = user_namedtuple("Point", "x, y", defaults=[0])
    Theirs = collections.namedtuple("Point", "x, y", defaults=[0])
    for args, kwargs in (((1, 2), {}), ((1,), {}), ((), {"x": 3, "y": 4})):
        ours, theirs = Ours(*args, **kwargs), Theirs(*args, **kwargs)
        assert tuple(ours) == tuple(theirs) and repr(ours) == repr(theirs)
        assert ours._asdict() == theirs._asdict() and ours._replace(y=9) == theirs._replace(y=9)
    assert Ours._fields == Theirs._fields and Ours._field_defaults == Theirs._field_defaults
    assert Ours._make([1, 2]).y == 2 and Ours.__match_args__ == ("x", "y")
    assert copy.deepcopy(Ours(1, [2])) == Ours(1, [2])
    assert isinstance(Ours, UserClassMeta) and isinstance(Ours(1), tuple)
    for bad_call in (lambda: Ours(), lambda: Ours(1, 2, 3), lambda: Ours(1, x=2), lambda: Ours(1, z=2)):
        with pytest.raises(TypeError):
            bad_call()
    with pytest.raises(AttributeError):
        Ours(1).x = 5


@pytest.mark.parametrize(
    ("names", "message"),
    [
        ("x x", "duplicate"),
        ("x _y", "underscore"),
        ("x class", "keyword"),
        (["x", "y=1): pass"], "identifiers"),
        (["x", 1], "identifiers"),  # made a str, '1' is no identifier
    ],
)
def test_namedtuple_checks_names_like_collections(names, message):
    with pytest.raises(ValueError, match=message):
        user_namedtuple("P", names)
    with pytest.raises(ValueError):
        collections.namedtuple("P", names)


def test_namedtuple_rename_matches_collections():
    names = ["a", "a", "_b", "def", "1x"]
    assert user_namedtuple("P", names, rename=True)._fields == collections.namedtuple("P", names, rename=True)._fields


def make_class(namespace):
    return UserClassMeta("K", (), namespace)


def test_special_methods_must_be_plain_functions():
    for wrapper in (property, classmethod, staticmethod):
        with pytest.raises(TypeError, match="must be a plain method"):
            make_class({"__lt__": wrapper(lambda *args: NotImplemented)})


def test_comparisons_and_operators_never_answer_not_implemented():
    def not_implemented(self, other):
        return NotImplemented

    K = make_class({name: not_implemented for name in ("__eq__", "__lt__", "__add__", "__radd__", "__iadd__")})
    k = K()
    assert K.__eq__(k, k) is True and K.__eq__(k, K()) is False and K.__ne__(k, K()) is True
    for call in (lambda: K.__lt__(k, 1), lambda: K.__add__(k, 1), lambda: K.__radd__(k, 1)):
        with pytest.raises(TypeError):
            call()
    with pytest.raises(TypeError, match="for \\+: 'int' and 'K'"):
        K.__radd__(k, 1)
    # An in-place operator that declines falls back to the plain one, as Python does.
    Adds = make_class({"__add__": lambda self, other: "added", "__iadd__": not_implemented})
    x = Adds()
    x += 1
    assert x == "added"


def test_operators_keep_their_answers():
    Money = make_class({"__init__": lambda self, cents: setattr(self, "cents", cents),
                        "__add__": lambda self, other: Money(self.cents + other.cents),
                        "__pow__": lambda self, other, modulo=None: pow(self.cents, other, modulo),
                        "__lt__": lambda self, other: self.cents < other.cents})
    assert (Money(1) + Money(2)).cents == 3 and pow(Money(3), 2, 5) == 4 and Money(1) ** 2 == 1
    assert sorted([Money(3), Money(1)], key=operator.attrgetter("cents"))[0].cents == 1
    assert Money(1) < Money(2)


def test_typed_named_tuple_classes_are_namedtuples_with_the_class_methods():
    Point = UserClassMeta("Point", (UserNamedTuple,), {"__annotations__": {"x": "int", "y": "int"}, "y": 0,
                                                      "norm": lambda self: self.x * self.x + self.y * self.y})
    p = Point(3, 4)
    assert tuple(p) == (3, 4) and Point(1).y == 0 and p.norm() == 25 and p._fields == ("x", "y")
    assert repr(p) == "Point(x=3, y=4)" and not hasattr(p, "__dict__")
    assert tuple(UserNamedTuple("Pair", [("a", int), ("b", str)])(1, "b")) == (1, "b")
    with pytest.raises(TypeError, match="cannot follow"):
        UserClassMeta("Bad", (UserNamedTuple,), {"__annotations__": {"x": "int", "y": "int"}, "x": 0})
    with pytest.raises(TypeError, match="no other base"):
        UserClassMeta("Bad", (UserNamedTuple, object), {"__annotations__": {}})


def test_deque_comparisons_match_collections():
    pairs = [([1, 2], [1, 3]), ([1], [1, 0]), ([], []), ([2], [1, 9]), ([(1, "a")], [(1, "b")])]
    for left, right in pairs:
        for op in (operator.eq, operator.ne, operator.lt, operator.le, operator.gt, operator.ge):
            expected = op(collections.deque(left), collections.deque(right))
            assert op(standins.deque(left), standins.deque(right)) == expected
            assert op(standins.deque(left), collections.deque(right)) == expected
    assert standins.deque([1]) != [1] and collections.deque([1]) != [1]
    with pytest.raises(TypeError):
        standins.deque([1]) < [1]  # noqa: B015


def test_chain_map_writes_only_to_a_dict():
    first, second = {"a": 1}, {"b": 2}
    chain = standins.ChainMap(first, second)
    chain["c"] = 3
    del chain["a"]
    assert first == {"c": 3} and chain["b"] == 2 and chain.pop("c") == 3 and dict(chain) == {"b": 2}
    assert isinstance(chain.new_child(), standins.ChainMap)
    listed = standins.ChainMap([("x", 1)])
    for change in (lambda: listed.clear(), lambda: listed.__setitem__("k", 1), lambda: listed.pop("k", None),
                   lambda: listed.popitem(), lambda: listed.__delitem__("k")):
        with pytest.raises(TypeError, match="only a dict"):
            change()


def test_shuffle_keeps_the_module_generator_and_the_items():
    import random

    items = list(range(20))
    random.seed(7)
    expected = items[:]
    random.shuffle(expected)
    random.seed(7)
    ours = items[:]
    standins.shuffle(ours)
    assert ours == expected
    mine, theirs = items[:], items[:]
    standins.Random(3).shuffle(mine)
    random.Random(3).shuffle(theirs)
    assert mine == theirs

    class Lying(list):
        def __getitem__(self, index):
            return 0

    lying = Lying([(1,), (2,), (3,)])
    standins.shuffle(lying)
    assert sorted(list.copy(lying)) == [(1,), (2,), (3,)]  # permuted, nothing dropped


def test_the_job_class_metaclass_takes_only_what_a_class_statement_makes():
    def method(self):
        return 1

    assert make_class({"__repr__": method, "_helper": method, "__module__": "job", "__doc__": "d"})
    for namespace in ({"__reduce_ex__": method}, {"__hash__": method}, {"__getattribute__": method},
                      {"_sunder_": 1}, {1: 2}):
        with pytest.raises(TypeError, match="cannot be defined|class statement"):
            make_class(namespace)
    with pytest.raises(TypeError, match="class statement"):
        UserClassMeta("K", (), [("__repr__", method)])  # not a dict


def test_dataclass_may_remake_only_the_class_it_was_given():
    from sandbox import policy

    def method(self):
        return 1

    target = make_class({"__repr__": method})
    policy._POLICY_REMAKING.append(target)
    try:
        assert policy._is_policy_remake("K", target.__bases__, {"__repr__": method, "__slots__": ()})
        assert not policy._is_policy_remake("K", target.__bases__, {"__reduce_ex__": method})
        assert not policy._is_policy_remake("Other", target.__bases__, {"__repr__": method})
    finally:
        policy._POLICY_REMAKING.pop()
    assert not policy._is_policy_remake("K", target.__bases__, {"__repr__": method})
