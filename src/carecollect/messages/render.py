"""Render any outreach message in any language on any channel, checked.

The renderer is a Jinja2 environment over a loader chain (vendor folders
first, then the built-in templates shipped inside this package) and a set of
catalogs (:mod:`carecollect.messages.catalog`, plus any vendor dict). Money
is formatted with :meth:`Money.format <carecollect.money.Money.format>` for the
locale (the currency is always the amount's own), dates and relative dates
with Babel, plurals with Babel's CLDR plural rules. HTML is autoescaped.
Every rendering runs :func:`~carecollect.messages.checks.check_rendering`
and raises :class:`~carecollect.messages.checks.MessageCheckFailed` rather
than return a message that must not go out. Each template is rendered once per shape of
message and kept as a compiled skeleton (:mod:`~carecollect.messages.skeleton`): later
messages of that shape only fill in their values, with the very text Jinja gives.

Template lookup for purpose ``P`` on channel ``C`` in language ``L``, first
found wins: ``L/C/P.ext``, ``C/P.ext``, ``C/_default.ext`` (``ext`` is
``txt``, ``html`` or ``subject.txt``); the body shared by letter, e-mail and
portal is ``body/P.j2`` inside ``body/main.j2``.

>>> import datetime as dt
>>> from carecollect.money import Money
>>> from carecollect.channels import Channel
>>> from carecollect.outreach import OutreachPurpose
>>> from carecollect.messages.context import MessageContext
>>> ctx = MessageContext(reference="INV-7", creditor_name="Praxis Dr. Weber", jurisdiction="de",
...     today=dt.date(2026, 3, 20), phone="+49 30 1234567", email="abrechnung@example.de",
...     amount_due=Money("60.33", "EUR"), due_date=dt.date(2026, 4, 2),
...     pay_link="https://pay.example.de/p/x", opt_out_url="https://example.de/abmelden")
>>> msg = render(OutreachPurpose.PRE_DUE_REMINDER, Channel.SMS, "de", ctx)
>>> msg.text
'Praxis Dr. Weber: Eine freundliche Erinnerung, dass Rechnung INV-7 über 60,33 € am 2. April 2026 fällig ist. https://pay.example.de/p/x Abmelden: Antworten Sie mit STOP.'
>>> msg.encoding.value, msg.segments
('gsm7', 2)
>>> choose_language(["sv-SE", "nb-NO"])
'nb'
"""

from __future__ import annotations

import datetime as dt
import functools
import os
import re
import textwrap
import types
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import babel
import babel.dates
import babel.numbers
import jinja2
import jinja2.runtime
from markupsafe import Markup, escape

from ..channels import Channel
from ..errors import ConfigurationError, MissingTranslation, ValidationError
from ..money import Money
from ..outreach import OutreachPurpose
from . import glossary
from .catalog import LANGUAGES, Entry, builtin_catalogs
from .checks import check_rendering, sms_segments
from .context import MessageContext, RenderedMessage, WayToPay
from .remittance_codes import carc_text, rarc_text
from .skeleton import (
    MAX_VARIANTS,
    Skeleton,
    SkeletonBuild,
    SkeletonIndex,
    derived,
    guarded,
    has_marker,
    is_none,
    measured,
    only_markers,
    unwatch,
)
from .statement import ShareKind, Statement
from .wordsview import HTML, SUBJECT, TEXT, VALUE, WordsView, words_view

__all__ = [
    "DEFAULT_LOCALES",
    "MissingTranslation",
    "Renderer",
    "choose_language",
    "locale_for",
    "render",
]

#: Locale used for a language when the jurisdiction's region has none.
DEFAULT_LOCALES = {"en": "en_US", "de": "de_DE", "nb": "nb_NO", "bg": "bg_BG"}
_REGION = {"us": "US", "no": "NO", "de": "DE", "bg": "BG"}
_ALIASES = {"no": "nb", "nn": "nb", "nob": "nb", "ger": "de", "deu": "de", "bul": "bg", "eng": "en"}

#: Fields of the context each purpose needs.
REQUIRED: dict[OutreachPurpose, tuple[str, ...]] = {
    OutreachPurpose.ESTIMATE: ("statement",),
    OutreachPurpose.PAYMENT_TERMS: ("due_date",),
    OutreachPurpose.STATEMENT: ("statement", "due_date"),
    OutreachPurpose.PRE_DUE_REMINDER: ("due_date",),
    OutreachPurpose.REMINDER: ("due_date",),
    OutreachPurpose.FINAL_NOTICE: ("deadline",),
    OutreachPurpose.VALIDATION_NOTICE: ("deadline", "notice"),
    OutreachPurpose.INKASSOVARSEL: ("due_date", "deadline"),
    OutreachPurpose.BETALINGSOPPFORDRING: ("deadline", "notice"),
    OutreachPurpose.MAHNUNG: ("due_date", "deadline"),
    OutreachPurpose.DEFAULT_NOTICE: ("due_date",),
    OutreachPurpose.ECA_NOTICE: ("action_date", "assistance_url"),
    OutreachPurpose.PRE_PLACEMENT_NOTICE: ("action_date", "deadline"),
    OutreachPurpose.FINANCIAL_ASSISTANCE: ("assistance_url",),
    OutreachPurpose.PLAN_OFFER: ("plan_options",),
    OutreachPurpose.INSTALMENT_REMINDER: ("instalment",),
    OutreachPurpose.PAYMENT_CONFIRMATION: ("payment",),
    OutreachPurpose.DISPUTE_ACKNOWLEDGEMENT: ("dispute",),
    OutreachPurpose.DISPUTE_RESOLUTION: ("dispute",),
    OutreachPurpose.FOLLOW_UP_CALL: ("dispute",),
}
_NO_PAY = frozenset(
    {
        OutreachPurpose.PAYMENT_CONFIRMATION,
        OutreachPurpose.DISPUTE_ACKNOWLEDGEMENT,
        OutreachPurpose.FOLLOW_UP_CALL,
        OutreachPurpose.ESTIMATE,
        OutreachPurpose.PAYMENT_TERMS,
        OutreachPurpose.FINANCIAL_ASSISTANCE,
    }
)
_RIGHTS = frozenset(
    {
        OutreachPurpose.STATEMENT,
        OutreachPurpose.FINAL_NOTICE,
        OutreachPurpose.VALIDATION_NOTICE,
        OutreachPurpose.INKASSOVARSEL,
        OutreachPurpose.BETALINGSOPPFORDRING,
        OutreachPurpose.MAHNUNG,
        OutreachPurpose.DEFAULT_NOTICE,
        OutreachPurpose.ECA_NOTICE,
        OutreachPurpose.PRE_PLACEMENT_NOTICE,
        OutreachPurpose.FINANCIAL_ASSISTANCE,
        OutreachPurpose.PAYMENT_TERMS,
    }
)


def choose_language(preferred: str | Sequence[str] | None, available: Iterable[str] = LANGUAGES) -> str:
    """The first of the patient's preferred languages we have, else English.

    :param preferred: a language tag (``"nb-NO"``) or tags in order of preference.
    :param available: the languages on offer.
    :returns: a language code from ``available``, or ``"en"``.

    >>> choose_language("de-AT"), choose_language("no"), choose_language("fi")
    ('de', 'nb', 'en')
    """
    avail = set(available)
    tags = [preferred] if isinstance(preferred, str) else list(preferred or ())
    for tag in tags:
        base = tag.replace("_", "-").split("-")[0].lower()
        base = _ALIASES.get(base, base)
        if tag in avail:
            return tag
        if base in avail:
            return base
    return "en"


@functools.lru_cache(maxsize=256)
def locale_for(language: str, jurisdiction: str) -> str:
    """The Babel locale for a language in a jurisdiction (``"en", "no"`` → ``"en_NO"``).

    :param language: the language.
    :param jurisdiction: ``"us"``, ``"no"``, ``"de"`` or ``"bg"``.
    :returns: ``language_REGION`` when Babel knows it, else the language's default.
    """
    candidate = f"{language}_{_REGION.get(jurisdiction, '')}"
    try:
        babel.Locale.parse(candidate)
        return candidate
    except (ValueError, babel.UnknownLocaleError):
        pass
    if language in DEFAULT_LOCALES:
        return DEFAULT_LOCALES[language]
    try:
        babel.Locale.parse(language)
    except (ValueError, babel.UnknownLocaleError):
        raise ConfigurationError(
            f"no locale data for language {language!r}; use a CLDR language code"
        ) from None
    return language


# Pure functions of their arguments, cached: the same paragraphs (help, dispute, rights), dates and
# amounts recur across thousands of messages of one run. A cached result is the very string the
# uncached call returns, so every rendering is still checked in full (see check_rendering).
@functools.lru_cache(maxsize=64)
def _babel_locale(loc: str) -> babel.Locale:
    return babel.Locale.parse(loc)


#: What :mod:`textwrap` counts as white space (it breaks at these and drops a word of only
#: white space, such as a no-break space, at a line's ends): a text without these but single
#: spaces between words, none at either end, wraps by :func:`_fill_words`.
_WRAP_SPACE = re.compile(r"[\t\n\x0b\x0c\r]|  |^ | $|(?:^|(?<= ))[^\S ]+(?= |$)")


def _fill_words(text: str, width: int, indent: str) -> str:
    """``textwrap.fill`` as :func:`_fill` calls it, for words between single spaces: each line
    takes the words that fit in ``width`` with the indent, a word longer than that stands alone."""
    room = width - len(indent)
    lines = []
    line: list[str] = []
    used = 0
    for word in text.split(" "):
        if line and used + 1 + len(word) <= room:
            line.append(word)
            used += 1 + len(word)
            continue
        if line:
            lines.append(" ".join(line))
        line, used = [word], len(word)
    lines.append(" ".join(line))
    return indent + ("\n" + " " * len(indent)).join(lines)


@functools.lru_cache(maxsize=8192)
def _fill(text: str, width: int, indent: str) -> str:
    if text and _WRAP_SPACE.search(text) is None:
        return _fill_words(text, width, indent)
    return _textwrap_fill(text, width, indent)


def _textwrap_fill(text: str, width: int, indent: str) -> str:
    """``text`` wrapped by :mod:`textwrap` as a block's paragraph is: at spaces only, a word
    longer than the line left whole, later lines indented as far as the first."""
    return textwrap.fill(
        text,
        width,
        initial_indent=indent,
        subsequent_indent=" " * len(indent),
        break_long_words=False,
        break_on_hyphens=False,
    )


@functools.lru_cache(maxsize=8192)
def _format_money(m: Money, loc: str) -> str:
    return m.format(loc)


#: A full stop right after another one (not an ellipsis), outside a URL or an e-mail address.
_DOUBLE_STOP = re.compile(
    r"(?P<keep>[^\s<>\"']+://[^\s<>\"']+|[^\s<>\"']+@[^\s<>\"']+)|(?<!\.)\.(?P<tags>(?:</?[a-z]+>)*)\.(?!\.)"
)

#: The second alternative of :data:`_DOUBLE_STOP` alone: where it finds nothing, the substitution
#: changes nothing (the first alternative only keeps what it matched). Its look-behind comes after
#: the first full stop (the two characters before the end of that are not two stops), so the
#: search can look for the literal full stop: the same matches, several times faster.
_STOP_PAIR = re.compile(r"\.(?<!\.\.)(?:</?[a-z]+>)*\.(?!\.)")


def _one_full_stop(text: str) -> str:
    """One full stop where a sentence ends in an abbreviation or a value that already ends in one.

    Bulgarian long dates end in "г." ("22 март 2026 г.") and currency
    abbreviations in a full stop ("щ.д."); a template that puts either at the
    end of a sentence would print two. Typography takes one (as after "etc."
    in English). Ellipses, URLs and e-mail addresses are left alone.

    >>> _one_full_stop("Падежът е 22 март 2026 г.. Благодарим!")
    'Падежът е 22 март 2026 г. Благодарим!'
    >>> _one_full_stop("Wait... https://x.example/a..b and <b>2026 г.</b>.")
    'Wait... https://x.example/a..b and <b>2026 г.</b>'
    """
    if ".." not in text and ".<" not in text:  # the common case, without a regular expression
        return text
    if _STOP_PAIR.search(text) is None:  # no pair of stops anywhere: nothing to replace (HTML's ".</p>")
        return text
    return _DOUBLE_STOP.sub(lambda m: m["keep"] or "." + m["tags"], text)


@functools.lru_cache(maxsize=8192)
def _format_date(d: dt.date, loc: str) -> str:
    return str(babel.dates.format_date(d, "long", locale=_babel_locale(loc)))


# the formatters of a skeleton's slots filled from the context (locale first, for partial)
def _money_in(loc: str, m: Money) -> str:
    return _format_money(m, loc)


def _date_in(loc: str, d: dt.date) -> str:
    return _format_date(d, loc)


@functools.lru_cache(maxsize=4096)
def _format_days(days: int, loc: str) -> str:
    return str(
        babel.dates.format_timedelta(
            dt.timedelta(days=days),
            granularity="day",
            threshold=1000,
            add_direction=True,
            locale=_babel_locale(loc),
        )
    )


class _Fmt:
    """Block helpers for body templates: plain text or HTML."""

    def __init__(self, html: bool, width: int = 72) -> None:
        self.html = html
        self.width = width

    def _wrap(self, text: str, indent: str = "") -> str:
        return _fill(text, self.width, indent)

    # Markup(f"...{escape(x)}...") is what Markup("...{}...").format(x) returns (the argument
    # escaped unless it is already Markup), without the formatter's machinery
    def p(self, text: str) -> str:
        return Markup(f"<p>{escape(text)}</p>\n") if self.html else self._wrap(text) + "\n\n"

    def h(self, text: str) -> str:
        return Markup(f"<h2>{escape(text)}</h2>\n") if self.html else f"{text}\n{'-' * len(text)}\n"

    def ul(self, items: Iterable[str]) -> str:
        items = [i for i in items if i]
        if self.html:
            return Markup("<ul>\n" + "".join(f"<li>{escape(i)}</li>\n" for i in items) + "</ul>\n")
        return "".join(self._wrap(i, "- ") + "\n" for i in items) + "\n"

    def table(self, rows: Iterable[tuple[str, str]]) -> str:
        rows = list(rows)
        if self.html:
            body = "".join(
                f'<tr><th scope="row" style="text-align:left">{escape(a)}</th>'
                f'<td style="text-align:right">{escape(b)}</td></tr>\n'
                for a, b in rows
            )
            return Markup(f"<table>\n{body}</table>\n")
        w = max(len(a) for a, _ in rows) if rows else 0
        return "".join(f"{a.ljust(w)}  {b}\n" for a, b in rows) + "\n"


_FMT_TEXT = _Fmt(False)
_FMT_HTML = _Fmt(True)


class _ProbeFmt(_Fmt):
    """The block helpers of a probing rendering (:mod:`~carecollect.messages.skeleton`).

    In plain text a paragraph or list item holding a value is wrapped once the value is known
    (a deferred block); a heading underlined to its length, a table label padded to the widest,
    and a list item made of values only (dropped when empty) make the shape opaque.
    """

    def __init__(self, html: bool, build: SkeletonBuild) -> None:
        super().__init__(html)
        self.build = build

    def p(self, text: str) -> str:
        if self.html or not has_marker(text):
            return super().p(text)
        return self.build.block(str(text), "") + "\n\n"

    def h(self, text: str) -> str:
        if not self.html and has_marker(text):
            self.build.opaque()
        return super().h(text)

    def ul(self, items: Iterable[str]) -> str:
        items = list(items)
        if any(type(i) is str and only_markers(i) for i in items):
            self.build.opaque()
        if self.html:
            return super().ul(items)
        items = [i for i in items if i]
        return (
            "".join(
                (self.build.block(str(i), "- ") if has_marker(i) else self._wrap(i, "- ")) + "\n"
                for i in items
            )
            + "\n"
        )

    def table(self, rows: Iterable[tuple[str, str]]) -> str:
        rows = list(rows)
        if not self.html and any(has_marker(str(a)) for a, _ in rows):
            self.build.opaque()
        return super().table(rows)


class _Values(dict[str, str]):
    """The placeholder values: a dict (``v["ref"]``, :meth:`str.format_map`) whose keys also read as
    attributes (``v.ref``), so a template's ``v.ref`` is found on the first try (Jinja tries the
    attribute before the item, and a failed attribute lookup costs an exception every time).
    """

    __slots__ = ()

    def __getattr__(self, name: str) -> str:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


@attrs.frozen
class _Tr:
    """Catalog lookup with placeholder values, bound to one rendering, and the formatters
    templates call (``money``, ``date``, ``tl``: :meth:`texts`)."""

    language: str
    catalog: Mapping[str, Entry]
    locale: babel.Locale
    values: Mapping[str, str]
    loc: str = ""

    def money(self, m: Money) -> str:
        """``m`` formatted for the rendering's locale."""
        slot = derived(m, functools.partial(_money_in, self.loc))
        return _format_money(unwatch(m), self.loc) if slot is None else slot

    def date(self, d: dt.date | None) -> str:
        """``d`` as a long date for the rendering's locale (today when ``None``)."""
        if d is None:
            return self.values["today"]
        slot = derived(d, functools.partial(_date_in, self.loc))
        return _format_date(unwatch(d), self.loc) if slot is None else slot

    def texts(self, keys: Iterable[str]) -> list[str]:
        """The texts of ``keys``."""
        return [self(k) for k in keys]

    def __call__(self, key: str, **extra: object) -> str:
        entry = self.catalog.get(key)
        if entry is None:
            raise MissingTranslation(self.language, key)
        if isinstance(entry, dict):
            raise MissingTranslation(self.language, f"{key} (plural: use tn)")
        return self._fill(key, entry, extra)

    def n(self, key: str, count: int, **extra: object) -> str:
        entry = self.catalog.get(key)
        if not isinstance(entry, dict):
            raise MissingTranslation(self.language, key)
        form = self.locale.plural_form(count)
        text = entry.get(form, entry.get("other"))
        if text is None:
            raise MissingTranslation(self.language, f"{key}[{form}]")
        return self._fill(
            key, text, {"count": babel.numbers.format_decimal(count, locale=self.locale), **extra}
        )

    def _fill(self, key: str, text: str, extra: Mapping[str, object]) -> str:
        try:
            if not extra:
                return text.format_map(self.values)
            return text.format_map({**self.values, **{k: str(v) for k, v in extra.items()}})
        except (KeyError, IndexError, ValueError) as exc:
            raise ValidationError(
                f"Message {self.language}/{key}", "placeholders", f"unknown or bad placeholder {exc}"
            ) from None


class _Context(jinja2.runtime.Context):
    """Jinja's context, calling the renderer's own helpers (``t``, ``tn``, ``money``, ``date``,
    ``tl`` and the ``m`` block helpers) directly.

    Jinja checks every call for ``pass_context``-style markers (several ``hasattr`` lookups per
    call, about a hundred calls per message); the renderer's helpers never carry one, so they skip
    the check. Everything else (vendor globals, filters, macros) goes through Jinja's own path.
    """

    def call(__self, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        kind = type(__obj)
        if kind is _Tr or (kind is types.MethodType and type(__obj.__self__) in _OWN):
            kwargs.pop("_block_vars", None)
            kwargs.pop("_loop_vars", None)
            return __obj(*args, **kwargs)
        return super().call(__obj, *args, **kwargs)


_OWN = (_Tr, _Fmt, _ProbeFmt)


class Renderer:
    """A configured message renderer.

    :param template_dirs: vendor template folders searched before the
        built-in templates (a file there overrides the built-in one of the
        same name, or adds a language-specific one under ``<lang>/``).
    :param catalogs: vendor catalogs per language, each a dict or the path of a
        gettext ``.po`` file (:func:`~carecollect.messages.gettext.read_po`);
        keys here override the built-in texts, and a new language code adds a
        language (it must then have every English key, see :meth:`missing`).
    :param max_sms_segments: the longest SMS allowed (default 4).
    :param extra_clinical: more words to refuse where the minimum-necessary rule applies.
    :param compiled: render from compiled skeletons (the default; the text is the same as plain
        Jinja's, see :mod:`~carecollect.messages.skeleton`); ``False`` renders every message
        with Jinja.
    :raises ConfigurationError: if a template folder does not exist.

    Templates are compiled once per renderer and kept (a daily run renders the same few
    thousand times); make a new renderer to pick up template files edited since.
    """

    def __init__(
        self,
        template_dirs: Sequence[str | Path] = (),
        catalogs: Mapping[str, Mapping[str, Entry] | str | os.PathLike[str]] | None = None,
        *,
        max_sms_segments: int = 4,
        extra_clinical: Sequence[str] = (),
        compiled: bool = True,
    ) -> None:
        for d in template_dirs:
            if not Path(d).is_dir():
                raise ConfigurationError(f"template folder {str(d)!r} does not exist")
        loaders: list[jinja2.BaseLoader] = []
        if template_dirs:
            loaders.append(jinja2.FileSystemLoader([str(d) for d in template_dirs]))
        loaders.append(jinja2.PackageLoader("carecollect.messages", "templates"))
        loader = jinja2.ChoiceLoader(loaders)
        common: dict[str, Any] = {
            "loader": loader,
            "undefined": jinja2.StrictUndefined,
            "trim_blocks": True,
            "lstrip_blocks": True,
            "keep_trailing_newline": False,
            # templates are read once per renderer (no stat of every file on every rendering);
            # make a new Renderer to pick up edited template files
            "auto_reload": False,
        }
        self._text_env = jinja2.Environment(autoescape=False, **common)
        self._html_env = jinja2.Environment(autoescape=True, **common)
        self._text_env.context_class = self._html_env.context_class = _Context
        # the probing renderings' own environments: every filter and test guarded (a value given
        # to one makes the shape opaque), templates compiled apart from the plain ones
        self._probe_envs: dict[bool, jinja2.Environment] = {}
        for is_html, env in ((False, self._text_env), (True, self._html_env)):
            probe_env = self._probe_envs[is_html] = env.overlay()
            probe_env.filters = {k: guarded(f) for k, f in env.filters.items()}
            # joining texts only concatenates them (an attribute looked up on a value is refused
            # by the value's probe); the length of a text holding a value may underline it
            probe_env.filters["join"] = env.filters["join"]
            probe_env.filters["length"] = probe_env.filters["count"] = measured(env.filters["length"])
            probe_env.tests = {k: guarded(f) for k, f in env.tests.items()}  # type: ignore[arg-type]
            probe_env.tests["none"] = is_none
        self._probe_templates: dict[tuple[bool, str, str, OutreachPurpose, str], jinja2.Template] = {}
        cats = builtin_catalogs()
        for lang, extra in (catalogs or {}).items():
            if isinstance(extra, str | os.PathLike):
                from .gettext import read_po

                extra = read_po(extra, lang)
            cats.setdefault(lang, {}).update(extra)
        self._catalogs = cats
        self._templates: dict[tuple[bool, str, str, OutreachPurpose, str], jinja2.Template] = {}
        self._skeletons: dict[tuple[Any, ...], list[Skeleton]] = {}
        self._indexes: dict[tuple[Any, ...], SkeletonIndex] = {}
        #: per combination of skeletons (and quoted texts): its words prepared (:mod:`.wordsview`)
        self._words_views: dict[tuple[Any, ...], WordsView | None] = {}
        self.max_sms_segments = max_sms_segments
        #: Whether templates render from compiled skeletons (:mod:`~carecollect.messages.skeleton`);
        #: ``False`` renders every message with plain Jinja (the same text, slower).
        self.compiled = compiled
        self.extra_clinical = tuple(extra_clinical)

    @property
    def languages(self) -> tuple[str, ...]:
        """The languages this renderer offers."""
        return tuple(self._catalogs)

    def missing(self, language: str) -> tuple[str, ...]:
        """English keys the ``language`` catalog lacks (empty when complete).

        :param language: a language code.
        :returns: the missing keys, sorted.
        """
        cat = self._catalogs.get(language, {})
        return tuple(sorted(k for k in self._catalogs["en"] if k not in cat))

    # -- values ---------------------------------------------------------------
    def _values(
        self, ctx: MessageContext, purpose: OutreachPurpose, lang: str, loc: str, babel_loc: babel.Locale
    ) -> _Values:
        def money(m: Money | None) -> str:
            return _format_money(m, loc) if m is not None else ""

        def date(d: dt.date | None) -> str:
            return _format_date(d, loc) if d is not None else ""

        def rel(d: dt.date | None) -> str:
            return _format_days((d - ctx.today).days, loc) if d is not None else ""

        v = _Values(
            {
                "ref": ctx.reference,
                "creditor": ctx.creditor_name,
                "sender": ctx.sender_name,
                "phone": ctx.phone,
                "email": ctx.email,
                "amount": money(ctx.amount_due),
                "due": date(ctx.due_date),
                "due_rel": rel(ctx.due_date),
                "deadline": date(ctx.deadline),
                "deadline_rel": rel(ctx.deadline),
                "action_date": date(ctx.action_date),
                "today": date(ctx.today),
                "pay_link": ctx.pay_link or "",
                "opt_out_url": ctx.opt_out_url or "",
                "keyword": ctx.opt_out_keyword,
                "portal_url": ctx.portal_url or "",
                "assistance_url": ctx.assistance_url or "",
                "name": ctx.recipient_name or "",
                "agent": ctx.agent_name or str(self._catalogs[lang].get("voice.agent_default", "")),
                "original_creditor": ctx.creditor_name,
                "hours": ""
                if ctx.office_hours is None
                else ctx.office_hours.describe(
                    loc,
                    in_zone=ctx.time_zone if ctx.time_zone != ctx.office_hours.time_zone else None,
                    on=ctx.today,
                ),
                "hours_yours": "1"
                if ctx.office_hours is not None
                and ctx.time_zone is not None
                and ctx.time_zone != ctx.office_hours.time_zone
                else "",
            }
        )
        if ctx.notice is not None:
            n = ctx.notice
            v["original_creditor"] = n.original_creditor or ctx.creditor_name
            v["principal"] = money(n.principal)
            v["invoice_date"] = date(n.invoice_date)
            v["interest_from"] = date(n.interest_from)
            v["rate"] = (
                babel.numbers.format_percent(n.interest_rate / Decimal(100), "#,##0.00 %", locale=babel_loc)
                if n.interest_rate is not None
                else ""
            )
            if n.itemization is not None:
                v["itemization_date"] = date(n.itemization.itemization_date)
        if ctx.payment is not None:
            p = ctx.payment
            v |= {
                "paid_amount": money(p.amount),
                "paid_on": date(p.paid_on),
                "remaining": money(p.remaining),
                "receipt": p.receipt_id,
            }
        if ctx.instalment is not None:
            i = ctx.instalment
            v |= {
                "number": str(i.number),
                "count": str(i.count),
                "instalment_amount": money(i.amount),
                "instalment_due": date(i.due_date),
            }
            if purpose is OutreachPurpose.INSTALMENT_REMINDER:
                v["due_rel"] = rel(i.due_date)
        if ctx.dispute is not None:
            d = ctx.dispute
            v |= {
                "dispute_id": d.dispute_id,
                "received_on": date(d.received_on),
                "respond_by": date(d.respond_by),
                "new_amount": money(d.new_amount),
                "corrective_action": d.corrective_action or "",
            }
        return v

    # -- rendering ------------------------------------------------------------
    def render(
        self,
        purpose: OutreachPurpose,
        channel: Channel,
        language: str | Sequence[str] | None,
        context: MessageContext,
    ) -> RenderedMessage:
        """Render and check one message.

        :param purpose: the :class:`~carecollect.outreach.OutreachPurpose`.
        :param channel: the :class:`~carecollect.channels.Channel`.
        :param language: the patient's preferred language tag(s); English is the fallback.
        :param context: the :class:`~carecollect.messages.context.MessageContext`.
        :returns: the checked :class:`~carecollect.messages.context.RenderedMessage`.
        :raises ValidationError: when the context lacks a field the purpose needs.
        :raises MissingTranslation: when the catalog lacks a key.
        :raises MessageCheckFailed: when a check fails (naming template and rule).
        """
        lang = choose_language(language, self._catalogs)
        for field in REQUIRED[purpose]:
            if not getattr(context, field):
                raise ValidationError(
                    f"MessageContext {context.reference}", field, f"required for a {purpose.value} message"
                )
        if context.fap_summary and purpose is OutreachPurpose.STATEMENT and not context.assistance_url:
            raise ValidationError(
                f"MessageContext {context.reference}",
                "assistance_url",
                "a nonprofit hospital's statement gives the financial-assistance page: set assistance_url "
                "in the [creditor] settings",
            )
        loc = locale_for(lang, context.jurisdiction)
        bloc = _babel_locale(loc)
        tr = _Tr(lang, self._catalogs[lang], bloc, self._values(context, purpose, lang, loc, bloc), loc)
        statement = context.statement if isinstance(context.statement, Statement) else None
        ns: dict[str, Any] = {
            "t": tr,
            "tn": tr.n,
            "v": tr.values,
            "ctx": context,
            "purpose": purpose.value,
            "lang": lang,
            "channel": channel.value,
            "statement": statement,
            "money": tr.money,
            "date": tr.date,
            "show_pay": purpose not in _NO_PAY and context.amount_due.is_positive(),
            "show_rights": purpose in _RIGHTS,
            "show_deadline": "deadline" in REQUIRED[purpose],
            "rights": glossary.rights_text(context.jurisdiction, lang),
            "glossary": [glossary.glossary_entry(term, lang) for term in _glossary_terms(statement)],
            "ShareKind": ShareKind,
            "carc": lambda code: carc_text(code, lang),
            "rarc": lambda code: rarc_text(code, lang),
            "pay_keys": _pay_keys(context),
            "tl": tr.texts,
        }
        template = f"{lang}/{channel.value}/{purpose.value}"
        # everything of the namespace that is plain data: part of every skeleton's key
        shape = (
            lang,
            loc,
            context.jurisdiction,
            ns["show_pay"],
            ns["show_rights"],
            ns["show_deadline"],
            tuple(ns["rights"]),
            tuple(ns["glossary"]),
            tuple(ns["pay_keys"]),
            tuple(tr.values),
            statement is None,
        )
        job = _Job(tr, context, statement, shape)
        subject = html = voicemail = None
        if channel is Channel.EMAIL:
            subject = " ".join(
                self._render(
                    self._text_env, lang, "email", purpose, "subject.txt", ns, job, html=False
                ).split()
            )
            text = self._render(self._text_env, lang, "email", purpose, "txt", ns, job, html=False)
            html = self._render(self._html_env, lang, "email", purpose, "html", ns, job, html=True)
        elif channel is Channel.PHONE:
            voicemail = self._render(
                self._text_env, lang, "phone", purpose, "voicemail.txt", ns, job, html=False
            ).strip()
            ns["voicemail"] = voicemail
            job = attrs.evolve(job, shape=(*job.shape, voicemail))
            text = self._render(self._text_env, lang, "phone", purpose, "txt", ns, job, html=False)
        else:
            text = self._render(self._text_env, lang, channel.value, purpose, "txt", ns, job, html=False)
            if channel in (Channel.LETTER, Channel.PORTAL):
                subject = tr(f"{purpose.value}.subject")
        if channel is Channel.SMS:
            text = " ".join(text.split())
        else:
            text = text.strip()
            while "\n\n\n" in text:  # blank lines where optional blocks were left out: one
                text = text.replace("\n\n\n", "\n\n")
            text += "\n"
        text = _one_full_stop(text)
        subject = _one_full_stop(subject) if subject is not None else None
        html = _one_full_stop(html) if html is not None else None
        voicemail = _one_full_stop(voicemail) if voicemail is not None else None
        descriptions = [ln.description for ln in statement.lines] if statement is not None else []
        if context.dispute is not None and context.dispute.corrective_action:
            descriptions.append(context.dispute.corrective_action)
        tone_exempt = (*ns["rights"], *(f"{w}: {d}" for w, d in ns["glossary"]))
        checks = check_rendering(
            template=template,
            purpose=purpose,
            channel=channel,
            language=lang,
            context=context,
            text=text,
            subject=subject,
            html=html,
            voicemail=voicemail,
            max_sms_segments=self.max_sms_segments,
            extra_clinical=self.extra_clinical,
            descriptions=descriptions,
            tone_exempt=tone_exempt,
            words=self._words(channel, subject, job, tone_exempt) if self.compiled else None,
        )
        encoding = segments = None
        if channel is Channel.SMS:
            encoding, segments = sms_segments(text)
        return RenderedMessage(
            purpose, channel, lang, loc, text, subject, html, voicemail, encoding, segments, checks
        )

    def _render(
        self,
        env: jinja2.Environment,
        lang: str,
        channel: str,
        purpose: OutreachPurpose,
        ext: str,
        ns: dict[str, Any],
        job: _Job | None = None,
        *,
        html: bool,
    ) -> str:
        key = (html, lang, channel, purpose, ext)
        if job is not None and self.compiled:
            return self._render_compiled(env, key, ns, job)
        return self._template(env, key).render(ns | {"m": _FMT_HTML if html else _FMT_TEXT})

    def _template(
        self, env: jinja2.Environment, key: tuple[bool, str, str, OutreachPurpose, str]
    ) -> jinja2.Template:
        tmpl = self._templates.get(key)
        if tmpl is None:
            _, lang, channel, purpose, ext = key
            tmpl = self._templates[key] = env.select_template(
                [
                    f"{lang}/{channel}/{purpose.value}.{ext}",
                    f"{channel}/{purpose.value}.{ext}",
                    f"{channel}/_default.{ext}",
                ]
            )
        return tmpl

    def _render_compiled(
        self,
        env: jinja2.Environment,
        key: tuple[bool, str, str, OutreachPurpose, str],
        ns: dict[str, Any],
        job: _Job,
    ) -> str:
        """The template's output from the skeleton of this message's shape (built on first use)."""
        html = key[0]
        values = job.tr.values
        roots = {"ctx": job.context, "statement": job.statement}
        index = self._indexes.get((key, job.shape))
        if index is None:
            index = self._indexes[key, job.shape] = SkeletonIndex()
        skeleton = index.find(values, roots)
        if skeleton is None:
            variants = self._skeletons.setdefault((key, job.shape), [])
            if len(variants) < MAX_VARIANTS:
                skeleton = self._probe(env, key, ns, job)
                if skeleton is not None:
                    variants.append(skeleton)
                    index.add(skeleton)
        if skeleton is not None and skeleton.parts is not None:
            vals = skeleton.slot_values(values, roots)
            job.filled[key[4]] = (skeleton, vals)
            return skeleton.fill_values(vals, self._wrap_block)
        job.filled[key[4]] = None
        return self._template(env, key).render(ns | {"m": _FMT_HTML if html else _FMT_TEXT})

    def _words(
        self, channel: Channel, subject: str | None, job: _Job, tone_exempt: tuple[str, ...]
    ) -> str | None:
        """The words the tone check reads, from the message's skeletons (:mod:`.wordsview`);
        ``None`` when a part was not rendered from one or a value is not plain (the check then
        reads the rendered text)."""
        sources: list[tuple[str, Skeleton | str | None]]
        vals: list[list[str]]
        if channel is Channel.EMAIL:
            filled = [job.filled.get(name) for name in ("subject.txt", "txt", "html")]
            parts = [f for f in filled if f is not None]
            if len(parts) < 3:
                return None
            sources = [(SUBJECT, parts[0][0]), (TEXT, parts[1][0]), (HTML, parts[2][0])]
            vals = [slot_values for _, slot_values in parts]
        elif channel in (Channel.LETTER, Channel.PORTAL):
            text = job.filled.get("txt")
            if text is None:
                return None
            # a letter's or portal notice's subject comes from the catalog, values in it
            sources = [(SUBJECT, None if subject is None else VALUE), (TEXT, text[0])]
            vals = [[] if subject is None else [subject], text[1]]
        else:
            return None
        key = (*(source for _, source in sources), tone_exempt)
        view = self._words_views.get(key, _NOT_BUILT)
        if view is _NOT_BUILT:
            if len(self._words_views) >= 4096:
                self._words_views.clear()
            view = self._words_views[key] = words_view(sources, tone_exempt, self._wrap_block)
        return None if view is None else view.words(vals, self._wrap_block)

    def _probe(
        self,
        env: jinja2.Environment,
        key: tuple[bool, str, str, OutreachPurpose, str],
        ns: dict[str, Any],
        job: _Job,
    ) -> Skeleton | None:
        """Render once with probes; ``None`` when that rendering fails (plain Jinja then tells why)."""
        tmpl = self._probe_templates.get(key)
        if tmpl is None:
            _, lang, channel, purpose, ext = key
            tmpl = self._probe_templates[key] = self._probe_envs[key[0]].select_template(
                [
                    f"{lang}/{channel}/{purpose.value}.{ext}",
                    f"{channel}/{purpose.value}.{ext}",
                    f"{channel}/_default.{ext}",
                ]
            )
        build = SkeletonBuild(job.tr.values)
        tr = attrs.evolve(job.tr, values=_Values(build.probes))
        probe_ns = ns | {
            "t": tr,
            "tn": tr.n,
            "v": tr.values,
            "money": tr.money,
            "date": tr.date,
            "tl": tr.texts,
            "carc": _derived_or(ns["carc"], ns["lang"], carc_text),
            "rarc": _derived_or(ns["rarc"], ns["lang"], rarc_text),
            "ctx": build.watch(job.context, "ctx"),
            "statement": build.watch(job.statement, "statement"),
            "m": _ProbeFmt(key[0], build),
        }
        try:
            with build:
                output = tmpl.render(probe_ns)
        except Exception:
            return None
        return build.finish(output)

    @staticmethod
    def _wrap_block(text: str, indent: str) -> str:
        return _FMT_TEXT._wrap(text, indent)


def _derived_or(plain: Any, lang: str, text: Any) -> Any:
    """A probing rendering's ``carc``/``rarc``: a slot for a code of the context, else ``plain``."""

    def lookup(code: Any) -> Any:
        slot = derived(code, functools.partial(_code_text, text, lang))
        return plain(code) if slot is None else slot

    return lookup


def _code_text(text: Any, lang: str, code: str) -> str:
    return str(text(code, lang))


_NOT_BUILT: Any = object()


@attrs.frozen
class _Job:
    """One message's rendering state shared by its templates (the values and the shape key)."""

    tr: _Tr
    context: MessageContext
    statement: Statement | None
    shape: tuple[Any, ...]
    #: per template part rendered ("txt", "html", "subject.txt"): its skeleton and slot values,
    #: or ``None`` when plain Jinja rendered it
    filled: dict[str, tuple[Skeleton, list[str]] | None] = attrs.field(factory=dict)


def _pay_keys(ctx: MessageContext) -> list[str]:
    keys = []
    for method in ctx.payment_methods:
        if method is WayToPay.ONLINE:
            if ctx.pay_link:
                keys.append("pay.online")
            elif ctx.portal_url:
                keys.append("pay.online_portal")
        elif method is WayToPay.MOBILE:
            if ctx.pay_link or ctx.portal_url:
                keys.append("pay.mobile")
        else:
            keys.append(f"pay.{method.value}")
    return keys


def _glossary_terms(statement: Statement | None) -> list[str]:
    terms = ["contractual_adjustment", "financial_assistance", "payment_plan", "direct_debit", "dispute"]
    if statement is not None:
        kinds = {r.kind for ln in statement.lines for r in ln.reasons}
        for kind, term in (
            (ShareKind.DEDUCTIBLE, "deductible"),
            (ShareKind.COINSURANCE, "coinsurance"),
            (ShareKind.COPAY, "copay"),
        ):
            if kind in kinds:
                terms.insert(0, term)
    return terms


_DEFAULT: Renderer | None = None


def render(
    purpose: OutreachPurpose,
    channel: Channel,
    language: str | Sequence[str] | None,
    context: MessageContext,
) -> RenderedMessage:
    """Render with the built-in templates and catalogs (see :meth:`Renderer.render`).

    :param purpose: the outreach purpose.
    :param channel: the channel.
    :param language: the preferred language tag(s).
    :param context: the message context.
    :returns: the checked rendering.
    :raises MessageCheckFailed: when a check fails.
    """
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = Renderer()
    return _DEFAULT.render(purpose, channel, language, context)
