"""Planning: the run's decisions for every account, written nowhere.

:func:`plan_account` applies the packs to one account's snapshot: the cadence
(:func:`~carecollect.policy.cadence.due_steps`), the contact governor
(:func:`~carecollect.policy.governor.may_contact`) for each channel, missed plan instalments,
instalments due to be charged to a stored mandate, and the agency gate
(:func:`~carecollect.relief.gates.may_place`). :func:`plan_run` reads every account from the
store in batches (plan rows decided by the compiled kernel, a snapshot only where the kernel
cannot decide alone); a dry run is exactly this plan.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence

from ..creditors import Creditor
from ..invoices import Invoice, InvoiceStatus
from ..money import Money
from ..outreach import AttemptOutcome, OutreachStatus, OutreachStep
from ..patients import Account
from ..placements import (
    PlacementStatus,
)
from ..plans import (
    Instalment,
    InstalmentStatus,
    PlanStatus,
)
from ..policy.cadence import (
    ANCHOR_PLACED,
    NONE,
    CadencePlan,
    InvoiceContext,
    compile_pack,
    due_steps,
    invoice_history,
    nothing_due,
    nothing_due_in,
    plan_invoice,
)
from ..policy.explain import Outcome, Reason
from ..policy.governor import ContactHistory, Debt, may_contact
from ..policy.packs import PolicyPack
from ..relief.gates import may_place
from ..relief.pauses import relief_flags
from ..relief.snapshot import GateSnapshot, SentNotice
from ..store.base import (
    AccountSnapshot,
    Mandate,
    Store,
)
from ..timekeeping import require_aware, zone
from .decisions import (
    AccountPlan,
    Decision,
    DecisionKind,
    PlannedCharge,
    PlannedMessage,
    PlannedPlacement,
    RunPlan,
    _Collected,
    _Planned,
)
from .kernel import (
    CLOSED,
    NOT_DUE,
    PAID,
    InstalmentAction,
    RunTables,
    decide,
    decode,
    instalment_actions,
    tally_instalments,
)
from .rows import R_CTX, R_ID, AccountRows, Contexts, rows_from_facts
from .settings import RunSettings

__all__ = [
    "by_account",
    "plan_account",
    "plan_run",
]


_SENT = (OutreachStatus.SENT, OutreachStatus.DELIVERED)
#: The reason of every open invoice with nothing left to pay (one object: it has no parameters).
_PAID = Reason("invoice.paid", "ledger", Outcome.INFO)


def _today(now: dt.datetime, tz: str) -> dt.date:
    return now.astimezone(zone(tz)).date()


def _plan_status(snap: AccountSnapshot, invoice_id: str) -> PlanStatus | None:
    best: PlanStatus | None = None
    for plan in snap.plans:
        if invoice_id in plan.invoice_ids:
            if plan.status.current:
                return plan.status
            best = best or plan.status
    return best


def _sent_steps(snap: AccountSnapshot, invoice_id: str) -> tuple[OutreachStep, ...]:
    return tuple(s for s in snap.steps if s.invoice_id == invoice_id and s.status in _SENT)


def _gate_snapshot(
    snap: AccountSnapshot, balance: Money, invoice_ids: tuple[str, ...], tz: str
) -> GateSnapshot:
    notices = tuple(
        SentNotice(s.purpose, _today(s.sent_at, tz), s.deadline, s.invoice_id)
        for s in snap.steps
        if s.status in _SENT and s.sent_at is not None
    )
    last = max((n.sent_on for n in notices), default=None)
    spoke = max((_today(a.at, tz) for a in snap.attempts if a.is_conversation), default=None)
    returned = tuple(_today(a.at, tz) for a in snap.attempts if a.outcome is AttemptOutcome.BOUNCED)
    return GateSnapshot(
        snap.account.id,
        balance,
        invoices=tuple(i for i in snap.invoices if i.id in invoice_ids),
        disputes=snap.disputes,
        plans=snap.plans,
        notices=notices,
        applications=snap.applications,
        handoff_consent=snap.patient.handoff_consent,
        spoke_with_consumer_on=spoke,
        last_message_on=last,
        undeliverable_on=returned,
    )


def plan_account(
    snap: AccountSnapshot,
    creditor: Creditor,
    pack: PolicyPack,
    now: dt.datetime,
    *,
    agency: str | None = None,
    conversations: Iterable[tuple[str, str | None, dt.datetime]] = (),
    prescreen: bool = True,
) -> AccountPlan:
    """Decide everything for one account at ``now`` (pure: reads only its arguments).

    :param snap: the account's records.
    :param creditor: its creditor.
    :param pack: the pack (with house rules).
    :param now: the run's instant (aware).
    :param agency: the agency connector, if accounts may be placed.
    :param conversations: contact-centre conversations ``(account_id, invoice_id, at)``.
    :param prescreen: ask the compiled cadence kernel first (:func:`_prescreen`) and skip the
        relief flags, :func:`~carecollect.policy.cadence.due_steps` and the governor for an
        invoice it finds nothing due on; the plan is the same either way.
    """
    require_aware(now, f"Account {snap.account.id}", "now")
    patient = snap.patient
    tz = patient.time_zones[0]
    today = _today(now, tz)
    history = ContactHistory.of(snap.attempts, conversations)
    messages: list[PlannedMessage] = []
    decisions: list[Decision] = []
    missed: list[tuple[str, int]] = []
    open_ids: list[str] = []
    relief_view: GateSnapshot | None = None

    charges: list[PlannedCharge] = []
    mandates = {m.plan_id: m for m in snap.mandates if m.revoked_at is None or m.revoked_at > now}
    # the pre-screen only takes accounts nothing can freeze (no open dispute, no current plan)
    screen = (
        prescreen
        and not any(d.is_open for d in snap.disputes)
        and not any(p.status.current for p in snap.plans)
        and not any(a.status.pending for a in snap.applications)
    )

    # missed plan instalments: after the pack's grace period; before that, a due
    # instalment is charged to the plan's stored mandate (if the patient gave one)
    grace = int(pack.get("plan.grace_days", 10, on=today))
    active = {plan.id: plan for plan in snap.plans if plan.status is PlanStatus.ACTIVE}
    for action, plan_id, number in instalment_actions(
        (
            (
                plan.id,
                plan.invoice_ids,
                (
                    (inst.number, inst.due_date.toordinal())
                    for inst in plan.instalments
                    if inst.status is InstalmentStatus.DUE
                ),
            )
            for plan in active.values()
        ),
        mandates,
        tuple(d.invoice_id for d in snap.disputes if d.is_open),
        today.toordinal(),
        grace,
    ):
        plan = active[plan_id]
        inst = next(i for i in plan.instalments if i.number == number)
        if action is not InstalmentAction.MISSED:
            held = action is InstalmentAction.CHARGE_HELD
            charges.append(_plan_charge(snap, plan.id, plan.invoice_ids, inst, mandates[plan.id], held))
            decisions.append(charges[-1].decision)
        else:
            missed.append((plan.id, inst.number))
            decisions.append(
                Decision(
                    DecisionKind.PLAN_MISSED,
                    snap.account.id,
                    None,
                    None,
                    None,
                    (
                        Reason(
                            "plan.grace_days",
                            "creditor policy",
                            Outcome.INFO,
                            {"case": "run_missed", "instalment": inst.number, "plan": plan.id, "days": grace},
                        ),
                    ),
                )
            )

    for inv in snap.invoices:
        if inv.status is not InvoiceStatus.OPEN:
            continue
        balance = (
            snap.ledger.invoice_balance(inv.id)
            if inv.id in snap.ledger.invoice_ids()
            else inv.patient_responsibility
        )
        if not balance.is_positive():
            decisions.append(_paid(snap.account.id, inv.id))
            continue
        open_ids.append(inv.id)
        if screen:
            quiet = _prescreen(snap, inv, balance, creditor, pack, now, today)
            if quiet is not None:
                decisions.append(
                    Decision(
                        DecisionKind.NOTHING_DUE,
                        snap.account.id,
                        inv.id,
                        None,
                        None,
                        quiet.reasons,
                        quiet.next_at,
                    )
                )
                continue
        if relief_view is None:
            relief_view = _gate_snapshot(snap, snap.ledger.balance, tuple(i.id for i in snap.invoices), tz)
        flags = relief_flags(relief_view, invoice_id=inv.id, now=now.astimezone(zone(tz)), pack=pack)
        ctx = InvoiceContext(
            invoice=inv,
            patient=patient,
            creditor=creditor,
            pack=pack,
            balance=balance,
            disputes=snap.disputes,
            sent_steps=_sent_steps(snap, inv.id),
            placed_on=_placed_on(snap, tz) if creditor.role.is_collector else None,
            **flags.as_context_kwargs(),
        )
        cad = due_steps(ctx, now)
        if not cad.due:
            decisions.append(
                Decision(
                    DecisionKind.NOTHING_DUE, snap.account.id, inv.id, None, None, cad.reasons, cad.next_at
                )
            )
            continue
        debt = Debt(
            snap.account.id,
            inv.id,
            disputes=snap.disputes,
            insurer_waiting=flags.insurer_waiting,
            plan_current=bool(flags.plan_status and flags.plan_status.current),
            assistance_pending=flags.assistance_pending,
        )
        for planned in cad.due:
            step = planned.to_outreach_step(now)
            for channel in planned.channels:
                verdict = may_contact(patient, debt, channel, now, history, pack, creditor, planned.purpose)
                reasons = cad.reasons + verdict.reasons
                if verdict.allowed:
                    d = Decision(
                        DecisionKind.SEND,
                        snap.account.id,
                        inv.id,
                        planned.purpose.value,
                        channel.value,
                        reasons,
                    )
                    messages.append(PlannedMessage(f"{step.id}:{channel.value}", step, channel, d))
                else:
                    d = Decision(
                        DecisionKind.HOLD,
                        snap.account.id,
                        inv.id,
                        planned.purpose.value,
                        channel.value,
                        reasons,
                        verdict.earliest_allowed,
                    )
                decisions.append(d)

    placement = None
    if agency and open_ids and not any(p.status is PlacementStatus.PLACED for p in snap.placements):
        amount = Money.from_minor(
            sum(
                snap.ledger.invoice_balance(i).minor_units for i in open_ids if i in snap.ledger.invoice_ids()
            ),
            snap.account.currency,
        )
        if amount.is_positive():
            gate = may_place(
                _gate_snapshot(snap, amount, tuple(open_ids), tz), now=now, pack=pack, creditor=creditor
            )
            kind = DecisionKind.PLACE if gate.allowed else DecisionKind.GATE_HELD
            d = Decision(kind, snap.account.id, None, None, None, gate.reasons)
            decisions.append(d)
            if gate.allowed:
                placement = PlannedPlacement(snap.account.id, amount, tuple(open_ids), d)
    return AccountPlan(tuple(messages), tuple(decisions), tuple(missed), placement, tuple(charges))


def _paid(account_id: str, invoice_id: str) -> Decision:
    """The decision on an open invoice with nothing left to pay."""
    return Decision(
        DecisionKind.NOTHING_DUE,
        account_id,
        invoice_id,
        None,
        None,
        (_PAID,),
    )


def _prescreen(
    snap: AccountSnapshot,
    inv: Invoice,
    balance: Money,
    creditor: Creditor,
    pack: PolicyPack,
    now: dt.datetime,
    today: dt.date,
) -> CadencePlan | None:
    """The cadence's plan of an open invoice with nothing due today, from the compiled kernel alone.

    ``None`` (ask the rich path) unless the answer is sure to be the one
    :func:`~carecollect.policy.cadence.due_steps` gives: the caller has made
    sure no dispute is open, no plan is current and no assistance application
    is pending on the account; a claim the
    insurer has not decided, a balance in another currency or a collector
    without a placement day go to the rich path too, and so does any invoice
    with a step due today (its channels and the governor need the rich path).
    With no freeze, no step due means no message, whatever the patient's
    wishes, so the plan is ``nothing_due`` with the kernel's next day.
    """
    if inv.insurance.status.waiting or balance.currency != inv.currency:
        return None
    collector = creditor.role.is_collector
    cp = compile_pack(pack, on=today, collector=collector, nonprofit=creditor.nonprofit)
    placed_on = _placed_on(snap, snap.patient.time_zones[0]) if collector else None
    if collector and placed_on is None and ANCHOR_PLACED in cp.anchor:
        return None
    last_idx, last_idx_day, last_msg_day = invoice_history(cp, snap.steps, inv.id, snap.patient)
    idx, nxt = plan_invoice(
        cp,
        today.toordinal(),
        inv.issue_date.toordinal(),
        inv.due_date.toordinal(),
        placed_on.toordinal() if placed_on is not None else 0,
        balance.minor_units,
        False,
        last_idx,
        last_idx_day,
        last_msg_day,
    )
    if idx != NONE:
        return None
    return nothing_due(pack, snap.patient, nxt)


def _plan_charge(
    snap: AccountSnapshot,
    plan_id: str,
    invoice_ids: Sequence[str],
    inst: Instalment,
    mandate: Mandate,
    held: bool,
) -> PlannedCharge:
    """The charge of a due instalment, or its hold while an open dispute on the plan's invoices lasts."""
    disputed = [
        d.id for d in snap.disputes if d.is_open and (d.invoice_id is None or d.invoice_id in invoice_ids)
    ]
    if held:
        reason = Reason(
            "plan.charge_disputed",
            "creditor policy",
            Outcome.DEFER,
            {"instalment": inst.number, "plan": plan_id, "dispute": disputed[0]},
        )
        kind = DecisionKind.CHARGE_HELD
    else:
        reason = Reason(
            "plan.mandate_charge",
            "patient's mandate",
            Outcome.INFO,
            {
                "instalment": inst.number,
                "plan": plan_id,
                "due": inst.due_date.isoformat(),
                "provider": mandate.provider,
            },
        )
        kind = DecisionKind.CHARGE
    d = Decision(kind, snap.account.id, None, None, None, (reason,))
    return PlannedCharge(
        f"charge:{plan_id}#{inst.number}",
        snap.account.id,
        plan_id,
        inst.number,
        inst.amount,
        mandate.provider,
        d,
    )


def _placed_on(snap: AccountSnapshot, tz: str) -> dt.date | None:
    for p in snap.placements:
        if p.placed_at is not None:
            return _today(p.placed_at, tz)
    first = min((i.issue_date for i in snap.invoices), default=None)
    return first


class _Creditors:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._cache: dict[str, Creditor] = {}

    def __call__(self, creditor_id: str) -> Creditor:
        if creditor_id not in self._cache:
            self._cache[creditor_id] = self._store.get_creditor(creditor_id)
        return self._cache[creditor_id]


Conversations = Mapping[str, Sequence[tuple[str, str | None, dt.datetime]]]


def by_account(conversations: Iterable[tuple[str, str | None, dt.datetime]]) -> Conversations:
    """Group contact-centre conversations ``(account_id, invoice_id, at)`` by account, for the run.

    Feed it :func:`carecollect.contact_centre.conversations` of the day's contact records:
    a call that reached the patient then pauses further calls as the packs require.
    """
    grouped: dict[str, list[tuple[str, str | None, dt.datetime]]] = {}
    for conv in conversations:
        require_aware(conv[2], "Conversation", "at")
        grouped.setdefault(conv[0], []).append((conv[0], conv[1], conv[2]))
    return grouped


def _iter_plans(
    store: Store,
    now: dt.datetime,
    settings: RunSettings,
    conversations: Conversations | None = None,
    *,
    prescreen: bool = True,
    objects: bool = True,
) -> Iterator[_Planned]:
    """Decide every account: on plan rows with the compiled kernel where that settles it, else on its snapshot.

    A store with ``iter_plan_facts`` (:class:`~carecollect.store.sqlite.SQLiteStore`) hands over
    flat facts; :func:`carecollect.run.rows.rows_from_facts` makes plan rows and
    :func:`carecollect.run.kernel.decide` decides them. An account is read as a snapshot and
    decided by :func:`plan_account` when it is rich (a dispute, plan, application, conversation,
    agency gate) or, with ``objects``, when a step is due, stopped or frozen on it (its
    messages and reasons need the records). Without ``objects`` a plain account yields only
    its decision codes (the dry run's counts). ``prescreen=False`` decides every account on
    its snapshot (slower, for comparisons).
    """
    conversations = conversations or {}
    creditors = _Creditors(store)
    tables = RunTables(Contexts(settings.own_rules), now, settings.pack, creditor_pack_of=settings.pack)
    facts_of = getattr(store, "iter_plan_facts", None)
    if not prescreen or facts_of is None:
        for snap in store.iter_account_snapshots(batch_size=settings.batch_size):
            yield _Planned(
                snap.account.id,
                snap.account.creditor_id,
                len(snap.invoices),
                plan_account(
                    snap,
                    creditors(snap.account.creditor_id),
                    tables.pack(snap.account.jurisdiction, _rules_key(settings, snap.account)),
                    now,
                    agency=settings.agency,
                    conversations=conversations.get(snap.account.id, ()),
                    prescreen=prescreen,
                ),
            )
        return
    agency = settings.agency is not None
    versions_of: Callable[[Sequence[str]], Mapping[str, object]] | None = (
        getattr(store, "account_versions", None) if objects and hasattr(store, "change_token") else None
    )
    for facts in facts_of(now=now, batch_size=max(settings.batch_size, 2000)):
        batch = rows_from_facts(facts, now, tables.contexts, agency=agency, conversations=conversations)
        settled: dict[str, _Planned] = {}
        rich: list[str] = []
        if not objects:  # counts only: every plain account of the batch decided in one go
            plain = [acc for acc in batch if not acc.rich]
            extra: dict[str, int] = {}
            for acc in plain:
                if acc.plans:
                    tally_instalments(acc, tables, extra)
            yield _Planned(
                "",
                "",
                sum(acc.invoices for acc in plain),
                None,
                decide([row for acc in plain for row in acc.rows], tables),
                extra,
                len(plain),
            )
            rich = [acc.account_id for acc in batch if acc.rich]
            batch = [acc for acc in batch if acc.rich]
        for acc in batch:
            if acc.rich:
                if objects:
                    rich.append(acc.account_id)
                continue
            codes = decide(acc.rows, tables)
            plan = None if acc.relief else _plan_of_codes(acc, codes, tables)
            if plan is None:
                rich.append(acc.account_id)
            else:
                settled[acc.account_id] = _Planned(acc.account_id, acc.creditor_id, acc.invoices, plan)
        # the sender uses these reads again while the accounts' versions hold (read before them)
        versions = versions_of(rich) if rich and versions_of is not None else None
        snaps = {s.account.id: s for s in store.account_snapshots(rich)} if rich else {}
        for acc in batch:
            planned = settled.get(acc.account_id)
            if planned is None:
                snap = snaps[acc.account_id]
                planned = _Planned(
                    acc.account_id,
                    acc.creditor_id,
                    acc.invoices,
                    plan_account(
                        snap,
                        creditors(acc.creditor_id),
                        tables.pack(snap.account.jurisdiction, _rules_key(settings, snap.account)),
                        now,
                        agency=settings.agency,
                        conversations=conversations.get(acc.account_id, ()),
                    ),
                    read=None if versions is None else (snap, versions[acc.account_id]),
                )
            yield planned


def _rules_key(settings: RunSettings, account: Account) -> str:
    """The creditor id whose own pack applies to ``account`` ("": the installation's)."""
    cid: str = account.creditor_id
    return cid if settings.own_rules(cid, account.jurisdiction) else ""


def _plan_of_codes(acc: AccountRows, codes: Sequence[int], tables: RunTables) -> AccountPlan | None:
    """The :class:`~carecollect.run.decisions.AccountPlan` of an account whose invoices are all closed, paid or not due; else ``None``.

    The decisions and their reasons are the ones :func:`plan_account` gives (the same
    :func:`_paid` and :func:`~carecollect.policy.cadence.nothing_due_in`).
    """
    decisions: list[Decision] = []
    for row, code in zip(acc.rows, codes, strict=True):
        state, _idx, _planned, _send, nxt = decode(code)
        if state == CLOSED:
            continue
        if state == PAID:
            decisions.append(_paid(acc.account_id, row[R_ID]))
        elif state == NOT_DUE:
            ctx = tables.contexts[row[R_CTX]]
            cad = nothing_due_in(tables.pack(ctx.pack_key), ctx.zones[0], nxt)
            decisions.append(
                Decision(
                    DecisionKind.NOTHING_DUE, acc.account_id, row[R_ID], None, None, cad.reasons, cad.next_at
                )
            )
        else:
            return None
    return AccountPlan((), tuple(decisions), (), None)


def plan_run(
    store: Store,
    now: dt.datetime,
    settings: RunSettings | None = None,
    *,
    conversations: Iterable[tuple[str, str | None, dt.datetime]] = (),
    prescreen: bool = True,
) -> RunPlan:
    """Plan a run without sending or writing anything (the dry run).

    :param store: the store.
    :param now: the run's instant (aware).
    :param settings: run settings (default :class:`~carecollect.run.settings.RunSettings`).
    :param conversations: contact-centre conversations ``(account_id, invoice_id, at)`` that
        count like answered calls (see :func:`by_account`).
    :param prescreen: let the compiled cadence kernel settle the invoices with nothing due
        (see :func:`plan_account`); ``False`` asks the rich path for every invoice (same plan,
        slower: for comparisons).
    """
    require_aware(now, "run", "now")
    settings = settings or RunSettings()
    collected = _Collected(settings.keep_plan)
    for planned in _iter_plans(
        store, now, settings, by_account(conversations), prescreen=prescreen, objects=settings.keep_plan
    ):
        collected.add(planned)
    return collected.plan(now)
