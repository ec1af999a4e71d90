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

Whatever a probe cannot follow makes the skeleton *opaque* and the renderer renders that
shape with plain Jinja, never a wrong text: a value compared, measured, sliced, transformed
(``|upper``) or formatted with a width; a marker that comes out altered (escaped twice);
a value in a heading underlined to its length or a table label padded to the widest; a list
item made of values only (an empty one is dropped). A template shape with many variants (a
letter's address, a statement's lines) stops being compiled after :data:`MAX_VARIANTS`
and is rendered with Jinja from then on.

This module holds the mechanism; the renderer decides when to use it. The equality with plain
Jinja rendering is proven by ``tests/test_messages_skeleton.py`` over every template shipped.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import enum
import functools
import re
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from markupsafe import escape

__all__ = [
    "MAX_VARIANTS",
    "Skeleton",
    "SkeletonBuild",
    "guarded",
    "has_marker",
    "only_markers",
    "unwatch",
]

#: Skeletons kept per template and namespace; further shapes are rendered with plain Jinja.
MAX_VARIANTS = 32

_SLOT_OPEN, _SLOT_CLOSE, _BLOCK_OPEN, _BLOCK_CLOSE = "\ue000", "\ue001", "\ue002", "\ue003"
_INDEX_BASE = 0xE100
_MARKERS = frozenset(_SLOT_OPEN + _SLOT_CLOSE + _BLOCK_OPEN + _BLOCK_CLOSE)
#: a value as is (``<`` survives) or escaped once (``&lt;``); anything else is not a slot
_SPLIT = re.compile("\ue000([\ue100-\ue8ff])(<|&lt;)\ue001|\ue002([\ue100-\ue8ff])\ue003")
_PLAIN = (str, int, bool, float, Decimal, dt.date, type(None), enum.Enum)


class _Recording:
    """What one probing rendering saw: the reads that fix its shape, and whether it is opaque."""

    __slots__ = ("blocks", "opaque", "reads")

    def __init__(self) -> None:
        self.reads: dict[tuple[Any, ...], Any] = {}
        self.opaque = False
        self.blocks: list[tuple[str, str]] = []

    def read(self, key: tuple[Any, ...], value: Any) -> None:
        self.reads.setdefault(key, value)


_ALLOWED = frozenset({"_name", "_real", "_rec", "_opaque", "__class__", "__html__", "__html_format__"})


class _Probe(str):
    """A value's marker: renders as the marker, records its truthiness, refuses to be inspected."""

    _name: str
    _real: str
    _rec: _Recording

    def __getattribute__(self, name: str) -> Any:
        if name not in _ALLOWED and not (name.startswith("__") and name.endswith("__")):
            object.__getattribute__(self, "_rec").opaque = True  # .upper(), .replace(), ...
            return getattr(object.__getattribute__(self, "_real"), name)
        return object.__getattribute__(self, name)

    def __bool__(self) -> bool:
        real = bool(self._real)
        self._rec.read(("v", self._name), real)
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
    object.__setattr__(p, "_real", real)
    object.__setattr__(p, "_rec", rec)
    return p


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

    def __iter__(self) -> Any:
        return iter(self._whole())

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


def _resolve(roots: Mapping[str, Any], kind: str, path: tuple[str, ...]) -> Any:
    obj = roots[path[0]]
    for name in path[1:]:
        obj = getattr(obj, name)
    if kind == "bool":
        return bool(obj)
    if kind == "call":
        return obj()
    return obj


class Skeleton:
    """One template shape: literal text, slots and wrapped blocks, and the reads that select it.

    :param parts: literal strings, ``(index, escaped)`` slots and ``(parts, indent)`` blocks.
    :param reads: ``(kind, path) -> value`` the shape depends on.
    :param names: the value names by slot index.
    """

    __slots__ = ("names", "parts", "reads")

    def __init__(self, parts: list[Any] | None, reads: dict[tuple[Any, ...], Any], names: tuple[str, ...]):
        self.parts = parts
        self.reads = tuple(reads.items())
        self.names = names

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

    def fill(self, values: Mapping[str, str], wrap: Callable[[str, str], str]) -> str:
        """The rendering for ``values`` (``wrap(text, indent)`` wraps a block)."""
        assert self.parts is not None
        return _join(self.parts, [values[n] for n in self.names], wrap)


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
        else:
            out.append(wrap(_join(part[0], vals, wrap), part[1]))
    return "".join(out)


class SkeletonBuild:
    """One probing rendering: the probes to render with, then :meth:`finish` to split the output.

    :param values: the message's values (``v`` of the templates).
    """

    def __init__(self, values: Mapping[str, str]) -> None:
        self.rec = _Recording()
        self.names = tuple(values)
        self.probes = {n: _probe(n, i, values[n], self.rec) for i, n in enumerate(self.names)}

    def watch(self, target: Any, root: str) -> Any:
        """``target`` (a root of the context, ``None`` left alone) watched for reads."""
        return None if target is None else _Watch(target, (root,), self.rec)

    def block(self, text: str, indent: str) -> str:
        """A marker for ``text`` wrapped with ``indent`` once filled."""
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
        return Skeleton(parts, self.rec.reads, self.names)

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
                if index >= len(self.names):
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
