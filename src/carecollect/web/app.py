"""The patient pages and the provider's door, as one ASGI application (Starlette).

:func:`create_app` builds it from the same :class:`~carecollect.daily_run.RunSettings`,
store and plugin manager as the daily run. Mount it in a FastAPI or Starlette app, or
serve it alone (``carecollect web serve``). Routes (relative to where it is mounted; a
pay link is ``<pay_link_base>/<token>``, so mount the app where ``pay_link_base`` ends
in ``/p``):

=========================================  ==================================================
``GET  /p/{token}``                        the pay page: statement, amount due, ways to pay
``POST /p/{token}/pay/{provider}``         hand-off to the provider's hosted checkout
``GET  /p/{token}/receipt``                the receipt when the patient comes back
``GET|POST /p/{token}/plan``               ability to pay, the plan options and schedules
``POST /p/{token}/plan/agree``             the chosen plan, stored active (outreach stops)
``GET|POST /p/{token}/direct-debit``       a direct-debit mandate that pays the plan's instalments
``GET|POST /p/{token}/assistance``         ask for financial assistance (outreach pauses)
``GET|POST /p/{token}/dispute``            dispute the bill (outreach freezes)
``GET|POST /p/{token}/opt-out``            stop messages on one channel
``GET|POST /p/{token}/contact``            phone, hours and a contact form (with its deadline)
``POST /webhooks/{provider}``              a payment provider's webhooks (signature checked)
``POST /inbound/{channel}``                replies (STOP, HELP) through a channel plugin
``GET  /static/carecollect.css``           the one style sheet
=========================================  ==================================================

Every page is server-rendered from the package's Jinja2 templates in the patient's
language; there is no script. What the patient does is stored durably before the
answer goes out, so the next run (or dry run) already sees it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import datetime as dt
import hashlib
import hmac
import logging
import time
import urllib.parse
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, TypeVar

import attrs
import jinja2

from ..calendars import BusinessCalendar
from ..channels import Channel
from ..contact_centre.records import ContactChannel, ContactRecord, Direction, Topic
from ..contact_centre.service_levels import ResponseTarget
from ..daily_run import InboundKind, RunSettings, intake
from ..disputes import DisputeReason
from ..errors import CareCollectError, ConfigurationError
from ..ledger import EntryKind
from ..messages.glossary import glossary_entry, rights_text
from ..messages.paylinks import PayLinkClaim, PayLinkExpired, PayLinkInvalid, PayLinkSigner
from ..messages.statement import ShareKind, Statement, build_statement
from ..money import Money
from ..patients import opt_out
from ..payments import PaymentMethod
from ..plans import activate_plan
from ..providers import Instrument, WebhookError
from ..relief.assistance import ApplicationStatus, AssistanceApplication
from ..relief.disputes import open_dispute
from ..relief.plans import Affordability, OptionKind, PlanProposal, option_to_plan, propose_plan_options
from ..scrubbing import scrub_text
from ..store.base import AccountSnapshot, ContactRequest, InboxItem, Mandate, NotFound, ProviderPayment, Store
from ..timekeeping import zone
from .security import BodyLimit, FormTokens, RateLimiter, SecurityHeaders, content_security_policy
from .texts import LANGUAGE_NAMES, LANGUAGES, PageTexts, pick_language

__all__ = ["BankTransfer", "OfficeHours", "WebSettings", "create_app", "payment_id_for_link"]

log = logging.getLogger("carecollect.web")

_HERE = Path(__file__).parent
_T = TypeVar("_T")
#: The source of "this pay link was used for a payment" marks in the store's processed events.
PAYLINK_SOURCE = "paylink"
_JURISDICTIONS = ("us", "no", "de", "bg")
#: Headers never kept with an inbox event (they are the sender's, not the signature's).
_DROPPED_HEADERS = frozenset({"cookie", "authorization", "proxy-authorization"})


@attrs.frozen
class BankTransfer:
    """Where a patient can send a bank transfer (shown with the invoice as the reference).

    :param recipient: the account holder's name.
    :param account: the IBAN or the domestic account number.
    :param bic: the BIC, if any.
    """

    recipient: str
    account: str
    bic: str | None = None


@attrs.frozen
class OfficeHours:
    """When the phone is answered: ``opens``–``closes`` on ``weekdays`` in ``time_zone``.

    The pay page shows them in the patient's own time zone.

    :param opens: local opening time.
    :param closes: local closing time.
    :param time_zone: the office's IANA zone.
    :param weekdays: ISO weekdays (1 = Monday) the phone is answered.
    """

    opens: dt.time = dt.time(8, 0)
    closes: dt.time = dt.time(16, 0)
    time_zone: str = "Europe/Oslo"
    weekdays: tuple[int, ...] = (1, 2, 3, 4, 5)


@attrs.frozen
class WebSettings:
    """How the patient pages behave (what the run settings do not already say).

    :param public_url: the app's public base URL (``https://pay.example.org``); the return
        address given to a hosted checkout. ``None``: taken from the request.
    :param checkout_origins: origins of providers' hosted checkout pages (the CSP's
        ``form-action`` must allow the redirect to them).
    :param bank_transfer: bank details shown as a way to pay (``None``: not shown).
    :param office_hours: when the phone is answered.
    :param centre_country: the contact centre's country (its business days count).
    :param response_business_days: business days within which a contact form is answered
        (1: the next business day, the seed's standard for e-mail).
    :param ip_capacity: requests an IP may burst; ``ip_per_second`` refills it.
    :param link_capacity: requests one pay link may burst; ``link_per_second`` refills it.
    :param max_body_bytes: the largest request body accepted (413 above).
    :param secure_cookies: cookies carry ``Secure`` and the ``__Host-`` prefix (turn off only
        for plain-HTTP development on a host other than localhost).
    :param hsts_seconds: ``Strict-Transport-Security`` max-age (0: none).
    :param take_in_webhooks: take the inbox in at once after an event is stored (payments
        show on the receipt within seconds); ``False`` leaves it to the next run.
    :param inbound_channels: channel plugins whose replies ``POST /inbound/<plugin>`` accepts.
        List only plugins whose ``parse_inbound`` checks the sender's signature: an unsigned
        door would let anyone opt a phone number out. Default: none.
    """

    public_url: str | None = None
    checkout_origins: tuple[str, ...] = ()
    bank_transfer: BankTransfer | None = None
    office_hours: OfficeHours = OfficeHours()
    centre_country: str = "NO"
    response_business_days: int = 1
    ip_capacity: int = 60
    ip_per_second: float = 1.0
    link_capacity: int = 30
    link_per_second: float = 0.5
    max_body_bytes: int = 64 * 1024
    secure_cookies: bool = True
    hsts_seconds: int = 31_536_000
    take_in_webhooks: bool = True
    inbound_channels: tuple[str, ...] = ()


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


class _Pages:
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
            "phone": self.settings.phone,
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

    # -- the pay page ---------------------------------------------------------------------
    def statement_view(self, link: _Link, t: PageTexts) -> dict[str, Any]:
        invoice = link.invoice
        statement: Statement = build_statement(invoice)
        paid = statement.patient_share - link.balance
        if paid.is_positive():
            statement = build_statement(invoice, payments=paid)
        lines = []
        kinds: set[ShareKind] = set()
        for line in statement.lines:
            kinds.update(r.kind for r in line.reasons)
            lines.append(
                {
                    "date": t.date(line.service_date),
                    "description": line.description,
                    "charge": t.money(line.charge),
                    "insurer": t.money(line.insurer_paid),
                    "adjustment": t.money(line.adjustment),
                    "owes": t.money(line.patient_owes),
                    "why": [
                        t.message(f"st.reason.{r.kind.value}", amount=t.money(r.amount)) for r in line.reasons
                    ],
                }
            )
        terms = [
            k.value for k in (ShareKind.DEDUCTIBLE, ShareKind.COINSURANCE, ShareKind.COPAY) if k in kinds
        ]
        if statement.adjustments.is_positive():
            terms.append("contractual_adjustment")
        terms += ["payment_plan", "financial_assistance", "dispute"]
        return {
            "lines": lines,
            "charges": t.money(statement.charges),
            "insurer_paid": t.money(statement.insurer_paid),
            "adjustments": t.money(statement.adjustments),
            "payments": t.money(statement.payments) if statement.payments is not None else None,
            "balance": t.money(link.balance),
            "payer": statement.payer_name,
            "insurer_positive": statement.insurer_paid.is_positive(),
            "adjusted_positive": statement.adjustments.is_positive(),
            "pending": statement.claim_pending,
            "glossary": [glossary_entry(term, t.language) for term in terms],
        }

    def ways_to_pay(self, link: _Link, t: PageTexts) -> dict[str, Any]:
        cards = []
        direct_debit = False
        for name in self.settings.payment_providers:
            try:
                desc = self.pm.payment_provider(name)
            except CareCollectError:
                log.warning("payment provider %s is configured but not installed", name)
                continue
            caps = desc.capabilities
            if caps.payment_links and caps.supports(PaymentMethod.CARD, link.balance.currency):
                cards.append({"name": name, "label": desc.description or name})
            if PaymentMethod.DIRECT_DEBIT in caps.methods and link.balance.currency in caps.currencies:
                direct_debit = True
        return {"cards": cards, "direct_debit": direct_debit, "bank": self.web.bank_transfer}

    def holds(self, link: _Link, t: PageTexts) -> list[str]:
        inv = link.claim.invoice_id
        why = []
        if any(d.is_open and d.covers(inv) for d in link.snap.disputes):
            why.append(t("hold.dispute"))
        if any(p.status.current and inv in p.invoice_ids for p in link.snap.plans):
            why.append(t("hold.plan"))
        if any(a.status.pending for a in link.snap.applications):
            why.append(t("hold.assistance"))
        return why

    async def pay_page(self, request: Any) -> Any:
        link = await self.link(request)
        if not isinstance(link, _Link):
            return link
        t = self.texts(request, link)
        return self.render(
            request,
            "pay.html",
            link,
            t,
            title=t("pay.title"),
            amount=t.money(link.balance),
            due=t.date(link.invoice.due_date),
            nothing_due=not link.balance.is_positive(),
            reference=link.claim.invoice_id,
            statement=self.statement_view(link, t),
            ways=self.ways_to_pay(link, t),
            holds=self.holds(link, t),
            rights=rights_text(link.jurisdiction, t.language),
        )

    async def start_payment(self, request: Any) -> Any:
        from starlette.concurrency import run_in_threadpool
        from starlette.responses import RedirectResponse

        link = await self.link(request)
        if not isinstance(link, _Link):
            return link
        form = await self.form(request, link)
        if not isinstance(form, Mapping):
            return form
        name = request.path_params["provider"]
        if name not in self.settings.payment_providers or not link.balance.is_positive():
            return self.refused(request, _Refusal("form", link.snap.patient.preferred_language))
        provider = self.provider(name)
        result = await run_in_threadpool(
            provider.create_payment_link,
            link.balance,
            idempotency_key=f"paylink:{link.claim.nonce}:{link.balance.minor_units}",
            account_id=link.snap.account.id,
            expires_at=link.claim.expires_at,
        )
        if not result.success or not result.url or not result.reference:
            log.warning("provider %s refused a payment link: %s", name, result.error_code)
            return self.refused(request, _Refusal("form", link.snap.patient.preferred_language), 502)
        now = self.clock()

        def record(store: Store) -> None:
            with store.transaction():
                store.link_provider_payment(
                    ProviderPayment(
                        name,
                        result.reference,
                        link.snap.account.id,
                        payment_id_for_link(link.claim.nonce, name),
                    )
                )
                store.audit_append(
                    "paylink.checkout",
                    link.snap.account.id,
                    {"invoice": link.claim.invoice_id, "provider": name, "reference": result.reference},
                    at=now,
                )

        await self.store.run(record)
        # where the patient comes back: the public URL, else this request's origin and mount point
        u = request.url
        base = self.web.public_url or f"{u.scheme}://{u.netloc}{request.scope.get('root_path', '')}"
        back = f"{base.rstrip('/')}/p/{link.token}/receipt"
        lang = request.query_params.get("lang")
        if lang in LANGUAGES:
            back += f"?lang={lang}"
        sep = "&" if "?" in result.url else "?"
        return RedirectResponse(
            f"{result.url}{sep}return_url={urllib.parse.quote(back, safe='')}", status_code=303
        )

    async def receipt(self, request: Any) -> Any:
        token = request.path_params["token"]
        if (limited := self.limited(request, token)) is not None:
            return limited
        if self.web.take_in_webhooks:
            await self.take_in()
        link = await self.store.run(lambda s: self.load(s, token, allow_used=True))
        if isinstance(link, _Refusal):
            return self.refused(request, link)
        t = self.texts(request, link)
        paid = _link_payments(link.snap, link.claim.nonce)
        if not paid:
            return self.render(request, "receipt.html", link, t, title=t("receipt.pending_title"), paid=None)
        amount = Money.from_minor(sum(e.amount.minor_units for e in paid), paid[0].amount.currency)
        return self.render(
            request,
            "receipt.html",
            link,
            t,
            title=t("receipt.title"),
            paid={
                "amount": t.money(amount),
                "date": t.date(paid[0].at.astimezone(zone(link.tz)).date()),
                "reference": paid[0].source_id,
                "left": t.money(link.balance) if link.balance.is_positive() else None,
            },
        )

    # -- plans ------------------------------------------------------------------------------
    def proposal(self, link: _Link, income: Money | None, now: dt.datetime) -> PlanProposal:
        today = self.today(link, now)
        pack = self.settings.pack(link.snap.account.jurisdiction)
        first_due = max(today + dt.timedelta(days=14), link.invoice.due_date)
        return propose_plan_options(
            link.balance,
            today=today,
            first_due=first_due,
            pack=pack,
            creditor=link.creditor,
            affordability=Affordability(gross_monthly_income=income),
        )

    @staticmethod
    def income(value: str | None, currency: str) -> Money | bool | None:
        """The income the patient typed (``None``: left empty; ``False``: not a valid amount)."""
        text = (value or "").strip().replace(" ", "").replace("\u00a0", "")
        if not text:
            return None
        if "," in text and "." not in text:
            text = text.replace(",", ".")
        try:
            amount = Decimal(text.replace(",", ""))
        except InvalidOperation:
            return False
        if amount < 0 or amount > Decimal("100000000"):
            return False
        return Money.of(str(amount.quantize(Decimal("0.01"))), currency)

    def plan_options_view(self, proposal: PlanProposal, t: PageTexts) -> list[dict[str, Any]]:
        views = []
        for option in proposal.options:
            views.append(
                {
                    "kind": option.kind.value,
                    "label": t(f"plan.option.{option.kind.value}"),
                    "summary": t("plan.summary", count=option.count, total=t.money(option.total))
                    if option.count > 1
                    else t("plan.summary_one", total=t.money(option.total)),
                    "discount": t(
                        "plan.discount", date=t.date(option.valid_until), amount=t.money(option.discount)
                    )
                    if option.discount.is_positive() and option.valid_until is not None
                    else None,
                    "rows": [(i.number, t.date(i.due_date), t.money(i.amount)) for i in option.instalments],
                }
            )
        return views

    def has_plan(self, link: _Link) -> bool:
        return any(p.status.current and link.claim.invoice_id in p.invoice_ids for p in link.snap.plans)

    async def plan(self, request: Any) -> Any:
        link = await self.link(request)
        if not isinstance(link, _Link):
            return link
        t = self.texts(request, link)
        if self.has_plan(link):
            return self.render(request, "done.html", link, t, title=t("plan.title"), message=t("plan.exists"))
        if request.method == "GET" or not link.balance.is_positive():
            return self.render(request, "plan.html", link, t, title=t("plan.title"), options=None, income="")
        form = await self.form(request, link)
        if not isinstance(form, Mapping):
            return form
        income = self.income(form.get("income"), link.balance.currency)
        if income is False:
            return self.refused(request, _Refusal("form", t.language))
        proposal = self.proposal(link, income if isinstance(income, Money) else None, self.clock())
        return self.render(
            request,
            "plan.html",
            link,
            t,
            title=t("plan.title"),
            options=self.plan_options_view(proposal, t),
            only_full=len(proposal.options) == 1,
            income=form.get("income", ""),
        )

    async def agree_plan(self, request: Any) -> Any:
        from starlette.responses import RedirectResponse

        link = await self.link(request)
        if not isinstance(link, _Link):
            return link
        form = await self.form(request, link)
        if not isinstance(form, Mapping):
            return form
        t = self.texts(request, link)
        income = self.income(form.get("income"), link.balance.currency)
        try:
            kind = OptionKind(form.get("option", ""))
        except ValueError:
            return self.refused(request, _Refusal("form", t.language))
        if income is False or form.get("agree") != "yes" or not link.balance.is_positive():
            return self.refused(request, _Refusal("form", t.language))
        if kind is OptionKind.PAY_IN_FULL:
            return RedirectResponse(self.base_context(request, t, link)["url"](""), status_code=303)
        if self.has_plan(link):
            return self.render(request, "done.html", link, t, title=t("plan.title"), message=t("plan.exists"))
        now = self.clock()
        option = self.proposal(link, income if isinstance(income, Money) else None, now).option(kind)
        if option is None:
            return self.refused(request, _Refusal("form", t.language))
        plan = option_to_plan(
            option,
            plan_id=f"PLAN-WEB-{link.claim.nonce}",
            account_id=link.snap.account.id,
            invoice_ids=(link.claim.invoice_id,),
            created_at=now,
        )
        plan, _event = activate_plan(plan, at=now)

        def record(store: Store) -> None:
            with store.transaction():
                store.put_plan(plan)
                store.audit_append(
                    "plan.agreed",
                    link.snap.account.id,
                    {
                        "plan": plan.id,
                        "invoice": link.claim.invoice_id,
                        "option": kind.value,
                        "instalments": len(plan.instalments),
                        "via": "patient pages",
                    },
                    at=now,
                )

        await self.store.run(record)
        first = plan.instalments[0]
        return self.render(
            request,
            "done.html",
            link,
            t,
            title=t("plan.done_title"),
            message=t("plan.done", amount=t.money(first.amount), date=t.date(first.due_date)),
            schedule=[(i.number, t.date(i.due_date), t.money(i.amount)) for i in plan.instalments],
            debit=self.debit_provider(link.snap.account.currency) is not None,
        )

    # -- direct debit for a plan ------------------------------------------------------------------
    def debit_provider(self, currency: str) -> str | None:
        """The first configured provider that stores direct-debit mandates in ``currency``."""
        for name in self.settings.payment_providers:
            try:
                caps = self.pm.payment_provider(name).capabilities
            except CareCollectError:
                continue
            if caps.mandates and caps.supports(PaymentMethod.DIRECT_DEBIT, currency):
                return str(name)
        return None

    def current_plan(self, link: _Link) -> Any:
        return next(
            (p for p in link.snap.plans if p.status.current and link.claim.invoice_id in p.invoice_ids), None
        )

    async def direct_debit(self, request: Any) -> Any:
        from starlette.concurrency import run_in_threadpool

        link = await self.link(request)
        if not isinstance(link, _Link):
            return link
        t = self.texts(request, link)
        plan = self.current_plan(link)
        name = self.debit_provider(link.snap.account.currency)
        if plan is None or name is None:
            return self.render(request, "done.html", link, t, title=t("dd.title"), message=t("dd.none"))
        label = self.pm.payment_provider(name).description or name
        if any(m.plan_id == plan.id and m.revoked_at is None for m in link.snap.mandates):
            return self.render(request, "done.html", link, t, title=t("dd.done_title"), message=t("dd.done"))
        if request.method == "GET":
            return self.render(
                request,
                "debit.html",
                link,
                t,
                title=t("dd.title"),
                provider=label,
                creditor_name=link.creditor.name,
            )
        form = await self.form(request, link)
        if not isinstance(form, Mapping):
            return form
        iban = "".join(form.get("iban", "").split()).upper()
        # the whole field must be one IBAN that passes the ISO 13616 mod-97 check
        if form.get("consent") != "yes" or not iban or scrub_text(iban) != "[IBAN]":
            return self.refused(request, _Refusal("form", t.language))
        result = await run_in_threadpool(
            self.provider(name).store_mandate,
            Instrument(PaymentMethod.DIRECT_DEBIT, token=iban),
            idempotency_key=f"mandate:{plan.id}",
            account_id=link.snap.account.id,
        )
        if not result.success or not result.reference:
            log.warning("provider %s refused a mandate: %s", name, result.error_code)
            return self.refused(request, _Refusal("form", t.language), 502)
        now = self.clock()
        mandate = Mandate(
            plan.id, link.snap.account.id, name, PaymentMethod.DIRECT_DEBIT.value, result.reference, now
        )

        def record(store: Store) -> None:
            with store.transaction():
                store.put_mandate(mandate)
                store.audit_append(
                    "mandate.stored",
                    link.snap.account.id,
                    {"plan": plan.id, "provider": name, "method": mandate.method, "via": "patient pages"},
                    at=now,
                )

        await self.store.run(record)
        return self.render(request, "done.html", link, t, title=t("dd.done_title"), message=t("dd.done"))

    # -- assistance, dispute, opt-out ------------------------------------------------------------
    async def assistance(self, request: Any) -> Any:
        link = await self.link(request)
        if not isinstance(link, _Link):
            return link
        t = self.texts(request, link)
        if request.method == "GET":
            return self.render(request, "assistance.html", link, t, title=t("assist.title"))
        form = await self.form(request, link)
        if not isinstance(form, Mapping):
            return form
        now = self.clock()
        application = AssistanceApplication(
            f"FA-WEB-{link.claim.nonce}",
            link.snap.account.id,
            self.today(link, now),
            ApplicationStatus.RECEIVED,
        )

        def record(store: Store) -> None:
            with store.transaction():
                store.put_application(application)
                store.audit_append(
                    "assistance.requested",
                    link.snap.account.id,
                    {"application": application.id, "invoice": link.claim.invoice_id, "via": "patient pages"},
                    at=now,
                )

        if not any(a.status.pending for a in link.snap.applications):
            await self.store.run(record)
        return self.render(
            request, "done.html", link, t, title=t("assist.done_title"), message=t("assist.done")
        )

    async def dispute(self, request: Any) -> Any:
        link = await self.link(request)
        if not isinstance(link, _Link):
            return link
        t = self.texts(request, link)
        reasons = (DisputeReason.BILLING_ERROR, DisputeReason.NOT_MINE, DisputeReason.QUALITY_OF_SERVICE)
        if any(d.is_open and d.covers(link.claim.invoice_id) for d in link.snap.disputes):
            return self.render(
                request, "done.html", link, t, title=t("dispute.title"), message=t("dispute.exists")
            )
        if request.method == "GET":
            return self.render(
                request,
                "dispute.html",
                link,
                t,
                title=t("dispute.title"),
                reasons=[(r.value, t(f"dispute.{r.value}")) for r in reasons],
            )
        form = await self.form(request, link)
        if not isinstance(form, Mapping):
            return form
        try:
            reason = DisputeReason(form.get("reason", ""))
        except ValueError:
            return self.refused(request, _Refusal("form", t.language))
        if reason not in reasons:
            return self.refused(request, _Refusal("form", t.language))
        now = self.clock()
        dispute_id = f"DSP-WEB-{link.claim.nonce}"
        # the same door as every other source of disputes: an event in the inbox, taken in at once
        body = {
            "action": "open",
            "dispute_id": dispute_id,
            "account_id": link.snap.account.id,
            "invoice_id": link.claim.invoice_id,
            "reason": reason.value,
            "at": now.isoformat(),
            "in_writing": True,
        }
        import json

        item = InboxItem(
            InboundKind.DISPUTE.value,
            "patient-pages",
            f"open:{dispute_id}",
            json.dumps(body).encode(),
            {},
            now,
        )
        await self.store.run(lambda s: s.inbox_put(item))
        await self.take_in()
        _, _, respond_by = open_dispute(
            dispute_id,
            link.snap.account.id,
            link.claim.invoice_id,
            reason,
            at=now,
            pack=self.settings.pack(link.snap.account.jurisdiction),
            in_writing=True,
        )
        return self.render(
            request,
            "done.html",
            link,
            t,
            title=t("dispute.done_title"),
            message=t("dispute.done", date=t.date(respond_by)),
        )

    def channels_to_stop(self, link: _Link) -> list[Channel]:
        seen: list[Channel] = []
        for point in link.snap.patient.contact_points:
            if (
                point.channel is not Channel.LETTER
                and point.opted_out_at is None
                and point.channel not in seen
            ):
                seen.append(point.channel)
        return seen

    async def opt_out(self, request: Any) -> Any:
        link = await self.link(request)
        if not isinstance(link, _Link):
            return link
        t = self.texts(request, link)
        channels = self.channels_to_stop(link)
        if request.method == "GET":
            return self.render(
                request,
                "optout.html",
                link,
                t,
                title=t("optout.title"),
                channels=[(c.value, t(f"optout.{c.value}")) for c in channels],
            )
        form = await self.form(request, link)
        if not isinstance(form, Mapping):
            return form
        try:
            channel = Channel(form.get("channel", ""))
        except ValueError:
            return self.refused(request, _Refusal("form", t.language))
        if channel not in channels:
            return self.refused(request, _Refusal("form", t.language))
        now = self.clock()
        patient_id = link.snap.patient.id

        def record(store: Store) -> Any:
            with store.transaction():
                patient, event = opt_out(store.get_patient(patient_id), channel, at=now)
                store.put_patient(patient)
                store.audit_append(
                    "opt_out", patient_id, {"channel": channel.value, "via": "patient pages"}, at=now
                )
            return event

        event = await self.store.run(record)
        self.pm.on_opt_out(patient_id, channel, event)
        return self.render(
            request,
            "done.html",
            link,
            t,
            title=t("optout.done_title"),
            message=t("optout.done", channel=t(f"optout.{channel.value}")),
        )

    # -- reaching a person ---------------------------------------------------------------------
    def hours(self, link: _Link, t: PageTexts, now: dt.datetime) -> dict[str, str]:
        hours = self.web.office_hours
        office = zone(hours.time_zone)
        today = now.astimezone(office).date()
        opens = dt.datetime.combine(today, hours.opens, tzinfo=office).astimezone(zone(link.tz))
        closes = dt.datetime.combine(today, hours.closes, tzinfo=office).astimezone(zone(link.tz))
        return {"opens": t.time(opens), "closes": t.time(closes), "days": t("days.weekdays")}

    async def contact(self, request: Any) -> Any:
        link = await self.link(request)
        if not isinstance(link, _Link):
            return link
        t = self.texts(request, link)
        now = self.clock()
        topics = (Topic.BALANCE_QUESTION, Topic.PAYMENT, Topic.PAYMENT_PLAN, Topic.INSURANCE, Topic.OTHER)
        if request.method == "GET":
            return self.render(
                request,
                "contact.html",
                link,
                t,
                title=t("contact.title"),
                hours=t("contact.hours", **self.hours(link, t, now)),
                topics=[(x.value, t(f"contact.topic.{x.value}")) for x in topics],
            )
        form = await self.form(request, link)
        if not isinstance(form, Mapping):
            return form
        message = form.get("message", "").strip()
        reply_by = form.get("reply_by", "")
        try:
            topic = Topic(form.get("topic", ""))
        except ValueError:
            return self.refused(request, _Refusal("form", t.language))
        if topic not in topics or reply_by not in ("email", "phone") or not message or len(message) > 4000:
            return self.refused(request, _Refusal("form", t.language))
        target = ResponseTarget(
            "patient-pages",
            self.web.response_business_days,
            BusinessCalendar.for_country(self.web.centre_country),
            self.web.office_hours.time_zone,
        )
        record = ContactRecord(
            f"WEB-{uuid.uuid4().hex[:16]}",
            link.snap.account.id,
            ContactChannel.EMAIL if reply_by == "email" else ContactChannel.CALLBACK,
            Direction.INBOUND,
            topic,
            now,
            invoice_id=link.claim.invoice_id,
            queue="patient-pages",
        )
        request_ = ContactRequest(record, target.deadline(now), reply_by, message)

        def keep(store: Store) -> None:
            with store.transaction():
                store.put_contact_request(request_)
                store.audit_append(
                    "contact.requested",
                    link.snap.account.id,
                    {
                        "contact": record.contact_id,
                        "topic": topic.value,
                        "respond_by": request_.respond_by.isoformat(),
                    },
                    at=now,
                )

        await self.store.run(keep)
        # the deadline is the end of a business day in the centre's zone: show the last minute before it
        due = (request_.respond_by - dt.timedelta(minutes=1)).astimezone(zone(link.tz))
        return self.render(
            request,
            "done.html",
            link,
            t,
            title=t("contact.done_title"),
            message=t("contact.done", date=t.date(due.date()), time=t.time(due)),
        )

    # -- the provider's door -------------------------------------------------------------------
    async def webhook(self, request: Any) -> Any:
        from starlette.background import BackgroundTask
        from starlette.responses import JSONResponse

        name = request.path_params["provider"]
        if (limited := self.limited(request, None)) is not None:
            return limited
        if name not in self.settings.payment_providers:
            return JSONResponse({"error": "unknown provider"}, 404)
        body = await request.body()
        headers = {k.lower(): v for k, v in request.headers.items() if k.lower() not in _DROPPED_HEADERS}
        now = self.clock()
        try:
            event = self.provider(name).parse_webhook(headers, body, now=now)
        except WebhookError as exc:
            log.info("webhook from %s refused: %s", name, type(exc).__name__)
            return JSONResponse({"error": "signature refused"}, 400)
        except (CareCollectError, ValueError, KeyError, TypeError) as exc:
            log.info("webhook from %s malformed: %s", name, type(exc).__name__)
            return JSONResponse({"error": "malformed event"}, 400)
        item = InboxItem(InboundKind.PAYMENT.value, name, event.event_id, body, headers, now)
        new = await self.store.run(lambda s: s.inbox_put(item))  # committed before the 2xx goes out
        task = BackgroundTask(self.take_in) if new and self.web.take_in_webhooks else None
        return JSONResponse({"received": event.event_id, "duplicate": not new}, 200, background=task)

    async def inbound(self, request: Any) -> Any:
        from starlette.background import BackgroundTask
        from starlette.responses import JSONResponse

        name = request.path_params["channel"]
        if (limited := self.limited(request, None)) is not None:
            return limited
        if name not in self.web.inbound_channels:
            return JSONResponse({"error": "unknown channel"}, 404)
        try:
            desc = self.pm.message_channel(name)
        except CareCollectError:
            return JSONResponse({"error": "unknown channel"}, 404)
        if not getattr(desc.capabilities, "inbound", True):
            return JSONResponse({"error": "channel takes no replies"}, 404)
        body = await request.body()
        headers = {k.lower(): v for k, v in request.headers.items() if k.lower() not in _DROPPED_HEADERS}
        now = self.clock()
        try:
            channel = desc.create(dict(self.settings.channel_config.get(name, {})))
            reply = channel.parse_inbound(headers, body, now=now)  # the plugin checks the signature
        except (CareCollectError, ValueError, KeyError, TypeError) as exc:
            log.info("inbound reply via %s refused: %s", name, type(exc).__name__)
            return JSONResponse({"error": "refused"}, 400)
        item = InboxItem(InboundKind.REPLY.value, name, reply.provider_message_id, body, headers, now)
        new = await self.store.run(lambda s: s.inbox_put(item))
        task = BackgroundTask(self.take_in) if new and self.web.take_in_webhooks else None
        return JSONResponse(
            {"received": reply.provider_message_id, "duplicate": not new}, 200, background=task
        )


def _digest_for_log(path: str) -> str:
    """A route's shape for the log: the pay link token replaced (never the invoice id or amount)."""
    parts = path.split("/")
    if len(parts) > 2 and parts[1] == "p":
        parts[2] = "<link " + hmac.new(b"log", parts[2].encode(), hashlib.sha256).hexdigest()[:8] + ">"
    return "/".join(parts)


def create_app(
    settings: RunSettings,
    store: Store | Callable[[], Store],
    plugin_manager: Any,
    *,
    web: WebSettings | None = None,
    clock: Callable[[], dt.datetime] | None = None,
    mounts: Mapping[str, Any] | None = None,
) -> Any:
    """The patient pages and the provider's door as a Starlette (ASGI) application.

    :param settings: the run's settings (pay-link key and base, payment providers, channel
        plugins, phone, policy packs).
    :param store: the store, or a function that opens one. Every store call runs on one
        thread the app keeps for it, one at a time. A store passed in must allow use from
        that thread (``SQLiteStore(path, check_same_thread=False)``); a function is called on
        that thread, and the store it returns is closed when the app shuts down.
    :param plugin_manager: the plugin manager (:func:`~carecollect.plugin_manager.make_plugin_manager`).
    :param web: :class:`WebSettings` (defaults: strict).
    :param clock: the current instant (aware); default the system clock in UTC.
    :param mounts: extra ASGI apps by path (a simulated gateway's hosted checkout in a demo).
    :returns: the ASGI app; its ``state.carecollect_close()`` closes the store thread when the
        app is mounted in another (a mounted app's lifespan does not run).
    :raises ConfigurationError: no pay-link key in ``settings``.
    """
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import FileResponse, Response
    from starlette.routing import Mount, Route

    web = web or WebSettings()
    clock = clock or (lambda: dt.datetime.now(dt.UTC))
    thread = _StoreThread(store)
    pages = _Pages(settings, thread, plugin_manager, web, clock)

    async def stylesheet(request: Request) -> Response:
        return FileResponse(
            _HERE / "static" / "carecollect.css", headers={"Cache-Control": "public, max-age=3600"}
        )

    routes: list[Any] = [
        Route("/p/{token}", pages.pay_page, methods=["GET"], name="pay"),
        Route("/p/{token}/pay/{provider}", pages.start_payment, methods=["POST"], name="start_payment"),
        Route("/p/{token}/receipt", pages.receipt, methods=["GET"], name="receipt"),
        Route("/p/{token}/plan", pages.plan, methods=["GET", "POST"], name="plan"),
        Route("/p/{token}/plan/agree", pages.agree_plan, methods=["POST"], name="agree_plan"),
        Route("/p/{token}/direct-debit", pages.direct_debit, methods=["GET", "POST"], name="direct_debit"),
        Route("/p/{token}/assistance", pages.assistance, methods=["GET", "POST"], name="assistance"),
        Route("/p/{token}/dispute", pages.dispute, methods=["GET", "POST"], name="dispute"),
        Route("/p/{token}/opt-out", pages.opt_out, methods=["GET", "POST"], name="opt_out"),
        Route("/p/{token}/contact", pages.contact, methods=["GET", "POST"], name="contact"),
        Route("/webhooks/{provider}", pages.webhook, methods=["POST"], name="webhook"),
        Route("/inbound/{channel}", pages.inbound, methods=["POST"], name="inbound"),
        Route("/static/carecollect.css", stylesheet, methods=["GET"], name="static"),
    ]
    routes += [Mount(path, app=sub) for path, sub in (mounts or {}).items()]

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        yield
        thread.close()

    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.carecollect_close = thread.close

    async def log_requests(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        started = time.monotonic()
        status = 0

        async def capture(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await app(scope, receive, capture)
        finally:
            log.info(
                "%s %s %s %.0f ms",
                scope["method"],
                _digest_for_log(scope["path"]),
                status,
                (time.monotonic() - started) * 1000,
            )

    csp = content_security_policy(web.checkout_origins)
    guarded = SecurityHeaders(
        BodyLimit(log_requests, max_bytes=web.max_body_bytes), csp=csp, hsts_seconds=web.hsts_seconds
    )
    return _App(guarded, app)


class _App:
    """The guarded ASGI callable, with the Starlette app's ``state`` and ``router`` at hand."""

    def __init__(self, guarded: Any, inner: Any) -> None:
        self._guarded = guarded
        self.inner = inner
        self.state = inner.state
        self.router = inner.router

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self._guarded(scope, receive, send)
