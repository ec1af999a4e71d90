"""The demo configured with the SEPA plugin: a plan with a mandate, `carecollect run`, a valid pain.008."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from carecollect.invoices import InvoiceStatus
from carecollect.plans import PaymentPlan, PlanStatus, build_schedule
from carecollect.store.base import Mandate
from carecollect.store.sqlite import SQLiteStore
from conftest import INTAKE_SECRET

from carecollect_sepa import SepaDirectDebit, SepaMandate, validate_pain008

#: what docs/tutorial/demo.rst shows (it includes these lines) to add to carecollect-demo.toml
SECTION = """
# [demo: sepa settings]
[payment_providers.sepa]
creditor_name = "Praxis Dr. Weber"
creditor_id = "DE98ZZZ09999999999"
creditor_iban = "DE02120300000000202051"
folder = "/srv/carecollect-demo/sepa"                 # an absolute path
intake_secret = "env:SEPA_INTAKE_SECRET"
contact = "+49 30 1234567"
notice_channel = "outbox"
write_files_on_charge = true

[payment_providers.sepa.notice_channel_settings]
folder = "/srv/carecollect-demo/sepa-notices"
# [demo: end]
"""


def carecollect(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("carecollect", path=str(Path(sys.executable).parent)) or "carecollect"
    env = {**os.environ, "SEPA_INTAKE_SECRET": INTAKE_SECRET}
    done = subprocess.run([exe, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return done


def test_the_demo_with_sepa_writes_a_pain008_that_validates(tmp_path: Path) -> None:
    db = tmp_path / "carecollect-demo.sqlite"
    carecollect("demo", "--invoices", "200", "--no-run", "--db", str(db), cwd=tmp_path)
    folder, outbox = tmp_path / "sepa", tmp_path / "sepa-notices"
    settings = db.with_suffix(".toml")
    section = SECTION.replace("/srv/carecollect-demo", tmp_path.as_posix())
    settings.write_text(settings.read_text(encoding="utf-8") + section, encoding="utf-8")
    # [demo: plan]
    today = dt.datetime.now(dt.UTC).date()
    # a plan for one open euro invoice, its first instalment due today, signed for by SEPA mandate
    with contextlib.closing(SQLiteStore(db)) as store:
        for snap in store.iter_account_snapshots():
            if snap.account.currency != "EUR" or snap.plans or snap.disputes:
                continue
            invoice = next(
                (
                    i
                    for i in snap.invoices
                    if i.status is InvoiceStatus.OPEN and snap.ledger.invoice_balance(i.id).is_positive()
                ),
                None,
            )
            if invoice is not None:
                break
        else:
            pytest.fail("the demo portfolio has no open euro invoice")
        balance = snap.ledger.invoice_balance(invoice.id)
        signed = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
        plan = PaymentPlan(
            f"PLAN-{invoice.id}",
            snap.account.id,
            (invoice.id,),
            balance,
            build_schedule(balance, 3, first_due=today),
            signed,
            status=PlanStatus.ACTIVE,
        )
        with store.transaction():
            store.put_plan(plan)
            store.put_mandate(Mandate(plan.id, plan.account_id, "sepa", "direct_debit", "CC-DEMO-1", signed))
    provider_settings = {
        "creditor_name": "Praxis Dr. Weber",
        "creditor_id": "DE98ZZZ09999999999",
        "creditor_iban": "DE02120300000000202051",
        "folder": str(folder),
        "intake_secret": INTAKE_SECRET,
        "contact": "+49 30 1234567",
    }
    SepaDirectDebit(provider_settings).add_mandate(
        SepaMandate.sign(
            reference="CC-DEMO-1",
            account_id=plan.account_id,
            creditor_id="DE98ZZZ09999999999",
            iban="DE89 3704 0044 0532 0130 00",
            debtor_name="Erika Mustermann",
            signed_on=signed.date(),
            notice_address="erika@example.de",
            # agreed in the mandate: two days' notice, so the due date is always within the 14
            # days ahead a bank takes a file for (with the default 14 days' notice, a weekend or a
            # holiday may push it further, and a later run writes the file)
            pre_notification_days=2,
        )
    )

    # [demo: run]
    carecollect("run", "--db", str(db), cwd=tmp_path)

    [written] = sorted((folder / "outgoing").glob("*.xml"))
    document = written.read_bytes()
    assert validate_pain008(document) == "pain.008.001.08"
    amount = plan.instalments[0].amount
    assert f">{amount.amount}</InstdAmt>".encode() in document and b"CC-DEMO-1" in document
    assert list(outbox.glob("SEPA-PN-*.eml"))  # the patient was told before the debit
    with contextlib.closing(SQLiteStore(db)) as store:
        assert store.ledger(plan.account_id).invoice_balance(invoice.id) == balance - amount


def test_write_files_on_charge_takes_only_true_or_false(settings: dict[str, object]) -> None:
    from carecollect_sepa import SepaConfigurationError

    with pytest.raises(SepaConfigurationError, match="write_files_on_charge"):
        SepaDirectDebit({**settings, "write_files_on_charge": "yes"})
