"""Gettext ``.po`` files for the message catalogs: what translators and their tools use.

carecollect keeps its built-in texts as Python dicts (one per language, see
:mod:`carecollect.messages.catalog`). Translators work in gettext ``.po``
files (Poedit, Weblate, Pootle, Lokalise), so this module turns a catalog
into a ``.po`` file and back with Babel's gettext support:

* every message's **key is its** ``msgctxt`` and the **English text is its**
  ``msgid``, so a translator sees the source sentence and the key stays stable;
* texts with ``{placeholders}`` carry the ``python-brace-format`` flag, which
  tools use to warn about a lost or misspelt placeholder;
* counted words become gettext plurals (``msgid_plural``, ``msgstr[n]``); the
  gettext plural index is mapped to CLDR plural categories (``one``,
  ``few``, ``other``...) by evaluating the language's ``Plural-Forms``
  expression and Babel's CLDR rules on the same numbers;
* on reading, a **fuzzy** or **empty** translation counts as missing, so a
  half-finished file cannot go out: :meth:`Renderer.missing
  <carecollect.messages.render.Renderer.missing>` lists it and rendering a
  message that needs it raises :class:`~carecollect.messages.render.MissingTranslation`.

A vendor hands :class:`~carecollect.messages.render.Renderer` a ``.po`` path
instead of a dict (``Renderer(catalogs={"sv": "locale/sv.po"})``).

>>> po = export_po("de")
>>> 'msgctxt "closing"' in po and 'msgid "Kind regards,"' in po and 'msgstr "Mit freundlichen Grüßen"' in po
True
>>> from carecollect.messages.catalog import builtin_catalogs
>>> read_po(po, "de") == builtin_catalogs()["de"]
True
"""

from __future__ import annotations

import gettext as _gettext
import io
import os
import re
from collections.abc import Mapping
from pathlib import Path

import babel
from babel.messages import pofile
from babel.messages.catalog import Catalog

from ..errors import ConfigurationError, ValidationError
from .catalog import Entry, builtin_catalogs

__all__ = ["export_po", "export_pot", "plural_categories", "read_po"]

_PLACEHOLDER = re.compile(r"\{[a-z_]+\}")
#: Numbers sampled to match gettext plural indices to CLDR categories.
_SAMPLES = (*range(0, 1001), 1_000_000)


def plural_categories(language: str) -> tuple[str, ...]:
    """The CLDR plural category of each gettext plural index of ``language``.

    :param language: a language code Babel knows.
    :returns: one category per ``msgstr[n]``, in index order.
    :raises ConfigurationError: the language is unknown to Babel.

    >>> plural_categories("de"), plural_categories("pl")
    (('one', 'other'), ('one', 'few', 'many'))
    """
    try:
        locale = babel.Locale.parse(language)
    except (ValueError, babel.UnknownLocaleError):
        raise ConfigurationError(
            f"no locale data for language {language!r}; use a CLDR language code"
        ) from None
    catalog = Catalog(locale=locale)
    index_of = _gettext.c2py(catalog.plural_expr)
    found: dict[int, str] = {}
    for n in _SAMPLES:
        found.setdefault(index_of(n), locale.plural_form(n))
    return tuple(found.get(i, "other") for i in range(catalog.num_plurals))


def _flags(*texts: str) -> tuple[str, ...]:
    return ("python-brace-format",) if any(_PLACEHOLDER.search(t) for t in texts) else ()


def _catalog(language: str, target: Mapping[str, Entry] | None, *, template: bool) -> Catalog:
    source = builtin_catalogs()["en"]
    catalog = Catalog(
        locale=None if template else language,
        domain="carecollect",
        project="carecollect",
        copyright_holder="the carecollect contributors",
        fuzzy=False,
        charset="utf-8",
    )
    cats = ("one", "other") if template else plural_categories(language)
    for key, english in source.items():
        theirs = None if target is None else target.get(key)
        if isinstance(english, dict):
            msgid: str | tuple[str, str] = (english.get("one", english["other"]), english["other"])
            if isinstance(theirs, dict):
                string: str | tuple[str, ...] = tuple(theirs.get(c, theirs.get("other", "")) for c in cats)
            else:
                string = tuple("" for _ in cats)
            flags = _flags(*msgid)
        else:
            msgid = english
            string = theirs if isinstance(theirs, str) else ""
            flags = _flags(english)
        catalog.add(msgid, string, context=key, flags=flags)
    return catalog


def _write(catalog: Catalog) -> str:
    out = io.BytesIO()
    pofile.write_po(out, catalog, width=0, omit_header=False, sort_output=False)
    return out.getvalue().decode("utf-8")


def export_pot() -> str:
    """The template (``carecollect.pot``): every English text with its key, no translations.

    :returns: the ``.pot`` text.
    """
    return _write(_catalog("en", None, template=True))


def export_po(language: str, catalog: Mapping[str, Entry] | None = None) -> str:
    """A ``.po`` file for ``language`` with the built-in (or given) translations filled in.

    Keys the catalog lacks are written with an empty ``msgstr`` for the translator to fill.

    :param language: the language code (``"de"``, ``"sv"``).
    :param catalog: the translations (default: the built-in catalog of ``language``, if any).
    :returns: the ``.po`` text (UTF-8).
    :raises ConfigurationError: the language is unknown to Babel.
    """
    if catalog is None:
        catalog = builtin_catalogs().get(language, {})
    return _write(_catalog(language, catalog, template=False))


def read_po(source: str | os.PathLike[str], language: str) -> dict[str, Entry]:
    """Read a ``.po`` file (a path, or its text) into a catalog dict.

    Fuzzy and untranslated entries are left out (they count as missing).

    :param source: a path to a ``.po`` file, or the text of one.
    :param language: the language the file translates into (for plural forms).
    :returns: ``{key: text or {category: text}}``, for :class:`~carecollect.messages.render.Renderer`.
    :raises ConfigurationError: the file does not exist.
    :raises ValidationError: an entry has no ``msgctxt`` (the message key).

    >>> po = export_po("sv", {"closing": "Med vänliga hälsningar"})
    >>> read_po(po, "sv")
    {'closing': 'Med vänliga hälsningar'}
    """
    if isinstance(source, os.PathLike) or (isinstance(source, str) and "\n" not in source):
        path = Path(source)
        if not path.is_file():
            raise ConfigurationError(f"gettext catalog {str(path)!r} does not exist")
        data = path.read_bytes()
        where = str(path)
    else:
        data = str(source).encode("utf-8")
        where = f"<{language} .po text>"
    catalog = pofile.read_po(io.BytesIO(data), locale=language, ignore_obsolete=True)
    cats = plural_categories(language)
    out: dict[str, Entry] = {}
    for message in catalog:
        if not message.id:
            continue  # the header
        if not message.context:
            raise ValidationError(
                f"gettext catalog {where}",
                "msgctxt",
                f"the entry {str(message.id)[:40]!r} has no msgctxt; start from carecollect's export_pot()",
            )
        if message.fuzzy:
            continue
        if message.pluralizable:
            given = message.string if isinstance(message.string, tuple | list) else (message.string,)
            strings = [str(s) for s in given if s]
            if not strings or len(strings) != len(given):
                continue
            out[message.context] = {cats[i] if i < len(cats) else "other": s for i, s in enumerate(strings)}
        elif message.string:
            out[message.context] = str(message.string)
    return out
