"""How the patient pages behave: :class:`WebSettings` and what it holds."""

from __future__ import annotations

import attrs

from ..office_hours import OfficeHours

__all__ = ["BankTransfer", "OfficeHours", "WebSettings"]


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
class WebSettings:
    """How the patient pages behave (what the run settings do not already say).

    :param public_url: the app's public base URL (``https://pay.example.org``); the return
        address given to a hosted checkout. ``None``: taken from the request.
    :param checkout_origins: origins of providers' hosted checkout pages (the CSP's
        ``form-action`` must allow the redirect to them).
    :param bank_transfer: bank details shown as a way to pay (``None``: not shown).
    :param office_hours: when the phone is answered, for a creditor whose settings give no
        hours of their own (:attr:`RunSettings.office_hours <carecollect.run.settings.RunSettings.office_hours>`).
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
    office_hours: OfficeHours = attrs.field(factory=OfficeHours)
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
