"""What restricted user code may do: the profile, its builtins, its imports, its guards.

RestrictedPython (RP) rewrites attribute, item, iteration and write operations into
calls of hooks named ``_getattr_``, ``_write_``... that the embedder supplies; this
module supplies them (``restricted_globals``) together with an import allow-list that
hands out read-only ``ModuleProxy`` objects, never real modules (SANDBOX.md sections 2
and 4). ``static_problems`` finds imports that could never succeed, so a job that cannot
run is refused when it is created.

RestrictedPython is imported lazily, only by the functions that need it, so importing
``sandbox`` stays cheap for the engine and the client. This is the only module of the
package that imports RestrictedPython.
"""

from __future__ import annotations

import _string
import abc
import ast
import builtins
import collections
import copy
import dataclasses
import datetime
import decimal
import enum
import fractions
import functools
import heapq
import importlib
import itertools
import keyword
import math
import operator
import re
import string
import sys
import types
import typing
import uuid
import zoneinfo
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from types import CodeType
from typing import Any

from sandbox import patterns, standins
from sandbox.errors import Problem

__all__ = [
    "ISOLATIONS",
    "MODULE_EXPORTS",
    "RESTRICTED",
    "SANDBOX_BUILTIN_NAMES",
    "TRUSTED",
    "LogSink",
    "ModuleProxy",
    "Policy",
    "Problem",
    "check_problems",
    "compile_restricted_source",
    "module_proxies",
    "policy_for",
    "proxy_attrs",
    "restricted_globals",
    "static_problems",
]

ISOLATIONS = ("restricted", "trusted")
DEFAULT_MAX_SOURCE_BYTES = 256 * 1024

# Each allowed module and the only attributes user code gets from it. Audited against
# SANDBOX.md section 4: no value here is a module, and nothing here runs exec, spawns a
# process or reads host identity. Deliberately left out: uuid.uuid1/getnode (may shell
# out and read MAC addresses), time.localtime (reveals the host's timezone; use datetime
# with a timezone), string.Formatter (attribute walks; Template only looks names up in
# the mapping it is given), hashlib.file_digest (file objects), random.SystemRandom,
# functools.wraps/update_wrapper (copy attributes named by the caller, `_`-names too),
# operator.attrgetter/methodcaller (attribute lookups past `_getattr_`) and the in-place
# operator functions (writes past `_write_`), typing.get_type_hints/TypedDict
# (eval and exec), zoneinfo.available_timezones (walks the file system),
# dataclasses.make_dataclass (builds a class from strings). copy.deepcopy and
# dataclasses.dataclass are narrowed (_NARROWED_EXPORTS): no caller's memo, and only the
# job's own classes, whose field names are identifiers the compiler checked.
# collections.OrderedDict, deque, ChainMap and namedtuple, itertools.groupby and
# random.shuffle and Random are the stand-ins of sandbox.standins (the originals free what
# a job's __eq__ can reach, write to lists through their C methods, or exec).
# fmt: off
MODULE_EXPORTS: dict[str, tuple[str, ...]] = {
    "base64": (
        "b64encode", "b64decode", "urlsafe_b64encode", "urlsafe_b64decode",
        "standard_b64encode", "standard_b64decode", "b16encode", "b16decode",
        "b32encode", "b32decode",
    ),
    "bisect": ("bisect", "bisect_left", "bisect_right", "insort", "insort_left", "insort_right"),
    "calendar": (
        "isleap", "leapdays", "monthrange", "weekday", "monthcalendar", "timegm", "month_name",
        "month_abbr", "day_name", "day_abbr", "MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY",
        "FRIDAY", "SATURDAY", "SUNDAY",
    ),
    "collections": ("Counter", "defaultdict", "deque", "ChainMap", "OrderedDict", "namedtuple"),
    "copy": ("copy", "deepcopy"),
    "dataclasses": (
        "dataclass", "field", "fields", "asdict", "astuple", "replace", "is_dataclass",
        "FrozenInstanceError",
    ),
    "datetime": ("date", "datetime", "time", "timedelta", "timezone", "MINYEAR", "MAXYEAR"),
    "decimal": (
        "Decimal", "Context", "localcontext", "getcontext", "setcontext",
        "ROUND_05UP", "ROUND_CEILING", "ROUND_DOWN", "ROUND_FLOOR", "ROUND_HALF_DOWN",
        "ROUND_HALF_EVEN", "ROUND_HALF_UP", "ROUND_UP", "DecimalException", "Clamped",
        "DivisionByZero", "FloatOperation", "Inexact", "InvalidOperation", "Overflow",
        "Rounded", "Subnormal", "Underflow", "MAX_PREC", "MAX_EMAX", "MIN_EMIN", "MIN_ETINY",
    ),
    # Enum, IntEnum and StrEnum are markers UserClassMeta builds a real enum from.
    "enum": ("Enum", "IntEnum", "StrEnum", "auto", "unique"),
    "fractions": ("Fraction",),
    "functools": ("reduce", "partial", "cmp_to_key", "lru_cache", "cache", "total_ordering"),
    "hashlib": (
        "md5", "sha1", "sha224", "sha256", "sha384", "sha512", "blake2b", "blake2s",
        "sha3_256", "sha3_512", "new", "algorithms_guaranteed",
    ),
    "heapq": ("heapify", "heappush", "heappop", "heappushpop", "heapreplace", "merge", "nlargest", "nsmallest"),
    # groupby is the stand-in (see below).
    "itertools": (
        "accumulate", "chain", "combinations", "combinations_with_replacement", "compress",
        "count", "cycle", "dropwhile", "filterfalse", "groupby", "islice", "pairwise",
        "permutations", "product", "repeat", "starmap", "takewhile", "tee", "zip_longest",
    ),
    "json": ("dumps", "loads", "JSONDecodeError"),
    # math holds only functions and floats, so every public name is fine.
    "math": tuple(sorted(name for name in dir(math) if not name.startswith("_"))),
    "operator": (
        "itemgetter", "add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "neg", "pos",
        "abs", "eq", "ne", "lt", "le", "gt", "ge", "not_", "truth", "and_", "or_", "xor",
        "contains", "concat", "index",
    ),
    "random": (
        "random", "uniform", "randint", "randrange", "choice", "choices", "sample",
        "shuffle", "gauss", "normalvariate", "lognormvariate", "expovariate",
        "vonmisesvariate", "gammavariate", "betavariate", "paretovariate",
        "weibullvariate", "triangular", "getrandbits", "randbytes", "seed", "Random",
    ),
    "re": (
        "compile", "match", "search", "fullmatch", "findall", "finditer", "sub", "subn",
        "split", "escape", "error", "I", "M", "S", "X", "A", "IGNORECASE", "MULTILINE",
        "DOTALL", "VERBOSE", "ASCII",
    ),
    "statistics": (
        "NormalDist", "StatisticsError", "correlation", "covariance", "fmean",
        "geometric_mean", "harmonic_mean", "linear_regression", "mean", "median",
        "median_grouped", "median_high", "median_low", "mode", "multimode", "pstdev",
        "pvariance", "quantiles", "stdev", "variance",
    ),
    "string": (
        "ascii_letters", "ascii_lowercase", "ascii_uppercase", "digits", "hexdigits",
        "octdigits", "punctuation", "printable", "whitespace", "capwords", "Template",
    ),
    "textwrap": ("dedent", "indent", "wrap", "fill", "shorten"),
    "time": (
        "time", "time_ns", "monotonic", "monotonic_ns", "perf_counter", "perf_counter_ns",
        "sleep", "gmtime", "strftime",
    ),
    # For annotations: `def f(x: Optional[int]) -> List[str]` evaluates these names.
    "typing": (
        "Any", "Callable", "Dict", "FrozenSet", "Iterable", "Iterator", "List", "Literal",
        "Mapping", "Optional", "Sequence", "Set", "Tuple", "Union", "cast", "NamedTuple",
    ),
    "uuid": (
        "UUID", "uuid3", "uuid4", "uuid5",
        "NAMESPACE_DNS", "NAMESPACE_URL", "NAMESPACE_OID", "NAMESPACE_X500",
    ),
    # ZoneInfo is narrowed to a function (zone_info): the class could be subclassed.
    "zoneinfo": ("ZoneInfo", "ZoneInfoNotFoundError"),
}
# Modules the C code of allowed modules imports by name when first needed, through the
# `__import__` of the calling (user) frame: `datetime.strptime` imports `_strptime`. User
# code can never name them (RP refuses `_`-names), so the hook hands these to C callers.
INTERNAL_IMPORTS = ("_strptime",)

# Plain builtins handed to user code unchanged. Listed here rather than taken from RP's
# safe_builtins so an RP upgrade cannot silently widen what jobs see. RP 9.0 dropped
# sorted/zip/tuple/reversed/bytes because they iterate in C past `_getiter_`; our
# `_getiter_` enforces nothing, so they lose nothing here.
_PLAIN_BUILTINS = (
    "None", "False", "True", "Ellipsis", "NotImplemented",
    "abs", "all", "any", "bin", "bool", "bytes", "callable", "chr", "complex", "dict",
    "divmod", "enumerate", "filter", "float", "format", "frozenset", "hex",
    "int", "isinstance", "issubclass", "iter", "len", "list", "map", "max", "min", "next",
    "object", "oct", "ord", "pow", "range", "repr", "reversed", "round", "set", "slice", "sorted",
    "str", "sum", "tuple", "zip", "property", "staticmethod", "classmethod",
    # Every read from a super object is checked by guarded_getattr or super_attribute.
    "super",
)
_EXCEPTIONS = (
    "ArithmeticError", "AssertionError", "AttributeError", "BaseException", "BufferError",
    "BytesWarning", "DeprecationWarning", "EOFError", "EnvironmentError", "Exception",
    "FloatingPointError", "FutureWarning", "GeneratorExit", "IOError", "ImportError",
    "ImportWarning", "IndentationError", "IndexError", "KeyError", "KeyboardInterrupt",
    "LookupError", "MemoryError", "NameError", "NotImplementedError", "OSError",
    "OverflowError", "PendingDeprecationWarning", "PermissionError", "RecursionError",
    "ReferenceError", "RuntimeError", "RuntimeWarning", "StopIteration", "SyntaxError",
    "SyntaxWarning", "SystemError", "SystemExit", "TabError", "TimeoutError", "TypeError",
    "UnboundLocalError", "UnicodeDecodeError", "UnicodeEncodeError", "UnicodeError",
    "UnicodeTranslateError", "UnicodeWarning", "UserWarning", "ValueError", "Warning",
    "ZeroDivisionError",
)
# Builtins replaced by guarded versions (attribute names are checked like `a.b` is;
# `type` answers only for types the job could name; `hash` only for values).
_GUARDED_BUILTINS = ("getattr", "hasattr", "setattr", "delattr", "type", "hash")
# Globals the engine injects into every restricted job.
_HANDLE_NAMES = ("job", "User")
# Names RP's compiler rewrites itself (`print(...)` -> `_print._call_print(...)`).
_COMPILER_NAMES = ("print", "printed")

# fmt: on

SANDBOX_BUILTIN_NAMES: frozenset[str] = frozenset(
    _PLAIN_BUILTINS + _EXCEPTIONS + _GUARDED_BUILTINS + _HANDLE_NAMES + _COMPILER_NAMES
)


@dataclass(frozen=True)
class Policy:
    """An isolation profile: how user code is compiled and what it may import.

    ``restricted`` compiles the source with RestrictedPython and serves imports from
    ``allowed_modules`` through proxies. ``trusted`` runs the owner's cloudpickle payload
    as native Python (only the OS layer applies), so its ``allowed_modules`` is empty and
    never consulted. ``max_source_bytes`` caps the UTF-8 size of the source in both.
    """

    name: str
    allowed_modules: frozenset[str] = field(default_factory=frozenset)
    max_source_bytes: int = DEFAULT_MAX_SOURCE_BYTES

    def __post_init__(self) -> None:
        if self.name not in ISOLATIONS:
            raise ValueError(f"policy name must be one of {ISOLATIONS}, not {self.name!r}")
        unknown = sorted(set(self.allowed_modules) - MODULE_EXPORTS.keys())
        if unknown:
            raise ValueError(f"no audited proxy for module(s) {unknown}")
        if self.max_source_bytes <= 0:
            raise ValueError("max_source_bytes must be positive")

    @property
    def is_restricted(self) -> bool:
        return self.name == "restricted"

    def with_modules(self, *names: str) -> Policy:
        """A copy that also allows ``names`` (each must have an audited proxy)."""
        return replace(self, allowed_modules=self.allowed_modules | frozenset(names))

    def without_modules(self, *names: str) -> Policy:
        """A copy that no longer allows ``names``."""
        return replace(self, allowed_modules=self.allowed_modules - frozenset(names))

    def with_max_source_bytes(self, limit: int) -> Policy:
        return replace(self, max_source_bytes=limit)


RESTRICTED = Policy("restricted", frozenset(MODULE_EXPORTS))
TRUSTED = Policy("trusted")


def policy_for(isolation: str) -> Policy:
    """The preset for an isolation name ("restricted" or "trusted")."""
    presets = {"restricted": RESTRICTED, "trusted": TRUSTED}
    if isolation not in presets:
        raise ValueError(f"isolation must be one of {ISOLATIONS}, not {isolation!r}")
    return presets[isolation]


# --- imports -------------------------------------------------------------------------


class ModuleProxy:
    """A read-only stand-in for an allowed module exposing only its listed attributes.

    It deliberately has no public methods: any name defined on this class would be
    reachable from user code before ``__getattr__`` is consulted.
    """

    __slots__ = ("_name", "_attrs")

    def __init__(self, name: str, attrs: dict[str, Any]) -> None:
        object.__setattr__(self, "_name", name)
        object.__setattr__(self, "_attrs", dict(attrs))

    def __getattr__(self, attr: str) -> Any:
        try:
            return self._attrs[attr]
        except KeyError:
            raise AttributeError(f"module {self._name!r} has no attribute {attr!r}") from None

    def __setattr__(self, attr: str, value: Any) -> None:
        raise TypeError(f"module {self._name!r} is read-only")

    def __delattr__(self, attr: str) -> None:
        raise TypeError(f"module {self._name!r} is read-only")

    def __repr__(self) -> str:
        return f"<sandboxed module {self._name!r}>"


def proxy_attrs(proxy: ModuleProxy) -> dict[str, Any]:
    """The attributes a proxy exposes (a copy); for audits and tests."""
    return dict(object.__getattribute__(proxy, "_attrs"))


def warm_up() -> None:
    """Build what every restricted attempt uses (module proxies, RestrictedPython's
    guards, the default policy's builtins), so that forks of the caller inherit them."""
    module_proxies()
    _rp_guards()
    _builtins(RESTRICTED)
    _nameable_types(RESTRICTED)
    _sink_print_collector_class()


@functools.cache
def module_proxies() -> dict[str, ModuleProxy]:
    """One proxy per audited module, built on first use (imports those modules, and
    the ones their C code imports later, so that children need not)."""
    for name in INTERNAL_IMPORTS:
        importlib.import_module(name)
    return {name: _build_proxy(name, attrs) for name, attrs in MODULE_EXPORTS.items()}


def _build_proxy(name: str, attrs: tuple[str, ...]) -> ModuleProxy:
    module = importlib.import_module(name)
    narrowed = _NARROWED_EXPORTS.get(name, {})
    return ModuleProxy(name, {attr: narrowed.get(attr) or getattr(module, attr) for attr in attrs})


# What restricted code drops from a list is kept alive here until a safe point. CPython
# 3.11 reads the items of lists, and of the tuples and lists in them, through pointers it
# holds no reference to while it runs the job's code (list comparison, gh-120298, and
# repr): a comparison, a key function, a finalizer... that emptied such a list freed what
# C went on to read. Every way restricted code removes or replaces a list's items keeps
# them (_keep_dropped). They are let go only by _safe_point_, which the compiler puts at
# the start of every function body and loop body, and which acts only in the frame the
# runner called itself (the entrypoint, the module body): there, between statements, no
# C code is running below. Never judged from a hook's caller: C can call a hook directly.
_DROPPED: list[Any] = []
_ENTRY_CALLERS: set[CodeType] = set()
_ENTRY_CODES: set[CodeType] = set()
# Dropping these frees nothing C could go on reading through them.
_SCALARS = frozenset({int, float, complex, str, bytes, bool, type(None)})


def register_entry_callers(*codes: CodeType) -> None:
    """The runner's functions that call restricted code directly (see _DROPPED). Such a
    function must call only a function of the source itself, never a callable the job
    chose (a partial of a builtin would put C between the two frames)."""
    _ENTRY_CALLERS.update(codes)


def register_entry_code(*codes: CodeType) -> None:
    """The code the runner calls itself: the module body and the entrypoint function."""
    _ENTRY_CODES.update(codes)


def _keep_dropped(dropped: Iterable[Any]) -> None:
    _DROPPED.extend(item for item in dropped if type(item) not in _SCALARS)


def safe_point() -> None:
    """``_safe_point_``: lets the dropped items go if the statement calling this runs in
    a frame the runner called itself. User code cannot name it (leading underscore), so
    only the compiler's calls reach it, each from the frame it was compiled into."""
    if _DROPPED:
        # Its own code, called by the runner: not a generator the runner's clean-up resumed.
        frame = sys._getframe(1)
        back = frame.f_back
        if frame.f_code in _ENTRY_CODES and back is not None and back.f_code in _ENTRY_CALLERS:
            _DROPPED.clear()


def _list_items(target: Any, key: Any = None) -> Iterable[Any]:
    """The items of the list ``target`` that ``key`` names (all of them for None), read
    in C (never through a subclass's methods): those a write or a deletion there drops.
    ``key`` must be resolved already (``_resolved_key``)."""
    if not isinstance(target, list):
        return ()
    if key is None:
        return list.copy(target)
    try:
        picked = list.__getitem__(target, key)
    except IndexError:
        return ()
    return picked if isinstance(key, slice) else (picked,)


def _resolved_key(target: list[Any], key: Any) -> int | slice:
    """``key`` as the int or the slice of ints it stands for, asking its ``__index__``
    once: the check and the write must see the same items."""
    if isinstance(key, slice):
        return slice(*key.indices(len(target)))
    return operator.index(key)


def _list_change(change: Callable[..., Any], name: str, target: Any = None) -> Callable[..., Any]:
    """A list method (``name``: clear, pop, remove, or list's own __init__ or __imul__)
    bound to ``target`` (None: the list is the first argument), keeping what it drops."""
    def call(*args: Any, **kwargs: Any) -> Any:
        items = list(args)
        the_list = target if target is not None else items.pop(0) if items else None
        if not isinstance(the_list, list):
            return change(*args, **kwargs)
        if name == "remove" and len(items) == 1 and not kwargs:
            # list.remove, as list.index then a deletion: the job's __eq__ runs once, and
            # the item removed is known.
            try:
                index = list.index(the_list, items[0])
            except ValueError:
                raise ValueError("list.remove(x): x not in list") from None
            _keep_dropped((list.__getitem__(the_list, index),))
            list.__delitem__(the_list, index)
            return None
        if name == "__imul__" and len(items) == 1:
            count = operator.index(items[0])  # asked once; 0 or less drops every item
            if count <= 0:
                _keep_dropped(list.copy(the_list))
            return change(*([count] if target is not None else [the_list, count]))
        if name in ("clear", "__init__"):
            _keep_dropped(list.copy(the_list))
        result = change(*args, **kwargs)
        if name == "pop":
            _keep_dropped((result,))
        return result

    return call


def _kept_heap_top(function: Callable[..., Any]) -> Callable[..., Any]:
    """``heapq.heappop`` or ``heapreplace``: they take ``heap[0]`` out of the list, kept
    here first (_DROPPED), with no job code between this read and C's (a comparison that
    raises in the sift would otherwise drop it unkept)."""
    def call(heap: Any, *args: Any) -> Any:
        if isinstance(heap, list) and heap:
            _keep_dropped((list.__getitem__(heap, 0),))
        return function(heap, *args)

    return call


_KEPT_HEAPREPLACE = _kept_heap_top(heapq.heapreplace)


def _kept_heappushpop(heap: Any, item: Any) -> Any:
    """``heapq.heappushpop``, its comparison made here, before the top is kept and taken."""
    if not isinstance(heap, list):
        return heapq.heappushpop(heap, item)  # which refuses it
    if heap and list.__getitem__(heap, 0) < item:
        return _KEPT_HEAPREPLACE(heap, item)
    return item


# List methods that drop items, and what super() of a list subclass reaches that does.
_LIST_REMOVERS = frozenset({"clear", "pop", "remove"})
_LIST_SUPER_REMOVERS = frozenset({"__setitem__", "__delitem__", "__imul__", "__init__"})


def copy_object(obj: Any) -> Any:
    """``copy.copy`` as user code gets it (see deepcopy_object), but not of the engine's
    handles: a copy would share the original's channel under a second name."""
    from sandbox import handles

    if isinstance(obj, (handles.JobHandle, handles.UserHandle, handles.UserDirectory, handles.EffectBridge)):
        raise TypeError(f"a {type(obj).__name__} cannot be copied")
    return copy.copy(obj)


def deepcopy_object(obj: Any) -> Any:
    """``copy.deepcopy`` without its ``memo`` argument: the memo ends up holding every
    original object the copy went through (an instance's real ``__dict__``, the private
    state of library and engine objects), so a caller's memo would hand them all out."""
    return copy.deepcopy(obj)


def zone_info(key: str) -> Any:
    """``zoneinfo.ZoneInfo(key)`` for an exact ``str`` key. Its C code calls methods of the
    key while it validates the path (a ``str`` subclass could lie about it), and of a
    subclass's cache while it holds a borrowed pointer (CPython 3.11's _zoneinfo frees
    it under it): a function, unlike the class, cannot be subclassed."""
    if type(key) is not str:
        raise TypeError("ZoneInfo() takes a time zone name as a plain str, such as 'Europe/Berlin'")
    return zoneinfo.ZoneInfo(key)


def user_dataclass(cls: Any = None, /, **options: Any) -> Any:
    """``dataclasses.dataclass`` for the job's own classes only: on any other class it
    would rewrite a library class's methods, and on an object it would build its
    ``exec``'d source from whatever that object's ``__dict__`` holds. Its instances are
    not hashable by value (see USER_DUNDERS)."""
    def wrap(target: Any) -> Any:
        if not isinstance(target, UserClassMeta):
            raise TypeError("dataclass() applies only to classes defined in the job")
        for option, value in options.items():
            # Exactly True or False: dataclass reads each one again, and a job object's
            # __bool__ could answer the checks below and dataclass differently.
            if type(value) is not bool:
                raise TypeError(f"dataclass({option}=...) takes True or False, not {type(value).__name__}")
        if options.get("unsafe_hash"):
            raise TypeError("dataclass(unsafe_hash=True) is not available to jobs")
        # With slots=True, dataclass remakes the class through its metaclass, with the
        # names it generated: that one call may pass them (_is_policy_remake).
        _POLICY_REMAKING.append(target)
        try:
            made = _with_added_comparisons_decided(dataclasses.dataclass(target, **options))
        finally:
            _POLICY_REMAKING.pop()
        if options.get("frozen") and options.get("eq", True):
            # A generated __hash__ with a generated __eq__ over the fields: the same
            # hashable key running job code in a lookup that USER_DUNDERS leaves out.
            made.__hash__ = None
        return made

    return wrap if cls is None else wrap(cls)


def user_namedtuple(typename: str, field_names: Any, *, rename: bool = False, defaults: Any = None,
                    module: str | None = None) -> type:
    """``collections.namedtuple``, making one of the job's own classes (standins.namedtuple)."""
    return standins.namedtuple(typename, field_names, rename=rename, defaults=defaults, module=module,
                               metaclass=_policy_made_class)


class UserNamedTuple:
    """``typing.NamedTuple`` for jobs (typing's own execs and evaluates annotations): as
    a base, ``class P(NamedTuple): x: int = 0`` is made by UserClassMeta into a subclass
    of ``user_namedtuple("P", ["x"], defaults=[0])`` holding the class's methods; called,
    ``NamedTuple("P", [("x", int)])`` is that namedtuple."""

    def __new__(cls, typename: str, fields: Iterable[tuple[str, Any]] = (), /) -> Any:  # type: ignore[misc]
        return user_namedtuple(typename, [name for name, _ in fields])


def _named_tuple_base(name: str, bases: tuple[type, ...], namespace: dict[str, Any]) -> tuple[type, ...]:
    """The bases of a ``class name(NamedTuple)`` (see UserNamedTuple); takes the fields'
    defaults out of ``namespace``, where they would hide the fields."""
    if bases != (UserNamedTuple,):
        raise TypeError(f"class {name}: a NamedTuple class can have no other base")
    fields = list(namespace.get("__annotations__", {}))
    defaults = []
    for field_name in fields:
        if field_name in namespace:
            defaults.append(namespace.pop(field_name))
        elif defaults:
            raise TypeError(f"class {name}: field {field_name} without a default cannot follow one with a default")
    namespace["__slots__"] = ()
    return (user_namedtuple(name, fields, defaults=defaults),)


class UserEnum:
    """``enum.Enum`` for jobs, as a base only: UserClassMeta builds a real enum from the
    class body (members, ``auto()``, methods). The enum's own metaclass cannot be
    combined with the one every job class gets."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("Enum, IntEnum and StrEnum are bases: write `class Color(Enum): RED = 1`")


class UserIntEnum(UserEnum):
    """``enum.IntEnum`` for jobs (see UserEnum)."""


class UserStrEnum(UserEnum):
    """``enum.StrEnum`` for jobs (see UserEnum)."""


_ENUM_BASES = {UserEnum: enum.Enum, UserIntEnum: enum.IntEnum, UserStrEnum: enum.StrEnum}


# What a name restricted code holds stands for when it tests a class (isinstance,
# issubclass, class patterns): the enum bases for the real ones a job enum derives from,
# the narrowed type() and ZoneInfo() for their classes. Filled as those are made.
_STANDS_FOR: dict[Any, type] = {**_ENUM_BASES, zone_info: zoneinfo.ZoneInfo}


def real_classes(classes: Any) -> Any:
    """``classes`` (a class, or a tuple or union of them, as isinstance takes) with each
    stand-in replaced by what it stands for."""
    if _hashed_by_identity(classes):  # the common case first
        return _STANDS_FOR.get(classes, classes)
    if isinstance(classes, tuple):  # subclasses too, as isinstance reads them
        return tuple(real_classes(cls) for cls in classes)
    if isinstance(classes, types.UnionType):
        return functools.reduce(operator.or_, real_classes(classes.__args__))
    if typing.get_origin(classes) is typing.Union:
        return typing.Union[real_classes(classes.__args__)]
    return classes


def _stood_for(value: Any) -> Any:
    return _STANDS_FOR.get(value, value) if _hashed_by_identity(value) else value


def _hashed_by_identity(value: Any) -> bool:
    # Stand-ins are looked up only among these: hashing anything else (a deeply nested
    # tuple) runs C code without a recursion check.
    return isinstance(value, type) or type(value) is types.FunctionType


def checked_isinstance(obj: Any, classes: Any) -> bool:
    return isinstance(_stood_for(obj), real_classes(classes))


def checked_issubclass(cls: Any, classes: Any) -> bool:
    return issubclass(_stood_for(cls), real_classes(classes))


def _job_enum(name: str, bases: tuple[type, ...], namespace: dict[str, Any]) -> type:
    """A real enum with ``namespace``'s members and (already checked and wrapped) methods,
    made by _JobEnumType."""
    if len(bases) != 1 or bases[0] not in _ENUM_BASES:
        raise TypeError(f"class {name}: an Enum class can have no other base")
    real = _ENUM_BASES[bases[0]]
    members = _JobEnumType.__prepare__(name, (real,))
    for key, value in namespace.items():
        members[key] = value
    return _JobEnumType(name, (real,), members)


def user_total_ordering(cls: Any) -> Any:
    """``functools.total_ordering`` for the job's own classes, its added comparisons
    wrapped like the class's own (see _decided_comparison)."""
    if not isinstance(cls, UserClassMeta):
        raise TypeError("total_ordering() applies only to classes defined in the job")
    return _with_added_comparisons_decided(functools.total_ordering(cls))


def _with_added_comparisons_decided(cls: Any) -> Any:
    """``cls`` with the comparisons a library added after UserClassMeta ran wrapped."""
    for name in _COMPARISONS.keys() & vars(cls).keys():
        method = vars(cls)[name]
        if not hasattr(method, "__wrapped__"):
            setattr(cls, name, _decided_comparison(name, method))
    return cls


# Exports replaced by a narrower version of the same function.
_NARROWED_EXPORTS: dict[str, dict[str, Callable[..., Any]]] = {
    "copy": {"copy": copy_object, "deepcopy": deepcopy_object},
    "dataclasses": {"dataclass": user_dataclass},
    "zoneinfo": {"ZoneInfo": zone_info},
    "collections": {"OrderedDict": standins.OrderedDict, "deque": standins.deque, "namedtuple": user_namedtuple,
                    "ChainMap": standins.ChainMap},
    "random": {"Random": standins.Random, "shuffle": standins.shuffle},
    "typing": {"NamedTuple": UserNamedTuple},
    "enum": {"Enum": UserEnum, "IntEnum": UserIntEnum, "StrEnum": UserStrEnum},
    "functools": {"total_ordering": user_total_ordering},
    # Each takes an item out of a list (see _DROPPED).
    "heapq": {"heappop": _kept_heap_top(heapq.heappop), "heapreplace": _KEPT_HEAPREPLACE,
              "heappushpop": _kept_heappushpop},
    "itertools": {"groupby": standins.groupby},
}


def refused_import_message(name: str, allowed: Iterable[str]) -> str:
    return f"import of {name!r} is not allowed (allowed: {', '.join(sorted(allowed))})"


def _refused_name_message(module: str, name: str) -> str:
    exported = ", ".join(sorted(MODULE_EXPORTS[module]))
    return f"cannot import name {name!r} from {module!r} (it provides: {exported})"


def make_guarded_import(allowed: frozenset[str]) -> Callable[..., ModuleProxy]:
    """The ``__import__`` for restricted code: proxies for ``allowed`` modules only."""
    proxies = {name: proxy for name, proxy in module_proxies().items() if name in allowed}

    def guarded_import(
        name: str, _globals: Any = None, _locals: Any = None, fromlist: Any = (), level: int = 0
    ) -> ModuleProxy:
        if level != 0:
            raise ImportError("relative imports are not allowed")
        # C code importing by name passes an empty list; import statements pass None or a tuple.
        if name in INTERNAL_IMPORTS and type(fromlist) is list and not fromlist:
            return sys.modules[name]  # type: ignore[return-value]
        if name not in proxies:
            raise ImportError(refused_import_message(name, allowed))
        # `from m import n` reads n in C (IMPORT_FROM), bypassing `_getattr_`: check here.
        for attr in fromlist or ():
            if attr not in MODULE_EXPORTS[name]:
                raise ImportError(_refused_name_message(name, attr))
        return proxies[name]

    return guarded_import


# --- guards --------------------------------------------------------------------------

# Containers user code may mutate in place besides instances of its own classes.
_WRITABLE_TYPES = frozenset(
    {
        dict,
        list,
        collections.Counter,
        collections.defaultdict,
        standins.ChainMap,
        standins.OrderedDict,
        standins.deque,
        # `decimal.getcontext().prec = 6` is how decimal is configured (per process).
        decimal.Context,
    }
)


class UserClassMeta(type):
    """Metaclass of every class restricted code defines (RP passes it as `__metaclass__`).

    Being its instance is what makes a class the user's own (``is_user_object``): user
    code may set attributes on such classes and their instances (``self.x = 1``) while
    engine and library objects stay read-only (SANDBOX.md gotcha G2). Judged by the real
    type, never by an attribute, which delegating objects (typing aliases, functools
    wrappers of a user class) would answer for what they wrap.
    """

    def __new__(mcs, name: str, bases: tuple[type, ...], namespace: dict[str, Any]) -> type:
        if not _is_policy_remake(name, bases, namespace):
            _check_class_statement(name, bases, namespace)
        if UserNamedTuple in bases:
            bases = _named_tuple_base(name, bases, namespace)
        if any(isinstance(base, type) and issubclass(base, UserEnum) for base in bases):
            _check_special_methods(name, namespace)
            return _job_enum(name, bases, _decided_operators(namespace))
        for base in bases:
            if not (isinstance(base, UserClassMeta) or base in SUBCLASSABLE
                    or (isinstance(base, type) and issubclass(base, BaseException))):
                raise TypeError(f"a class of the job may derive only from its own classes, exceptions and "
                                f"{', '.join(sorted(cls.__name__ for cls in SUBCLASSABLE))}; not from {base!r}")
        _check_special_methods(name, namespace)
        made = super().__new__(mcs, name, bases, _decided_operators(namespace))
        for method in _COMPARISONS.keys() - namespace.keys():
            # One a library parent wrote in Python (Counter's, the stand-ins'): it runs
            # this class's methods (__getitem__, __iter__), so it gets the same rules.
            owner = _answering_class(made, method)
            if owner is not None and not isinstance(owner, UserClassMeta) \
                    and type(vars(owner)[method]) is types.FunctionType:
                type.__setattr__(made, method, _decided_comparison(method, vars(owner)[method]))
        return made


class _JobEnumType(UserClassMeta, enum.EnumType):
    """The metaclass of the job's enums: a job class to the guards (its members take the
    job's attributes, as in ``__init__(self, mass)``), made only by _job_enum, and
    callable only to look a member up. EnumType's own call has a functional form that
    builds an enum from any names (``__reduce_ex__``, ``__hash__``...) past UserClassMeta."""

    def __new__(mcs, name: str, bases: tuple[type, ...], namespace: Any, **options: Any) -> type:
        if len(bases) != 1 or bases[0] not in _ENUM_BASES.values() or options:
            raise TypeError(f"class {name}: the job's enums cannot be derived from")
        return enum.EnumType.__new__(mcs, name, bases, namespace)

    def __call__(cls, value: Any) -> Any:  # type: ignore[override]
        return enum.EnumType.__call__(cls, value)


# What a class statement of restricted code can put in its namespace besides its own
# names: Python's, and USER_DUNDERS. Library code can call a job class's metaclass too
# (ChainMap.new_child does type(self)(...)), with names the job chose.
_CLASS_STATEMENT_NAMES = frozenset({"__module__", "__qualname__", "__doc__", "__init__", "__annotations__",
                                    "__classcell__"})


# The job class user_dataclass is remaking, while it does (job code can run meanwhile:
# dataclass reprs field defaults for the docstring).
_POLICY_REMAKING: list[type] = []


def _is_policy_remake(name: Any, bases: Any, namespace: Any) -> bool:
    """Whether this is dataclass remaking the class user_dataclass handed it: the same
    name and bases, and only names the class already has or slots add."""
    if not _POLICY_REMAKING or type(namespace) is not dict:
        return False
    target = _POLICY_REMAKING[-1]
    allowed = vars(target).keys() | {"__slots__", "__getstate__", "__setstate__"}
    return name == target.__name__ and bases == target.__bases__ and namespace.keys() <= allowed


def _check_class_statement(name: Any, bases: Any, namespace: Any) -> None:
    if type(name) is not str or type(bases) is not tuple or type(namespace) is not dict:
        raise TypeError("a job class is made by a class statement")
    for key in namespace:
        if type(key) is not str or (key.startswith("_") and key not in USER_DUNDERS
                                    and key not in _CLASS_STATEMENT_NAMES and not PRIVATE_NAME.fullmatch(key)):
            raise TypeError(f"class {name}: {key!r} cannot be defined in a job class")


def _policy_made_class(name: str, bases: tuple[type, ...], namespace: dict[str, Any]) -> type:
    """A job class whose namespace the policy wrote itself (namedtuple's ``__new__``,
    ``__slots__``...), which a class statement could not have."""
    return type.__new__(UserClassMeta, name, bases, _decided_operators(namespace))


def _check_special_methods(name: str, namespace: dict[str, Any]) -> None:
    for method in USER_DUNDERS & namespace.keys():
        # A property or classmethod named __lt__ runs the job's code when CPython binds
        # it, then hands back whatever it likes: the wrapping needs a plain def.
        if type(namespace[method]) is not types.FunctionType:
            raise TypeError(f"{method} of class {name} must be a plain method (def {method}(self, ...)), "
                            f"not a {type(namespace[method]).__name__}")


# A job's comparison or operator never answers NotImplemented. On that answer CPython
# tries the other operand's reflected method, and C code that holds no reference to the
# operands (list comparison and itertools.groupby in 3.11) then reads one the job's
# method freed. __eq__ and __ne__ fall back to identity, as Python's own fallback does;
# an in-place operator falls back to the plain one, computed here, where both operands
# are held; an ordering or an operator raises Python's TypeError. The cost: a forward
# operator that answers NotImplemented no longer defers to the other operand's reflected one.
_COMPARISONS = {"__eq__": "==", "__ne__": "!=", "__lt__": "<", "__le__": "<=", "__gt__": ">", "__ge__": ">="}
_OPERATORS = {
    "add": "+", "sub": "-", "mul": "*", "truediv": "/", "floordiv": "//", "mod": "%", "pow": "**",
    "matmul": "@", "and": "&", "or": "|", "xor": "^", "lshift": "<<", "rshift": ">>",
}


def _decided_operators(namespace: dict[str, Any]) -> dict[str, Any]:
    """``namespace`` with every comparison and binary operator wrapped (see above)."""
    decided = dict(namespace)
    for name in _COMPARISONS.keys() & namespace.keys():
        decided[name] = _decided_comparison(name, namespace[name])
    for op, symbol in _OPERATORS.items():
        for name, reflected in ((f"__{op}__", False), (f"__r{op}__", True), (f"__i{op}__", None)):
            if name in namespace:
                decided[name] = _decided_operator(name, symbol, reflected, namespace[name])
    return decided


def _decided_comparison(name: str, method: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    symbol = _COMPARISONS[name]

    @functools.wraps(method)
    def compare(self: Any, other: Any) -> bool:
        result = method(self, other)
        if result is NotImplemented:
            if name in ("__eq__", "__ne__"):
                return (self is other) == (name == "__eq__")
            raise TypeError(f"'{symbol}' not supported between instances of "
                            f"'{type(self).__name__}' and '{type(other).__name__}'")
        # Made a bool here, so that no __bool__ of the job runs after this returns,
        # inside the C comparison that called it.
        return bool(result)

    return compare


def _decided_operator(name: str, symbol: str, reflected: bool | None,
                      method: Callable[..., Any]) -> Callable[..., Any]:
    plain = _INPLACE[symbol + "="][1]

    @functools.wraps(method)
    def operate(self: Any, other: Any, *modulo: Any) -> Any:
        result = method(self, other, *modulo)
        if result is not NotImplemented:
            return result
        if reflected is None:  # `x op= y` where x has no in-place version for y
            return plain(self, other)
        left, right = (other, self) if reflected else (self, other)
        raise TypeError(f"unsupported operand type(s) for {symbol}: "
                        f"'{type(left).__name__}' and '{type(right).__name__}'")

    return operate


# Library classes a job's class may derive from (besides exceptions). Any other library
# class runs its C code against the job's overrides: the _zoneinfo C module, for one,
# called a subclass's methods while holding a pointer to an object they could free, and
# copied private names into the subclass. A subclass of super would look like a user
# object to the guards, which check every super object.
SUBCLASSABLE: frozenset[type] = frozenset({
    object, dict, list, set, frozenset, tuple, str, int, float, bytes,
    collections.Counter, collections.defaultdict, standins.deque, standins.OrderedDict,
})


def is_user_object(obj: Any) -> bool:
    """Whether ``obj`` is a class the job defined, or an instance of one."""
    kind = type(obj)
    return issubclass(kind, UserClassMeta) or isinstance(kind, UserClassMeta)


@functools.cache
def _rp_guards() -> Any:
    # Imported on first use, once, so that importing this module stays cheap.
    from RestrictedPython import Guards

    return Guards


def guarded_write(obj: Any) -> Any:
    """``_write_``: the object itself when user code may mutate it, else one that refuses;
    for a list, one that makes a slice's new items a list first (``_ListWriter``)."""
    if not _is_writable(obj):
        return _READ_ONLY
    return _ListWriter(obj) if isinstance(obj, list) else obj


class _ListWriter:
    """The writes of restricted code to a list, with ``obj[a:b:c] = items`` made from a
    list of the items: CPython 3.11 measures an extended slice, then iterates ``items``
    (which may run the job's ``__iter__`` and shrink the list) and writes where the old
    items were, into freed memory (gh-120384). What a write drops is kept (see
    _DROPPED). Restricted code never holds this object."""

    __slots__ = ("_target",)

    def __init__(self, target: list[Any]) -> None:
        object.__setattr__(self, "_target", target)

    def __setitem__(self, key: Any, value: Any) -> None:
        key = _resolved_key(self._target, key)
        if isinstance(key, slice):
            value = list(value)
        _keep_dropped(_list_items(self._target, key))
        self._target[key] = value

    def __delitem__(self, key: Any) -> None:
        key = _resolved_key(self._target, key)
        _keep_dropped(_list_items(self._target, key))
        del self._target[key]

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._target, name, value)

    def __delattr__(self, name: str) -> None:
        delattr(self._target, name)


def private_write(obj: Any) -> Any:
    """``_private_write_``, the ``_write_`` of ``obj._name = value``: only the job's own
    objects take private names (not a dict or Counter, whose methods may use them)."""
    return obj if is_user_object(obj) else _READ_ONLY


def _is_writable(obj: Any) -> bool:
    return type(obj) in _WRITABLE_TYPES or is_user_object(obj)


class _ReadOnly:
    """What ``_write_`` gives for an object user code may not change: every write raises."""

    __slots__ = ()

    def _refuse(self, *args: Any) -> None:
        raise TypeError("the job may change only its own objects, dicts, lists and the like, not this one")

    __setattr__ = __delattr__ = __setitem__ = __delitem__ = _refuse


_READ_ONLY = _ReadOnly()


# A "private" name (`_total`, `_helper`): one leading underscore, none trailing, not a
# name RestrictedPython generates (`_print`, `_tmp0`). User code may use such attribute
# names on its own objects: see user_private.
PRIVATE_NAME = re.compile(r"_(?!_|print$|tmp)[A-Za-z0-9_]*[A-Za-z0-9]")


def user_private(obj: Any, name: str) -> bool:
    """Whether ``name`` is a private name of the user's own: set on an instance of a user
    class, or defined in a user class. Never one a builtin, exported or engine class
    defines, even as the parent of a user class."""
    if type(name) is not str or not PRIVATE_NAME.fullmatch(name) or not is_user_object(obj):
        return False
    instance = isinstance(type(obj), UserClassMeta)
    # The class a lookup finds the name in first is the one that answers it (a library
    # parent listed before a user mixin would): it must be the user's.
    owner = _answering_class(type(obj) if instance else obj, name)
    if owner is None:  # set on the instance only (obj.__dict__ is its own: no user __dict__)
        return instance and name in getattr(obj, "__dict__", {})
    return isinstance(owner, UserClassMeta)


def _answering_class(cls: type, name: str) -> type | None:
    """The first class along ``cls``'s MRO that defines ``name``: the one a lookup uses."""
    return next((klass for klass in cls.__mro__ if name in vars(klass)), None)


def _check_attr_name(obj: Any, name: object) -> None:
    # RP's guarded_setattr checks only the object; a `_`-name would let user code
    # install dunder methods on its classes, which the compiler otherwise forbids.
    if type(name) is not str or (name.startswith("_") and not _user_object_private(obj, name)):
        raise AttributeError(f"attribute name {name!r} is not allowed")


def _user_object_private(obj: Any, name: str) -> bool:
    """A private name written on a user object (which may not have it yet)."""
    return bool(PRIVATE_NAME.fullmatch(name)) and is_user_object(obj)


def guarded_setattr(obj: Any, name: str, value: Any) -> None:
    _check_attr_name(obj, name)
    setattr(guarded_write(obj), name, value)


def guarded_delattr(obj: Any, name: str) -> None:
    _check_attr_name(obj, name)
    delattr(guarded_write(obj), name)


def guarded_getattr(obj: Any, name: str, *default: Any) -> Any:
    """``_getattr_`` and ``getattr``: RP's ``safer_getattr_raise`` (no ``_`` names, no
    frame or code attributes; a missing attribute raises unless a default is given), but:
    ``str.format``/``format_map`` go through ``SafeFormatter``, whose field lookups
    (``{0.name}``, ``{0[key]}``) pass this same guard; reads from a super object are
    checked (``_check_super``); ``AttributeError.obj`` and a ZoneInfo's class methods are
    refused; the names in ``READABLE_DUNDERS`` are answered when they hold a string or
    None; and private names of the job's own objects are answered (``user_private``)."""
    if isinstance(obj, super):
        _check_super(obj)
    if type(name) is str and name in ("format", "format_map"):
        # Of a string, or of super() in a str subclass (which reaches str.format itself),
        # unless a user class overrides the method.
        text = obj.__self__ if isinstance(obj, super) else obj
        if isinstance(text, str):
            if isinstance(obj, super) or getattr(type(text), name) is getattr(str, name):
                return _safe_format_method(text, name)
            if isinstance(_answering_class(type(text), name), UserClassMeta):
                return getattr(obj, name)
    if type(name) is str and name in _ZONE_INFO_CLASS_METHODS and isinstance(obj, zoneinfo.ZoneInfo):
        raise AttributeError(f"ZoneInfo.{name} is not available to jobs; use ZoneInfo(key)")
    if isinstance(obj, _TYPE_ALIASES) and name not in READABLE_DUNDERS:
        # list[int] and typing.List pass attribute reads through to the class they stand
        # for, past the checks below, which look at the object read from.
        raise AttributeError("attributes of a type alias (list[int], typing.List) are not available to jobs")
    if name == "register" and isinstance(obj, abc.ABCMeta) and not isinstance(obj, UserClassMeta):
        # ChainMap.register(list) would make every list an instance of ChainMap to the
        # library code that checks with isinstance, process-wide.
        raise AttributeError("register() of a library class is not available to jobs")
    if name == "mro":
        # A class's parents: past the stand-ins to the C classes they replace
        # (deque.mro()[1]), past a job enum to enum.Enum and its functional form.
        raise AttributeError("mro() is not available to jobs; use isinstance() or issubclass()")
    if name == "obj" and isinstance(obj, AttributeError):
        # The object a failed lookup was made on: often one the job must not hold (the
        # print collector, an internal of a library), handed out by C code.
        raise AttributeError("AttributeError.obj is not available to jobs")
    if name in READABLE_DUNDERS:
        return _readable_dunder(obj, name, *default)
    if user_private(obj, name):
        return getattr(obj, name, *default)
    if _user_object_private(obj, name):
        # Not set by user code: missing, even if a builtin or exported parent has it.
        if default:
            return default[0]
        raise AttributeError(f"{type(obj).__name__!r} object has no attribute {name!r}")
    if name in _PROPERTY_FUNCTIONS and not is_user_object(obj):
        raise AttributeError(f"{name} of a library property is not available to jobs")
    value = _rp_guards().safer_getattr_raise(obj, name, *default)
    owner = _answering_class(obj, name) if isinstance(obj, type) else None
    if type(value) is types.FunctionType and owner is not None and not isinstance(owner, UserClassMeta) \
            and not isinstance(vars(owner).get(name), staticmethod):
        # Decided by the class that defines it: a job class inherits Counter.update too.
        return _for_instances_of(owner, value)
    if name in _LIST_REMOVERS and _is_list_method(value):
        bound_to = getattr(value, "__self__", None)
        return _list_change(value, name, bound_to if isinstance(bound_to, list) else None)
    return value


# What `match` statements call once rewritten (sandbox.patterns); attributes are read
# as `getattr` reads them.
_MATCH_HOOKS = patterns.match_hooks(guarded_getattr, real_classes)

# A property's functions, which take any object: Fraction.numerator.fget(x) reads
# x._numerator past the private-name rule.
_PROPERTY_FUNCTIONS = frozenset({"fget", "fset", "fdel"})


def _for_instances_of(cls: type, function: Callable[..., Any]) -> Callable[..., Any]:
    """A library class's method read from the class (``ChainMap.update``), callable only
    on an instance of it: on another object its ``self[k] = v`` or ``type(self)(...)``
    would act past the guards (a raw list write, a class made from the job's names)."""
    def call(*args: Any, **kwargs: Any) -> Any:
        if not args or cls not in type(args[0]).__mro__:  # not isinstance: ABCs take registrations
            raise TypeError(f"{cls.__name__}.{function.__name__}() needs a {cls.__name__} as its first argument")
        return function(*args, **kwargs)

    return call


# Objects that stand for a class and pass attribute reads through to it.
_TYPE_ALIASES = (types.GenericAlias, typing._BaseGenericAlias)  # type: ignore[attr-defined]


def _is_list_method(value: Any) -> bool:
    """A method of list itself (unbound, or bound to a list, a job's subclass's own
    override too), however it was reached: from a list, its class, super() or an alias."""
    return getattr(value, "__objclass__", None) is list or isinstance(getattr(value, "__self__", None), list)


# A ZoneInfo instance hands out its class's constructors, which take any key or file past
# zone_info's check (see there).
_ZONE_INFO_CLASS_METHODS = frozenset({"from_file", "no_cache", "clear_cache"})


def _readable_dunder(obj: Any, name: str, *default: Any) -> Any:
    value = getattr(obj, name, *default)
    if default and value is default[0]:
        return value
    if value is not None and type(value) is not str:
        raise AttributeError(f"{name} of this object is not a string; it is not available to jobs")
    return value


def _safe_format_method(text: str, name: str) -> Callable[..., str]:
    formatter = SafeFormatter()
    if name == "format":
        return lambda *args, **kwargs: formatter.vformat(text, args, kwargs)
    return lambda mapping: formatter.vformat(text, (), mapping)


class SafeFormatter(string.Formatter):
    """``str.format`` for restricted code. RP refuses it because a format string reads
    attributes (``"{0.__class__}"``) past ``_getattr_``; here every attribute of a field
    goes through ``guarded_getattr`` and every index through a plain item read, as in
    restricted code itself. Nested specs stay limited to string.Formatter's depth of 2."""

    def get_field(self, field_name: str, args: Any, kwargs: Any) -> tuple[Any, Any]:
        first, rest = _string.formatter_field_name_split(field_name)
        obj = self.get_value(first, args, kwargs)
        for is_attribute, key in rest:
            obj = guarded_getattr(obj, key) if is_attribute else obj[key]
        return obj, first


def guarded_hasattr(obj: Any, name: str) -> bool:
    try:
        guarded_getattr(obj, name)
    except AttributeError:
        return False
    return True


# fmt: off
_INPLACE: dict[str, tuple[Callable[[Any, Any], Any], Callable[[Any, Any], Any]]] = {
    "+=": (operator.iadd, operator.add), "-=": (operator.isub, operator.sub),
    "*=": (operator.imul, operator.mul), "/=": (operator.itruediv, operator.truediv),
    "//=": (operator.ifloordiv, operator.floordiv), "%=": (operator.imod, operator.mod),
    "**=": (operator.ipow, operator.pow), "<<=": (operator.ilshift, operator.lshift),
    ">>=": (operator.irshift, operator.rshift), "&=": (operator.iand, operator.and_),
    "|=": (operator.ior, operator.or_), "^=": (operator.ixor, operator.xor),
    "@=": (operator.imatmul, operator.matmul),
}
# fmt: on


def inplace_var(op: str, target: Any, value: Any) -> Any:
    """``_inplacevar_`` for ``name op= value``: mutate only objects user code may write."""
    in_place, binary = _INPLACE[op]
    if op == "*=" and isinstance(target, list):
        value = operator.index(value)  # asked once; a count of 0 or less drops every item
        if value <= 0:
            _keep_dropped(list.copy(target))
    return in_place(target, value) if _is_writable(target) else binary(target, value)


def augmented_item(obj: Any, key: Any) -> tuple[Callable[[Any], None], Any]:
    """``_aug_getitem_``, the read half of ``obj[key] op= value``: the item, through the
    same guard as ``obj[key]``, and how to store the new value (as ``obj[key] = ...``)."""
    def store(value: Any) -> None:
        guarded_write(obj)[key] = value

    return store, obj[key]  # RP's default item guard is a plain read too


def augmented_attribute(obj: Any, name: str) -> tuple[Callable[[Any], None], Any]:
    """``_aug_getattr_``, the read half of ``obj.name op= value``: the attribute through
    ``_getattr_``, and how to store the new value (as ``obj.name = ...``)."""
    def store(value: Any) -> None:
        guarded_setattr(obj, name, value)

    return store, guarded_getattr(obj, name)


def augmented_store(place: tuple[Callable[[Any], None], Any], op: str, value: Any) -> None:
    """``_aug_set_``, the write half: the operator as for ``name op= value``, then the store."""
    store, current = place
    store(inplace_var(op, current, value))


def super_attribute(obj: Any, name: str) -> Any:
    """``_super_attr_``: ``super().__init__(...)`` and ``super().<one of USER_DUNDERS>``
    in user classes; anything but a ``super`` object, or another name, is refused."""
    if not isinstance(obj, super) or name not in SUPER_ATTRIBUTES:
        raise AttributeError(f"{name!r} can only be read from super(), in a class's own methods")
    _check_super(obj)
    method = getattr(obj, name)
    if name in _LIST_SUPER_REMOVERS and isinstance(obj.__self__, list):
        # list's own writes, reached past _write_ (see _ListWriter and _DROPPED)
        target = obj.__self__
        if name == "__setitem__":
            def set_item(key: Any, value: Any) -> None:
                key = _resolved_key(target, key)
                if isinstance(key, slice):
                    value = list(value)
                _keep_dropped(_list_items(target, key))
                method(key, value)

            return set_item
        if name == "__delitem__":
            def delete_item(key: Any) -> None:
                key = _resolved_key(target, key)
                _keep_dropped(_list_items(target, key))
                method(key)

            return delete_item
        return _list_change(method, name, target)
    return method


def _check_super(obj: super) -> None:
    """A super object may reach the parents of a user class, bound to an instance: not
    those of a builtin, exported or engine class (which could skip a subclass's guards)
    and not the unbound methods a class binding gives."""
    if not isinstance(obj.__thisclass__, UserClassMeta) or isinstance(obj.__self__, type):
        raise AttributeError("super() works only in the methods of your own classes, on an instance")


def apply_call(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``_apply_`` for calls with ``*args``/``**kwargs``: nothing extra to guard."""
    return func(*args, **kwargs)


# --- prints --------------------------------------------------------------------------

_TRUNCATION_NOTICE = "\n[log output truncated at {cap} bytes]\n"


class LogSink:
    """The attempt's shared, capped destination for everything user code prints.

    ``write`` receives the accepted text (the runner writes it to stdout, which the engine
    captures as the execution's logs). Past ``cap_bytes`` of UTF-8, text is dropped and a
    single truncation notice is written.
    """

    def __init__(self, cap_bytes: int, write: Callable[[str], object]) -> None:
        self.cap_bytes = cap_bytes
        self.used_bytes = 0
        self.truncated = False
        self._write = write

    def write(self, text: str) -> str:
        """Forward what fits under the cap and return it."""
        # "replace" so a lone surrogate in user text cannot break the log stream.
        data = str(text).encode("utf-8", "replace")
        room = self.cap_bytes - self.used_bytes
        accepted = data[: max(room, 0)].decode("utf-8", "ignore")
        if accepted:
            self.used_bytes += len(accepted.encode("utf-8"))
            self._write(accepted)
        if len(data) > room and not self.truncated:
            self.truncated = True
            self._write(_TRUNCATION_NOTICE.format(cap=self.cap_bytes))
        return accepted


def print_collector(sink: LogSink) -> Callable[..., Any]:
    """``_print_``: RP calls it as ``_print_(_getattr_)`` in every function that prints,
    and this makes a collector writing through ``sink``."""
    return functools.partial(_sink_print_collector_class(), sink)


@functools.cache
def _sink_print_collector_class() -> type:
    # One class, made once (before the fork server forks): not one per attempt.
    from RestrictedPython.PrintCollector import PrintCollector

    class SinkPrintCollector(PrintCollector):
        def __init__(self, sink: LogSink, _getattr_: Any = None) -> None:
            super().__init__(_getattr_)
            self._sink = sink  # underscore: out of reach of restricted code

        def write(self, text: str) -> None:
            self.txt.append(self._sink.write(text))

    return SinkPrintCollector


# --- globals -------------------------------------------------------------------------


def restricted_globals(
    job_handle: Any, user_class: Any, print_cap: LogSink, policy: Policy = RESTRICTED
) -> dict[str, Any]:
    """The exec globals for restricted code.

    ``job_handle`` and ``user_class`` become the names ``job`` and ``User``;
    ``print_cap`` is the attempt's shared ``LogSink``. Public names here and in
    ``__builtins__`` are exactly ``SANDBOX_BUILTIN_NAMES`` minus the compiler's own.
    """
    from RestrictedPython.Eval import default_guarded_getitem, default_guarded_getiter
    from RestrictedPython.Guards import guarded_iter_unpack_sequence, guarded_unpack_sequence

    return {
        "__builtins__": _builtins(policy),
        "__name__": "job",
        "__metaclass__": UserClassMeta,
        "_getattr_": guarded_getattr,
        "_getitem_": default_guarded_getitem,
        "_getiter_": default_guarded_getiter,
        "_iter_unpack_sequence_": guarded_iter_unpack_sequence,
        "_unpack_sequence_": guarded_unpack_sequence,
        "_write_": guarded_write,
        "_private_write_": private_write,
        "_print_": print_collector(print_cap),
        "_inplacevar_": inplace_var,
        "_aug_getitem_": augmented_item,
        "_aug_getattr_": augmented_attribute,
        "_aug_set_": augmented_store,
        "_super_attr_": super_attribute,
        "_safe_point_": safe_point,
        "_apply_": apply_call,
        **_MATCH_HOOKS,
        "job": job_handle,
        "User": user_class,
    }


@functools.cache
def _builtins(policy: Policy) -> dict[str, Any]:
    # Built once per policy and shared by every restricted_globals: each attempt is a
    # process of its own, so nothing one attempt does to it reaches another. Built in the
    # fork server before it forks (``warm_up``), a child does not pay the ~180 page
    # copies that building it touches.
    table: dict[str, Any] = {name: getattr(builtins, name) for name in _PLAIN_BUILTINS}
    table.update({name: getattr(builtins, name) for name in _EXCEPTIONS})
    table.update(
        getattr=guarded_getattr,
        hasattr=guarded_hasattr,
        setattr=guarded_setattr,
        delattr=guarded_delattr,
        # Needed by `class` statements; user code cannot name it (leading underscore).
        __build_class__=builtins.__build_class__,
        __import__=make_guarded_import(policy.allowed_modules),
        type=_visible_type_function(policy),
        hash=value_hash,
        isinstance=checked_isinstance,
        issubclass=checked_issubclass,
    )
    return table


# Types whose hash is computed from their value. Any other hash is an object's address
# (or mixes one in): a type's gives where the interpreter's own code lives, which is what
# a forged object needs (every memory-safety exploit the reviews built used it).
_VALUE_HASHED = frozenset({
    int, float, complex, str, bytes, bool, type(None), decimal.Decimal, fractions.Fraction,
    datetime.date, datetime.datetime, datetime.time, datetime.timedelta, datetime.timezone, uuid.UUID,
})


def value_hash(obj: Any) -> int:
    """``hash`` for restricted code: of values (numbers, strings, dates, tuples and
    frozensets of them), never of an object hashed by its address."""
    if not _hashed_by_value(obj):
        raise TypeError(f"hash() is available to jobs for values (numbers, strings, dates, tuples of them), "
                        f"not for a {type(obj).__name__!r} object, whose hash shows a memory address")
    return hash(obj)


def _hashed_by_value(obj: Any) -> bool:
    if type(obj) is fractions.Fraction:  # its parts may be any objects the job made
        return type(obj.numerator) is int and type(obj.denominator) is int
    if type(obj) is uuid.UUID:
        return type(obj.int) is int
    if type(obj) in _VALUE_HASHED:
        return True
    if type(obj) in (tuple, frozenset):
        return all(_hashed_by_value(item) for item in obj)
    return False


def _visible_type_function(policy: Policy) -> Callable[..., type]:
    """``type(obj)`` as restricted code gets it: the type, when the job could name it or
    derive from it anyway (a builtin it has, a class an allowed module exports, one of its
    own classes, an exception class). Never ``type`` itself, whose three-argument form
    makes a class past ``UserClassMeta``, nor the class of an engine or library internal
    the job holds (a handle, a module proxy, a function), whose constructor it must not get."""

    def type_of(obj: Any, *rest: Any) -> type:
        if rest:
            raise TypeError("type() with three arguments makes a class; write a class statement instead")
        kind = type(obj)
        if kind in _nameable_types(policy) or isinstance(kind, UserClassMeta) or issubclass(kind, BaseException):
            return kind
        raise TypeError(f"type() of a {kind.__name__!r} object is not available to jobs; "
                        f"test it with isinstance() instead")

    _STANDS_FOR[type_of] = type
    return type_of


@functools.cache
def _nameable_types(policy: Policy) -> frozenset[type]:
    values = [getattr(builtins, name) for name in _PLAIN_BUILTINS]
    for name in policy.allowed_modules:
        values.extend(proxy_attrs(module_proxies()[name]).values())
    return frozenset(v for v in values if isinstance(v, type) and v is not type) | {type(None)}


# --- static checks -------------------------------------------------------------------


def static_problems(source: str, policy: Policy, entrypoint: str | None = None) -> list[Problem]:
    """Problems visible without compiling: syntax, imports, the entry point.

    Parses with ``ast`` only. Import checks apply to restricted policies; the entry point
    check (when ``entrypoint`` is given) to both.
    """
    tree = _parse(source)
    if isinstance(tree, Problem):
        return [tree]
    return _tree_problems(tree, policy, entrypoint)


def check_problems(source: str, policy: Policy, entrypoint: str) -> list[Problem]:
    """Everything ``check_source`` reports: ``static_problems`` plus compile errors.

    Compiles the source, so it must run in the sandboxed child only.
    """
    tree = _parse(source)
    if isinstance(tree, Problem):
        return [tree]
    problems = _tree_problems(tree, policy, entrypoint)
    if policy.is_restricted:
        problems += compile_restricted_source(source, "<job>")[1]
    else:
        problems += _native_compile_problems(source)
    return sorted(set(problems), key=lambda problem: (problem.line, problem.message))


def _parse(source: str) -> ast.Module | Problem:
    """The syntax tree, or the problem that stopped parsing."""
    try:
        return ast.parse(source)
    except SyntaxError as exc:
        return _syntax_problem(exc)
    except Exception as exc:  # noqa: BLE001 - null bytes (ValueError), nesting (RecursionError)...
        return Problem(0, f"source could not be parsed: {type(exc).__name__}: {exc}")


def _syntax_problem(exc: SyntaxError) -> Problem:
    return Problem(exc.lineno or 0, f"syntax error: {exc.msg}")


def _tree_problems(tree: ast.Module, policy: Policy, entrypoint: str | None) -> list[Problem]:
    problems = _import_problems(tree, policy) if policy.is_restricted else []
    if entrypoint is not None:
        problems += _entrypoint_problems(tree, entrypoint)
    return problems


def _native_compile_problems(source: str) -> list[Problem]:
    # ast.parse misses errors found only when compiling, such as `return` at top level.
    try:
        compile(source, "<job>", "exec", dont_inherit=True)
    except SyntaxError as exc:
        return [_syntax_problem(exc)]
    except Exception as exc:  # noqa: BLE001 - RecursionError, MemoryError...
        return [Problem(0, _compile_failure_message(exc))]
    return []


def _import_problems(tree: ast.Module, policy: Policy) -> list[Problem]:
    problems: list[Problem] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            problems += _plain_import_problems(node, policy)
        elif isinstance(node, ast.ImportFrom):
            problems += _from_import_problems(node, policy)
    return sorted(problems, key=lambda problem: problem.line)


def _plain_import_problems(node: ast.Import, policy: Policy) -> list[Problem]:
    return [
        Problem(node.lineno, refused_import_message(alias.name, policy.allowed_modules))
        for alias in node.names
        if alias.name not in policy.allowed_modules
    ]


def _from_import_problems(node: ast.ImportFrom, policy: Policy) -> list[Problem]:
    module = node.module or ""
    if node.level:
        return [Problem(node.lineno, "relative imports are not allowed")]
    if module not in policy.allowed_modules:
        return [Problem(node.lineno, refused_import_message(module, policy.allowed_modules))]
    return [
        Problem(node.lineno, _from_name_message(module, alias.name))
        for alias in node.names
        if alias.name not in MODULE_EXPORTS[module]
    ]


def _from_name_message(module: str, name: str) -> str:
    if name == "*":
        return f"'from {module} import *' is not allowed; import the names you use"
    return _refused_name_message(module, name)


def _entrypoint_problems(tree: ast.Module, entrypoint: str) -> list[Problem]:
    if not entrypoint.isidentifier() or keyword.iskeyword(entrypoint) or entrypoint[0] == "_":
        return [Problem(0, f"entrypoint {entrypoint!r} must be an identifier not starting with '_'")]
    if entrypoint in _COMPILER_NAMES:
        return [Problem(0, f"entrypoint {entrypoint!r} is a name restricted code cannot define; "
                           f"name the function something else, such as 'execute'")]
    defs = [node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == entrypoint]
    if not defs:
        return [Problem(0, f"no top-level function {entrypoint!r}: define `def {entrypoint}(job): ...`")]
    # The runner calls only a function of the source (see runner._load_restricted).
    problems = [Problem(node.lineno, f"the entrypoint {entrypoint!r} cannot be decorated") for node in defs
                if node.decorator_list]
    for node in tree.body:
        bound = _top_level_names(node) if not isinstance(node, ast.FunctionDef) else set()
        if entrypoint in bound:
            problems.append(Problem(node.lineno, f"{entrypoint!r} is rebound here; the entrypoint must be "
                                                 f"the function `def {entrypoint}` defines"))
    return problems


def _top_level_names(statement: ast.stmt) -> set[str]:
    """Names a module-level statement binds (other than a def's own name)."""
    if isinstance(statement, ast.ClassDef):
        return {statement.name}
    if isinstance(statement, (ast.Import, ast.ImportFrom)):
        return {(alias.asname or alias.name).split(".")[0] for alias in statement.names}
    names = set()
    for node in ast.walk(statement):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, (ast.MatchAs, ast.MatchStar)) and node.name:  # `case execute:`
            names.add(node.name)
        elif isinstance(node, ast.MatchMapping) and node.rest:
            names.add(node.rest)
    return names


_RP_ERROR = re.compile(r"^Line (\d+|None): (.*)$", re.DOTALL)


def compile_restricted_source(source: str, filename: str) -> tuple[CodeType | None, list[Problem]]:
    """Compile with RestrictedPython; the code object, or None and the problems.

    Runs only in the sandboxed child: compiling hostile input is itself attack surface
    (SANDBOX.md G3/G4), and RP raises (RecursionError, MemoryError...) instead of
    reporting some errors, so every exception becomes a problem.
    """
    from RestrictedPython.compile import compile_restricted_exec

    try:
        if "match" in source:
            # What the compiler checks of a match statement, which the rewrite loses.
            compile(source, filename, "exec", dont_inherit=True)
        result = compile_restricted_exec(source, filename=filename, policy=_transformer())
    except SyntaxError as exc:  # the compiler's, and those RP raises after its own checks
        return None, [_syntax_problem(exc)]
    except BaseException as exc:  # noqa: BLE001 - child-only; any failure rejects the source
        return None, [Problem(0, _compile_failure_message(exc))]
    if result.errors or result.code is None:
        return None, [_problem_from_rp_error(error) for error in result.errors]
    return result.code, []


# Special methods user classes may define (RP allows `__init__`, `__contains__` and the
# comparisons). Each is called by the interpreter (or, `__post_init__`, by a dataclass's
# `__init__`) on the user's own objects, with arguments the code already holds. Left out: attribute hooks (__getattr__,
# __getattribute__, __setattr__...), descriptors, class creation hooks (__new__,
# __init_subclass__, __class_getitem__, __set_name__...), finalizers and pickling
# (__del__, __reduce__...), and __hash__: a hashable key whose __eq__ runs the job's code
# inside a C container's lookup is how CPython's memory-safety bugs are reached (a user
# class that defines __eq__ is unhashable, as in Python).
USER_DUNDERS: frozenset[str] = frozenset(
    f"__{name}__" for name in (
        "repr str format bool len iter next reversed contains getitem setitem delitem missing call "
        "enter exit eq ne lt le gt ge int float index round abs neg pos invert "
        "add radd iadd sub rsub isub mul rmul imul truediv rtruediv itruediv floordiv rfloordiv ifloordiv "
        "mod rmod imod pow rpow ipow matmul rmatmul imatmul and rand iand or ror ior xor rxor ixor "
        "lshift rlshift ilshift rshift rrshift irshift post_init"
    ).split()
)
SUPER_ATTRIBUTES: frozenset[str] = USER_DUNDERS | {"__init__"}
# Special attributes user code may read (``type(self).__name__`` in a ``__repr__``): on
# every object they are a string or None, which guarded_getattr checks.
READABLE_DUNDERS: frozenset[str] = frozenset({"__name__", "__qualname__", "__module__", "__doc__"})


@functools.cache
def _transformer() -> type:
    """RestrictedPython's transformer, plus what ordinary code needs that RP refuses
    although it reaches nothing the spelled-out form does not:

    * reads of ``READABLE_DUNDERS`` (``type(self).__name__``), through ``_getattr_``;
    * ``_safe_point_()`` first in every function and loop body (see _DROPPED);
    * special methods in user classes (``USER_DUNDERS``), and ``super().__init__(...)``
      (or ``super().`` any of them), read through ``_super_attr_``, which accepts only a
      ``super`` object;
    * annotated assignments (``total: int = 0``) and ``nonlocal``, their names checked
      like any other;
    * private attributes and methods of the user's own classes (``self._total``,
      ``def _helper(self)``): the compiler lets ``PRIVATE_NAME`` attributes through, and
      ``_getattr_`` gives them only from user objects (``user_private``) and only user
      objects take them (``private_write``);
    * augmented assignment of items and attributes (``counts[word] += 1``,
      ``self.total += x``): compiled to ``_aug_set_(_aug_getitem_(obj, key), op, value)``,
      the same guarded read, in-place operator and guarded write as
      ``obj[key] = obj[key] + value``, evaluated in Python's order (object, key, read,
      value, operator, store).
    """
    from RestrictedPython.transformer import IOPERATOR_TO_STR, RestrictingNodeTransformer

    def hook(name: str, args: list[ast.expr]) -> ast.Call:
        # Named after RP's visit, so its check of user names never sees ours.
        return ast.Call(func=ast.Name(name, ast.Load()), args=args, keywords=[])

    def with_safe_point(node: Any) -> Any:
        # `_safe_point_()` first in a function's or a loop's body (after a docstring).
        body = node.body
        at = 1 if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
            and isinstance(body[0].value.value, str) else 0
        call = ast.Expr(hook("_safe_point_", []))
        body.insert(at, ast.fix_missing_locations(ast.copy_location(call, body[at] if at < len(body) else node)))
        return node

    class Transformer(RestrictingNodeTransformer):  # type: ignore[misc]
        def check_name(self, node: ast.AST, name: str | None, allow_magic_methods: bool = False) -> None:
            # RP passes allow_magic_methods for `def` names; a nested def (a method) may be
            # one of USER_DUNDERS, as RP itself allows `__init__`, or a private name.
            if (allow_magic_methods and name is not None and getattr(node, "col_offset", 0) != 0
                    and (name in USER_DUNDERS or PRIVATE_NAME.fullmatch(name))):
                return
            if name == "__hash__":
                self.error(node, "__hash__ cannot be defined: a hashable key would run the job's __eq__ inside "
                                 "C lookups; key dicts and sets by a tuple or a string of the fields instead")
                return
            super().check_name(node, name, allow_magic_methods)

        def visit_Attribute(self, node: ast.Attribute) -> Any:
            value = node.value
            if (isinstance(node.ctx, ast.Load) and node.attr in SUPER_ATTRIBUTES and isinstance(value, ast.Call)
                    and isinstance(value.func, ast.Name) and value.func.id == "super"):
                read = hook("_super_attr_", [self.visit(value), ast.Constant(node.attr)])
                return ast.fix_missing_locations(ast.copy_location(read, node))
            if node.attr in READABLE_DUNDERS and isinstance(node.ctx, ast.Load):
                read = hook("_getattr_", [self.visit(value), ast.Constant(node.attr)])
                return ast.fix_missing_locations(ast.copy_location(read, node))
            if PRIVATE_NAME.fullmatch(node.attr):
                # RP refuses every `_` attribute; a private one is transformed as RP does
                # any other, and checked when it runs (user_private, private_write).
                node = self.node_contents_visit(node)
                if isinstance(node.ctx, ast.Load):
                    read = hook("_getattr_", [node.value, ast.Constant(node.attr)])
                    return ast.fix_missing_locations(ast.copy_location(read, node))
                write = hook("_private_write_", [node.value])
                node.value = ast.fix_missing_locations(ast.copy_location(write, node.value))
                return node
            return super().visit_Attribute(node)

        def visit_FunctionDef(self, node: ast.FunctionDef) -> Any:
            if node.name in USER_DUNDERS and node.decorator_list:
                # See UserClassMeta, which checks the same when the class is made.
                self.error(node, f"{node.name} cannot be decorated: a special method must be a plain method")
            return with_safe_point(super().visit_FunctionDef(node))

        def visit_For(self, node: ast.For) -> Any:
            return with_safe_point(super().visit_For(node))

        def visit_While(self, node: ast.While) -> Any:
            return with_safe_point(super().visit_While(node))

        def visit_ClassDef(self, node: ast.ClassDef) -> Any:
            # RP rebuilds the class statement from a snippet parsed at line 1: an error
            # raised while the class is made (UserClassMeta) pointed at the job's first line.
            for match in patterns.matches_in_class_body(node):
                self.error(match, "match cannot be used in a class body itself; use it in a method or a function")
            made = super().visit_ClassDef(node)
            for part in (made, *made.keywords, *(n for k in made.keywords for n in ast.walk(k.value))):
                ast.copy_location(part, node)
            return made

        def visit_Match(self, node: ast.Match) -> list[ast.stmt]:
            if not hasattr(self, "match_temporaries"):
                self.match_temporaries = itertools.count(1)
            return patterns.desugar(node, self.visit, self.check_name, self.check_pattern_attribute,
                                    self.match_temporaries)

        def check_pattern_attribute(self, node: ast.AST, name: str) -> None:
            # `case Point(x=0)` reads `x` with `getattr` (as `_getattr_` would); a `_` name
            # is refused here as it is in `point._x`, unless it is private (PRIVATE_NAME)
            # or one of READABLE_DUNDERS.
            if name.startswith("_") and not PRIVATE_NAME.fullmatch(name) and name not in READABLE_DUNDERS:
                self.error(node, f'"{name}" is an invalid attribute name because it starts with "_".')

        def visit_AnnAssign(self, node: ast.AnnAssign) -> Any:
            # `total: int = 0`: the target, annotation and value are visited (checked and
            # guarded) like any other; annotations land in `__annotations__`, which user
            # code cannot name.
            return self.node_contents_visit(node)

        def visit_Global(self, node: ast.Global) -> ast.Global:
            # RP checks no name here: `global _match_1_` would move a temporary of the
            # match rewrite (or of RP) into the module, shared by re-entrant calls.
            for name in node.names:
                self.check_name(node, name)
            return node

        def visit_Nonlocal(self, node: ast.Nonlocal) -> ast.Nonlocal:
            for name in node.names:
                self.check_name(node, name)
            return node

        def visit_AugAssign(self, node: ast.AugAssign) -> Any:
            target = node.target
            if isinstance(target, ast.Subscript):
                read = hook("_aug_getitem_", [self.visit(target.value), self.visit(target.slice)])
            elif isinstance(target, ast.Attribute):
                # Visited as a read, for RP's checks of the name: `_getattr_(obj, "name")`.
                loaded = self.visit(ast.copy_location(ast.Attribute(target.value, target.attr, ast.Load()), target))
                read = hook("_aug_getattr_", list(loaded.args))
            else:
                return super().visit_AugAssign(node)
            op = ast.Constant(IOPERATOR_TO_STR[type(node.op)])
            statement = ast.Expr(hook("_aug_set_", [read, op, self.visit(node.value)]))
            return ast.fix_missing_locations(ast.copy_location(statement, node))

    return Transformer


def _compile_failure_message(exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return "source could not be compiled: an expression is nested too deeply"
    return f"source could not be compiled: {type(exc).__name__}: {exc}"[:1000]


def _problem_from_rp_error(error: str) -> Problem:
    match = _RP_ERROR.match(error)
    if match is None:
        return Problem(0, error)
    line = match.group(1)
    return Problem(int(line) if line.isdigit() else 0, match.group(2))
