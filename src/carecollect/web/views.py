"""What every patient page shares: the store thread, the verified pay link, rendering, refusals, forms."""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime as dt
import hashlib
import logging
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import attrs
import jinja2

from ..errors import ConfigurationError
from ..ledger import EntryKind
from ..messages.paylinks import PayLinkClaim, PayLinkExpired, PayLinkInvalid, PayLinkSigner
from ..money import Money
from ..run.event_intake import intake
from ..run.settings import RunSettings
from ..store.base import AccountSnapshot, NotFound, Store
from ..timekeeping import zone
from .security import FormTokens, RateLimiter
from .settings import WebSettings
from .texts import LANGUAGE_NAMES, LANGUAGES, PageTexts, pick_language

__all__ = ["PAYLINK_SOURCE", "payment_id_for_link"]

log = logging.getLogger("carecollect.web")

_HERE = Path(__file__).parent
_T = TypeVar("_T")
#: The source of "this pay link was used for a payment" marks in the store's processed events.
PAYLINK_SOURCE = "paylink"
_JURISDICTIONS = ("us", "no", "de", "bg")
#: Headers never kept with an inbox event (they are the sender's, not the signature's).
_DROPPED_HEADERS = frozenset({"cookie", "authorization", "proxy-authorization"})


class _StoreThread:
    """Every store call runs on one thread of its own, one at a time (SQLite connections are not shared)."""

    def __init__(self, store: Store | Callable[[], Store]) -> None:
        self._given = store if isinstance(store, Store) else None
        self._factory = None if isinstance(store, Store) else store
        self._store: Store | None = self._given
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="carecollect-store"
        )
        self._closed = False

    def _call(self, fn: Callable[[Store], _T]) -> _T:
        if self._store is None:
            assert self._factory is not None
            self._store = self._factory()
        return fn(self._store)

    async def run(self, fn: Callable[[Store], _T]) -> _T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, self._call, fn)

    def close(self) -> None:
        """Close a store the app opened itself (a store passed in stays the caller's) and stop the thread."""

        def shut() -> None:
            if self._factory is not None and self._store is not None:
                self._store.close()
                self._store = None

        if self._closed:
            return
        self._closed = True
        self._pool.submit(shut).result()
        self._pool.shutdown(wait=True)


@attrs.frozen
class _Refusal:
    why: str  # "invalid", "expired", "used"
    language: str | None = None


@attrs.frozen
class _Link:
    """A verified pay link with everything its pages show."""

    token: str
    claim: PayLinkClaim
    snap: AccountSnapshot
    creditor: Any
    balance: Money
    used: bool

    @property
    def invoice(self) -> Any:
        return next(i for i in self.snap.invoices if i.id == self.claim.invoice_id)

    @property
    def tz(self) -> str:
        return self.snap.patient.time_zones[0]

    @property
    def jurisdiction(self) -> str:
        j = self.snap.account.jurisdiction
        return j if j in _JURISDICTIONS else "us"


def _balance(snap: AccountSnapshot, invoice: Any) -> Money:
    if invoice.id in snap.ledger.invoice_ids():
        return snap.ledger.invoice_balance(invoice.id)
    return invoice.patient_responsibility  # type: ignore[no-any-return]


def _link_payments(snap: AccountSnapshot, nonce: str) -> list[Any]:
    prefix = f"PL-{nonce}-"
    return [
        e
        for e in snap.ledger.entries
        if e.kind is EntryKind.PATIENT_PAYMENT and e.source_id.startswith(prefix)
    ]


def payment_id_for_link(nonce: str, provider: str) -> str:
    """The ledger payment id of a payment made through the pay link with ``nonce`` at ``provider``."""
    return f"PL-{nonce}-{provider}"


class _Views:
    def __init__(
        self,
        settings: RunSettings,
        store: _StoreThread,
        pm: Any,
        web: WebSettings,
        clock: Callable[[], dt.datetime],
    ) -> None:
        if settings.pay_link_key is None:
            raise ConfigurationError(
                "the patient pages need the pay-link key (RunSettings.pay_link_key, or CARECOLLECT_PAY_LINK_KEY)"
            )
        self.settings = settings
        self.store = store
        self.pm = pm
        self.web = web
        self.clock = clock
        self.signer = PayLinkSigner(settings.pay_link_key, settings.pay_link_base)
        self.tokens = FormTokens(settings.pay_link_key)
        self.by_ip = RateLimiter(capacity=web.ip_capacity, per_second=web.ip_per_second)
        self.by_link = RateLimiter(capacity=web.link_capacity, per_second=web.link_per_second)
        self.cookie = "__Host-cc_form" if web.secure_cookies else "cc_form"
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(str(_HERE / "templates")),
            autoescape=jinja2.select_autoescape(("html",), default=True),
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self._providers: dict[str, Any] = {}
        self._take_in_lock = asyncio.Lock()

    # -- plumbing --------------------------------------------------------------------------
    def provider(self, name: str) -> Any:
        if name not in self._providers:
            desc = self.pm.payment_provider(name)
            self._providers[name] = desc.create(dict(self.settings.payment_providers.get(name, {})))
        return self._providers[name]

    def limited(self, request: Any, token: str | None) -> Any:
        """A 429 answer when the client's IP or this pay link is over its rate; else None."""
        from starlette.responses import HTMLResponse

        now = time.monotonic()
        ip = request.client.host if request.client else "unknown"
        over = not self.by_ip.allow(f"ip:{ip}", now=now)
        if token is not None and not over:
            over = not self.by_link.allow("link:" + hashlib.sha256(token.encode()).hexdigest()[:32], now=now)
        if not over:
            return None
        t = PageTexts(pick_language(request.query_params.get("lang"), request.headers.get("accept-language")))
        body = self.env.get_template("refused.html").render(
            self.base_context(request, t, None),
            title=t("refused.title"),
            message=t("refused.rate"),
            help=None,
        )
        return HTMLResponse(body, 429, headers={"Retry-After": str(self.by_ip.retry_after())})

    def base_context(self, request: Any, t: PageTexts, link: _Link | None) -> dict[str, Any]:
        root = request.scope.get("root_path", "")
        override = request.query_params.get("lang") if request.query_params.get("lang") in LANGUAGES else None

        def url(suffix: str = "", *, lang: str | None = None) -> str:
            path = f"{root}/p/{link.token}{suffix}" if link is not None else f"{root}{suffix}"
            chosen = lang or override
            return path + (f"?lang={chosen}" if chosen else "")

        return {
            "t": t,
            "lang": t.language,
            "url": url,
            "static": f"{root}/static/carecollect.css",
            "languages": [
                # query-only links: the same page in another language, the path never echoed
                (code, LANGUAGE_NAMES[code], f"?lang={code}", code == t.language)
                for code in LANGUAGES
            ],
            "creditor": link.creditor.name if link else None,
            # the account's creditor's own help line (an installation may serve several)
            "phone": self.settings.for_creditor(link.creditor.id).phone if link else self.settings.phone,
            "csrf": "",
            "lang_field": override or "",
        }

    def render(
        self, request: Any, template: str, link: _Link, t: PageTexts, status: int = 200, **values: Any
    ) -> Any:
        from starlette.responses import HTMLResponse

        cookie = request.cookies.get(self.cookie)
        fresh = cookie is None
        if cookie is None:
            cookie = self.tokens.new_cookie()
        ctx = self.base_context(request, t, link)
        ctx["csrf"] = self.tokens.field(cookie, link.token)
        ctx.update(values)
        response = HTMLResponse(self.env.get_template(template).render(ctx), status)
        if fresh:
            response.set_cookie(
                self.cookie,
                cookie,
                max_age=3600 * 24,
                path="/",
                secure=self.web.secure_cookies,
                httponly=True,
                samesite="strict",
            )
        return response

    def refused(self, request: Any, refusal: _Refusal, status: int | None = None) -> Any:
        from starlette.responses import HTMLResponse

        t = PageTexts(
            pick_language(
                request.query_params.get("lang"),
                None if refusal.language else request.headers.get("accept-language"),
                refusal.language or "en",
            )
        )
        message = {
            "invalid": t("refused.invalid"),
            "expired": t("refused.expired"),
            "used": t("refused.used"),
            "csrf": t("refused.csrf"),
            "form": t("refused.form"),
        }[refusal.why]
        codes = {"invalid": 404, "expired": 410, "used": 410, "csrf": 403, "form": 400}
        body = self.env.get_template("refused.html").render(
            self.base_context(request, t, None),
            title=t("refused.title"),
            message=message,
            help=t("refused.help", phone=self.settings.phone),
        )
        return HTMLResponse(body, status or codes[refusal.why])

    def texts(self, request: Any, link: _Link) -> PageTexts:
        return PageTexts(
            pick_language(request.query_params.get("lang"), None, link.snap.patient.preferred_language),
            link.jurisdiction,
        )

    def load(self, store: Store, token: str, *, allow_used: bool = False) -> _Link | _Refusal:
        """Verify the link and read what its pages show (in the store thread)."""
        now = self.clock()
        try:
            claim = self.signer.verify(token, now=now, used=())
        except PayLinkExpired:
            # the signature held (it is checked first): the invoice is known, so is the language
            return _Refusal("expired", self._language_of(store, token.split(".")[0]))
        except PayLinkInvalid:
            return _Refusal("invalid")
        try:
            invoice = store.get_invoice(claim.invoice_id)
            snap = store.account_snapshot(invoice.account_id)
            creditor = store.get_creditor(snap.account.creditor_id)
        except NotFound:
            return _Refusal("invalid")
        used = store.was_processed(PAYLINK_SOURCE, claim.nonce)
        if not used and _link_payments(snap, claim.nonce):
            store.mark_processed(PAYLINK_SOURCE, claim.nonce, at=now)  # the payment posted: the link is spent
            used = True
        if used and not allow_used:
            return _Refusal("used", snap.patient.preferred_language)
        return _Link(token, claim, snap, creditor, _balance(snap, invoice), used)

    @staticmethod
    def _language_of(store: Store, invoice_id: str) -> str | None:
        try:
            invoice = store.get_invoice(invoice_id)
            return store.get_patient(store.get_account(invoice.account_id).patient_id).preferred_language
        except NotFound:
            return None

    async def link(self, request: Any, *, allow_used: bool = False) -> _Link | Any:
        token = request.path_params["token"]
        if (limited := self.limited(request, token)) is not None:
            return limited
        found = await self.store.run(lambda s: self.load(s, token, allow_used=allow_used))
        if isinstance(found, _Refusal):
            return self.refused(request, found)
        return found

    async def form(self, request: Any, link: _Link) -> Mapping[str, str] | Any:
        """The posted form, or a 403 answer when its CSRF token is missing or wrong."""
        form = await request.form()
        values = {k: str(v) for k, v in form.items() if isinstance(v, str)}
        if not self.tokens.check(request.cookies.get(self.cookie), values.get("csrf"), link.token):
            log.info("form refused: CSRF token missing or wrong")
            return self.refused(request, _Refusal("csrf", link.snap.patient.preferred_language))
        return values

    async def take_in(self) -> None:
        """Take in what the inbox holds now (payments, replies, disputes), without polling the agency."""
        async with self._take_in_lock:
            report = await self.store.run(
                lambda s: intake(s, self.pm, self.settings, (), self.clock(), poll_agency=False)
            )
        for failure in report.failures:
            log.warning("inbox event not taken in: %s", failure)

    def today(self, link: _Link, now: dt.datetime) -> dt.date:
        return now.astimezone(zone(link.tz)).date()
