"""A patient's time zones are known or derived, never assumed to be UTC (issue 13)."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from carecollect.channels import Channel
from carecollect.errors import TimeZoneUnknown, ValidationError
from carecollect.geography import (  # the tables themselves
    _CALLING,
    _SINGLE,
    _US,
    MULTI_ZONE_COUNTRIES,
    zones_for_phone,
    zones_for_place,
)
from carecollect.patients import ContactPoint, Patient
from carecollect.store import SQLiteStore

T0 = dt.datetime(2026, 3, 1, 9, tzinfo=dt.UTC)


def test_no_zone_and_nothing_to_derive_it_from_is_refused() -> None:
    with pytest.raises(TimeZoneUnknown) as caught:
        Patient(id="P-7")
    assert caught.value.record == "Patient P-7" and caught.value.field == "time_zones"
    assert isinstance(caught.value, ValidationError) and isinstance(caught.value, ValueError)
    # an e-mail address or a US phone number says nothing about the zone; a US address without a state neither
    with pytest.raises(TimeZoneUnknown):
        Patient(id="P-8", contact_points=(ContactPoint(Channel.EMAIL, "a@example.org"),))
    with pytest.raises(TimeZoneUnknown):
        Patient(id="P-9", country="US", contact_points=(ContactPoint(Channel.SMS, "+15550100"),))


def test_utc_never_joins_the_zones() -> None:
    p = Patient(id="P-1", country="NO")
    assert p.time_zones == ("Europe/Oslo",)
    assert "UTC" not in Patient(id="P-2", country="US", state="TX").time_zones


def test_zones_are_derived_from_address_state_phone_and_points() -> None:
    assert Patient(id="P-1", country="US", state="TX").time_zones == ("America/Chicago", "America/Denver")
    assert Patient(id="P-2", country="US", state="US-NY").time_zones == ("America/New_York",)
    sms = ContactPoint(Channel.SMS, "+47 912 34 567")
    assert Patient(id="P-3", contact_points=(sms,)).time_zones == ("Europe/Oslo",)
    # a patient with a Norwegian phone living in Germany may be in either: both count
    assert Patient(id="P-4", country="DE", contact_points=(sms,)).time_zones == (
        "Europe/Berlin",
        "Europe/Oslo",
    )
    tagged = ContactPoint(Channel.EMAIL, "x@example.org", time_zone="America/Phoenix")
    assert Patient(id="P-5", contact_points=(tagged,)).time_zones == ("America/Phoenix",)
    # given zones are kept as given
    assert Patient(id="P-6", country="NO", time_zones=("Europe/Berlin",)).time_zones == ("Europe/Berlin",)


def test_every_table_entry_is_a_real_zone() -> None:
    zones = {*_SINGLE.values(), *(z for v in _US.values() for z in v)}
    for name in zones:
        zoneinfo.ZoneInfo(name)
    assert not MULTI_ZONE_COUNTRIES & set(_SINGLE)
    assert set(_CALLING.values()) <= set(_SINGLE)
    assert len(_US) >= 51  # 50 states and DC


@settings(max_examples=200, deadline=None)
@given(
    country=st.one_of(st.none(), st.sampled_from(sorted({*_SINGLE, *MULTI_ZONE_COUNTRIES, "ZZ"}))),
    state=st.one_of(st.none(), st.sampled_from(sorted(_US))),
    phone=st.one_of(
        st.none(), st.sampled_from(["+1 555 0100", "+4791234567", "+359881234567", "0049301234"])
    ),
)
def test_a_built_patient_always_has_real_zones_or_a_typed_refusal(
    country: str | None, state: str | None, phone: str | None
) -> None:
    points = (ContactPoint(Channel.SMS, phone),) if phone else ()
    expected = {*zones_for_place(country, state), *(zones_for_phone(phone) if phone else ())}
    try:
        p = Patient(id="P-1", country=country, state=state, contact_points=points)
    except TimeZoneUnknown as exc:
        assert not expected and exc.field == "time_zones"
    else:
        assert set(p.time_zones) == expected and "UTC" not in p.time_zones


def test_factories_demo_portfolio_build_patients_with_real_zones(tmp_path: Path) -> None:
    from carecollect.portfolio import load_portfolio

    with SQLiteStore(tmp_path / "p.db") as store:
        load_portfolio(store, 40, seed=1, as_of=dt.date(2026, 3, 2))
        zones = {z for snap in store.iter_account_snapshots(batch_size=50) for z in snap.patient.time_zones}
    assert zones and "UTC" not in zones
