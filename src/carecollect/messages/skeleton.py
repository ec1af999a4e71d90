"""Compiled skeletons: a template's fixed text rendered once, only the per-message values filled in.

A daily run renders the same few templates thousands of times with different values. The
renderer (:class:`~carecollect.messages.render.Renderer`) renders a template once with
*probes* in place of the message's values: each value of the ``v`` namespace becomes a
unique marker (private-use characters, so no template text or catalog text can hold one), the
message context becomes a watch that records every field the template reads. The output is
split at the markers into literal text and typed slots (the value as is, or HTML-escaped); a
paragraph the plain-text helpers wrap at 72 columns becomes a block that is filled and then
wrapped per message. The next message with the same shape reuses the skeleton and costs a few
string joins instead of a Jinja rendering.

The shape is everything the output depends on beyond the values filled into slots: the
template and its namespace (purpose, channel, language, jurisdiction's rights texts, payment
methods, glossary terms), which values are empty (a template tests them: ``{% if v.pay_link
%}``), and every field of the context the template read, with what it read (a plural count, an
optional paragraph, itemised lines). A message whose shape differs gets a skeleton of its own.

The context's sequences are followed item by item: iterating one (a statement's lines, their
reasons and codes, a letter's address) reads its length, and inside it a text becomes a slot of
its own (its truthiness read), a date or an amount given to ``date()`` or ``money()`` a slot
formatted per message (:func:`derived`; also the plain-language text of a remittance code), any
other plain value is read. So two statements with the same number of lines and the same kinds
of share differ only in their slots, whatever their descriptions, codes, dates and amounts. A
line of a character as long as a text holding values (a letter's subject underlined with
``"=" * (subject|length)``) is filled per message (:func:`measured`).

Whatever a probe cannot follow makes the skeleton *opaque* and the renderer renders that
shape with plain Jinja, never a wrong text: a value compared, measured otherwise, sliced,
transformed (``|upper``) or formatted with a width; a marker that comes out altered (escaped
twice); a value in a heading the plain-text helpers underline to its length or a table label
padded to the widest; a list item made of values only (an empty one is dropped). A template
with more than :data:`MAX_VARIANTS` shapes renders the shapes beyond them with Jinja.

The skeletons of one template are kept in a tree of their reads (:class:`SkeletonIndex`):
finding a message's skeleton resolves the reads on its path once, however many shapes exist.

This module holds the mechanism; the renderer decides when to use it. The equality with plain
Jinja rendering is proven by ``tests/test_messages_skeleton.py`` over every template shipped.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import enum
import functools
import operator
import re
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from markupsafe import escape

__all__ = [
    "MAX_VARIANTS",
    "Skeleton",
    "SkeletonBuild",
    "SkeletonIndex",
    "derived",
    "guarded",
    "has_marker",
    "is_none",
    "measured",
    "only_markers",
    "unwatch",
]

#: Skeletons kept per template and namespace; further shapes are rendered with plain Jinja.
MAX_VARIANTS = 512

_SLOT_OPEN, _SLOT_CLOSE, _BLOCK_OPEN, _BLOCK_CLOSE = "\ue000", "\ue001", "\ue002", "\ue003"
_INDEX_BASE = 0xE100
_MARKERS = frozenset(_SLOT_OPEN + _SLOT_CLOSE + _BLOCK_OPEN + _BLOCK_CLOSE)
#: a value as is (``<`` survives) or escaped once (``&lt;``); anything else is not a slot
_SPLIT = re.compile("\ue000([\ue100-\ue8ff])(<|&lt;)\ue001|\ue002([\ue100-\ue8ff])\ue003")
_PLAIN = (str, int, bool, float, Decimal, dt.date, type(None), enum.Enum)


class _Recording:
    """What one probing rendering saw: the reads that fix its shape, and whether it is opaque."""

    __slots__ = ("blocks", "derived", "names", "opaque", "reads")

    def __init__(self, names: int) -> None:
        self.reads: dict[tuple[Any, ...], Any] = {}
        self.opaque = False
        self.blocks: list[tuple[str, Any]] = []
        self.names = names
        #: slots filled from the context: ``(path, format)``, indices after the values'
        self.derived: list[tuple[tuple[Any, ...], Callable[[Any], str]]] = []

    def derive(self, path: tuple[Any, ...], fmt: Callable[[Any], str], real: Any) -> str:
        """A marker for ``fmt`` of the context's field at ``path``, filled per message."""
        index = self.names + len(self.derived)
        if index >= 0x700:
            self.opaque = True
            return fmt(real)
        self.derived.append((path, fmt))
        p = _Probe(_SLOT_OPEN + chr(_INDEX_BASE + index) + "<" + _SLOT_CLOSE)
        object.__setattr__(p, "_name", None)
        object.__setattr__(p, "_key", None)
        object.__setattr__(p, "_path", None)
        object.__setattr__(p, "_real", fmt(real))
        object.__setattr__(p, "_rec", self)
        return p

    def read(self, key: tuple[Any, ...], value: Any) -> None:
        self.reads.setdefault(key, value)


_ALLOWED = frozenset(
    {"_name", "_key", "_path", "_real", "_rec", "_opaque", "__class__", "__html__", "__html_format__"}
)


class _Probe(str):
    """A value's marker: renders as the marker, records its truthiness, refuses to be inspected.

    A probe stands for a value of ``v`` (``_key`` is ``("v", name)``), for a text of the context
    inside a sequence the template iterates (``_path`` is where it is, ``_key`` its truthiness
    read), or for a formatted field of the context (``money(line.charge)``: no key, its
    truthiness is not followed).
    """

    _name: str | None
    _key: tuple[Any, ...] | None
    _path: tuple[Any, ...] | None
    _real: str
    _rec: _Recording

    def __getattribute__(self, name: str) -> Any:
        if name not in _ALLOWED and not (name.startswith("__") and name.endswith("__")):
            object.__getattribute__(self, "_rec").opaque = True  # .upper(), .replace(), ...
            return getattr(object.__getattribute__(self, "_real"), name)
        return object.__getattribute__(self, name)

    def __bool__(self) -> bool:
        real = bool(self._real)
        key = self._key
        if key is None:
            self._rec.opaque = True
        else:
            self._rec.read(key, real)
        return real

    def _opaque(self) -> str:
        self._rec.opaque = True
        return self._real

    def __len__(self) -> int:
        return len(self._opaque())

    def __eq__(self, other: object) -> bool:
        return self._opaque() == other

    def __ne__(self, other: object) -> bool:
        return self._opaque() != other

    def __lt__(self, other: str) -> bool:
        return self._opaque() < other

    def __le__(self, other: str) -> bool:
        return self._opaque() <= other

    def __gt__(self, other: str) -> bool:
        return self._opaque() > other

    def __ge__(self, other: str) -> bool:
        return self._opaque() >= other

    def __hash__(self) -> int:
        return hash(self._opaque())

    def __contains__(self, other: object) -> bool:
        return other in self._opaque()  # type: ignore[operator]

    def __getitem__(self, index: Any) -> str:
        return self._opaque()[index]

    def __iter__(self) -> Any:
        return iter(self._opaque())

    def __mul__(self, n: Any) -> str:
        return str(self._opaque() * n)

    def __mod__(self, args: Any) -> str:
        return str(self._opaque() % args)

    def __format__(self, spec: str) -> str:
        if spec:
            return format(self._opaque(), spec)
        return str.__str__(self)

    def __str__(self) -> str:
        return str.__str__(self)


def _probe(name: str, index: int, real: str, rec: _Recording) -> _Probe:
    p = _Probe(_SLOT_OPEN + chr(_INDEX_BASE + index) + "<" + _SLOT_CLOSE)
    object.__setattr__(p, "_name", name)
    object.__setattr__(p, "_key", ("v", name))
    object.__setattr__(p, "_path", None)
    object.__setattr__(p, "_real", real)
    object.__setattr__(p, "_rec", rec)
    return p


def _identity(value: Any) -> str:
    return str(value)


def _item(value: Any, path: tuple[Any, ...], rec: _Recording) -> Any:
    """What a template gets for ``value`` at ``path`` inside an iterated sequence: a text becomes
    a slot (its truthiness read), a date a watch (:func:`derived` formats it per message), any
    other plain value is read (it fixes the shape), anything else is watched."""
    kind = type(value)
    if kind is str:
        p = rec.derive(path, _identity, value)
        if type(p) is _Probe:
            object.__setattr__(p, "_key", ("bool", path))
            object.__setattr__(p, "_path", path)
        return p
    if kind is dt.date:
        return _Watch(value, path, rec)
    if isinstance(value, _PLAIN):
        rec.read(("value", path), value)
        return value
    return _Watch(value, path, rec)


class _Watch:
    """A context object (or a part of one) that records every read a template makes of it."""

    __slots__ = ("_path", "_rec", "_target")

    def __init__(self, target: Any, path: tuple[str, ...], rec: _Recording) -> None:
        object.__setattr__(self, "_target", target)
        object.__setattr__(self, "_path", path)
        object.__setattr__(self, "_rec", rec)

    def _whole(self) -> Any:
        self._rec.read(("value", self._path), self._target)
        return self._target

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._target, name)
        path = (*self._path, name)
        if self._indexed():
            return _item(value, path, self._rec)
        if isinstance(value, _PLAIN):
            self._rec.read(("value", path), value)
            return value
        return _Watch(value, path, self._rec)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if args or kwargs:
            return self._whole()(*args, **kwargs)
        result = self._target()
        self._rec.read(("call", self._path), result)
        return result

    def __bool__(self) -> bool:
        result = bool(self._target)
        self._rec.read(("bool", self._path), result)
        return result

    def _indexed(self) -> bool:
        return any(type(step) is int for step in self._path)

    def __iter__(self) -> Any:
        target = self._target
        if type(target) not in (tuple, list):
            return iter(self._whole())
        self._rec.read(("len", self._path), len(target))
        rec, path = self._rec, self._path
        return iter([_item(value, (*path, i), rec) for i, value in enumerate(target)])

    def __len__(self) -> int:
        return len(self._whole())

    def __str__(self) -> str:
        return str(self._whole())

    def __format__(self, spec: str) -> str:
        return format(self._whole(), spec)

    def __eq__(self, other: object) -> bool:
        return bool(self._whole() == other)

    def __hash__(self) -> int:
        return hash(self._whole())

    def __getitem__(self, key: Any) -> Any:
        return self._whole()[key]

    def __contains__(self, item: object) -> bool:
        return item in self._whole()


def unwatch(value: Any) -> Any:
    """``value`` itself, or the object a watch stands for (read whole: its value fixes the shape)."""
    return value._whole() if type(value) is _Watch else value


@functools.lru_cache(maxsize=16384)
def _getter(path: tuple[Any, ...]) -> Callable[[Mapping[str, Any]], Any]:
    """The context's field at ``path`` (a root's name, then attribute names and indices), read
    by one function: each run of attribute names one :func:`operator.attrgetter`, each index one
    :func:`operator.itemgetter` (a skeleton reads the same paths for every message)."""
    root = path[0]
    steps: list[Callable[[Any], Any]] = []
    names: list[str] = []
    for step in path[1:]:
        if type(step) is int:
            if names:
                steps.append(operator.attrgetter(".".join(names)))
                names = []
            steps.append(operator.itemgetter(step))
        else:
            names.append(step)
    if names:
        steps.append(operator.attrgetter(".".join(names)))
    if not steps:
        return operator.itemgetter(root)
    if len(steps) == 1:
        only = steps[0]
        return lambda roots: only(roots[root])

    def get(roots: Mapping[str, Any]) -> Any:
        obj = roots[root]
        for step in steps:
            obj = step(obj)
        return obj

    return get


def _resolve(roots: Mapping[str, Any], kind: str, path: tuple[Any, ...]) -> Any:
    obj = _getter(path)(roots)
    if kind == "bool":
        return bool(obj)
    if kind == "call":
        return obj()
    if kind == "len":
        return len(obj)
    if kind == "none":
        return obj is None
    return obj


def _reader(key: tuple[Any, ...]) -> Callable[[Mapping[str, str], Mapping[str, Any]], Any]:
    """The result of the read ``key`` for a message's values and context: what :func:`_resolve`
    gives (or the truth of a value, for ``("v", name)``), as one function."""
    kind, what = key[0], key[1]
    if kind == "v":
        return lambda values, roots: bool(values[what])
    get = _getter(what)
    if kind == "bool":
        return lambda values, roots: bool(get(roots))
    if kind == "call":
        return lambda values, roots: get(roots)()
    if kind == "len":
        return lambda values, roots: len(get(roots))
    if kind == "none":
        return lambda values, roots: get(roots) is None
    return lambda values, roots: get(roots)


def derived(value: Any, fmt: Callable[[Any], str]) -> str | None:
    """A slot for ``fmt(value)`` when ``value`` is a watched field of the context (or a text of
    one inside an iterated sequence) in a probing rendering; ``None`` otherwise (format it then).
    """
    kind = type(value)
    if kind is not _Watch and (kind is not _Probe or value._path is None):
        return None
    rec: _Recording = value._rec
    return rec.derive(value._path, fmt, value._target if kind is _Watch else value._real)


def is_none(value: Any) -> bool:
    """Jinja's ``none`` test, following a watched field (whether it is ``None`` fixes the shape)."""
    if type(value) is _Watch:
        result = value._target is None
        value._rec.read(("none", value._path), result)
        return result
    return value is None


class Skeleton:
    """One template shape: literal text, slots and wrapped blocks, and the reads that select it.

    :param parts: literal strings, ``(index, escaped)`` slots and ``(parts, indent)`` blocks.
    :param reads: ``(kind, path) -> value`` the shape depends on.
    :param names: the value names by slot index.
    """

    __slots__ = ("_derive", "_pick", "derived", "names", "parts", "reads")

    def __init__(
        self,
        parts: list[Any] | None,
        reads: dict[tuple[Any, ...], Any],
        names: tuple[str, ...],
        derived: tuple[tuple[tuple[Any, ...], Callable[[Any], str]], ...] = (),
    ):
        self.parts = parts
        self.reads = tuple(reads.items())
        self.names = names
        self.derived = derived
        self._derive = tuple((_getter(path), fmt) for path, fmt in derived)
        #: the values by slot index, read in one call (a tuple of them, also for one name)
        self._pick: Callable[[Mapping[str, str]], tuple[str, ...]] = (
            operator.itemgetter(*names) if len(names) > 1 else lambda values: tuple(values[n] for n in names)
        )

    @property
    def opaque(self) -> bool:
        """Whether this shape renders with plain Jinja."""
        return self.parts is None

    def matches(self, values: Mapping[str, str], roots: Mapping[str, Any]) -> bool:
        """Whether a message of ``values`` and context ``roots`` has this shape."""
        for (kind, *rest), expected in self.reads:
            if kind == "v":
                if bool(values[rest[0]]) is not expected:
                    return False
                continue
            try:
                if _resolve(roots, kind, rest[0]) != expected:
                    return False
            except Exception:  # a field missing or failing here: not this shape
                return False
        return True

    def fill(
        self,
        values: Mapping[str, str],
        wrap: Callable[[str, str], str],
        roots: Mapping[str, Any] | None = None,
    ) -> str:
        """The rendering for ``values`` and the context ``roots`` (``wrap(text, indent)`` wraps a
        block)."""
        assert self.parts is not None
        return _join(self.parts, self.slot_values(values, roots), wrap)

    def slot_values(self, values: Mapping[str, str], roots: Mapping[str, Any] | None = None) -> list[str]:
        """What this shape's slots are filled with, by slot index, for ``values`` and ``roots``."""
        vals = list(self._pick(values))
        if self._derive:
            assert roots is not None
            vals += [fmt(get(roots)) for get, fmt in self._derive]
        return vals

    def fill_values(self, vals: list[str], wrap: Callable[[str, str], str]) -> str:
        """The rendering of :meth:`slot_values`' ``vals``."""
        assert self.parts is not None
        return _join(self.parts, vals, wrap)


def _join(parts: list[Any], vals: list[str], wrap: Callable[[str, str], str]) -> str:
    out: list[str] = []
    for part in parts:
        kind = type(part)
        if kind is str:
            out.append(part)
        elif kind is int:
            out.append(vals[part])
        elif kind is tuple and type(part[0]) is int:
            out.append(str(escape(vals[part[0]])))
        elif type(part[1]) is tuple:  # a line of a character as long as the filled text
            out.append(part[1][1] * len(_join(part[0], vals, wrap)))
        else:
            out.append(wrap(_join(part[0], vals, wrap), part[1]))
    return "".join(out)


class _Node:
    __slots__ = ("children", "key", "leaf", "read")

    def __init__(self) -> None:
        self.key: tuple[Any, ...] | None = None
        #: :func:`_reader` of :attr:`key`
        self.read: Callable[[Mapping[str, str], Mapping[str, Any]], Any] | None = None
        self.children: dict[Any, _Node] = {}
        self.leaf: Skeleton | None = None


class SkeletonIndex:
    """The skeletons of one template and namespace, found by their reads in one walk.

    A template reads the same field next whenever the reads before gave the same results (its
    output depends on nothing else), so the skeletons form a tree: each node is a read, each
    branch one result of it, each leaf a skeleton. Finding a message's skeleton costs one
    resolution per read on its path, not a comparison with every skeleton kept. A skeleton whose
    reads do not fit the tree (an unhashable result) is kept aside and compared in full.
    """

    __slots__ = ("_aside", "_root")

    def __init__(self) -> None:
        self._root = _Node()
        self._aside: list[Skeleton] = []

    def find(self, values: Mapping[str, str], roots: Mapping[str, Any]) -> Skeleton | None:
        """The skeleton of a message of ``values`` and context ``roots``, if one was built."""
        node = self._root
        while node.leaf is None:
            read = node.read
            if read is None:
                break
            try:
                child = node.children.get(read(values, roots))
            except Exception:  # a field missing, failing or unhashable here: no shape of the tree
                break
            if child is None:
                break
            node = child
        else:
            return node.leaf
        for skeleton in self._aside:
            if skeleton.matches(values, roots):
                return skeleton
        return None

    def add(self, skeleton: Skeleton) -> None:
        """Keep ``skeleton``."""
        node = self._root
        try:
            for key, expected in skeleton.reads:
                if node.leaf is not None or (node.key is not None and node.key != key):
                    raise LookupError(key)
                if node.key is None:
                    node.key, node.read = key, _reader(key)
                node = node.children.setdefault(expected, _Node())
            if node.key is not None or node.leaf is not None:
                raise LookupError(skeleton.reads)
        except (LookupError, TypeError):
            self._aside.append(skeleton)
            return
        node.leaf = skeleton


class SkeletonBuild:
    """One probing rendering: the probes to render with, then :meth:`finish` to split the output.

    :param values: the message's values (``v`` of the templates).
    """

    def __init__(self, values: Mapping[str, str]) -> None:
        self.names = tuple(values)
        self.rec = _Recording(len(self.names))
        self.probes = {n: _probe(n, i, values[n], self.rec) for i, n in enumerate(self.names)}

    def watch(self, target: Any, root: str) -> Any:
        """``target`` (a root of the context, ``None`` left alone) watched for reads."""
        return None if target is None else _Watch(target, (root,), self.rec)

    def block(self, text: str, indent: Any) -> str:
        """A marker for ``text`` wrapped with ``indent`` once filled (``("repeat", char)``: a line
        of ``char`` as long as the filled text)."""
        if _BLOCK_OPEN in text or len(self.rec.blocks) >= 0x700:
            self.rec.opaque = True
        self.rec.blocks.append((text, indent))
        return _BLOCK_OPEN + chr(_INDEX_BASE + len(self.rec.blocks) - 1) + _BLOCK_CLOSE

    def opaque(self) -> None:
        """Mark the shape as one the probes cannot follow."""
        self.rec.opaque = True

    def __enter__(self) -> SkeletonBuild:
        self._token = _BUILDING.set(self)
        return self

    def __exit__(self, *exc: object) -> None:
        _BUILDING.reset(self._token)

    def finish(self, output: str) -> Skeleton:
        """The skeleton of a probing rendering's ``output`` (opaque if anything was not followed)."""
        parts = None if self.rec.opaque else self._split(output, allow_blocks=True)
        return Skeleton(parts, self.rec.reads, self.names, tuple(self.rec.derived))

    def _split(self, text: str, *, allow_blocks: bool) -> list[Any] | None:
        parts: list[Any] = []
        pos = 0
        for m in _SPLIT.finditer(text):
            literal = text[pos : m.start()]
            if _MARKERS.intersection(literal):
                return None
            if literal:
                parts.append(literal)
            if m[1] is not None:
                index = ord(m[1]) - _INDEX_BASE
                if index >= len(self.names) + len(self.rec.derived):
                    return None
                parts.append(index if m[2] == "<" else (index, True))
            else:
                index = ord(m[3]) - _INDEX_BASE
                if not allow_blocks or index >= len(self.rec.blocks):
                    return None
                body, indent = self.rec.blocks[index]
                inner = self._split(body, allow_blocks=False)
                if inner is None or any(type(p) is tuple for p in inner):
                    return None
                parts.append((inner, indent))
            pos = m.end()
        tail = text[pos:]
        if _MARKERS.intersection(tail):
            return None
        if tail:
            parts.append(tail)
        return parts


def has_marker(text: str) -> bool:
    """Whether ``text`` holds a value's marker (the plain-text helpers then defer or refuse)."""
    text = str.__str__(text)  # a probe's own ``in`` would make the shape opaque
    return _SLOT_OPEN in text or _BLOCK_OPEN in text


def only_markers(text: str) -> bool:
    """Whether ``text`` is nothing but markers (its truthiness then depends on the values)."""
    return not _SPLIT.sub("", str.__str__(text))


_BUILDING: contextvars.ContextVar[SkeletonBuild | None] = contextvars.ContextVar(
    "carecollect_skeleton_build", default=None
)


def _marked(arg: object) -> bool:
    return type(arg) is _Watch or (isinstance(arg, str) and has_marker(arg))


def guarded(func: Callable[..., Any]) -> Callable[..., Any]:
    """``func`` (a Jinja filter or test) making a probing rendering opaque when it is given a value
    (``|length`` of a text with a value in it, ``|upper`` of a value): its result would be the
    marker's, not the value's."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        build = _BUILDING.get()
        if build is not None and any(map(_marked, (*args, *kwargs.values()))):
            build.opaque()
        return func(*args, **kwargs)

    return wrapper


class _Length(int):
    """The length of a text holding a value: right only as the count of a line of a character
    (``"=" * (subject|length)``, filled per message); any other use makes the shape opaque."""

    _text: str
    _build: SkeletonBuild

    def _opaque(self) -> int:
        self._build.opaque()
        return int(self)

    def __rmul__(self, other: Any) -> Any:
        if type(other) is str and not has_marker(other):
            return self._build.block(self._text, ("repeat", other))
        return other * self._opaque()

    def __mul__(self, other: Any) -> Any:
        return self._opaque() * other

    def __add__(self, other: Any) -> Any:
        return self._opaque() + other

    __radd__ = __add__

    def __sub__(self, other: Any) -> Any:
        return self._opaque() - other

    def __rsub__(self, other: Any) -> Any:
        return other - self._opaque()

    def __eq__(self, other: object) -> bool:
        return self._opaque() == other

    def __ne__(self, other: object) -> bool:
        return self._opaque() != other

    def __lt__(self, other: Any) -> bool:
        return bool(self._opaque() < other)

    def __le__(self, other: Any) -> bool:
        return bool(self._opaque() <= other)

    def __gt__(self, other: Any) -> bool:
        return bool(self._opaque() > other)

    def __ge__(self, other: Any) -> bool:
        return bool(self._opaque() >= other)

    def __hash__(self) -> int:
        return hash(self._opaque())

    def __bool__(self) -> bool:
        return bool(self._opaque())

    def __index__(self) -> int:
        return self._opaque()

    def __int__(self) -> int:
        return self._opaque()

    def __float__(self) -> float:
        return float(self._opaque())

    def __str__(self) -> str:
        return str(self._opaque())

    def __repr__(self) -> str:
        return repr(self._opaque())

    def __format__(self, spec: str) -> str:
        return format(self._opaque(), spec)

    def __truediv__(self, other: Any) -> Any:
        return self._opaque() / other

    def __floordiv__(self, other: Any) -> Any:
        return self._opaque() // other

    def __mod__(self, other: Any) -> Any:
        return self._opaque() % other


def measured(func: Callable[..., Any]) -> Callable[..., Any]:
    """``func`` (Jinja's ``length`` filter) guarded, except that the length of a text holding a
    value may make a line of a character as long as the text (a letter's underlined subject)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        build = _BUILDING.get()
        if build is not None and len(args) == 1 and not kwargs:
            (obj,) = args
            if type(obj) is str and has_marker(obj):
                length = _Length(len(obj))
                object.__setattr__(length, "_text", obj)
                object.__setattr__(length, "_build", build)
                return length
        return guarded(func)(*args, **kwargs)

    return wrapper
