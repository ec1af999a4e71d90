"""The standard e-mail: headers, encodings for every language, and a lossless round trip."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
from email.message import EmailMessage

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from carecollect.channels import Channel
from carecollect.errors import ValidationError
from carecollect.messages.email import EMAIL_POLICY, build_email, email_bytes, message_id_header
from carecollect.plugins.messaging import OutgoingMessage

AT = dt.datetime(2026, 3, 2, 10, 15, tzinfo=dt.timezone(dt.timedelta(hours=1)))
SENDER = "Legesenteret Ås <faktura@legesenteret.example>"
TEXTS = {
    "en": ("Your statement from the clinic", "Your balance of $120.00 is due on April 2, 2026.\n"),
    "de": (
        "Ihre Rechnung – Zahlungserinnerung",
        "Bitte überweisen Sie 60,33 € bis zum 2. April 2026. Grüße\n",
    ),
    "nb": (
        "Påminnelse om regning",
        "Beløpet på 1\u00a0250,00\u00a0kr forfaller 2. april 2026. Hilsen Ærlig Ørn\n",
    ),
    "bg": ("Напомняне за сметка", "Сумата от 120,00 лв. е дължима на 2 април 2026 г.\n" * 3),
}


def _message(language: str, **kw: object) -> OutgoingMessage:
    subject, body = TEXTS[language]
    fields: dict[str, object] = {
        "id": f"step_INV-1_reminder-1_email-{language}",
        "channel": Channel.EMAIL,
        "recipient": "Kari Nordmann <kari@example.no>",
        "subject": subject,
        "body": body,
        "html": "<p>" + body.strip() + "</p>\n",
        "language": language,
        "opt_out_url": "https://portal.example.no/stop/T0K3N",
        **kw,
    }
    return OutgoingMessage(**fields)  # type: ignore[arg-type]


def _parse(raw: bytes) -> EmailMessage:
    mail = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(mail, EmailMessage) and not mail.defects
    return mail


@pytest.mark.parametrize("language", sorted(TEXTS))
def test_headers_parts_and_encodings(language: str) -> None:
    message = _message(language)
    raw = build_email(message, sender=SENDER, at=AT).as_bytes()
    raw.decode("ascii")  # 7-bit clean: no server needs 8BITMIME
    longer = [line for line in raw.split(b"\r\n") if len(line) > 78]
    # lines of at most 78 characters, but for a URI of List-Unsubscribe, which cannot be broken
    # (RFC 5322 allows 998); written as encoded words to fit, no mail client would read it
    assert all(len(line) <= 998 and b"<mailto:" in line for line in longer)
    mail = _parse(raw)
    assert mail["From"].addresses[0].addr_spec == "faktura@legesenteret.example"
    assert mail["From"].addresses[0].display_name == "Legesenteret Ås"
    assert mail["To"].addresses[0].addr_spec == "kari@example.no"
    assert mail["Subject"] == message.subject
    assert mail["Date"].datetime == AT
    assert mail["Message-ID"] == message_id_header(message.id, "legesenteret.example")
    assert mail["Content-Language"] == language
    assert [u.strip() for u in mail["List-Unsubscribe"].split(",")] == [
        f"<mailto:faktura@legesenteret.example?subject=unsubscribe%20{message.id}>",
        "<https://portal.example.no/stop/T0K3N>",
    ]
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert mail.get_content_type() == "multipart/alternative"
    text, html = mail.iter_parts()
    assert text.get_content_type() == "text/plain" and html.get_content_type() == "text/html"
    for part in (text, html):
        assert part.get_content_charset() == "utf-8"
        expected = "7bit" if language == "en" else ("base64" if language == "bg" else "quoted-printable")
        assert part["Content-Transfer-Encoding"] == expected
    assert text.get_content().replace("\r\n", "\n") == message.body
    assert html.get_content().replace("\r\n", "\n") == message.html


@pytest.mark.parametrize("language", sorted(TEXTS))
def test_the_eml_round_trips(language: str) -> None:
    raw = build_email(_message(language), sender=SENDER, at=AT).as_bytes()
    again = _parse(raw)
    assert again.as_bytes(policy=EMAIL_POLICY) == raw


def test_message_id_is_stable_and_distinguishes_ids_that_read_alike() -> None:
    a = build_email(_message("en"), sender=SENDER, at=AT)["Message-ID"]
    b = build_email(_message("en"), sender=SENDER, at=AT + dt.timedelta(hours=3))["Message-ID"]
    assert a == b
    assert message_id_header("a/b", "x.example") != message_id_header("a_b", "x.example")


def test_no_https_page_no_one_click() -> None:
    mail = build_email(_message("en", opt_out_url="http://portal.example.no/stop"), sender=SENDER, at=AT)
    assert mail["List-Unsubscribe-Post"] is None
    mail = build_email(_message("en"), sender=SENDER, at=AT, one_click=False, unsubscribe_mailto="")
    assert mail["List-Unsubscribe"] == "<https://portal.example.no/stop/T0K3N>"
    assert mail["List-Unsubscribe-Post"] is None


def test_text_only_is_not_multipart() -> None:
    mail = build_email(_message("de", html=None), sender=SENDER, at=AT)
    assert mail.get_content_type() == "text/plain"


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"recipient": "kari@example.no\r\nBcc: everyone@example.org"}, "recipient"),
        ({"subject": "Hello\nBcc: everyone@example.org"}, "subject"),
        ({"recipient": "kari"}, "recipient"),
        ({"channel": Channel.SMS}, "channel"),
    ],
)
def test_bad_messages_are_refused_by_field(kw: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        build_email(_message("en", **kw), sender=SENDER, at=AT)
    assert info.value.field == field
    assert "kari" not in str(info.value)


def test_naive_date_and_bad_sender_are_refused() -> None:
    with pytest.raises(ValidationError):
        build_email(_message("en"), sender=SENDER, at=AT.replace(tzinfo=None))
    with pytest.raises(ValidationError, match="sender"):
        build_email(_message("en"), sender="billing", at=AT)


def test_the_same_message_gives_the_same_bytes_and_headers_are_not_mixed_up() -> None:
    """Parsed and folded headers are remembered across e-mails: each e-mail still gets its own."""
    first = build_email(_message("bg"), sender=SENDER, at=AT).as_bytes()
    assert build_email(_message("bg"), sender=SENDER, at=AT).as_bytes() == first  # boundary from the id
    other = build_email(_message("bg", id="M-2", recipient="ivan@example.bg"), sender=SENDER, at=AT)
    mail = _parse(other.as_bytes())
    assert mail["To"] == "ivan@example.bg" and "M-2" in mail["Message-ID"]
    assert _parse(first)["To"].addresses[0].addr_spec == "kari@example.no"


_WORDS = st.sampled_from(
    [
        "Kari",
        "Nordmann",
        "Ærlig",
        "Ørn",
        "Иван",
        "Петров",
        "O'Brien",
        "<b>",
        "=?utf-8?q?x?=",
        "Müller",
        "😀",
        "",
        "a" * 70,
        "Straße",
        "(c)",
        '"quoted"',
        "\\",
        "€",
        "\u00a0",
        "—",
        ".",
        "x=y",
        "From",
        "\t",
    ]
)
_TEXT = st.lists(_WORDS, max_size=30).map(" ".join)
_BODY = st.lists(
    st.one_of(_TEXT, st.sampled_from(["", "From the clinic", ".", "=" * 80, "é" * 100, "\r", "end "])),
    max_size=40,
).map(lambda lines: "\n".join(lines))


def _outcome(make: object, **kw: object) -> object:
    try:
        return make(**kw)  # type: ignore[operator]
    except ValidationError as exc:
        return (type(exc), str(exc), exc.field)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    message_id=st.sampled_from(
        ["step_INV-1_reminder-1_email", "I00000001-1.statement-1_email", "a/b é", "x" * 120]
    ),
    recipient=st.sampled_from(
        [
            "kari@example.no",
            "Kari Nordmann <kari@example.no>",
            "Ærlig Ørn <orn@example.no>",
            '"O\'Brien, Sam" <s@x.example>',
            "kari",
            "a@b.c, d@e.f",
            "Иван Петров <ivan@example.bg>",
            "x" * 60 + "@" + "y" * 40 + ".example",
        ]
    ),
    sender=st.sampled_from(
        [SENDER, "carecollect outbox <outbox@outbox.carecollect.invalid>", "billing@clinic.example"]
    ),
    subject=_TEXT,
    body=_BODY.map(lambda b: b + "\nBest wishes"),
    html=st.none() | _BODY,
    language=st.sampled_from(["en", "de", "nb", "bg", ""]),
    opt_out_url=st.none()
    | st.sampled_from(["https://portal.example.no/stop/T0K3N", "http://x.example/s", "https://" + "p" * 90]),
    reply_to=st.none() | st.sampled_from(["help@clinic.example", "Hjelp Ås <hjelp@clinic.example>"]),
    mailto=st.none() | st.sampled_from(["", "optout@clinic.example"]),
    one_click=st.booleans(),
    domain=st.none() | st.just("outbox.carecollect.invalid"),
)
def test_email_bytes_are_the_standard_librarys_bytes(
    message_id: str,
    recipient: str,
    sender: str,
    subject: str,
    body: str,
    html: str | None,
    language: str,
    opt_out_url: str | None,
    reply_to: str | None,
    mailto: str | None,
    one_click: bool,
    domain: str | None,
) -> None:
    message = OutgoingMessage(
        id=message_id,
        channel=Channel.EMAIL,
        recipient=recipient,
        subject=subject,
        body=body,
        html=html,
        language=language,
        opt_out_url=opt_out_url,
    )
    kw: dict[str, object] = {
        "sender": sender,
        "at": AT,
        "reply_to": reply_to,
        "message_id_domain": domain,
        "unsubscribe_mailto": mailto,
        "one_click": one_click,
    }

    def stdlib(**kw: object) -> bytes:
        return build_email(message, **kw).as_bytes()  # type: ignore[arg-type]

    def direct(**kw: object) -> bytes:
        return email_bytes(message, **kw)  # type: ignore[arg-type]

    assert _outcome(direct, **kw) == _outcome(stdlib, **kw)


_PIECES = st.sampled_from(
    [
        "a",
        "=",
        " ",
        "\t",
        "é",
        "ж",
        "😀",
        "\r",
        "\n",
        "\r\n",
        "\x85",
        "\u2028",
        "\x0b",
        "\x00",
        "ab=cd",
        "x" * 70,
        ".",
        ".\n",
        "\n.",
        " \n",
    ]
)


@settings(max_examples=600, deadline=None)
@given(
    text=st.lists(_PIECES, max_size=80).map("".join)
    | st.text(max_size=400)
    | st.builds(
        lambda n, tail, lines: "\n".join(["y" * n + tail] * lines),
        st.integers(60, 240),
        st.sampled_from(["", " ", "\t", "=", "é", "= ", "  "]),
        st.integers(1, 14),
    )
)
def test_a_text_part_is_encoded_as_the_standard_library_encodes_it(text: str) -> None:
    from email.contentmanager import _encode_text as stdlib_encode_text  # type: ignore[attr-defined]

    from carecollect.messages.email import _encode_text

    assert _encode_text(text) == stdlib_encode_text(text, "utf-8", None, EMAIL_POLICY)


_ATOM = st.text(alphabet="abcXYZ019_%+-", min_size=1, max_size=12)
_HOST = st.lists(st.text(alphabet="abz09-", min_size=1, max_size=10), min_size=1, max_size=4).map(".".join)


@settings(max_examples=400, deadline=None)
@given(
    name=st.sampled_from(["To", "Message-ID"]),
    local=st.lists(_ATOM, min_size=1, max_size=6).map(".".join),
    host=_HOST,
    tld=st.sampled_from(["", ".no", ".example"]),
    bracketed=st.booleans(),
)
def test_a_plain_header_is_written_as_the_policy_folds_it(
    name: str, local: str, host: str, tld: str, bracketed: bool
) -> None:
    from carecollect.messages.email import _plain_folded

    value = f"<{local}@{host}{tld}>" if bracketed else f"{local}@{host}{tld}"
    plain = _plain_folded(name, value)
    if plain is not None:  # what the standard library writes for the same header
        assert plain == _policy_folds(name, value)


def _policy_folds(name: str, value: str) -> bytes:
    return bytes(EMAIL_POLICY.fold_binary(name, EMAIL_POLICY.header_store_parse(name, value)[1]))


def test_the_headers_a_run_writes_take_the_plain_way() -> None:
    from carecollect.messages.email import _plain_folded

    mailto = "<mailto:billing@clinic.example?subject=unsubscribe%20I00000002-0.statement-1_email>"
    for name, value in (
        ("To", "kari.nordmann@example.no"),
        ("Message-ID", "<I00000002-0.statement-1_email.671e41b8c797@outbox.carecollect.invalid>"),
        ("Subject", "Your invoice I00000002-0"),
        ("List-Unsubscribe", f"{mailto}, <https://portal.example.org/stop>"),
    ):
        assert _plain_folded(name, value) == _policy_folds(name, value), name
    # a subject in another language, a display name: parsed and folded by the policy
    assert _plain_folded("Subject", "Påminnelse om regning") is None
    assert _plain_folded("To", "Kari <kari@example.no>") is None


def test_a_message_id_of_any_length_is_written_as_the_policy_folds_it() -> None:
    from carecollect.messages.email import _plain_folded

    for length in range(10, 1000):  # on the header's line, alone on the next, on the header's again
        value = "<" + "a" * (length - 9) + ".b@c.no>"
        plain = _plain_folded("Message-ID", value)
        if len("Message-ID: ") + length > 998:  # longer than a line may be: left to the policy
            assert plain is None
        else:
            assert plain == _policy_folds("Message-ID", value), length


_HEADER_TEXT = st.text(alphabet="aZ09 =?()<>@,;:\\\"'%./_-~\té", max_size=120)


@settings(max_examples=600, deadline=None)
@given(
    name=st.sampled_from(["Subject", "List-Unsubscribe"]),
    value=_HEADER_TEXT
    | st.lists(st.text(alphabet="abz09:/?=%.-_@", min_size=1, max_size=60), min_size=1, max_size=3).map(
        lambda uris: ", ".join(f"<{u}>" for u in uris)
    ),
)
def test_a_plain_text_header_is_written_as_the_policy_folds_it(name: str, value: str) -> None:
    from carecollect.messages.email import _plain_folded

    plain = _plain_folded(name, value)
    if plain is not None:
        assert plain == _policy_folds(name, value)


@settings(max_examples=200, deadline=None)
@given(digits=st.text(alphabet="0123456789abcdef", min_size=24, max_size=24))
def test_the_multipart_type_is_written_as_the_policy_folds_it(digits: str) -> None:
    from carecollect.messages.email import _multipart_type

    value = f'multipart/alternative; boundary="=_{digits}"'
    before, after = _multipart_type()
    assert before + f"=_{digits}".encode("ascii") + after == _policy_folds("Content-Type", value)


@pytest.mark.parametrize(
    "url", [None, "https://portal.example.org/stop", "https://" + "p" * 90 + ".example/s"]
)
def test_list_unsubscribe_is_written_as_uris_a_mail_client_reads(url: str | None) -> None:
    message = OutgoingMessage(
        id="I00000002-0.statement-1_email",  # a long id makes the mailto longer than a line
        channel=Channel.EMAIL,
        recipient="kari@example.no",
        subject="Faktura",
        body="Hei på deg",
        html="<p>Hei på deg</p>",
        language="nb",
        opt_out_url=url,
    )
    raw = email_bytes(message, sender=SENDER, at=AT)
    assert raw == build_email(message, sender=SENDER, at=AT).as_bytes()
    head = raw.split(b"\r\n\r\n", 1)[0].decode("ascii")
    folded = head.split("List-Unsubscribe: ", 1)[1].split("\r\nList-Unsubscribe-Post")[0].split("\r\nMIME")[0]
    assert "=?" not in folded  # no encoded words: the URIs as they are, folded between them
    uris = [u.strip() for u in folded.replace("\r\n", "").split(",")]
    mailto = "<mailto:faktura@legesenteret.example?subject=unsubscribe%20I00000002-0.statement-1_email>"
    assert uris == [mailto] + ([f"<{url}>"] if url else [])
