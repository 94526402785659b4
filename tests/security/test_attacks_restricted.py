"""Attacks in the default (restricted) profile, sent as source through the public API.

Each case names the outcome it must end in; ``Harness.assert_contained`` then proves
the secrets did not leak, nothing outside changed, nothing survived and the engine
still serves. Controls at the end prove normal code is not over-blocked.
"""

from __future__ import annotations

import textwrap

import pytest

from conftest import REFUSED
from engine import model

pytestmark = pytest.mark.timeout(120)

FAILED = "failed"
TIMED_OUT = "timed_out"
CRASHED = "crashed"
STOPPED = {FAILED, TIMED_OUT}  # stopped by the policy or by a limit, both contained


def job(body: str) -> str:
    return "def execute(job):\n" + textwrap.indent(textwrap.dedent(body).strip("\n"), "    ") + "\n"


INTROSPECTION = [
    pytest.param(job("return ().__class__.__bases__[0].__subclasses__()"), REFUSED, id="dunder-subclasses"),
    pytest.param(job("return getattr((), '__cl' + 'ass__')"), FAILED, id="getattr-built-dunder"),
    pytest.param(job("return '{0.__class__}'.format(1)"), FAILED, id="str-format-walk"),
    pytest.param(job("return '{x.__class__}'.format_map({'x': 1})"), FAILED, id="format-map-walk"),
    pytest.param(job("return '{0.gi_frame.f_back}'.format((x for x in [1]))"), FAILED, id="format-frame-walk"),
    pytest.param(job("return '{0[0].__globals__}'.format([execute])"), FAILED, id="format-index-then-dunder"),
    pytest.param(job("return str.format('{0.__class__}', 1)"), FAILED, id="format-unbound"),
    pytest.param(job("f = getattr('{0.__class__}', 'format')\nreturn f(1)"), FAILED, id="format-through-getattr"),
    pytest.param(job("x = []\nx.__class__ += ()"), REFUSED, id="augmented-dunder-attribute"),
    pytest.param(job("_aug_set_((print, 1), '+=', 1)"), REFUSED, id="augmented-hook-by-name"),
    pytest.param(job("import json\njson.dumps += 'x'"), FAILED, id="augmented-proxy-attribute"),
    pytest.param(job("import math\nmath.pi += 1\nreturn math.pi"), FAILED, id="augmented-proxy-write"),
    pytest.param(job("t = (1,)\nt[0] += 1"), FAILED, id="augmented-immutable-item"),
    pytest.param(job("def f():\n    nonlocal __builtins__\nreturn 1"), REFUSED, id="nonlocal-dunder"),
    pytest.param("class X:\n    def __getattribute__(self, name):\n        return 1\n\n" + job("return 1"),
                 REFUSED, id="define-getattribute"),
    pytest.param("class X:\n    def __init_subclass__(cls):\n        pass\n\n" + job("return 1"),
                 REFUSED, id="define-init-subclass"),
    pytest.param("class X:\n    def __reduce__(self):\n        return (print, ())\n\n" + job("return 1"),
                 REFUSED, id="define-reduce"),
    pytest.param("class X:\n    __repr__ = print\n\n" + job("return 1"), REFUSED, id="assign-dunder-in-class"),
    pytest.param("class X:\n    pass\n\n" + job("setattr(X, '__repr__', lambda self: 1)\nreturn repr(X())"),
                 FAILED, id="setattr-dunder-on-class"),
    pytest.param(job("d = {}\nsuper(dict, d).__setitem__('a', 1)\nreturn d"), FAILED, id="super-of-builtin"),
    pytest.param(job("from dataclasses import make_dataclass\nreturn 1"), REFUSED, id="make-dataclass"),
    # match statements are rewritten into guarded code (sandbox.patterns): a pattern reads
    # no more than the spelled-out form may.
    pytest.param(job("match job:\n    case object(__class__=c):\n        return c"), REFUSED, id="match-dunder-keyword"),
    pytest.param(job("match 1:\n    case job.__class__:\n        return 1"), REFUSED, id="match-dunder-value"),
    pytest.param(job("return _match_class_(job, type(job), 0, ('_bridge',))"), REFUSED, id="match-hook-by-name"),
    # isinstance maps the policy's stand-ins (Enum, type) to their classes: it must not
    # hash what it is given, which for a deeply nested tuple overflows the C stack.
    pytest.param(job("""
        from collections import namedtuple
        deep = ()
        for _ in range(200000):
            deep = (deep,)
        Holder = namedtuple("Holder", "classes")
        return isinstance(1, Holder(deep))
    """), FAILED, id="isinstance-deeply-nested-tuple-subclass"),
    pytest.param(job("""
        try:
            job.missing
        except AttributeError as error:
            match error:
                case AttributeError(obj=held):
                    return repr(held)
        raise ValueError("the guard kept AttributeError.obj")
    """), FAILED, id="match-class-keyword-refused-by-guard"),
    pytest.param(job("""
        match job:
            case object(_bridge=b):
                return repr(b)
        raise ValueError("private of a handle not read")
    """), FAILED, id="match-private-of-handle"),
    pytest.param(job("""
        class Ever(list):
            def __len__(self):
                return 2
            def __iter__(self):
                return iter(range(6))
        match Ever():
            case [a, b]:
                return [a, b]
    """), FAILED, id="match-sequence-that-lies-about-its-length"),
    pytest.param(job("""
        Alias = list[int]
        match [1]:
            case Alias():
                return 1
    """), FAILED, id="match-class-pattern-of-a-type-alias"),
    pytest.param(job("return getattr(job, '_bridge', 'hidden')"), FAILED, id="private-of-handle-with-default"),
    pytest.param(job("setattr(job, '_bridge', None)"), FAILED, id="private-write-on-handle"),
    pytest.param(job("import json\nreturn json._default_encoder"), FAILED, id="private-of-proxy"),
    pytest.param(job("return '{0._bridge}'.format(job)"), FAILED, id="private-through-format"),
    pytest.param("import collections\n\nclass C(collections.Counter):\n    pass\n\n"
                 + job("return C('a')._keep_positive"), FAILED, id="private-of-exported-parent"),
    pytest.param("class X:\n    def _print(self):\n        pass\n\n" + job("return 1"), REFUSED, id="private-generated-name"),
    pytest.param("class X:\n    pass\n\n" + job("x = X()\nx._getattr_ = print\nreturn 1"), REFUSED,
                 id="hook-named-attribute"),
    pytest.param(job("_getattr_ = getattr\nreturn 1"), REFUSED, id="hook-named-variable"),
    pytest.param("from dataclasses import dataclass\n\n@dataclass\nclass X:\n    _hidden: int = 1\n\n" + job("return 1"),
                 REFUSED, id="dataclass-underscore-field"),
    pytest.param(job("import copy\nreturn copy.deepcopy(job).name"), FAILED, id="deepcopy-handle"),
    pytest.param(job("import copy\nreturn copy.copy(job).name"), FAILED, id="copy-handle"),
    # Enums are built by UserClassMeta from a marker base, with a metaclass of their own:
    # no functional form, no subclassing, members hold the job's attributes only.
    pytest.param("from enum import Enum\n\nclass C(Enum):\n    A = 1\n\n" + job("return str(type(C))"), FAILED,
                 id="enum-metaclass"),
    pytest.param("from enum import Enum\n\nclass C(Enum):\n    A = 1\n\n" + job("return str(getattr(C, '_member_map_'))"), FAILED,
                 id="enum-private-table"),
    pytest.param("from enum import Enum\n\nclass C(Enum):\n    A = 1\n\n" + job("C.A = 2"), FAILED,
                 id="enum-rebind-member"),
    pytest.param("from enum import Enum\n\nclass C(Enum):\n    A = 1\n\n" + job("setattr(C.A, '_value_', 2)"), FAILED,
                 id="enum-member-value"),
    pytest.param("from enum import Enum\n\nclass C(Enum):\n    A = 1\n\nclass D(C):\n    pass\n\n"
                 + job("return 1"), FAILED, id="enum-subclass"),
    pytest.param("from enum import Enum\n\nclass C(Enum, int):\n    A = 1\n\n" + job("return 1"), FAILED,
                 id="enum-extra-base"),
    pytest.param("from enum import Enum\n\nclass C(Enum):\n    _generate_next_value_ = print\n    A = 1\n\n"
                 + job("return 1"), REFUSED, id="enum-sunder-hook"),
    pytest.param(job("from enum import Enum\nreturn str(Enum('C', 'A B'))"), FAILED, id="enum-functional-api"),
    # Found in a fourteenth review: enum.Enum's functional form, reached through
    # Color.mro() or a job enum without members, built a class with any dunder
    # (__reduce_ex__, __copy__), and copy.copy then wrote to a dataclass Field, whose
    # name dataclasses pasted into exec'd source: the real os.
    pytest.param("""
from enum import Enum
import copy, dataclasses

class Color(Enum):
    RED = 1

@dataclasses.dataclass
class D:
    x: int = 0

F = dataclasses.fields(D)[0]

def red(self, proto):
    return (lambda: F, (), (None, {"name": "x\\" + str(__import__('os').getuid()) + \\""}))

def execute(job):
    X = Color.mro()[1]("X", {"A": 1, "__copy__": None, "__reduce_ex__": red})
    copy.copy(X.A)
    return 1
""", FAILED, id="enum-functional-api-through-mro"),
    pytest.param("from enum import Enum\n\nclass E(Enum):\n    def f(self):\n        return 1\n\n"
                 + job("X = E('X', {'A': 1, '__hash__': lambda self: 1})\nreturn str(X)"), FAILED,
                 id="enum-functional-api-of-a-job-enum"),
    pytest.param(job("import collections\nreturn str(collections.deque.mro()[1])"), FAILED,
                 id="mro-past-a-stand-in"),
    # Found in a fifteenth review: type aliases pass attribute reads through to their
    # class, past the checks that look at the object read from; with
    # collections.abc.MutableMapping.update, a raw extended-slice write crashed the child.
    pytest.param(job("import collections\nreturn str(collections.deque[int].mro()[1])"), FAILED,
                 id="mro-through-a-generic-alias"),
    pytest.param(job("import typing\nreturn str(typing.Sequence.mro())"), FAILED, id="mro-through-a-typing-alias"),
    # Found in a sixteenth review: a library class's Python methods, read from the class,
    # took any object as self (ChainMap.update wrote raw slices into a list: SIGSEGV;
    # ChainMap.new_child called a job class's metaclass with names the job chose, which
    # led through __reduce_ex__ and copy.copy to dataclasses' exec: the real os).
    pytest.param(job("from collections import ChainMap\nlst = [object() for i in range(8)]\n"
                     "ChainMap.update(lst, [(0, 'raw')])\nreturn str(lst[0])"), FAILED,
                 id="library-method-on-another-object"),
    pytest.param(job("from collections import OrderedDict\nlst = [(1,), (2,)]\nOrderedDict.move_to_end(lst, 0)\n"
                     "return lst"), FAILED, id="library-method-on-a-list"),
    pytest.param("from collections import ChainMap\n\nclass C:\n    pass\n\n"
                 + job("C.maps = [(object,), {'__reduce_ex__': print}]\nK = ChainMap.new_child(C, 'K')\n"
                       "return str(K)"), FAILED, id="library-method-makes-a-job-class"),
    pytest.param(job("from fractions import Fraction\nreturn str(Fraction.numerator.fget)"), FAILED,
                 id="library-property-function"),
    # Found in a seventeenth review: ChainMap.register(list) made every list a ChainMap
    # to isinstance, and so to the check above.
    pytest.param(job("from collections import ChainMap\nChainMap.register(list)\nreturn 1"), FAILED,
                 id="abc-register-of-a-library-class"),
    # Found in an eighteenth review: the same, read from a job class that inherits it.
    pytest.param("from collections import Counter\n\nclass C(Counter):\n    pass\n\nclass L(list):\n"
                 "    def get(self, key, default):\n        return 0\n\n"
                 + job("rows = L(['a', 'b', 'c'])\nC.update(rows, {1: 5})\nreturn list(rows)"), FAILED,
                 id="inherited-library-method-on-another-object"),
    pytest.param(job("rows = [(1,)]\nlist[int].clear(rows)\nreturn rows"), FAILED, id="list-method-through-an-alias"),
    pytest.param("""
from collections import ChainMap

class Evil:
    def __init__(self, target, n):
        self.target = target
        self.n = n

    def __iter__(self):
        self.target.clear()
        return iter([[i] * 50 for i in range(self.n)])

def execute(job):
    MM = ChainMap[int].mro()[2]
    lst = [[i] * 3 for i in range(2000)]
    MM.update(lst, [(slice(0, 2000, 2), Evil(lst, 1000))])
    return 1
""", FAILED, id="raw-slice-write-through-an-abc-reached-by-alias"),
    pytest.param("import collections\n\nclass D(collections.deque):\n    pass\n\n"
                 + job("return str(getattr(D, 'mro')()[2])"), FAILED, id="mro-of-a-job-class-to-the-c-deque"),
    pytest.param(job("import functools, fractions\nfunctools.total_ordering(fractions.Fraction)\nreturn 1"), FAILED,
                 id="total-ordering-of-a-library-class"),
    pytest.param(job("import copy\nreturn str(copy.copy(User))"), FAILED, id="copy-user-directory"),
    # The memo of deepcopy keeps every original it copied: an instance's real __dict__,
    # a handle's private state, a proxy's table. Found in review; the memo is not offered.
    pytest.param(job("import copy\nmemo = {}\ncopy.deepcopy([job.metadata], memo)\nreturn len(memo)"), FAILED,
                 id="deepcopy-with-memo"),
    pytest.param("import dataclasses\n\nclass T:\n    pass\n\n" + job("return dataclasses.dataclass(T())"), FAILED,
                 id="dataclass-of-an-instance"),
    pytest.param(job("import collections, dataclasses\ndataclasses.dataclass(collections.ChainMap)\n"
                     "return hash(collections.ChainMap())"), FAILED, id="dataclass-of-a-library-class"),
    pytest.param("import statistics\n\nclass N(statistics.NormalDist):\n    pass\n\n"
                 "class S(super):\n    def _mu(self):\n        pass\n\n" + job("return S(N, N(5, 1))._mu"), FAILED,
                 id="super-subclass-reads-library-private"),
    # Found in a second review: str.format reached through super() in a str subclass
    # walked attributes in C, and AttributeError.obj handed out what the walk reached.
    pytest.param("class S(str):\n    pass\n\n"
                 + job("s = S('{0.__init__.__globals__[socket].os.x}')\ntry:\n    super(S, s).format(job)\n"
                       "except AttributeError as e:\n    return str(e.obj)"), FAILED, id="super-str-format-walk"),
    pytest.param("class S(str):\n    def f(self):\n        return super().format_map({'x': self})\n\n"
                 + job("return S('{x.__class__}').f()"), FAILED, id="super-str-format-map-walk"),
    pytest.param(job("try:\n    print('x', flush=True)\nexcept AttributeError as e:\n    return str(e.obj)"), FAILED,
                 id="attribute-error-obj"),
    pytest.param("import collections\n\nclass M:\n    def _keep_positive(self):\n        pass\n\n"
                 "class C(collections.Counter, M):\n    pass\n\n" + job("return str(C._keep_positive)"), FAILED,
                 id="private-via-user-mixin"),
    pytest.param(job("import collections\nc = collections.Counter()\nc._keep_positive = print\nreturn 1"), FAILED,
                 id="private-write-on-library-object"),
    # Found in a third review: a ZoneInfo subclass whose cache frees itself under C code
    # (use after free in CPython 3.11's _zoneinfo), and a str key lying about its path.
    pytest.param("import zoneinfo\n\nclass Z(zoneinfo.ZoneInfo):\n    pass\n\n" + job("return 1"), FAILED,
                 id="subclass-zoneinfo"),
    pytest.param("import zoneinfo\n\nclass K(str):\n    def split(self, *args):\n        return ['/etc/hostname']\n\n"
                 + job("return str(zoneinfo.ZoneInfo(K('Nope/Nope')))"), FAILED, id="zoneinfo-lying-key"),
    pytest.param("import random\n\nclass R(random.Random):\n    pass\n\n" + job("return 1"), FAILED,
                 id="subclass-library-class"),
    pytest.param(job("return id(job)"), FAILED, id="id-builtin"),
    # Every memory-safety exploit the reviews built read a type's address from hash().
    pytest.param(job("return hash(list)"), FAILED, id="hash-of-a-type"),
    pytest.param(job("return hash((1, print))"), FAILED, id="hash-of-a-tuple-holding-a-builtin"),
    pytest.param("class K:\n    pass\n\n" + job("return hash(K())"), FAILED, id="hash-of-an-identity-hashed-object"),
    # Found by a blind corpus: a ZoneInfo instance handed out its class's constructors,
    # which take a str subclass (or a file) past zone_info's check.
    pytest.param("import zoneinfo\n\nclass K(str):\n    pass\n\n"
                 + job("z = zoneinfo.ZoneInfo('UTC')\nreturn str(z.no_cache(K('Europe/Berlin')))"), FAILED,
                 id="zoneinfo-no-cache-of-an-instance"),
    pytest.param(job("import zoneinfo\nreturn str(getattr(zoneinfo.ZoneInfo('UTC'), 'from_file'))"), FAILED,
                 id="zoneinfo-from-file-of-an-instance"),
    pytest.param(job("import zoneinfo\nreturn '{0.clear_cache}'.format(zoneinfo.ZoneInfo('UTC'))"), FAILED,
                 id="zoneinfo-class-method-through-format"),
    # Found in a fourth review: a hashable key whose __eq__ clears a C OrderedDict during
    # a comparison (CPython 3.11 use after free, gh-119004) reached sandbox.policy's globals.
    # Jobs now get a Python OrderedDict over a dict (sandbox.standins); the same clearing
    # during a comparison of two of them reads nothing freed.
    pytest.param("from collections import OrderedDict\nstate = {}\n\nclass V:\n    def __eq__(self, other):\n"
                 "        state['a'].clear()\n        state['b'].clear()\n        state['junk'] = [[1.5] * 9 for _ in range(99)]\n"
                 "        return True\n\n"
                 + job("a = OrderedDict(x=V(), y=V())\nb = OrderedDict(x=V(), y=V())\nstate.update(a=a, b=b)\n"
                       "return [a == b, b == a, list(a), list(b)]"),
                 {FAILED, "succeeded"}, id="ordered-dict-cleared-during-comparison"),
    # Found in a fifth review: a key's __eq__ that advanced itertools.groupby freed the
    # other key, then answered NotImplemented, and CPython read the freed one (SIGSEGV).
    # The Python groupby jobs now get refuses to be re-entered.
    pytest.param("import itertools\nstate = {}\n\nclass K:\n    def __eq__(self, other):\n"
                 "        if not state.get('done'):\n            state['done'] = True\n"
                 "            for _ in range(2):\n                next(state['g'], None)\n"
                 "        return super().__eq__(other)\n\n"
                 + job("g = itertools.groupby(range(10), key=lambda x: K())\nstate['g'] = g\n"
                       "return [k for k, _ in g] and 1"),
                 FAILED, id="groupby-advanced-by-its-own-key"),
    pytest.param(job("import itertools\ng = itertools.groupby([1, 1, 2])\nk, group = next(g)\n"
                     "return group.gi_frame.f_globals"), REFUSED, id="groupby-group-frame"),
    pytest.param(job("import itertools\ng = itertools.groupby([1, 1, 2])\nk, group = next(g)\n"
                     "return getattr(group, 'gi_frame')"), FAILED, id="groupby-group-frame-by-getattr"),
    pytest.param(job("from collections import OrderedDict\nd = OrderedDict(a=1)\nd.x = 1"), FAILED,
                 id="ordered-dict-attribute"),
    # namedtuple builds its class without exec; names are checked as the original does.
    pytest.param(job("from collections import namedtuple\n"
                     "return namedtuple('P', ['x=1): pass\\nimport os\\ndef f(y'])(1)"), FAILED,
                 id="namedtuple-field-injection"),
    pytest.param(job("from collections import namedtuple\nreturn namedtuple('P(tuple): pass\\n#', 'x')(1)"), FAILED,
                 id="namedtuple-name-injection"),
    pytest.param(job("from collections import namedtuple\nreturn namedtuple('P', ['__class__'])"), FAILED,
                 id="namedtuple-dunder-field"),
    pytest.param(job("from collections import namedtuple\nreturn namedtuple('P', 'x', metaclass=print)"), FAILED,
                 id="namedtuple-metaclass"),
    pytest.param(job("from collections import namedtuple\nP = namedtuple('P', 'x')\nreturn P._make.__func__"),
                 REFUSED, id="namedtuple-method-internals"),
    pytest.param(job("from collections import namedtuple\nP = namedtuple('P', 'x')\n"
                     "return str(getattr(P.x, 'fget').__closure__)"), REFUSED, id="namedtuple-property-closure"),
    pytest.param("class K:\n    def __eq__(self, other):\n        return super().__eq__(other)\n\n"
                 "    def __lt__(self, other):\n        return super().__lt__(other)\n\n"
                 + job("k = K()\nreturn [k == k, k == K(), sorted([k, K()]) and 1]"), FAILED,
                 id="comparison-never-answers-not-implemented"),
    pytest.param("class K:\n    def __eq__(self, other):\n        return True\n\n    def __hash__(self):\n"
                 "        return 1\n\n" + job("return 1"), REFUSED, id="define-hash"),
    pytest.param("class K:\n    def __eq__(self, other):\n        return True\n\n" + job("return len({K(): 1})"),
                 FAILED, id="eq-makes-unhashable"),
    pytest.param("from dataclasses import dataclass\n\n@dataclass(frozen=True)\nclass P:\n    x: int\n\n"
                 + job("return len({P(1): 1})"), FAILED, id="frozen-dataclass-unhashable"),
    pytest.param("from dataclasses import dataclass\n\n@dataclass(unsafe_hash=True)\nclass P:\n    x: int\n\n"
                 + job("return 1"), FAILED, id="dataclass-unsafe-hash"),
    pytest.param("import functools\n\nclass C:\n    pass\n\n"
                 + job("w = functools.lru_cache(C)\nw.cache_info = None\nreturn 1"), FAILED,
                 id="wrapper-of-user-class-is-not-writable"),
    pytest.param(job("import copy, json\np = copy.copy(json)\nreturn p.codecs"), FAILED, id="copied-proxy-stays-a-proxy"),
    pytest.param(job("import calendar\nreturn calendar.sys"), FAILED, id="calendar-sys"),
    pytest.param(job("import collections\nc = collections.Counter()\nreturn super(collections.Counter, c).update"),
                 FAILED, id="super-of-exported-class"),
    pytest.param("class X(dict):\n    pass\n\n" + job("return super(X, X).__init__"), FAILED, id="super-class-binding"),
    pytest.param("class X:\n    def f(self):\n        return super().__class__\n\n" + job("return X().f()"),
                 REFUSED, id="super-dunder-outside-list"),
    pytest.param("class X:\n    def f(self):\n        super = lambda: job\n        return super().__init__\n\n"
                 + job("return X().f()"), FAILED, id="super-shadowed"),
    pytest.param(job("g = (x for x in [1])\nreturn g.gi_frame"), REFUSED, id="generator-frame"),
    pytest.param(job("g = (x for x in [1])\nreturn getattr(g, 'gi_' + 'frame')"), FAILED, id="generator-frame-getattr"),
    pytest.param(job("return type(1).mro()[-1].__subclasses__()"), REFUSED, id="type-builtin-subclasses"),
    pytest.param(job("return getattr(type(1).mro()[-1], '__subclasses__')()"), FAILED, id="type-builtin-subclasses-getattr"),
    pytest.param(job("return vars(job)"), FAILED, id="vars-builtin"),
    pytest.param(job("return dir(job)"), FAILED, id="dir-builtin"),
    pytest.param(job("return list(globals())"), FAILED, id="globals-builtin"),
    pytest.param(job("return job._bridge"), FAILED, id="private-attribute"),
    pytest.param(job("return getattr(job, '_' + 'bridge')"), FAILED, id="private-attribute-getattr"),
    pytest.param(job("o = ValueError.mro()[-1]\nreturn getattr(o, '__subclasses__')()"), FAILED, id="mro-object"),
    pytest.param(job("exec('x = 1')"), REFUSED, id="exec"),
    pytest.param(job("return eval('1')"), REFUSED, id="eval"),
    pytest.param(job("return compile('1', 'x', 'eval')"), FAILED, id="compile-builtin"),
    pytest.param(job("breakpoint()"), REFUSED, id="breakpoint"),
    pytest.param(job("""
        class S(str):
            def startswith(self, prefix):
                return False
        return str(getattr(1, S('__class__')))
    """), FAILED, id="str-subclass-name"),
    pytest.param(job("""
        try:
            pass
        except* ValueError:
            pass
    """), REFUSED, id="except-star"),
    pytest.param("async def execute(job):\n    return 1\n", REFUSED, id="async-def"),
    pytest.param("def execute(job, _getattr_=None, /):\n    return 1\n", REFUSED, id="positional-only-guard"),
    pytest.param(job("return job.metadata.__class__"), REFUSED, id="handle-dunder"),
    # type() answers only for types the job could name anyway; __name__ and the like
    # only when they hold a string.
    pytest.param(job("return type(job)(None)"), FAILED, id="type-of-handle"),
    pytest.param(job("import json\nreturn type(json)"), FAILED, id="type-of-proxy"),
    pytest.param(job("return type(execute)(execute.__code__, {})"), REFUSED, id="type-of-function-with-code"),
    pytest.param(job("t = type(execute)\nreturn str(t)"), FAILED, id="type-of-function"),
    pytest.param(job("return type(int)('X', (), {})"), FAILED, id="type-of-a-class"),
    pytest.param(job("return type('X', (), {'__getattribute__': lambda s, n: 1})"), FAILED,
                 id="type-three-arguments"),
    pytest.param(job("g = (x for x in [1])\nreturn str(type(g))"), FAILED, id="type-of-generator"),
    pytest.param(job("return getattr(job, '__dict__', None) is None and execute.__globals__"), REFUSED,
                 id="readable-dunder-neighbour"),
    pytest.param(job("execute.__name__ = 'x'"), REFUSED, id="write-readable-dunder"),
    pytest.param(job("execute.__name__ += 'x'"), FAILED, id="augment-readable-dunder"),
    pytest.param(job("return str(getattr(execute, '__name__', None)) + str(getattr(job, '__dict__'))"), FAILED,
                 id="getattr-dunder-beside-a-readable-one"),
    pytest.param(job("import string\nreturn string.Formatter().get_field('0.__class__', [1], {})"), STOPPED | {REFUSED},
                 id="string-formatter"),
    pytest.param(job("""
        try:
            job.no_such_thing
        except AttributeError as exc:
            return str(getattr(exc, 'obj'))
    """), {FAILED, "succeeded"}, id="attribute-error-obj"),
    pytest.param(job("return User.__init__"), REFUSED, id="user-dunder"),
    pytest.param(job("return getattr(print, '__self__')"), FAILED, id="print-self"),
    pytest.param(job("return getattr(job, '__reduce_ex__')(2)"), FAILED, id="reduce-ex"),
    pytest.param(job("global _getattr_\n_getattr_ = getattr\nreturn 1"), REFUSED, id="rebind-guard"),
    pytest.param(job("return repr(job) + repr(User)"), "succeeded", id="handle-repr-is-neutral"),
]

def frees_in_comparison(free: str, prelude: str = "", wrap: str = "") -> str:
    """A job whose ``a < b`` compares two lists of tuples; on the second call of the
    tuples' item comparison (the one CPython makes through borrowed pointers), ``free``
    runs and the heap is refilled with bytes, so a freed tuple would be read as garbage."""
    return prelude + textwrap.dedent(f"""
        state = {{"n": 0, "a": None, "spray": None}}

        class X:
            def __eq__(self, other):
                state["n"] += 1
                if state["n"] == 2:
                    {free}
                    state["spray"] = [bytes([65]) * 180 + bytes([i % 250]) for i in range(2000)]
                    return True
                return False

        class Y:
            pass

        def execute(job):
            a = {wrap}([tuple([X()] + list(range(21)))] + [0] * 50)
            b = [tuple([Y()] + list(range(21)))] + [0] * 50
            state["a"] = a
            return a < b
    """)


def drops_in_callback(prelude: str, callback: str, left: str, right: str) -> str:
    """A job that compares ``[tuple([left] + 24 ints)]`` with ``[tuple([right] + 25 ints)]``:
    the second time ``callback`` (job code that C calls during that comparison) runs, it
    empties the left list and refills the heap with bytes shaped like pointers."""
    return prelude + textwrap.dedent(f"""
        N = [0]
        HOLD = []
        SPRAY = []

        def drop():
            N[0] += 1
            if N[0] == 2:
                HOLD[0].clear()
                for i in range(500):
                    SPRAY.append(bytes(8) + (0x4141414141414141).to_bytes(8, "little") * 8 + bytes(135))

        {textwrap.indent(textwrap.dedent(callback), "        ").strip()}

        def execute(job):
            outer = [tuple([{left}] + list(range(24)))]
            other = [tuple([{right}] + list(range(24)) + [0])]
            HOLD.append(outer)
            result = outer < other
            return [N[0], repr(result)]
    """)


# A sixth review: CPython 3.11's C code that calls the job's special methods while it
# holds pointers it owns no reference to. Each case once crashed the child or, through a
# forged object, reached the real os module; each must now end as plain Python would.
MEMORY = [
    # A property named __lt__ ran job code, then handed CPython object.__lt__'s
    # NotImplemented, and list comparison called a freed float's reflected method.
    pytest.param("W = [None]\n\nclass A:\n    def ni(self):\n        return super().__lt__\n\n"
                 "    @property\n    def __lt__(self):\n        W[0].clear()\n        return self.ni()\n\n"
                 + job("w = [float(len('abc')) * 1.5]\nW[0] = w\nreturn [A()] < w"), REFUSED, None,
                 id="property-comparison-answers-not-implemented"),
    pytest.param("class A:\n    @classmethod\n    def __eq__(cls, other):\n        return NotImplemented\n\n"
                 + job("return A() == 1"), REFUSED, None, id="classmethod-comparison"),
    # deque.index compared an item it held no reference to (gh-115243): an item's __eq__
    # that cleared the deque freed the list being compared, and the next __eq__ ran on
    # freed memory (true: `self` was a newly made object).
    pytest.param("""
from collections import deque

class X:
    def __eq__(self, other):
        BOX[0].clear()
        return True

class Y:
    def __eq__(self, other):
        spray = [Y() for i in range(40)]
        OUT.append(any(s is self for s in spray))
        return True

BOX = [None]
OUT = []

def execute(job):
    BOX[0] = deque([[X(), Y()]])
    OUT.append(BOX[0].index([0, 0]))
    return OUT
""", "succeeded", [False, 0], id="deque-index-frees-the-item"),
    # Extended-slice assignment measured the slice, then ran the value's __iter__, which
    # emptied the list, then wrote at the old positions (gh-120384): SIGSEGV.
    pytest.param("L = []\n\nclass Shrinker:\n    def __iter__(self):\n        L.clear()\n        return iter([0] * 50)\n\n"
                 + job("L.extend(range(100))\nL[::2] = Shrinker()\nreturn len(L)"), FAILED, None,
                 id="extended-slice-shrinks-the-list"),
    pytest.param("L = []\n\nclass Shrinker:\n    def __iter__(self):\n        L.clear()\n        return iter([0] * 50)\n\n"
                 + job("L.extend(range(100))\nL[::2] += Shrinker()\nreturn len(L)"), FAILED, None,
                 id="extended-slice-augmented"),
    pytest.param("class Shrinker:\n    def __iter__(self):\n        L[0].clear()\n        return iter([0] * 50)\n\n"
                 "class MyList(list):\n    def put(self, value):\n        super().__setitem__(slice(None, None, 2), value)\n\n"
                 "L = [None]\n\n"
                 + job("m = MyList(range(100))\nL[0] = m\nm.put(Shrinker())\nreturn len(m)"), FAILED, None,
                 id="extended-slice-through-super"),
    pytest.param("L = []\n\nclass MyList(list):\n    pass\n\nclass Shrinker:\n    def __iter__(self):\n"
                 "        L[0].clear()\n        return iter([0] * 50)\n\n"
                 + job("m = MyList(range(100))\nL.append(m)\nm[::2] = Shrinker()\nreturn len(m)"), FAILED, None,
                 id="extended-slice-of-a-job-list"),
    # A seventh review: list comparison (and sorted, min, max...) compares the first
    # differing items through pointers it holds no reference to (gh-120298); tuples there
    # compare their items, running the job's __eq__, which emptied the lists and freed the
    # tuples under C (SIGSEGV, with bytes the job chose where pointers were read).
    pytest.param("""
A = []
B = []
keep = []
n = [0]

class K:
    def __eq__(self, other):
        n[0] += 1
        if n[0] == 2:
            A.clear()
            B.clear()
            for size in range(150, 260):
                for i in range(20):
                    keep.append(bytes([65] * size))
        return True

class X:
    pass

def execute(job):
    A.append(tuple([K()] + [X() for i in range(24)]))
    B.append(tuple([K()] + [X() for i in range(24)]))
    return A < B
""", FAILED, None, id="list-comparison-frees-its-tuples"),
    pytest.param("import heapq\nA = []\n\nclass K:\n    def __eq__(self, other):\n        heapq.heappop(A)\n"
                 "        return True\n\n" + job("A.append((K(), 1))\nB = [(K(), 2)]\nreturn sorted([A, B]) and 1"),
                 "succeeded", 1, id="comparison-pops-a-heap"),
    pytest.param("A = []\n\nclass K:\n    def __eq__(self, other):\n        del A[0]\n        return True\n\n"
                 + job("A.append([K(), 1])\nreturn A < [[K(), 2]]"), "succeeded", True, id="comparison-deletes-an-inner-list"),
    pytest.param("A = []\n\nclass K:\n    def __eq__(self, other):\n        A[0] = None\n        return True\n\n"
                 + job("A.append((K(), 1))\nreturn max([A, [(K(), 2)]]) and 1"), FAILED, None,
                 id="comparison-replaces-a-tuple"),
    pytest.param("class L(list):\n    def drop(self):\n        super().__init__()\n\nA = L()\n\n"
                 "class K:\n    def __eq__(self, other):\n        A.drop()\n        return True\n\n"
                 + job("A.append((K(), 1))\nreturn A < [(K(), 2)]"), "succeeded", True, id="comparison-reinits-through-super"),
    pytest.param("A = []\n\nclass K:\n    def __eq__(self, other):\n        global A\n        A *= 0\n        return True\n\n"
                 + job("A.append((K(), 1))\nreturn A < [(K(), 2)]"), "succeeded", True, id="comparison-repeats-a-global"),
    pytest.param("A = []\nclear = A.clear\n\nclass K:\n    def __eq__(self, other):\n        clear()\n        return True\n\n"
                 + job("A.append((K(), 1))\nreturn A < [(K(), 2)]"), "succeeded", True, id="comparison-calls-a-clear-fetched-before"),
    # What a comparison may still do: count its calls, keep a scratch list of numbers.
    pytest.param("calls = [0]\nscratch = []\n\nclass K:\n    def __init__(self, v):\n        self.v = v\n\n"
                 "    def __eq__(self, other):\n        calls[0] += 1\n        scratch.append(self.v)\n        scratch.pop()\n"
                 "        return self.v == other.v\n\n    def __lt__(self, other):\n        return self.v < other.v\n\n"
                 + job("return [[k.v for k in sorted([K(3), K(1)])], [(1, K(2))] < [(1, K(3))], calls[0] > 0]"),
                 "succeeded", [[1, 3], True, True], id="comparison-that-changes-only-numbers"),
    # An eighth review: routes around that check, each a SIGSEGV before its fix.
    pytest.param(frees_in_comparison("ChainMap(state['a']).clear()", "from collections import ChainMap\n"),
                 FAILED, None, id="chainmap-clears-a-list"),
    pytest.param(frees_in_comparison("state['a'][K()] = 0", "class K:\n    def __index__(self):\n"
                                     "        state['k'] = state.get('k', 0) + 1\n"
                                     "        return 1 if state['k'] == 1 else 0\n"),
                 "succeeded", False, id="index-answers-check-and-write-differently"),
    pytest.param(frees_in_comparison("random.shuffle(state['a'])", "import random\n\nclass L(list):\n"
                                     "    def __getitem__(self, i):\n        return 0\n", wrap="L"),
                 "succeeded", False, id="shuffle-through-a-lying-getitem"),
    pytest.param(frees_in_comparison("random.Random(1).shuffle(state['a'])", "import random\n\nclass L(list):\n"
                                     "    def __getitem__(self, i):\n        return 0\n", wrap="L"),
                 "succeeded", False, id="random-instance-shuffle"),
    pytest.param("""
from collections import Counter
state = {"calls": 0, "a": None}

class C(Counter):
    def __getitem__(self, key):
        state["calls"] += 1
        if state["calls"] <= 2:
            return state["calls"]
        if state["calls"] == 3:
            state["a"].clear()
        return 0

def execute(job):
    a = [tuple([C(k=1)] + list(range(21)))]
    b = [tuple([C(k=1)] + list(range(21)))]
    state["a"] = a
    return a < b
""", "succeeded", False, id="inherited-library-comparison-runs-job-code"),
    pytest.param("""
from collections import deque
state = {"b": None, "n": 0, "spray": None}

class D(deque):
    def __iter__(self):
        state["n"] += 1
        if state["n"] == 2:
            state["b"].clear()
            state["spray"] = [bytes([65]) * (150 + i % 100) for i in range(4000)]
            return iter([1])
        return iter([0])

def execute(job):
    a = [D([1])]
    b = [deque([2])]
    state["b"] = b
    return a < b
""", "succeeded", True, id="deque-subclass-iter-frees-the-other"),
    # A ninth review: job code C calls during a comparison that the check above did not
    # count (a cmp_to_key function, a generator's finally, a property read by Fraction, a
    # set subclass's __contains__): what restricted code drops from a list is now kept
    # until the entrypoint's own code drops something (sandbox.policy._DROPPED).
    pytest.param(drops_in_callback("from functools import cmp_to_key\n",
                                   "def cmp(a, b):\n    drop()\n    return -1\n\nK = cmp_to_key(cmp)",
                                   "K(1)", "K(3)"), "succeeded", [3, "True"], id="cmp-to-key-drops"),
    pytest.param(drops_in_callback("", """
        def reaper():
            try:
                yield 1
            finally:
                drop()

        class A:
            def __eq__(self, other):
                if N[0] == 1:
                    g = reaper()
                    next(g)
                    return g
                N[0] += 1
                return False
    """, "A()", "A()"), "succeeded", [2, "True"], id="generator-finally-drops"),
    pytest.param(drops_in_callback("from fractions import Fraction\n", """
        def numerator(self):
            drop()
            return 7

        class I(int):
            numerator = property(numerator)
    """, "Fraction(1, 3)", "I(5)"), "succeeded", [3, "True"], id="fraction-reads-a-dropping-property"),
    pytest.param(drops_in_callback("", """
        class S(set):
            def __contains__(self, x):
                drop()
                return True
    """, "{1: 1}.keys()", "S([5])"), "succeeded", [2, "True"], id="set-subclass-contains-drops"),
    pytest.param("from collections import defaultdict\nHOLD = []\n\nclass V:\n    def __repr__(self):\n"
                 "        HOLD[0].clear()\n        return 'v'\n\n"
                 + job("L = [defaultdict(list, {1: V()})]\nHOLD.append(L)\nreturn repr(L)"), "succeeded",
                 "[defaultdict(<class 'list'>, {1: v})]", id="repr-drops-the-defaultdict-it-shows"),
    # A tenth review: an entrypoint rebound to a partial of a builtin put C between the
    # runner and the job's __repr__, which then looked like the entrypoint's own code.
    pytest.param("""
import collections, functools
L = []
keep = []

class F:
    def __call__(self):
        return 0

    def __repr__(self):
        L.clear()
        for i in range(5000):
            keep.append(b"A" * 47)
        return "F"

L.append(collections.defaultdict(F()))

def execute(job):
    return 1

def rebind():
    global execute
    execute = functools.partial(max, [L], key=repr)

rebind()
""", FAILED, None, id="entrypoint-rebound-to-a-builtin-partial"),
    pytest.param("import functools\n\n" + job("return 1") + "\nexecute = functools.partial(max, [1])\n",
                 REFUSED, None, id="entrypoint-rebound-at-top-level"),
    pytest.param("import functools\n\n" + job("return 1")
                 + "\nmatch functools.partial(max, [1]):\n    case execute:\n        pass\n",
                 REFUSED, None, id="entrypoint-rebound-by-a-match-capture"),
    pytest.param("import functools\n\n@functools.lru_cache\n" + job("return 1"), REFUSED, None,
                 id="entrypoint-decorated"),
    # An eleventh review: C called a list hook (heapq.heapreplace through cmp_to_key)
    # straight from the entrypoint's frame, which the hook took for a safe point. Hooks
    # now only keep; the compiler's _safe_point_() calls let go.
    pytest.param("""
import heapq
from functools import cmp_to_key

K = cmp_to_key(heapq.heapreplace)
N = [0]
SPRAY = []

def sprayer():
    try:
        yield 1
    finally:
        for i in range(3000):
            SPRAY.append(bytes(8) + (0x4141414141414141).to_bytes(8, "little") * 4 + bytes(i % 40))

class X:
    def __init__(self, g):
        self.g = g

    def __eq__(self, other):
        N[0] += 1
        return N[0] >= 2

def execute(job):
    a = []
    g = sprayer()
    next(g)
    a.append(tuple([X(g), K(a)] + list(range(24))))
    g = None
    b = [tuple([X(None), K(5)] + list(range(25)))]
    return repr(a < b)
""", "succeeded", "False", id="c-calls-a-list-hook-from-the-entrypoint"),
    # Found in a nineteenth review: the ChainMap stand-in checked maps[0], then the
    # library code read maps[0] again, from a list subclass that answered differently.
    pytest.param("from collections import ChainMap\n\nclass Flip(list):\n    def __getitem__(self, i):\n"
                 "        self.n = self.n + 1\n        return {} if self.n % 2 == 1 else self.victim\n\n"
                 + job("flip = Flip()\nflip.n = 0\nflip.victim = [1, 2, 3]\ncm = ChainMap()\ncm.maps = flip\n"
                       "try:\n    del cm[0]\nexcept KeyError:\n    pass\nreturn flip.victim"), "succeeded", [1, 2, 3],
                 id="chainmap-checks-one-map-and-writes-another"),
    # Found in a twentieth review: heapreplace's sift raised in the job's __lt__ and C
    # dropped the top it had taken, unkept.
    pytest.param("""
from heapq import heapreplace
S = {"n": 0, "heap": None}

class Raiser:
    def __lt__(self, other):
        raise ValueError

class A:
    def __eq__(self, other):
        S["n"] += 1
        if S["n"] == 2:
            try:
                heapreplace(S["heap"], 0)
            except ValueError:
                pass
        return False

    def __lt__(self, other):
        junk = [A() for i in range(5000)]
        return True

def execute(job):
    heap = [[A()], Raiser(), Raiser()]
    S["heap"] = heap
    return [[A()]] < heap
""", "succeeded", True, id="heap-sift-raises-after-taking-the-top"),
    pytest.param("from dataclasses import dataclass\n\nclass Liar:\n    def __init__(self):\n        self.n = 0\n\n"
                 "    def __bool__(self):\n        self.n += 1\n        return self.n > 1\n\n"
                 "class Key:\n    x: int = 0\n\n    def __eq__(self, other):\n        return True\n\n"
                 + job("K = dataclass(unsafe_hash=Liar())(Key)\nreturn {K(1): 'v'}.get(K(1))"), FAILED, None,
                 id="dataclass-flag-answers-twice"),
    pytest.param("from fractions import Fraction\n\nclass Evil:\n    def __abs__(self):\n        return list\n\n"
                 "class F(float):\n    def as_integer_ratio(self):\n        return (Evil(), 1)\n\n"
                 + job("return hash(Fraction(F(1.0)))"), FAILED, None, id="hash-of-a-fraction-of-job-parts"),
    # A plain __add__ that frees the value Counter.update holds without a reference,
    # then answers NotImplemented: CPython then read the freed value's type.
    pytest.param("""
from collections import Counter

class V:
    def __add__(self, other):
        BOX[0].clear()
        return NotImplemented

BOX = [None]

def execute(job):
    c = Counter()
    c["k"] = V()
    BOX[0] = c
    c.update(["k"])
    return 1
""", FAILED, None, id="operator-frees-then-answers-not-implemented"),
]

IMPORTS = [
    pytest.param(job("import os\nreturn os.environ"), REFUSED, id="import-os"),
    pytest.param(job("import subprocess"), REFUSED, id="import-subprocess"),
    pytest.param(job("from datetime import sys"), REFUSED, id="from-datetime-import-sys"),
    pytest.param(job("import datetime\nreturn str(datetime.sys)"), FAILED, id="datetime-sys"),
    pytest.param(job("import json\nreturn str(json.codecs)"), FAILED, id="json-codecs"),
    pytest.param(job("import re\nreturn str(re.enum)"), FAILED, id="re-enum"),
    pytest.param(job("return __import__('os')"), REFUSED, id="dunder-import"),
    pytest.param(job("import importlib"), REFUSED, id="import-importlib"),
    pytest.param(job("import ctypes"), REFUSED, id="import-ctypes"),
    pytest.param(job("from . import secrets"), REFUSED, id="relative-import"),
    pytest.param(job("import json as j\nreturn j.__dict__"), REFUSED, id="module-dict"),
    pytest.param(job("import random\nreturn str(getattr(random, '_os'))"), FAILED, id="random-private-os"),
    pytest.param(job("import uuid\nreturn str(getattr(uuid, 'os'))"), FAILED, id="uuid-os"),
    pytest.param(job("import statistics\nreturn str(getattr(statistics, 'sys'))"), FAILED, id="statistics-sys"),
    pytest.param(job("import json\nsetattr(json, 'dumps', None)"), FAILED, id="proxy-write"),
    pytest.param(job("import sys"), REFUSED, id="import-sys"),
    pytest.param(job("import builtins"), REFUSED, id="import-builtins"),
    pytest.param(job("import pickle"), REFUSED, id="import-pickle"),
    # Handed only to C callers (datetime.strptime); user code cannot name it.
    pytest.param(job("import _strptime"), REFUSED, id="import-strptime-internal"),
    pytest.param(job("import zoneinfo._common"), REFUSED, id="import-zoneinfo-internal"),
    pytest.param(job("from operator import attrgetter"), REFUSED, id="operator-attrgetter"),
    pytest.param(job("import operator\nreturn operator.methodcaller('mro')(int)"), FAILED, id="operator-methodcaller"),
    pytest.param(job("import functools\nreturn str(functools.update_wrapper)"), FAILED, id="functools-update-wrapper"),
    pytest.param(job("import functools\nreturn functools.reduce(getattr, ['__class__'], 1)"), FAILED,
                 id="functools-reduce-getattr"),
    pytest.param(job("import typing\nreturn str(typing.get_type_hints)"), FAILED, id="typing-get-type-hints"),
    pytest.param(job("from zoneinfo import ZoneInfo\nreturn str(ZoneInfo('../../../../etc/passwd'))"), FAILED,
                 id="zoneinfo-path-walk"),
    pytest.param(job("import decimal\nsetattr(decimal.getcontext(), '_x', 1)"), FAILED, id="decimal-context-private"),
]

BOMBS = [
    pytest.param(job("return len('a' * 10**10)"), FAILED, id="memory-one-string"),
    pytest.param(job("x = []\nwhile True:\n    x.append('x' * 10**6)"), FAILED, id="memory-growth"),
    pytest.param(job("return sum(range(10**12))"), TIMED_OUT, id="cpu-in-c"),
    pytest.param(job("while True:\n    pass"), TIMED_OUT, id="cpu-loop"),
    pytest.param(job("return str(10**10**8)"), STOPPED, id="huge-int"),
    pytest.param("def f(n):\n    return f(n + 1)\n\ndef execute(job):\n    return f(0)\n", FAILED,
                 id="deep-recursion"),
    pytest.param(job("return 'x' * (3 * 1024 * 1024)"), FAILED, id="output-too-large"),
    pytest.param(job("""
        value = []
        for _ in range(100000):
            value = [value]
        return value
    """), FAILED, id="result-too-deep"),
    pytest.param(job("import re\nreturn bool(re.match('(a+)+$', 'a' * 40 + 'b'))"), TIMED_OUT, id="regex-backtracking"),
    pytest.param(job("import time\ntime.sleep(100)"), TIMED_OUT, id="sleep-past-timeout"),
    pytest.param("def execute(job):\n    return 1\n" + "# padding\n" * 40000, REFUSED, id="source-too-large"),
    pytest.param(job("return " + " + ".join(["1"] * 3000)), REFUSED, id="compile-recursion"),
    pytest.param(job("for i in range(10**6):\n    User.get('u').send('spam')"), FAILED, id="effect-quota"),
]

PROTOCOL = [
    pytest.param(job("return {1, 2}"), FAILED, id="result-set"),
    pytest.param(job("return float('nan')"), FAILED, id="result-nan"),
    pytest.param(job("return job"), FAILED, id="result-handle"),
    pytest.param(job("raise SystemExit(0)"), FAILED, id="system-exit"),
    pytest.param(job("raise KeyboardInterrupt"), FAILED, id="keyboard-interrupt"),
    pytest.param(job("return {'\\ud800': 1}"), FAILED, id="lone-surrogate"),
    pytest.param(job("raise ValueError('x' * 10**6)"), FAILED, id="huge-error-message"),
]


def _check(harness, source, expected, **options):
    outcome = harness.run(source, **options)
    harness.assert_contained(outcome, expected)
    return outcome


@pytest.mark.parametrize(("source", "expected", "result"), MEMORY)
def test_c_memory_safety_cases_end_as_python_would(harness, source, expected, result):
    outcome = _check(harness, source, expected)
    if result is not None:
        assert outcome.result == result


@pytest.mark.parametrize(("source", "expected"), INTROSPECTION)
def test_introspection_escapes_are_contained(harness, source, expected):
    _check(harness, source, expected)


@pytest.mark.parametrize(("source", "expected"), IMPORTS)
def test_import_escapes_are_contained(harness, source, expected):
    _check(harness, source, expected)


@pytest.mark.parametrize(("source", "expected"), BOMBS)
def test_resource_bombs_are_contained(harness, source, expected):
    _check(harness, source, expected, timeout=1.5, limits=model.Limits(memory_mb=256))


@pytest.mark.parametrize(("source", "expected"), PROTOCOL)
def test_protocol_abuse_is_contained(harness, source, expected):
    _check(harness, source, expected)


def test_logs_are_capped(harness):
    outcome = _check(harness, job("for i in range(200000):\n    print('spam' * 10)"), "succeeded",
                     limits=model.Limits(log_bytes=4096))
    assert len(outcome.text) < 4096 + 512


def test_cpu_seconds_limit_stops_a_loop_before_the_wall_clock(harness):
    outcome = harness.run(job("while True:\n    pass"), timeout=10, limits=model.Limits(cpu_seconds=1))
    harness.assert_contained(outcome, TIMED_OUT)


@pytest.mark.parametrize(
    ("field", "limits"),
    [
        pytest.param("memory_mb", model.Limits(memory_mb=1 << 20), id="memory"),
        pytest.param("cpu_seconds", model.Limits(cpu_seconds=10**6), id="cpu"),
        pytest.param("output_bytes", model.Limits(output_bytes=1 << 30), id="output"),
        pytest.param("log_bytes", model.Limits(log_bytes=1 << 30), id="logs"),
    ],
)
def test_limits_above_the_engine_maxima_are_refused(harness, field, limits):
    outcome = harness.run(job("return 1"), limits=limits)
    assert outcome.status == REFUSED
    assert field in outcome.text and "between" in outcome.text


# --- controls: normal code is not over-blocked ---------------------------------------

CONTROLS = [
    pytest.param(job("""
        import json, math, datetime, re
        day = datetime.date(2026, 3, 2) + datetime.timedelta(days=1)
        return {"j": json.loads(json.dumps([1, 2])), "pi": round(math.pi, 2), "day": day.isoformat(),
                "m": re.findall(r"\\d+", "a1b22")}
    """), {"j": [1, 2], "pi": 3.14, "day": "2026-03-03", "m": ["1", "22"]}, id="stdlib"),
    pytest.param(job("""
        class Box:
            def __init__(self, value):
                self.value = value
        b = Box(2)
        b.value = b.value + 1
        return b.value
    """), 3, id="user-class-attributes"),
    pytest.param(job("""
        out = [f"{n:>3}" for n in range(3) if n]
        gen = sum(x * x for x in range(4))
        try:
            {}["missing"]
        except KeyError as exc:
            caught = str(exc)
        return [out, gen, caught, sorted({3, 1, 2}), list(zip("ab", [1, 2]))]
    """), [["  1", "  2"], 14, "'missing'", [1, 2, 3], [["a", 1], ["b", 2]]], id="language"),
    pytest.param(job("""
        User.get("u-1").send("hello")
        print("sent")
        return job.metadata["port"] > 0
    """), True, id="effects-and-metadata"),
    pytest.param(job("x = [0] * (5 * 10**6)\nreturn len(x)"), 5 * 10**6, id="moderate-memory"),
    pytest.param("def f(n):\n    return 0 if n == 0 else 1 + f(n - 1)\n\ndef execute(job):\n    return f(300)\n",
                 300, id="moderate-recursion"),
    pytest.param(job("import collections, itertools, hashlib, base64, decimal, fractions, statistics, random, "
                     "string, uuid, time\n"
                     "return [collections.Counter('aab')['a'], list(itertools.islice(itertools.count(), 3)), "
                     "hashlib.sha256(b'x').hexdigest()[:8], base64.b64encode(b'hi').decode(), "
                     "str(decimal.Decimal('1.10') + 1), str(fractions.Fraction(1, 3)), statistics.mean([1, 2, 3]), "
                     "string.ascii_lowercase[:3], len(str(uuid.uuid4())), time.time() > 0]"),
                 [2, [0, 1, 2], "2d711642", "aGk=", "2.10", "1/3", 2, "abc", 36, True], id="every-allowed-module"),
    pytest.param(job("""
        import bisect, functools, heapq, operator, textwrap
        from typing import List, Optional
        def first(xs: List[int], default: Optional[int] = None) -> Optional[int]:
            return xs[0] if xs else default
        heap = [5, 1, 4]
        heapq.heapify(heap)
        rows = sorted([(2, "b"), (1, "a")], key=operator.itemgetter(0))
        return [functools.reduce(operator.add, [1, 2, 3]), heapq.heappop(heap), bisect.bisect_left([1, 3, 5], 3),
                rows[0][1], textwrap.shorten("hello wide world", 11), first([], 7),
                functools.lru_cache(maxsize=8)(abs)(-2)]
    """), [6, 1, 1, "a", "hello [...]", 7, 2], id="more-modules"),
    pytest.param(job("""
        from datetime import datetime
        from decimal import Decimal, getcontext
        from zoneinfo import ZoneInfo
        getcontext().prec = 4
        summer = datetime.strptime("2026-07-01 12:00", "%Y-%m-%d %H:%M").replace(tzinfo=ZoneInfo("Europe/Berlin"))
        return [str(Decimal(1) / Decimal(7)), summer.utcoffset().total_seconds()]
    """), ["0.1429", 7200.0], id="strptime-decimal-context-zoneinfo"),
    pytest.param("""
class Temperature:
    def __init__(self, celsius):
        self.celsius = celsius

    @property
    def fahrenheit(self):
        return self.celsius * 9 / 5 + 32

    @staticmethod
    def unit():
        return "C"

    @classmethod
    def freezing(cls):
        return cls(0)

def execute(job):
    return [Temperature(100).fahrenheit, Temperature.unit(), Temperature.freezing().celsius]
""", [212.0, "C", 0], id="property-staticmethod-classmethod"),
    pytest.param("""
class Tally:
    def __init__(self):
        self.total = 0

    def add(self, amount):
        self.total += amount

def execute(job):
    counts = {}
    for word in "a b a c a".split():
        counts.setdefault(word, 0)
        counts[word] += 1
    tally = Tally()
    tally.add(2)
    tally.add(3)
    seen = 0
    def mark():
        nonlocal seen
        seen += 1
    mark()
    return [counts, tally.total, seen, "{} of {:.1f} ({name})".format(1, 2.0, name="x")]
""", [{"a": 3, "b": 1, "c": 1}, 5, 1, "1 of 2.0 (x)"], id="augmented-nonlocal-format"),
    pytest.param("""
class Money:
    def __init__(self, cents):
        self.cents = cents

    def __repr__(self):
        return f"Money({self.cents})"

    def __eq__(self, other):
        return isinstance(other, Money) and self.cents == other.cents

    def __lt__(self, other):
        return self.cents < other.cents

    def __add__(self, other):
        return Money(self.cents + other.cents)

class PaymentError(Exception):
    def __init__(self, message, code):
        super().__init__(message)
        self.code = code

class Base:
    def describe(self):
        return "base"

class Child(Base):
    def describe(self):
        return "child of " + super().describe()

def execute(job):
    try:
        raise PaymentError("declined", 402)
    except PaymentError as error:
        failure = [str(error), error.code]
    return [repr(sorted([Money(3), Money(1)])), Money(1) == Money(1), repr(Money(1) + Money(2)),
            failure, Child().describe()]
""", ["[Money(1), Money(3)]", True, "Money(3)", ["declined", 402], "child of base"], id="special-methods-and-super"),
    pytest.param("""
import calendar
import copy
from dataclasses import asdict, dataclass, field, replace

@dataclass(order=True)
class Item:
    name: str
    quantity: int = 0
    tags: list = field(default_factory=list)

@dataclass(frozen=True)
class Point:
    x: int
    y: int

def execute(job):
    item = replace(Item("pen", 2), quantity=5)
    point = Point(1, 2)
    try:
        point.x = 3
        frozen = False
    except Exception:
        frozen = True
    total: int = item.quantity + 1
    nested = {"a": [1, 2]}
    deep = copy.deepcopy(nested)
    deep["a"].append(3)
    return [asdict(item), Item("a") < Item("b"), frozen, total, nested, calendar.monthrange(2028, 2)[1]]
""", [{"name": "pen", "quantity": 5, "tags": []}, True, True, 6, {"a": [1, 2]}, 29], id="dataclasses-copy-calendar"),
    pytest.param("""
class Account:
    def __init__(self, balance):
        self._balance = balance
        self._history = []

    @property
    def balance(self):
        return self._balance

    def _record(self, entry):
        self._history.append(entry)

    def deposit(self, amount):
        self._balance += amount
        self._record(("deposit", amount))
        return self

class Savings(Account):
    def interest(self):
        return self._balance // 10

def execute(job):
    account = Savings(100).deposit(50)
    return [account.balance, account.interest(), len(account._history), getattr(account, "_missing", None)]
""", [150, 15, 1, None], id="private-attributes-and-methods"),
    pytest.param("""
import datetime

class Order:
    \"\"\"An order.\"\"\"

    def __repr__(self):
        return f"<{type(self).__name__}>"

def execute(job):
    try:
        {}["missing"]
    except Exception as error:
        caught = type(error).__name__
    kinds = [type(v).__name__ for v in (1, "a", None, [], datetime.date(2026, 1, 1))]
    return [repr(Order()), caught, kinds, type(1.5) is float, Order.__doc__, execute.__name__,
            hash(("a", 1)) == hash(("a", 1)), {frozenset({1}): 1}[frozenset({1})]]
""", ["<Order>", "KeyError", ["int", "str", "NoneType", "list", "date"], True, "An order.", "execute", True, 1],
                 id="type-and-names"),
    pytest.param("""
import string
from collections import OrderedDict, namedtuple
from functools import total_ordering
from itertools import groupby
from typing import NamedTuple

from enum import Enum, IntEnum, auto

class Color(Enum):
    RED = 1
    GREEN = auto()

    def describe(self):
        return f"{self.name.lower()} ({self.value})"

class Level(IntEnum):
    LOW = 1
    HIGH = 2

class Planet(Enum):
    EARTH = (5.976e24, 6.37814e6)

    def __init__(self, mass, radius):
        self.mass = mass
        self.radius = radius

    @property
    def surface_gravity(self):
        return round(6.673e-11 * self.mass / (self.radius * self.radius), 2)

@total_ordering
class Version:
    def __init__(self, number):
        self.number = number

    def __eq__(self, other):
        return self.number == other.number

    def __lt__(self, other):
        return self.number < other.number

Point = namedtuple("Point", "x y", defaults=[0])

class Typed(NamedTuple):
    name: str
    size: int = 1

    def label(self):
        return string.Template("$name x$size").substitute(self._asdict())

class Vector(namedtuple("Vector", ["dx", "dy"])):
    def length2(self):
        return self.dx * self.dx + self.dy * self.dy

class LRU(OrderedDict):
    def touch(self, key):
        self.move_to_end(key)

def execute(job):
    od = OrderedDict(b=1, a=2, c=3)
    od.move_to_end("b")
    od.move_to_end("c", last=False)
    first = od.popitem(last=False)
    lru = LRU(x=1, y=2)
    lru.touch("x")
    rows = [("a", 1), ("a", 2), ("b", 3), ("a", 4)]
    groups = [[k, [v for _, v in g]] for k, g in groupby(rows, key=lambda r: r[0])]
    p = Point(1)
    q = p._replace(y=5)
    return [list(od), first, repr(od), od == OrderedDict(b=1, a=2), od == {"b": 1, "a": 2}, list(lru),
            groups, repr(p), q._asdict(), Vector(3, 4).length2(), Point._make([7, 8]).y,
            Typed("box").label(), repr(Typed("cup", 2)), Version(2) >= Version(1),
            [Color.GREEN.describe(), Color(1).name, [c.name for c in Color], Level.HIGH > Level.LOW,
             type(Color.RED).__name__, Planet.EARTH.surface_gravity]]
""", [["a", "b"], ["c", 3], "OrderedDict([('a', 2), ('b', 1)])", False, True, ["y", "x"],
      [["a", [1, 2]], ["b", [3]], ["a", [4]]], "Point(x=1, y=0)", {"x": 1, "y": 5}, 25, 8,
      "box x1", "Typed(name='cup', size=2)", True, ["green (2)", "RED", ["RED", "GREEN"], True, "Color", 9.8]],
                 id="ordered-dict-namedtuples-groupby-template"),
    pytest.param("""
from dataclasses import dataclass

@dataclass
class Move:
    direction: str
    steps: int = 1

def apply(position, command):
    x, y = position
    match command:
        case Move("up", steps=n) | Move("north", steps=n):
            return (x, y + n)
        case Move("down", n):
            return (x, y - n)
        case {"go": [dx, dy]}:
            return (x + dx, y + dy)
        case ["teleport", *place] if len(place) == 2:
            return tuple(place)
        case str(name):
            raise ValueError(f"unknown command {name}")
        case _:
            return position

def execute(job):
    position = (0, 0)
    for command in [Move("up", 2), Move("down"), {"go": [3, 4]}, ["teleport", 9, 9], 42]:
        position = apply(position, command)
    try:
        apply(position, "dance")
    except ValueError as error:
        return [list(position), str(error)]
""", [[9, 9], "unknown command dance"], id="match-statement"),
]


@pytest.mark.parametrize(("source", "expected"), CONTROLS)
def test_controls_succeed(harness, source, expected):
    outcome = harness.run(source)
    harness.assert_contained(outcome, "succeeded")
    assert outcome.result == expected
