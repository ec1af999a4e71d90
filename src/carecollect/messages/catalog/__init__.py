"""Message catalogs: every text a template shows, per language.

A catalog maps a message key (``"reminder.intro"``) to its text, with
``{placeholders}`` filled in at render time, or to a dict of CLDR plural
categories (``{"one": ..., "other": ...}``) chosen by Babel's plural rules for
the language. English is the source language; a built-in language must have
every English key (a test fails on a missing one). A vendor adds a language or
changes wording by passing a dict to
:class:`~carecollect.messages.render.Renderer` (``catalogs={"sv": {...}}``).

>>> cat = builtin_catalogs()
>>> sorted(cat)
['bg', 'de', 'en', 'nb']
>>> missing_keys(cat["en"], cat["de"])
()
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeAlias

__all__ = ["LANGUAGES", "Entry", "builtin_catalogs", "missing_keys"]

#: A catalog value: a text, or texts per CLDR plural category.
Entry: TypeAlias = str | dict[str, str]

#: Built-in languages.
LANGUAGES = ("en", "de", "nb", "bg")


def builtin_catalogs() -> dict[str, dict[str, Entry]]:
    """The built-in catalogs, keyed by language (fresh copies: safe to change).

    :returns: ``{"en": {...}, "de": {...}, "nb": {...}, "bg": {...}}``.
    """
    from . import bg, de, en, nb

    return {
        "en": dict(en.MESSAGES),
        "de": dict(de.MESSAGES),
        "nb": dict(nb.MESSAGES),
        "bg": dict(bg.MESSAGES),
    }


def missing_keys(source: Mapping[str, Entry], target: Mapping[str, Entry]) -> tuple[str, ...]:
    """Keys of ``source`` that ``target`` lacks, sorted.

    :param source: the reference catalog (English).
    :param target: the catalog to check.
    :returns: the missing keys.
    """
    return tuple(sorted(k for k in source if k not in target))
