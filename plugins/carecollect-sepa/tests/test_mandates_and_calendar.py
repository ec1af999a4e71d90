"""Mandates (creditor id, IBAN/BIC, sequence types, amendments, expiry) and the TARGET2 calendar."""

from __future__ import annotations

import datetime as dt

import pytest
from carecollect.errors import ValidationError
from conftest import OTHER_IBAN, mandate

from carecollect_sepa import MandateError, MandateKind, SequenceType, check_creditor_identifier, is_target_day
from carecollect_sepa.target_calendar import CollectionCalendar, add_target_days


@pytest.mark.parametrize("value", ["DE98ZZZ09999999999", "AT61ZZZ01234567890"])
def test_creditor_identifiers_with_right_check_digits_pass(value: str) -> None:
    assert check_creditor_identifier(value) == value


@pytest.mark.parametrize("value", ["DE97ZZZ09999999999", "DE98ZZZ09999999998", "DE98", "98DEZZZ0999"])
def test_creditor_identifiers_with_wrong_check_digits_or_shape_are_refused(value: str) -> None:
    with pytest.raises(ValidationError) as err:
        check_creditor_identifier(value)
    assert err.value.field == "creditor_id"


def test_a_bad_iban_is_refused_naming_the_mandate_and_field_not_the_iban() -> None:
    with pytest.raises(ValidationError) as err:
        mandate(iban="DE89370400440532013001")
    assert (err.value.record, err.value.field) == ("SepaMandate CC-A-1-01", "iban")
    assert "DE89370400440532013001" not in str(err.value)
    with pytest.raises(ValidationError, match="'bic'"):
        mandate(bic="XXXXYY12")


def test_reprs_show_no_iban_nor_name() -> None:
    text = repr(mandate())
    assert "DE89" not in text and "Erika" not in text and "CC-A-1-01" in text


def test_sequence_types_across_a_recurring_mandates_life() -> None:
    m = mandate()
    assert m.next_sequence() is SequenceType.FIRST
    with pytest.raises(MandateError):
        m.request_final()  # the first collection cannot be the last
    m = m.record_collection(dt.date(2026, 2, 2))
    assert m.next_sequence() is SequenceType.RECURRING
    m = m.record_collection(dt.date(2026, 3, 2))
    assert m.next_sequence() is SequenceType.RECURRING
    m = m.request_final()
    assert m.next_sequence() is SequenceType.FINAL
    m = m.record_collection(dt.date(2026, 4, 2))
    assert m.completed and not m.is_usable(dt.date(2026, 5, 4))
    with pytest.raises(MandateError):
        m.record_collection(dt.date(2026, 5, 4))


def test_a_one_off_mandate_is_used_once() -> None:
    m = mandate(kind=MandateKind.ONE_OFF)
    assert m.next_sequence() is SequenceType.ONE_OFF
    m = m.record_collection(dt.date(2026, 2, 2))
    with pytest.raises(MandateError):
        m.record_collection(dt.date(2026, 3, 2))
    # rejected before settlement: it did not happen, the one-off may be presented again
    again = m.undo_rejected_collection(SequenceType.ONE_OFF, dt.date(2026, 2, 2))
    assert again.is_usable(dt.date(2026, 3, 2)) and again.next_sequence() is SequenceType.ONE_OFF


def test_a_rejected_first_collection_makes_the_next_one_first_again() -> None:
    m = mandate().record_collection(dt.date(2026, 2, 2))
    assert (
        m.undo_rejected_collection(SequenceType.FIRST, dt.date(2026, 2, 2)).next_sequence()
        is SequenceType.FIRST
    )
    # a rejected recurring one changes nothing
    m2 = m.record_collection(dt.date(2026, 3, 2))
    assert m2.undo_rejected_collection(SequenceType.RECURRING, dt.date(2026, 3, 2)) == m2


def test_expiry_36_months_after_the_last_collection_or_the_signature() -> None:
    never_used = mandate(signed_on=dt.date(2023, 3, 1))
    assert never_used.expires_on() == dt.date(2026, 3, 1)
    assert not never_used.is_usable(dt.date(2026, 3, 1)) and never_used.is_usable(dt.date(2026, 2, 28))
    used = never_used.record_collection(dt.date(2025, 6, 30))
    assert used.expires_on() == dt.date(2028, 6, 30) and used.is_usable(dt.date(2028, 6, 29))
    assert "expired" in str(used.problem(dt.date(2028, 6, 30)))


def test_amendments_are_kept_until_the_next_collection_and_another_bank_means_frst() -> None:
    m = mandate().record_collection(dt.date(2026, 2, 2))
    same_bank = m.amend(on=dt.date(2026, 2, 10), iban="DE62370400440532013001")
    assert same_bank.amendment is not None and same_bank.amendment.original_iban == "DE89370400440532013000"
    assert same_bank.next_sequence() is SequenceType.RECURRING
    moved = m.amend(on=dt.date(2026, 2, 10), iban=OTHER_IBAN, reference="CC-A-1-02")
    assert moved.amendment is not None and moved.amendment.other_bank
    assert moved.amendment.original_reference == "CC-A-1-01" and moved.reference == "CC-A-1-02"
    assert moved.next_sequence() is SequenceType.FIRST and moved.bic == "SOGEDEFFXXX"
    assert moved.record_collection(dt.date(2026, 3, 2)).amendment is None
    with pytest.raises(MandateError):
        m.revoke(dt.date(2026, 2, 5)).amend(on=dt.date(2026, 2, 10), reference="X-1")


@pytest.mark.parametrize(
    "day",
    [
        dt.date(2026, 1, 1),
        dt.date(2026, 4, 3),
        dt.date(2026, 4, 6),
        dt.date(2026, 5, 1),
        dt.date(2026, 12, 25),
        dt.date(2026, 12, 26),
        dt.date(2027, 3, 26),
        dt.date(2027, 3, 29),
    ],
)
def test_target2_closing_days_come_from_the_holiday_calendar(day: dt.date) -> None:
    assert not is_target_day(day)


def test_whit_monday_and_german_unity_day_are_target_days() -> None:
    assert is_target_day(dt.date(2026, 5, 25)) and is_target_day(dt.date(2026, 10, 5))
    assert add_target_days(dt.date(2026, 12, 24), 1) == dt.date(2026, 12, 28)
    assert add_target_days(dt.date(2026, 4, 7), -1) == dt.date(2026, 4, 2)


def test_due_dates_respect_notice_cut_off_and_holidays() -> None:
    cal = CollectionCalendar(lead_days=1, cut_off=dt.time(15, 0), zone="Europe/Berlin")
    morning = dt.datetime(2026, 3, 20, 9, tzinfo=dt.UTC)
    # 14 days' notice lands on Good Friday (3 April): the next TARGET day is Tuesday 7 April
    assert cal.earliest_due_date(morning, notice_days=14) == dt.date(2026, 4, 7)
    # an agreed 2-day notice: the bank's D-1 decides; after the cut-off the file counts from the next day
    assert cal.earliest_due_date(dt.datetime(2026, 3, 3, 9, tzinfo=dt.UTC), notice_days=2) == dt.date(
        2026, 3, 5
    )
    late = dt.datetime(2026, 3, 3, 15, 30, tzinfo=dt.UTC)  # 16:30 in Berlin
    assert cal.earliest_due_date(late, notice_days=1) == dt.date(2026, 3, 5)
    assert cal.submission_deadline(dt.date(2026, 4, 7)).date() == dt.date(2026, 4, 2)
    two_days = CollectionCalendar(lead_days=2)
    assert two_days.submission_deadline(dt.date(2026, 4, 7)).date() == dt.date(2026, 4, 1)
    assert cal.may_submit(dt.date(2026, 3, 16), dt.datetime(2026, 3, 2, 9, tzinfo=dt.UTC))
    assert not cal.may_submit(dt.date(2026, 3, 17), dt.datetime(2026, 3, 2, 9, tzinfo=dt.UTC))  # too early
