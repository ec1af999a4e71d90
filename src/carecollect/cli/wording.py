"""Counted words in what the command line prints, with each language's plural rules from Babel.

"1 week", "4 weeks" (never "week(s)"); the same call gives "1 uke", "4 uker" in Norwegian,
"1 Woche", "4 Wochen" in German and "1 седмица", "4 седмици" in Bulgarian.

>>> duration(1, "week"), duration(4, "week", "nb"), duration(2, "day", "de")
('1 week', '4 uker', '2 Tage')
>>> counted(1, "problem", "problems"), counted(3, "problem", "problems")
('1 problem', '3 problems')
"""

from __future__ import annotations

import babel
import babel.units

__all__ = ["counted", "duration"]


def duration(n: int, unit: str, language: str = "en") -> str:
    """``n`` of a time ``unit`` (``week``, ``day``, ``hour``...) written out in ``language``.

    :param n: how many.
    :param unit: a CLDR duration unit without its ``duration-`` prefix.
    :param language: a language tag Babel knows (``en``, ``nb``, ``de``, ``bg``...).
    """
    return str(babel.units.format_unit(n, f"duration-{unit}", length="long", locale=language))


def counted(n: int, one: str, other: str, language: str = "en") -> str:
    """``n`` and the word in the form ``language``'s plural rule picks for ``n``.

    The command line's own words are English; the rule still comes from Babel's CLDR data, so a
    caller with words in another language passes them with its language tag.

    :param n: how many.
    :param one: the word for the plural category ``one``.
    :param other: the word for every other category.
    :param language: whose plural rule decides.
    """
    form = babel.Locale.parse(language).plural_form(n)
    return f"{n} {one if form == 'one' else other}"
