"""Where a patient may be: the IANA time zones of a country, a US state, a phone number.

Quiet hours must hold in every zone a patient may be in, so a patient's zones are derived from
what is known about them (:class:`~carecollect.patients.Patient`): the zone a contact point
carries, the country (and, for a country with several zones, the region) of the address, and the
country calling code of a phone number. Nothing is guessed: a country with several zones and no
region, or a calling code shared by several countries (``+1``), gives no zone.

Sources: the IANA time zone database (``zone1970.tab``, the zones of each country and US
state) and the ITU-T E.164 list of country calling codes; the tables hold the countries the
packs serve and their neighbours. Extend them by giving a contact point its ``time_zone``.

>>> zones_for_place("NO", None), zones_for_place("US", "TX")
(('Europe/Oslo',), ('America/Chicago', 'America/Denver'))
>>> zones_for_place("US", None), zones_for_phone("+359 88 123 4567"), zones_for_phone("+1 555 0100")
((), ('Europe/Sofia',), ())
"""

from __future__ import annotations

import re

__all__ = ["MULTI_ZONE_COUNTRIES", "zones_for_phone", "zones_for_place"]

#: Countries with one civil time zone (ISO 3166-1 alpha-2 → IANA zone).
_SINGLE: dict[str, str] = {
    "AT": "Europe/Vienna",
    "BE": "Europe/Brussels",
    "BG": "Europe/Sofia",
    "CH": "Europe/Zurich",
    "CY": "Asia/Nicosia",
    "CZ": "Europe/Prague",
    "DE": "Europe/Berlin",
    "DK": "Europe/Copenhagen",
    "EE": "Europe/Tallinn",
    "FI": "Europe/Helsinki",
    "FR": "Europe/Paris",
    "GB": "Europe/London",
    "GR": "Europe/Athens",
    "HR": "Europe/Zagreb",
    "HU": "Europe/Budapest",
    "IE": "Europe/Dublin",
    "IS": "Atlantic/Reykjavik",
    "IT": "Europe/Rome",
    "LI": "Europe/Vaduz",
    "LT": "Europe/Vilnius",
    "LU": "Europe/Luxembourg",
    "LV": "Europe/Riga",
    "MK": "Europe/Skopje",
    "MT": "Europe/Malta",
    "NL": "Europe/Amsterdam",
    "NO": "Europe/Oslo",
    "PL": "Europe/Warsaw",
    "RO": "Europe/Bucharest",
    "RS": "Europe/Belgrade",
    "SE": "Europe/Stockholm",
    "SI": "Europe/Ljubljana",
    "SK": "Europe/Bratislava",
    "TR": "Europe/Istanbul",
    "UA": "Europe/Kyiv",
    "PR": "America/Puerto_Rico",
}

#: Countries with several zones: a region is needed (only the US regions are tabled).
MULTI_ZONE_COUNTRIES = frozenset({"US", "CA", "AU", "BR", "MX", "RU", "ES", "PT", "ID", "KZ", "AR", "CL"})

_NY, _CHI, _DEN, _LA = "America/New_York", "America/Chicago", "America/Denver", "America/Los_Angeles"
_PHX, _BOISE = "America/Phoenix", "America/Boise"

#: US states, DC and territories → every zone used in them (IANA zone1970.tab).
_US: dict[str, tuple[str, ...]] = {
    "AL": (_CHI,),
    "AK": ("America/Anchorage", "America/Adak"),
    "AZ": (_PHX, _DEN),  # the Navajo Nation keeps daylight saving time
    "AR": (_CHI,),
    "CA": (_LA,),
    "CO": (_DEN,),
    "CT": (_NY,),
    "DE": (_NY,),
    "DC": (_NY,),
    "FL": (_NY, _CHI),
    "GA": (_NY,),
    "HI": ("Pacific/Honolulu",),
    "ID": (_BOISE, _LA),
    "IL": (_CHI,),
    "IN": ("America/Indiana/Indianapolis", _CHI),
    "IA": (_CHI,),
    "KS": (_CHI, _DEN),
    "KY": (_NY, _CHI),
    "LA": (_CHI,),
    "ME": (_NY,),
    "MD": (_NY,),
    "MA": (_NY,),
    "MI": ("America/Detroit", "America/Menominee"),
    "MN": (_CHI,),
    "MS": (_CHI,),
    "MO": (_CHI,),
    "MT": (_DEN,),
    "NE": (_CHI, _DEN),
    "NV": (_LA, _DEN),
    "NH": (_NY,),
    "NJ": (_NY,),
    "NM": (_DEN,),
    "NY": (_NY,),
    "NC": (_NY,),
    "ND": (_CHI, _DEN),
    "OH": (_NY,),
    "OK": (_CHI,),
    "OR": (_LA, _BOISE),
    "PA": (_NY,),
    "RI": (_NY,),
    "SC": (_NY,),
    "SD": (_CHI, _DEN),
    "TN": (_CHI, _NY),
    "TX": (_CHI, _DEN),
    "UT": (_DEN,),
    "VT": (_NY,),
    "VA": (_NY,),
    "WA": (_LA,),
    "WV": (_NY,),
    "WI": (_CHI,),
    "WY": (_DEN,),
    "PR": ("America/Puerto_Rico",),
    "VI": ("America/St_Thomas",),
    "GU": ("Pacific/Guam",),
    "MP": ("Pacific/Saipan",),
    "AS": ("Pacific/Pago_Pago",),
}

#: E.164 country calling codes of one country with one zone (``+1``, ``+7`` are shared: absent).
_CALLING: dict[str, str] = {
    "30": "GR",
    "31": "NL",
    "32": "BE",
    "33": "FR",
    "36": "HU",
    "39": "IT",
    "40": "RO",
    "41": "CH",
    "43": "AT",
    "44": "GB",
    "45": "DK",
    "46": "SE",
    "47": "NO",
    "48": "PL",
    "49": "DE",
    "90": "TR",
    "353": "IE",
    "354": "IS",
    "356": "MT",
    "357": "CY",
    "358": "FI",
    "359": "BG",
    "352": "LU",
    "370": "LT",
    "371": "LV",
    "372": "EE",
    "380": "UA",
    "381": "RS",
    "385": "HR",
    "386": "SI",
    "389": "MK",
    "420": "CZ",
    "421": "SK",
    "423": "LI",
}

_PHONE = re.compile(r"^\s*(?:\+|00)(\d[\d\s().-]*)$")


def zones_for_place(country: str | None, region: str | None) -> tuple[str, ...]:
    """The zones of a country (ISO 3166-1 alpha-2), or of a US state when the country has several.

    :param country: the country of residence (``None``: unknown).
    :param region: the state or other subdivision (``"TX"``, ``"US-TX"``); needed where the
        country has several zones.
    :returns: every zone used there, or ``()`` when it cannot be told without guessing.
    """
    c = (country or "").strip().upper()
    r = (region or "").strip().upper().removeprefix(f"{c}-")
    if c == "US":
        return _US.get(r, ())
    if c in MULTI_ZONE_COUNTRIES:
        return ()
    single = _SINGLE.get(c)
    return (single,) if single else ()


def zones_for_phone(number: str) -> tuple[str, ...]:
    """The zone of an international phone number's country, when the calling code names one
    country with one zone (``+47`` Norway; ``+1`` is shared by many: ``()``).

    :param number: an E.164 number (``+4791234567``, ``0047 912 34 567``); others give ``()``.
    """
    m = _PHONE.match(number)
    if m is None:
        return ()
    digits = re.sub(r"\D", "", m.group(1))
    for width in (3, 2, 1):
        country = _CALLING.get(digits[:width])
        if country is not None:
            return zones_for_place(country, None)
    return ()
