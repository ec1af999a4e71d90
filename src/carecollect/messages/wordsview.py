"""The words the tone check reads, put together from a message's skeletons.

:func:`~carecollect.messages.checks.check_rendering` reads a message's words (its subject, text
and HTML part, white space made single spaces, tags dropped, entities decoded, the quoted rights
and glossary texts taken out, case-folded: :func:`~carecollect.messages.checks.tone_words`).
Made from the rendered text, that costs a few passes over some 7 kB per e-mail. A message
rendered from skeletons (:mod:`carecollect.messages.skeleton`) has the same fixed text as the
last one of its shape: a :class:`WordsView` does that work once per combination of skeletons
(the shape's fixed text with a marker for each value) and per message only puts the values,
each with its white space made single spaces and case-folded, between the prepared pieces.

The pieces equal the words of the rendered message whenever the values are *plain*; otherwise
:meth:`WordsView.words` gives ``None`` and the words are made from the rendered text. A value is
plain when it is not empty, has no white space at either end, holds no ``<`` and no pair of full
stops, does not put a full stop next to one of the fixed text (the renderer makes such a pair
one), and, filled into the HTML part unescaped, holds no ``>`` or ``&``; and a line of a
character as long as a filled text must not come out empty. A combination whose fixed text
holds a pair of full stops, an unfinished character reference before a value, a line of full
stops or a marker's character, or a wrapped paragraph with white space at either end, has no
view (:func:`words_view` gives ``None``). Wrapping a paragraph with words at both ends changes
only its white space (at spaces only, no word broken), which the words do not see.

One difference is by design: a quoted reference text is taken out of the fixed text only. A
value that, together with the fixed text around it, spelled out a rights or glossary text would
be read (and checked) here, where the rendered text's words would skip it.

``tests/test_messages_wordsview.py`` holds the two equal over every template shipped, with
random values, plain or not.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from .checks import _squeezed, html_to_text
from .skeleton import Skeleton, _join

__all__ = ["HTML", "SUBJECT", "TEXT", "VALUE", "WordsView", "words_view"]

#: The markers: supplementary private-use characters (plane 15), one per part and slot, and per
#: part and line of a character as long as a filled text (a heading's underline).
_BASE = 0xF0000
_PART = 0x4000
_REPEAT = 0x3000
_MARKER = re.compile("([\U000f0000-\U000ffffd])")
#: Part kinds: how :func:`~carecollect.messages.checks.tone_words` reads a part.
SUBJECT, TEXT, HTML = "subject", "text", "html"
#: The source of a part that is one value as a whole (a letter's subject from the catalog).
VALUE = "value"

#: what a full stop before or after a marker may have between it and the marker (the renderer's
#: pair of full stops allows tags between them); another marker counts as a full stop (its value
#: may end in one)
_DOT_AFTER = re.compile("(?:</?[a-z]+>)*[.\U000f0000-\U000ffffd]")
_DOT_BEFORE = re.compile("[.\U000f0000-\U000ffffd](?:</?[a-z]+>)*\\Z")
_ENTITY_OPEN = re.compile(r"&[#\w]*\Z")


class _NoView(Exception):
    """The fixed text cannot be prepared (the words are made from the rendered text)."""


class WordsView:
    """The words of one combination of skeletons, prepared: fixed pieces and the slots between.

    Made by :func:`words_view`; :meth:`words` puts a message's values in.
    """

    __slots__ = ("_dot_after", "_dot_before", "_fixed", "_order", "_raw_html", "_repeats", "_slots")

    def __init__(
        self,
        pieces: list[Any],
        checks: dict[tuple[int, int], tuple[bool, bool, bool]],
        repeats: dict[tuple[int, int], tuple[str, list[Any]]],
    ) -> None:
        #: every slot of the message (each checked), then the lines of a character
        self._slots = list(checks)
        self._dot_before = [n for n, (before, _, _) in enumerate(checks.values()) if before]
        self._dot_after = [n for n, (_, after, _) in enumerate(checks.values()) if after]
        self._raw_html = [n for n, (_, _, raw) in enumerate(checks.values()) if raw]
        self._repeats = [(key[0], *repeats[key]) for key in repeats]
        where = {slot: n for n, slot in enumerate(self._slots)}
        where |= {key: len(self._slots) + n for n, key in enumerate(repeats)}
        #: the fixed pieces, one more than the slots between them (``_order``: which value)
        self._fixed: list[str] = [""]
        self._order: list[int] = []
        for piece in pieces:
            if type(piece) is str:
                self._fixed[-1] += piece
            else:
                self._order.append(where[piece])
                self._fixed.append("")

    def words(self, vals: Sequence[list[str]], wrap: Callable[[str, str], str]) -> str | None:
        """The words for the slot values ``vals`` (per part, as :meth:`Skeleton.slot_values`
        gives them), or ``None`` when a value is not plain (see the module)."""
        vs = [vals[part][index] for part, index in self._slots]
        if not all(vs):
            return None
        joined = "\x00".join(vs)
        if "<" in joined or ".." in joined:
            return None
        for v in vs:
            if v.strip() != v:  # white space at an end
                return None
        for n in self._dot_after:
            if vs[n][-1] == ".":
                return None
        for n in self._dot_before:
            if vs[n][0] == ".":
                return None
        for n in self._raw_html:
            if ">" in vs[n] or "&" in vs[n]:
                return None
        words = [" ".join(v.split()).casefold() for v in vs]
        for part, char, inner in self._repeats:
            line = char * len(_join(inner, vals[part], wrap))
            if not line:  # nothing between the white space around it
                return None
            words.append(line.casefold())
        out: list[str] = [""] * (2 * len(self._order) + 1)
        out[::2] = self._fixed
        out[1::2] = [words[n] for n in self._order]
        return "".join(out)


def words_view(
    parts: Sequence[tuple[str, Skeleton | str | None]],
    tone_exempt: Sequence[str],
    wrap: Callable[[str, str], str],
) -> WordsView | None:
    """The :class:`WordsView` of a message's parts, in the order
    :func:`~carecollect.messages.checks.tone_words` reads them: ``(kind, source)`` with ``kind``
    one of ``"subject"``, ``"text"`` or ``"html"`` and ``source`` the part's skeleton,
    :data:`VALUE` (the part is one value: its slot 0) or ``None`` (no such part); ``None`` when
    the fixed text cannot be prepared (see the module).

    :param tone_exempt: the quoted reference texts the tone check skips.
    :param wrap: the renderer's paragraph wrapping (a block without values is wrapped as is).
    """
    try:
        return _build(parts, tone_exempt, wrap)
    except _NoView:
        return None


def _build(
    parts: Sequence[tuple[str, Skeleton | str | None]],
    tone_exempt: Sequence[str],
    wrap: Callable[[str, str], str],
) -> WordsView:
    from .render import _STOP_PAIR  # the renderer's pair of full stops (it imports this module)

    checks: dict[tuple[int, int], list[bool]] = {}
    repeats: dict[tuple[int, int], tuple[str, list[Any]]] = {}
    raw_html: set[tuple[int, int]] = set()
    words: list[str] = []
    #: the first part whose skeleton has the same value names: a value slot of a later one is
    #: the same value (checked and made into words once per message)
    first: dict[int, int] = {}
    names_of: dict[int, tuple[str, ...]] = {}
    for number, (kind, source) in enumerate(parts):
        if source is None:
            continue
        if isinstance(source, Skeleton):
            if source.parts is None:
                raise _NoView
            first[number] = next((n for n, names in names_of.items() if names == source.names), number)
            names_of[number] = source.names
            raw = _flatten(source.parts, number, repeats, raw_html, wrap, html=kind == HTML)
        elif source == VALUE:
            raw = chr(_BASE + number * _PART)  # the whole part is one value (slot 0)
        else:
            raise TypeError(f"a part's source is a skeleton, VALUE or None, not {source!r}")
        if _STOP_PAIR.search(raw):
            raise _NoView  # the fixed text has a pair of full stops the renderer makes one
        for m in _MARKER.finditer(raw):
            part, index = _slot(m[1])
            if index < 0:
                continue
            if kind == HTML and _ENTITY_OPEN.search(raw, 0, m.start()):
                raise _NoView  # a value would finish a character reference of the fixed text
            flags = checks.setdefault((part, index), [False, False])
            flags[0] |= _DOT_BEFORE.search(raw, 0, m.start()) is not None
            flags[1] |= _DOT_AFTER.match(raw, m.end()) is not None
        # as tone_words reads the parts the renderer gives: a subject or an HTML part when it has
        # words (a subject that is one value has them: a plain value has words), the text
        # always (it ends in a line end)
        squeezed = html_to_text(raw) if kind == HTML else " ".join(raw.split())
        if squeezed or kind == TEXT:
            words.append(squeezed)
    whole = " ".join(words)
    for quoted in tone_exempt:
        whole = whole.replace(_squeezed(quoted), " ")

    def same(slot: tuple[int, int]) -> tuple[int, int]:
        part, index = slot
        if 0 <= index < len(names_of.get(part, ())):
            return first[part], index
        return slot

    pieces: list[Any] = []
    for i, piece in enumerate(_MARKER.split(whole.casefold())):
        if i % 2 == 1:
            pieces.append(same(_slot(piece)))
        elif piece:
            pieces.append(piece)
    merged: dict[tuple[int, int], tuple[bool, bool, bool]] = {}
    for slot, (before, after) in checks.items():
        was = merged.get(same(slot), (False, False, False))
        merged[same(slot)] = (was[0] or before, was[1] or after, was[2] or slot in raw_html)
    return WordsView(pieces, merged, repeats)


def _slot(marker: str) -> tuple[int, int]:
    """``(part, slot)`` of a value's marker, ``(part, -1 - n)`` of the n-th line of a character."""
    part, index = divmod(ord(marker) - _BASE, _PART)
    return (part, index) if index < _REPEAT else (part, _REPEAT - 1 - index)


def _flatten(
    parts: list[Any],
    number: int,
    repeats: dict[tuple[int, int], tuple[str, list[Any]]],
    raw_html: set[tuple[int, int]],
    wrap: Callable[[str, str], str],
    *,
    html: bool,
) -> str:
    """A skeleton's text (part ``number`` of the message) with a marker for each slot and each
    line of a character; the slots filled unescaped into HTML are added to ``raw_html``."""
    out: list[str] = []
    for part in parts:
        kind = type(part)
        if kind is str:
            if _MARKER.search(part):
                raise _NoView
            out.append(part)
        elif kind is int or (kind is tuple and type(part[0]) is int):
            index = part if kind is int else part[0]
            if index >= _REPEAT:
                raise _NoView
            if html and kind is int:
                raw_html.add((number, index))
            out.append(chr(_BASE + number * _PART + index))
        elif type(part[1]) is tuple:  # a line of a character as long as the filled text
            char = part[1][1]
            if not char or "." in char or "<" in char or char.isspace() or _MARKER.search(char):
                raise _NoView
            n = sum(1 for p, _ in repeats if p == number)
            if _REPEAT + n >= _PART:
                raise _NoView
            repeats[number, -1 - n] = (char, part[0])
            out.append(chr(_BASE + number * _PART + _REPEAT + n))
        else:
            inner, indent = part
            if not any(type(p) is int for p in inner):
                out.append(wrap(_join(inner, [], wrap), indent))  # no value: wrapped as it is
                continue
            body = _flatten(inner, number, repeats, raw_html, wrap, html=html)
            if body != body.strip():
                # wrapping keeps a paragraph's leading white space and drops (some of) its
                # trailing: only a paragraph with words at both ends wraps to white space changes
                raise _NoView
            out.append(indent + body)
    return "".join(out)
