"""The patient pages: the pay page and receipt, plans and direct debit, assistance, dispute, opt-out, contact."""

from __future__ import annotations

import datetime as dt
import enum
import json
import urllib.parse
import uuid
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from ..assistance_applications import ApplicationStatus, AssistanceApplication
from ..calendars import BusinessCalendar
from ..channels import Channel
from ..contact_centre.records import ContactChannel, ContactRecord, Direction, Topic
from ..contact_centre.service_levels import ResponseTarget
from ..disputes import DisputeReason
from ..errors import CareCollectError
from ..messages.glossary import glossary_entry, rights_text
from ..messages.statement import ShareKind, Statement, build_statement
from ..money import Money
from ..office_hours import OfficeHours
from ..patients import opt_out
from ..payments import PaymentMethod
from ..plans import activate_plan
from ..plugins.providers import Instrument
from ..relief.disputes import open_dispute
from ..relief.plans import Affordability, OptionKind, PlanProposal, option_to_plan, propose_plan_options
from ..run.inbound import InboundKind
from ..scrubbing import scrub_text
from ..store.base import ContactRequest, InboxItem, Mandate, ProviderPayment, Store
from ..timekeeping import zone
from .texts import LANGUAGES, PageTexts
from .views import _Link, _link_payments, _Refusal, _Views, log, payment_id_for_link

__all__: list[str] = []


class _Way(enum.Enum):
    """A way to pay the pay page offers through a configured provider."""

    #: the provider's hosted checkout: cards, and wallets where the provider takes them
    CHECKOUT = "checkout"
    #: the provider's mobile app (Vipps MobilePay), reached through its payment link
    MOBILE_APP = "mobile_app"
    #: a SEPA direct-debit mandate for a payment plan (the page takes the IBAN)
    SEPA_MANDATE = "sepa_mandate"


class _Pages(_Views):
    """The handlers of the pages a pay link opens."""

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

    def offers(self, link: _Link) -> list[tuple[_Way, str]]:
        """The ways to pay the configured providers declare for this link, in settings order.

        A provider is offered where its capabilities take the balance's currency and, if it
        names countries, the patient's country (else the creditor's): a hosted checkout for a
        provider with payment links and cards (cards and wallets), the mobile app for one with
        payment links and mobile payment only (Vipps), a SEPA direct-debit mandate for a
        provider that stores mandates for euro direct debit (the page takes an IBAN; schemes
        the payer signs in their own bank, such as AvtaleGiro, are not offered here).
        """
        currency = link.balance.currency
        country = link.snap.patient.country or link.creditor.country
        found: list[tuple[_Way, str]] = []
        for name in self.settings.payment_providers:
            try:
                caps = self.pm.payment_provider(name).capabilities
            except CareCollectError:
                log.warning("payment provider %s is configured but not installed", name)
                continue
            if currency not in caps.currencies or (caps.countries and country not in caps.countries):
                continue
            if caps.payment_links and PaymentMethod.CARD in caps.methods:
                found.append((_Way.CHECKOUT, str(name)))
            elif caps.payment_links and PaymentMethod.MOBILE in caps.methods:
                found.append((_Way.MOBILE_APP, str(name)))
            if caps.mandates and PaymentMethod.DIRECT_DEBIT in caps.methods and currency == "EUR":
                found.append((_Way.SEPA_MANDATE, str(name)))
        return found

    def ways_to_pay(self, link: _Link, t: PageTexts) -> dict[str, Any]:
        buttons = []
        direct_debit = None
        for way, name in self.offers(link):
            desc = self.pm.payment_provider(name)
            label = desc.description.split(":")[0].strip() or name
            if way is _Way.SEPA_MANDATE:
                direct_debit = direct_debit or label
                continue
            if way is _Way.MOBILE_APP:
                text = t("ways.mobile", amount=t.money(link.balance), provider=label)
                note = t("ways.mobile_note", provider=label)
            else:
                wallets = PaymentMethod.MOBILE in desc.capabilities.methods
                text = t("ways.card_wallet" if wallets else "ways.card", amount=t.money(link.balance))
                note = t("ways.card_note", provider=label)
            buttons.append({"name": name, "way": way.value, "text": text, "note": note})
        return {"buttons": buttons, "direct_debit": direct_debit, "bank": self.web.bank_transfer}

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
        offered = {n for way, n in self.offers(link) if way is not _Way.SEPA_MANDATE}
        if name not in offered or not link.balance.is_positive():
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
            plan_id=f"PLAN-WEB-{link.claim.nonce}-{len(link.snap.plans) + 1}",  # never replaces an old plan
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
            debit=self.debit_provider(link) is not None,
        )

    # -- direct debit for a plan ------------------------------------------------------------------
    def debit_provider(self, link: _Link) -> str | None:
        """The first configured provider offered for a SEPA direct-debit mandate on this link."""
        return next((name for way, name in self.offers(link) if way is _Way.SEPA_MANDATE), None)

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
        name = self.debit_provider(link)
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
            f"FA-WEB-{link.claim.nonce}-{len(link.snap.applications) + 1}",
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
        dispute_id = f"DSP-WEB-{link.claim.nonce}-{len(link.snap.disputes) + 1}"
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
    def office_hours(self, link: _Link) -> OfficeHours:
        """The hours of the account's creditor (its own, else the installation's, else the pages')."""
        return self.settings.for_creditor(link.snap.account.creditor_id).office_hours or self.web.office_hours

    def hours(self, link: _Link, t: PageTexts, now: dt.datetime) -> dict[str, str]:
        hours = self.office_hours(link)
        today = now.astimezone(zone(hours.time_zone)).date()
        return {"hours": hours.describe(t.locale, in_zone=link.tz, on=today)}

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
            self.office_hours(link).time_zone,
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
