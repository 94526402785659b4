"""Pure-Python stand-ins for library code a job may use but not in its C form.

A job's special methods (``__eq__``, a ``key`` function) run inside the C code that
compares or groups its objects. CPython 3.11's C ``OrderedDict``, ``itertools.groupby``
and ``deque.index`` hold borrowed pointers across such calls, which a job could free
under them (gh-119004, gh-115243 and their like); ``ChainMap`` and ``random.shuffle``
change a list the job hands them through its C methods or its own ``__getitem__``, past
the policy's list hooks; ``collections.namedtuple`` builds its class with ``exec``. The
versions here hold real references, change lists only in ways that drop nothing, build
classes without ``exec``, and behave as the originals do for ordinary code. The policy
exports them under the original names.
"""

from __future__ import annotations

import collections
import keyword
import operator
import random
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Self

__all__ = ["ChainMap", "OrderedDict", "Random", "deque", "groupby", "namedtuple", "shuffle"]


def groupby(iterable: Iterable[Any], key: Callable[[Any], Any] | None = None) -> Iterator[tuple[Any, Any]]:
    """``itertools.groupby``, as its documentation spells it out in Python."""
    keyfunc = (lambda x: x) if key is None else key
    iterator = iter(iterable)
    exhausted = False

    def grouper(target_key: Any) -> Iterator[Any]:
        nonlocal current_value, current_key, exhausted
        yield current_value
        for current_value in iterator:
            current_key = keyfunc(current_value)
            if current_key != target_key:
                return
            yield current_value
        exhausted = True

    try:
        current_value = next(iterator)
    except StopIteration:
        return
    current_key = keyfunc(current_value)
    while not exhausted:
        target_key = current_key
        group = grouper(target_key)
        yield current_key, group
        if current_key == target_key:
            for _ in group:  # the caller moved on without finishing the group
                pass


class OrderedDict(dict):  # type: ignore[type-arg]
    """``collections.OrderedDict`` over a plain dict, which keeps insertion order:
    ``move_to_end``, ``popitem(last=...)`` and order-sensitive equality between two of
    them. ``move_to_end(key, last=False)`` takes time in the size of the dict."""

    __slots__ = ()

    def move_to_end(self, key: Any, last: bool = True) -> None:
        value = self.pop(key)
        if last:
            self[key] = value
        else:
            rest = list(self.items())
            self.clear()
            self[key] = value
            self.update(rest)

    def popitem(self, last: bool = True) -> tuple[Any, Any]:
        if not self:
            raise KeyError("dictionary is empty")
        key = next(reversed(self)) if last else next(iter(self))
        return key, self.pop(key)

    def copy(self) -> OrderedDict:
        return type(self)(self)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, OrderedDict):
            return dict.__eq__(self, other) and list(self) == list(other)
        return dict.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        equal = self.__eq__(other)
        return equal if equal is NotImplemented else not equal

    __hash__ = None  # type: ignore[assignment]

    def __or__(self, other: Any) -> Any:
        if not isinstance(other, dict):
            return NotImplemented
        merged = type(self)(self)
        merged.update(other)
        return merged

    def __ror__(self, other: Any) -> Any:
        if not isinstance(other, dict):
            return NotImplemented
        merged = type(self)(other)
        merged.update(self)
        return merged

    def __repr__(self) -> str:
        if not self:
            return f"{type(self).__name__}()"
        return f"{type(self).__name__}({list(self.items())!r})"


OrderedDict.__module__ = "collections"


def _compared_as_lists(compare: Callable[[Any, Any], bool]) -> Callable[[Any, Any], Any]:
    """A deque comparison, made on list copies of both deques (see deque)."""
    def method(self: Any, other: Any) -> Any:
        return compare(list(self), list(other)) if isinstance(other, collections.deque) else NotImplemented

    method.__name__ = f"__{compare.__name__}__"
    return method


class deque(collections.deque):  # type: ignore[type-arg]
    """``collections.deque`` whose ``index`` searches a copy: the C one compares an item
    it holds no reference to, which the job's ``__eq__`` can free (gh-115243, fixed
    after 3.11.7). ``count``, ``remove`` and ``in`` hold their references."""

    __slots__ = ()

    def index(self, value: Any, start: int = 0, stop: int = sys.maxsize) -> int:
        try:
            return list(self).index(value, start, stop)
        except ValueError:
            raise ValueError(f"{value!r} is not in deque") from None

    # Comparisons in Python, over copies this frame holds: the C ones run a subclass's
    # __iter__ on the second deque after the first, while nothing holds the second.
    __eq__ = _compared_as_lists(operator.eq)
    __ne__ = _compared_as_lists(operator.ne)
    __lt__ = _compared_as_lists(operator.lt)
    __le__ = _compared_as_lists(operator.le)
    __gt__ = _compared_as_lists(operator.gt)
    __ge__ = _compared_as_lists(operator.ge)
    __hash__ = None  # type: ignore[assignment]


deque.__module__ = "collections"


class ChainMap(collections.ChainMap):  # type: ignore[type-arg]
    """``collections.ChainMap`` whose writes go only to a dict: the original writes to
    ``maps[0]`` whatever it is, a list too, through that object's C methods. Each write
    acts on the dict it checked: ``maps`` may be a list whose ``__getitem__`` answers a
    second read differently."""

    def _first(self) -> dict[Any, Any]:
        first = self.maps[0]
        if not isinstance(first, dict):
            raise TypeError(f"a ChainMap changes only a dict as its first map, not a {type(first).__name__}")
        return first

    def __setitem__(self, key: Any, value: Any) -> None:
        self._first()[key] = value

    def __delitem__(self, key: Any) -> None:
        first = self._first()
        try:
            del first[key]
        except KeyError:
            raise KeyError(f"Key not found in the first mapping: {key!r}") from None

    def popitem(self) -> tuple[Any, Any]:
        first = self._first()
        try:
            return first.popitem()
        except KeyError:
            raise KeyError("No keys found in the first mapping.") from None

    def pop(self, key: Any, *default: Any) -> Any:
        first = self._first()
        try:
            return first.pop(key, *default)
        except KeyError:
            raise KeyError(f"Key not found in the first mapping: {key!r}") from None

    def clear(self) -> None:
        self._first().clear()

    def __ior__(self, other: Any) -> Self:
        self._first().update(other)
        return self


ChainMap.__module__ = "collections"


def _shuffle(instance: random.Random, x: Any) -> None:
    if isinstance(x, list):
        # On a copy made in C, put back in one C slice assignment: the original swaps
        # through a list subclass's own __getitem__, which can lie and drop items.
        items = list.copy(x)
        random.Random.shuffle(instance, items)
        list.__setitem__(x, slice(None), items)
    else:
        random.Random.shuffle(instance, x)


class Random(random.Random):
    """``random.Random`` with ``shuffle`` as ``_shuffle`` does it."""

    def shuffle(self, x: Any) -> None:  # type: ignore[override]
        _shuffle(self, x)


Random.__module__ = "random"


def shuffle(x: Any) -> None:
    """``random.shuffle``, on the module's own generator (``random.seed`` applies)."""
    _shuffle(random.shuffle.__self__, x)  # type: ignore[attr-defined]


_MISSING = object()


def namedtuple(typename: str, field_names: str | Iterable[str], *, rename: bool = False,
               defaults: Iterable[Any] | None = None, module: str | None = None,
               metaclass: type = type) -> type:
    """``collections.namedtuple`` without ``exec``: the same checks of the names, the
    same methods (``_make``, ``_replace``, ``_asdict``, ``_fields``, ``_field_defaults``).
    ``metaclass`` makes the class one of the job's own (the policy passes its own)."""
    if isinstance(field_names, str):
        field_names = field_names.replace(",", " ").split()
    names = [str(name) for name in field_names]
    if rename:
        seen: set[str] = set()
        for index, name in enumerate(names):
            if not name.isidentifier() or keyword.iskeyword(name) or name.startswith("_") or name in seen:
                names[index] = f"_{index}"
            seen.add(name)
    for name in [typename, *names]:
        if type(name) is not str:
            raise TypeError("type names and field names must be strings")
        if not name.isidentifier():
            raise ValueError(f"type names and field names must be valid identifiers: {name!r}")
        if keyword.iskeyword(name):
            raise ValueError(f"type names and field names cannot be a keyword: {name!r}")
    seen = set()
    for name in names:
        if name.startswith("_") and not rename:
            raise ValueError(f"field names cannot start with an underscore: {name!r}")
        if name in seen:
            raise ValueError(f"encountered duplicate field name: {name!r}")
        seen.add(name)
    fields = tuple(names)
    defaults = tuple(defaults) if defaults is not None else ()
    if len(defaults) > len(fields):
        raise TypeError("got more default values than field names")
    field_defaults = dict(zip(fields[len(fields) - len(defaults):], defaults))
    position = {name: index for index, name in enumerate(fields)}

    def __new__(cls: type, *args: Any, **kwargs: Any) -> Any:
        if len(args) > len(fields):
            raise TypeError(f"{typename}() takes {len(fields)} positional arguments but {len(args)} were given")
        values = [*args, *[_MISSING] * (len(fields) - len(args))]
        for name, value in kwargs.items():
            index = position.get(name)
            if index is None:
                raise TypeError(f"{typename}() got an unexpected keyword argument {name!r}")
            if values[index] is not _MISSING:
                raise TypeError(f"{typename}() got multiple values for argument {name!r}")
            values[index] = value
        for index, value in enumerate(values):
            if value is _MISSING:
                if fields[index] not in field_defaults:
                    raise TypeError(f"{typename}() missing required argument: {fields[index]!r}")
                values[index] = field_defaults[fields[index]]
        return tuple.__new__(cls, values)

    def _make(cls: type, iterable: Iterable[Any]) -> Any:
        values = tuple(iterable)
        if len(values) != len(fields):
            raise TypeError(f"expected {len(fields)} arguments, got {len(values)}")
        return tuple.__new__(cls, values)

    def _replace(self: tuple[Any, ...], **changes: Any) -> Any:
        values = [changes.pop(name, value) for name, value in zip(fields, self)]
        if changes:
            raise ValueError(f"got unexpected field names: {list(changes)!r}")
        return _make(type(self), values)

    def _asdict(self: tuple[Any, ...]) -> dict[str, Any]:
        return dict(zip(fields, self))

    def __repr__(self: tuple[Any, ...]) -> str:
        shown = ", ".join(f"{name}={value!r}" for name, value in zip(fields, self))
        return f"{type(self).__name__}({shown})"

    def __getnewargs__(self: tuple[Any, ...]) -> tuple[Any, ...]:
        return tuple(self)

    namespace: dict[str, Any] = {
        "__doc__": f"{typename}({', '.join(fields)})",
        "__slots__": (),
        "__module__": module or "job",
        "__qualname__": typename,
        "__match_args__": fields,
        "_fields": fields,
        "_field_defaults": field_defaults,
        "__new__": __new__,
        "_make": classmethod(_make),
        "_replace": _replace,
        "_asdict": _asdict,
        "__repr__": __repr__,
        "__getnewargs__": __getnewargs__,
    }
    for index, name in enumerate(fields):
        namespace[name] = property(lambda self, index=index: tuple.__getitem__(self, index),
                                   doc=f"Alias for field number {index}")
    return metaclass(typename, (tuple,), namespace)
