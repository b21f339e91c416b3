"""Email without a network: message building and DKIM, one-click unsubscribe tokens and
endpoint, bounce classification, SendGrid requests, events and webhook signatures."""

from __future__ import annotations

import asyncio
import base64
import json
import random
import re
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from email import message_from_bytes, policy
from pathlib import Path

import dkim
import httpx
import pytest
from dkim.crypto import parse_pem_private_key
from hypothesis import given
from hypothesis import strategies as st
from starlette.applications import Starlette

from clarion.api.unsubscribe import unsubscribe_routes
from clarion.email import (
    DkimKey,
    OutboundEmail,
    build_email,
    classify_smtp_reply,
    generate_dkim_key,
    make_token,
    read_token,
    receipt_from_sendgrid_event,
)
from clarion.email.unsubscribe import CONFIRM
from clarion.errors import ConfigurationError, ForgedWebhook, InvalidInput
from clarion.providers import sendgrid
from clarion.providers.sendgrid import SendGridProvider
from clarion.providers.smtp import SmtpProvider
from tests.unit.test_layers import FORBIDDEN, SRC, top_level_imports

MESSAGE_ID = "5f0c2d4e-8a61-5b7e-9d0f-3c2b1a098765"
UNSUB = "https://clarion.example.com/u/AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUm"
SENT_AT = datetime(2026, 11, 25, 18, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def key() -> DkimKey:
    return generate_dkim_key("s2026", "brand.example", randbits=random.Random(7).getrandbits)


def dns_for(*keys: DkimKey) -> Callable[..., bytes | None]:
    """A DNS TXT lookup that knows the records of `keys` (what `dkim.verify` asks)."""
    records = {f"{k.dns_name}.".encode(): k.txt_record().encode() for k in keys}

    def lookup(name: bytes, timeout: float = 5) -> bytes | None:
        return records.get(name)

    return lookup


def build(key: DkimKey | None, **overrides: object) -> bytes:
    args: dict[str, object] = {
        "message_id": MESSAGE_ID,
        "from_addr": "Brand Ünï <news@brand.example>",
        "to_addr": "ana@example.net",
        "subject": "Winter sale ☃ starts now",
        "text": "Hi Ana,\n20% off everything until Sunday.\n",
        "html": "<p>Hi Ana,</p><p>20% off everything until Sunday.</p>",
        "unsubscribe_url": UNSUB,
        "unsubscribe_mailto": "mailto:unsubscribe@brand.example?subject=unsubscribe",
        "dkim": key,
        "now": SENT_AT,
    }
    args.update(overrides)
    return build_email(**args)


def header_block(raw: bytes) -> str:
    return raw.split(b"\r\n\r\n", 1)[0].decode("ascii")


# --- the message --------------------------------------------------------------------------


def test_message_names_our_id_and_offers_one_click_unsubscribe(key: DkimKey) -> None:
    msg = message_from_bytes(build(key), policy=policy.default)
    assert msg["Message-ID"] == f"<{MESSAGE_ID}@brand.example>"
    assert msg["List-Unsubscribe"] == (
        f"<{UNSUB}>, <mailto:unsubscribe@brand.example?subject=unsubscribe>"
    )
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert msg["Subject"] == "Winter sale ☃ starts now"
    assert msg["From"].addresses[0].display_name == "Brand Ünï"
    assert msg["To"] == "ana@example.net"
    assert msg["Date"].datetime == SENT_AT
    text = msg.get_body(("plain",)).get_content()
    assert text.replace("\r\n", "\n") == "Hi Ana,\n20% off everything until Sunday.\n"
    assert "20% off" in msg.get_body(("html",)).get_content()


def test_every_line_is_crlf_terminated_7bit_ascii(key: DkimKey) -> None:
    raw = build(key)
    raw.decode("ascii")
    assert raw.count(b"\n") == raw.count(b"\r\n")


def test_a_long_unsubscribe_url_stays_a_url_not_an_encoded_word() -> None:
    url = "https://clarion.example.com/u/" + "A" * 150
    headers = header_block(build(None, unsubscribe_url=url, unsubscribe_mailto=None))
    assert f"List-Unsubscribe: <{url}>\r\n" in headers + "\r\n"
    assert "=?" not in headers.split("List-Unsubscribe:")[1].split("\r\n")[0]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("subject", "Sale\r\nBcc: everyone@example.net"),
        ("to_addr", "ana@example.net\nBcc: x@example.net"),
        ("unsubscribe_url", "http://clarion.example.com/u/abc"),  # RFC 8058 wants https
        ("unsubscribe_url", "https://clarion.example.com/u/a b"),
        ("unsubscribe_mailto", "https://not-a-mailto.example"),
        ("message_id", "has spaces@and-at"),
        ("from_addr", "no address here"),
    ],
)
def test_unsafe_header_values_are_refused(field: str, value: str) -> None:
    with pytest.raises(InvalidInput):
        build(None, **{field: value})


# --- DKIM ---------------------------------------------------------------------------------


def test_dkim_signature_verifies_against_the_published_txt_record(key: DkimKey) -> None:
    assert dkim.verify(build(key), dnsfunc=dns_for(key))


def test_dkim_signature_covers_the_one_click_headers_and_oversigns_them(key: DkimKey) -> None:
    sig = dkim.DKIM(build(key)).verify_headerprep()[0]
    signed = [h.strip().lower() for h in sig[b"h"].decode().split(":")]
    for name in ("from", "to", "subject", "date", "message-id"):
        assert name in signed
    assert signed.count("list-unsubscribe") == 2
    assert signed.count("list-unsubscribe-post") == 2
    assert sig[b"a"] == b"rsa-sha256"
    assert sig[b"c"] == b"relaxed/relaxed"
    assert sig[b"d"] == b"brand.example"
    assert sig[b"s"] == b"s2026"


def test_dkim_fails_once_the_unsubscribe_url_is_changed(key: DkimKey) -> None:
    raw = build(key)
    forged = raw.replace(UNSUB.encode(), b"https://evil.example/u/AAAA")
    assert forged != raw
    assert not dkim.verify(forged, dnsfunc=dns_for(key))


def test_dkim_fails_once_the_one_click_post_header_is_removed(key: DkimKey) -> None:
    raw = build(key)
    forged = raw.replace(b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n", b"")
    assert forged != raw
    assert not dkim.verify(forged, dnsfunc=dns_for(key))


def test_dkim_fails_once_a_second_unsubscribe_header_is_added(key: DkimKey) -> None:
    raw = build(key)
    head, body = raw.split(b"\r\n\r\n", 1)
    forged = head + b"\r\nList-Unsubscribe: <https://evil.example/u>" + b"\r\n\r\n" + body
    assert not dkim.verify(forged, dnsfunc=dns_for(key))


def test_dkim_fails_once_the_body_is_changed(key: DkimKey) -> None:
    raw = build(key, html=None)
    head, body = raw.split(b"\r\n\r\n", 1)
    assert not dkim.verify(head + b"\r\n\r\n" + body.replace(b"20%", b"90%"), dnsfunc=dns_for(key))


def test_dkim_fails_against_another_keys_record(key: DkimKey) -> None:
    other = generate_dkim_key(
        key.selector, key.domain, bits=1024, randbits=random.Random(8).getrandbits
    )
    assert not dkim.verify(build(key), dnsfunc=dns_for(other))


def test_generated_key_is_rsa_2048_and_never_shown_in_repr(key: DkimKey) -> None:
    private = parse_pem_private_key(key.private_key_pem)
    assert private["modulus"].bit_length() == 2048
    assert private["publicExponent"] == 65537
    assert private["prime1"] * private["prime2"] == private["modulus"]
    assert key.txt_record().startswith("v=DKIM1; k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8A")
    assert "PRIVATE" not in repr(key)
    assert key.dns_name == "s2026._domainkey.brand.example"


def test_message_module_imports_no_io_library() -> None:
    source = (SRC / "email" / "message.py").read_text(encoding="utf-8")
    assert not top_level_imports(source) & FORBIDDEN


# --- unsubscribe tokens -------------------------------------------------------------------


@given(st.integers(0, 2**63), st.integers(0, 2**63))
def test_a_token_names_its_brand_and_subscriber(brand_id: int, subscriber_id: int) -> None:
    token = make_token("s3cret", brand_id, subscriber_id)
    assert re.fullmatch(r"[A-Za-z0-9_-]{44}", token)
    assert read_token("s3cret", token) == (brand_id, subscriber_id)


def test_every_altered_character_of_a_token_is_refused() -> None:
    token = make_token("s3cret", 7, 42)
    for i, ch in enumerate(token):
        forged = token[:i] + ("A" if ch != "A" else "B") + token[i + 1 :]
        with pytest.raises(InvalidInput):
            read_token("s3cret", forged)


@pytest.mark.parametrize(
    "token", ["", "abc", "not base64 at all!", "é" * 44, make_token("s3cret", 7, 42) + "AA"]
)
def test_malformed_tokens_are_refused(token: str) -> None:
    with pytest.raises(InvalidInput):
        read_token("s3cret", token)


def test_a_token_made_with_another_secret_is_refused() -> None:
    with pytest.raises(InvalidInput):
        read_token("s3cret", make_token("other", 7, 42))


def test_a_token_reads_only_for_the_purpose_it_was_made_for() -> None:
    """An unsubscribe link's token is no sign-up confirmation, nor the reverse."""
    confirm = make_token("s3cret", 7, 42, CONFIRM)
    assert read_token("s3cret", confirm, CONFIRM) == (7, 42)
    with pytest.raises(InvalidInput):
        read_token("s3cret", confirm)
    with pytest.raises(InvalidInput):
        read_token("s3cret", make_token("s3cret", 7, 42), CONFIRM)


# --- the one-click endpoint ---------------------------------------------------------------


@pytest.fixture
def unsubscribed() -> list[tuple[int, int, str]]:
    return []


@pytest.fixture
async def client(unsubscribed: list[tuple[int, int, str]]) -> AsyncIterator[httpx.AsyncClient]:
    async def on_unsubscribe(brand_id: int, subscriber_id: int, source: str) -> None:
        unsubscribed.append((brand_id, subscriber_id, source))

    app = Starlette(routes=unsubscribe_routes("s3cret", on_unsubscribe))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://clarion.test") as c:
        yield c


TOKEN = make_token("s3cret", 7, 42)


async def test_one_click_post_unsubscribes_once(
    client: httpx.AsyncClient, unsubscribed: list[tuple[int, int, str]]
) -> None:
    resp = await client.post(f"/u/{TOKEN}", data={"List-Unsubscribe": "One-Click"})
    assert resp.status_code == 200
    assert resp.content == b""
    assert unsubscribed == [(7, 42, "one-click")]


async def test_one_click_post_as_multipart_form_unsubscribes(
    client: httpx.AsyncClient, unsubscribed: list[tuple[int, int, str]]
) -> None:
    resp = await client.post(f"/u/{TOKEN}", files={"List-Unsubscribe": (None, "One-Click")})
    assert resp.status_code == 200
    assert unsubscribed == [(7, 42, "one-click")]


async def test_get_never_unsubscribes_and_offers_a_button_that_posts(
    client: httpx.AsyncClient, unsubscribed: list[tuple[int, int, str]]
) -> None:
    resp = await client.get(f"/u/{TOKEN}")
    assert resp.status_code == 200
    assert '<form method="post">' in resp.text
    assert 'name="unsubscribe" value="confirm"' in resp.text
    assert resp.headers["cache-control"] == "no-store"
    assert (await client.head(f"/u/{TOKEN}")).status_code == 200
    assert unsubscribed == []


async def test_the_pages_button_unsubscribes(
    client: httpx.AsyncClient, unsubscribed: list[tuple[int, int, str]]
) -> None:
    resp = await client.post(f"/u/{TOKEN}", data={"unsubscribe": "confirm"})
    assert resp.status_code == 200
    assert "Unsubscribed" in resp.text
    assert unsubscribed == [(7, 42, "page")]


async def test_a_forged_token_is_not_found_and_calls_nothing(
    client: httpx.AsyncClient, unsubscribed: list[tuple[int, int, str]]
) -> None:
    forged = make_token("other-secret", 7, 42)
    one_click = {"List-Unsubscribe": "One-Click"}
    assert (await client.post(f"/u/{forged}", data=one_click)).status_code == 404
    assert (await client.post("/u/not-a-token", data=one_click)).status_code == 404
    assert (await client.get(f"/u/{forged}")).status_code == 404
    assert unsubscribed == []


async def test_a_post_without_the_one_click_body_calls_nothing(
    client: httpx.AsyncClient, unsubscribed: list[tuple[int, int, str]]
) -> None:
    assert (await client.post(f"/u/{TOKEN}", data={"List-Unsubscribe": "Yes"})).status_code == 400
    assert (await client.post(f"/u/{TOKEN}", content=b"x" * 20_000)).status_code == 413
    assert unsubscribed == []


# --- bounce classification ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "enhanced", "text", "kind"),
    [
        (550, None, "5.1.1 <ana@example.net>: Recipient address rejected: User unknown", "hard"),
        (550, "5.1.1", "user unknown", "hard"),
        (553, "5.1.3", "bad destination mailbox address syntax", "hard"),
        (554, None, "no such user here", "hard"),
        (550, "5.2.1", "mailbox disabled", "hard"),
        (451, None, "4.3.0 Temporary lookup failure", "soft"),
        (450, None, "mailbox busy", "soft"),
        (421, "4.7.0", "Try again later, closing connection", "soft"),
        (552, "5.2.2", "mailbox full", "soft"),
        (552, None, "Requested mail action aborted: exceeded storage allocation", "soft"),
        (550, None, "Mailbox full", "soft"),
        (550, "5.7.1", "Message rejected as spam", "soft"),
        (550, None, "5.7.26 Unauthenticated email is not accepted (DMARC)", "soft"),
        (550, "4.2.0", "class of the enhanced code wins", "soft"),
        (354, None, "not a failure at all", "soft"),
    ],
)
def test_smtp_replies_are_classified(code: int, enhanced: str | None, text: str, kind: str) -> None:
    assert classify_smtp_reply(code, enhanced, text) == kind


# --- SendGrid events ----------------------------------------------------------------------

RECEIVED = datetime(2026, 11, 25, 18, 5, tzinfo=UTC)


@pytest.mark.parametrize(
    ("event", "status", "error_code"),
    [
        ({"event": "processed"}, "accepted", None),
        ({"event": "deferred", "response": "421 try later"}, "sent", "deferred"),
        ({"event": "delivered", "response": "250 OK"}, "delivered", None),
        ({"event": "bounce", "type": "bounce", "status": "5.1.1", "reason": "550 5.1.1 no"},
         "undelivered", "bounce:hard"),
        ({"event": "bounce", "type": "blocked", "status": "5.7.1", "reason": "550 spam"},
         "undelivered", "bounce:soft"),
        ({"event": "bounce", "status": "5.2.2", "reason": "552 5.2.2 mailbox full"},
         "undelivered", "bounce:soft"),
        ({"event": "dropped", "reason": "Bounced Address"}, "failed", "bounce:hard"),
        ({"event": "dropped", "reason": "Spam Reporting Address"}, "failed", "spamreport"),
        ({"event": "dropped", "reason": "Unsubscribed Address"}, "failed", "dropped"),
        ({"event": "spamreport"}, "delivered", "spamreport"),
    ],
)  # fmt: skip
def test_sendgrid_events_map_to_receipts(
    event: dict[str, object], status: str, error_code: str | None
) -> None:
    full = {**event, "clarion_id": MESSAGE_ID, "sg_message_id": "sg1", "timestamp": 1795600000}
    receipt = receipt_from_sendgrid_event(full, received_at=RECEIVED)
    assert receipt is not None
    assert (receipt.message_id, receipt.status, receipt.error_code) == (
        MESSAGE_ID,
        status,
        error_code,
    )
    assert receipt.provider_message_id == "sg1"
    assert receipt.occurred_at == datetime.fromtimestamp(1795600000, UTC)


def test_engagement_events_and_events_not_ours_are_ignored() -> None:
    for event in (
        {"event": "open", "clarion_id": MESSAGE_ID},
        {"event": "click", "clarion_id": MESSAGE_ID},
        {"event": "delivered"},  # no clarion_id: sent by someone else on the account
    ):
        assert receipt_from_sendgrid_event(event, received_at=RECEIVED) is None
    undated = receipt_from_sendgrid_event(
        {"event": "delivered", "clarion_id": MESSAGE_ID}, received_at=RECEIVED
    )
    assert undated is not None
    assert undated.occurred_at == RECEIVED


# SendGrid's own test vector (sendgrid-python, test/unit/test_eventwebhook.py): a webhook
# body signed by SendGrid's servers, verified with the account's verification key.
SG_PUBLIC_KEY = (
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE83T4O/n84iotIvIW4mdBgQ/7dAfSmpqIM8kF9mN1flpVKS3GRqe6"
    "2gw+2fNNRaINXvVpiglSI8eNEc6wEA3F+g=="
)
SG_OTHER_KEY = (
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEqTxd43gyp8IOEto2LdIfjRQrIbsd4SXZkLW6jDutdhXSJCWHw8RE"
    "ntlo7aNDthvj+y7GjUuFDb/R1NGe1OPzpA=="
)
SG_SIGNATURE = (
    "MEUCIGHQVtGj+Y3LkG9fLcxf3qfI10QysgDWmMOVmxG0u6ZUAiEAyBiXDWzM+uOe5W0JuG+luQAbPIqHh89M15Tl"
    "uLtEZtM="
)
SG_TIMESTAMP = "1600112502"
SG_BODY = (
    json.dumps(
        [
            {
                "email": "hello@world.com",
                "event": "dropped",
                "reason": "Bounced Address",
                "sg_event_id": "ZHJvcC0xMDk5NDkxOS1MUnpYbF9OSFN0T0doUTRrb2ZTbV9BLTA",
                "sg_message_id": "LRzXl_NHStOGhQ4kofSm_A.filterdrecv-p3mdw1-756b745b58-kmzbl-18-"
                "5F5FC76C-9.0",
                "smtp-id": "<LRzXl_NHStOGhQ4kofSm_A@ismtpd0039p1iad1.sendgrid.net>",
                "timestamp": 1600112492,
            }
        ],
        sort_keys=True,
        separators=(",", ":"),
    )
    + "\r\n"
).encode()


def test_sendgrids_own_signature_verifies() -> None:
    assert sendgrid.verify_event_webhook(SG_PUBLIC_KEY, SG_TIMESTAMP, SG_BODY, SG_SIGNATURE)


@pytest.mark.parametrize(
    ("public_key", "timestamp", "body", "signature"),
    [
        (SG_PUBLIC_KEY, SG_TIMESTAMP, SG_BODY.replace(b"Bounced", b"Bouncee"), SG_SIGNATURE),
        (SG_PUBLIC_KEY, "1600112503", SG_BODY, SG_SIGNATURE),
        (SG_OTHER_KEY, SG_TIMESTAMP, SG_BODY, SG_SIGNATURE),
        (SG_PUBLIC_KEY, SG_TIMESTAMP, SG_BODY, SG_SIGNATURE[:-6] + "AAAAA="),
        (SG_PUBLIC_KEY, SG_TIMESTAMP, SG_BODY, "not base64!"),
        (SG_PUBLIC_KEY, SG_TIMESTAMP, SG_BODY, base64.b64encode(b"\x30\x00").decode()),
    ],
    ids=["tampered-body", "other-timestamp", "wrong-key", "altered-signature", "junk", "empty"],
)
def test_anything_but_sendgrids_signature_fails(
    public_key: str, timestamp: str, body: bytes, signature: str
) -> None:
    assert not sendgrid.verify_event_webhook(public_key, timestamp, body, signature)


def test_signing_is_rfc6979_deterministic_ecdsa_p256() -> None:
    # RFC 6979 A.2.5, P-256 with SHA-256, message "sample".
    x = 0xC9AFA9D845BA75166B5C215767B1D6934E50C3DB36E89B127B8A622B120F6721
    public = base64.b64decode(sendgrid.ec_public_key(x))
    assert public[-64:].hex().upper() == (
        "60FED4BA255A9D31C961EB74C6356D68C049B8923B61FA6CE669622E60F29FB6"
        "7903FE1008B8BC99A41AE9E95628BC64F2F1B20C2D7E9F5177A3C294D4462299"
    )
    assert sendgrid.ecdsa_sign(x, b"sample") == (
        0xEFD48B2AACB6A8FD1140DD9CD45E81D69D2C877B56AAF991C34D0EA84EAF3716,
        0xF7CB1C942D657C41D436C7A1B6E29F65F3E900DBB9AFF4064DC4AB2F843ACDA8,
    )


def signed(private_key: int, body: bytes, timestamp: str = "1795600000") -> dict[str, str]:
    return {
        sendgrid.TIMESTAMP_HEADER: timestamp,
        sendgrid.SIGNATURE_HEADER: sendgrid.sign_event_webhook(private_key, timestamp, body),
    }


async def test_parse_events_verifies_then_maps_each_event() -> None:
    private = 0x1234567890ABCDEF
    provider = SendGridProvider(
        "key", webhook_public_key=sendgrid.ec_public_key(private), clock=lambda: 1795600010.0
    )
    events = [
        {"event": "processed", "clarion_id": "m1", "timestamp": 1795600000},
        {"event": "bounce", "type": "bounce", "clarion_id": "m2", "status": "5.1.1",
         "reason": "550 5.1.1 unknown", "timestamp": 1795600001},
        {"event": "spamreport", "clarion_id": "m3", "timestamp": 1795600002},
        {"event": "open", "clarion_id": "m1", "timestamp": 1795600003},
    ]  # fmt: skip
    body = json.dumps(events).encode() + b"\r\n"
    headers = {k.lower(): v for k, v in signed(private, body).items()}  # as a server lowers them
    batch_id, receipts = provider.parse_status_webhook("https://x/webhooks", headers, body)
    assert [(r.message_id, r.status, r.error_code) for r in receipts] == [
        ("m1", "accepted", None),
        ("m2", "undelivered", "bounce:hard"),
        ("m3", "delivered", "spamreport"),
    ]
    assert batch_id == provider.parse_status_webhook("https://x/webhooks", headers, body)[0]
    with pytest.raises(ForgedWebhook):
        provider.parse_events(headers, body.replace(b"m2", b"m9"))
    with pytest.raises(ForgedWebhook):
        provider.parse_events(signed(private + 1, body), body)
    with pytest.raises(ForgedWebhook):
        provider.parse_events({}, body)
    not_json = b"{not json"
    with pytest.raises(InvalidInput):
        provider.parse_events(signed(private, not_json), not_json)
    strict = SendGridProvider(
        "key",
        webhook_public_key=sendgrid.ec_public_key(private),
        max_event_age_s=300,
        clock=lambda: 1795600000.0 + 301,
    )
    with pytest.raises(ForgedWebhook):
        strict.parse_events(signed(private, body), body)
    await provider.aclose()
    await strict.aclose()


def test_a_malformed_verification_key_fails_at_construction() -> None:
    with pytest.raises(ConfigurationError):
        SendGridProvider("key", webhook_public_key="MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE")
    with pytest.raises(ConfigurationError):
        SendGridProvider("key", webhook_public_key=SG_PUBLIC_KEY[:-8] + "AAAAAAA=")  # off-curve


# --- SendGrid Mail Send -------------------------------------------------------------------


def outbound(i: int, *, text: str | None = None, to: str | None = None) -> OutboundEmail:
    return OutboundEmail(
        message_id=f"m{i}",
        to=to or f"Person {i} <p{i}@example.net>",
        from_addr="Brand <news@brand.example>",
        subject=f"Offer {i}",
        text=text if text is not None else f"Hi person {i}",
        html=None,
        unsubscribe_url=f"https://clarion.example.com/u/t{i}",
    )


class FakeSendGrid:
    """An httpx transport answering Mail Send with scripted responses (then 202s)."""

    def __init__(self, *responses: httpx.Response | Exception) -> None:
        self.responses = list(responses)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.responses:
            answer = self.responses.pop(0)
            if isinstance(answer, Exception):
                raise answer
            return answer
        return httpx.Response(202, headers={"X-Message-Id": f"x{len(self.requests)}"})

    def provider(self) -> SendGridProvider:
        return SendGridProvider(
            "SG.key", webhook_public_key=None, transport=httpx.MockTransport(self),
            clock=lambda: 1000.0,
        )  # fmt: skip

    def bodies(self) -> list[dict[str, object]]:
        return [json.loads(r.content) for r in self.requests]


async def test_mail_send_puts_each_recipient_in_its_own_personalization() -> None:
    fake = FakeSendGrid()
    provider = fake.provider()
    results = await provider.send_emails([outbound(i) for i in range(2500)])
    assert [r.message_id for r in results] == [f"m{i}" for i in range(2500)]
    assert all(r.accepted and r.provider_message_id for r in results)
    bodies = fake.bodies()
    assert sorted(len(b["personalizations"]) for b in bodies) == [500, 1000, 1000]
    assert all(r.headers["authorization"] == "Bearer SG.key" for r in fake.requests)
    assert all(r.url.path == "/v3/mail/send" for r in fake.requests)
    first = next(b for b in bodies if b["personalizations"][0]["custom_args"]["clarion_id"] == "m0")
    p0 = first["personalizations"][0]
    assert p0 == {
        "to": [{"email": "p0@example.net", "name": "Person 0"}],
        "subject": "Offer 0",
        "headers": {
            "List-Unsubscribe": "<https://clarion.example.com/u/t0>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        },
        "custom_args": {"clarion_id": "m0"},
        "substitutions": {sendgrid.TEXT_TAG: "Hi person 0"},
    }
    assert first["from"] == {"email": "news@brand.example", "name": "Brand"}
    assert first["content"] == [{"type": "text/plain", "value": sendgrid.TEXT_TAG}]
    await provider.aclose()


async def test_identical_bodies_go_as_plain_content() -> None:
    fake = FakeSendGrid()
    provider = fake.provider()
    await provider.send_emails([outbound(i, text="Same for all") for i in range(3)])
    (body,) = fake.bodies()
    assert body["content"] == [{"type": "text/plain", "value": "Same for all"}]
    assert all("substitutions" not in p for p in body["personalizations"])
    await provider.aclose()


async def test_a_body_too_large_for_substitutions_goes_alone() -> None:
    fake = FakeSendGrid()
    provider = fake.provider()
    big = "x" * (sendgrid.SUBSTITUTIONS_MAX_BYTES + 1)
    results = await provider.send_emails([outbound(0), outbound(1, text=big), outbound(2)])
    assert all(r.accepted for r in results)
    assert sorted(len(b["personalizations"]) for b in fake.bodies()) == [1, 2]
    alone = next(b for b in fake.bodies() if len(b["personalizations"]) == 1)
    assert alone["content"] == [{"type": "text/plain", "value": big}]
    await provider.aclose()


async def test_throttling_and_server_errors_are_retried() -> None:
    fake = FakeSendGrid(
        httpx.Response(429, headers={"X-RateLimit-Reset": "1012"}),
        httpx.Response(503, json={"errors": [{"message": "try later"}]}),
        httpx.ConnectError("refused"),
        httpx.Response(401, json={"errors": [{"message": "bad key"}]}),
    )
    provider = fake.provider()
    outcomes = [(await provider.send_emails([outbound(0)]))[0] for _ in range(4)]
    assert [(r.accepted, r.retry, r.throttled, r.error_code) for r in outcomes] == [
        (False, True, True, "sendgrid:429"),
        (False, True, False, "sendgrid:503"),
        (False, True, False, "sendgrid:transport"),
        (False, True, False, "sendgrid:401"),
    ]
    assert outcomes[0].retry_after_s == 12.0
    await provider.aclose()


async def test_an_invalid_address_fails_alone_and_the_others_are_sent_again() -> None:
    field = "personalizations.1.to.0.email"
    fake = FakeSendGrid(
        httpx.Response(
            400, json={"errors": [{"message": "Does not contain a valid address.", "field": field}]}
        )
    )
    provider = fake.provider()
    results = await provider.send_emails([outbound(0), outbound(1, to="bad"), outbound(2)])
    assert [(r.accepted, r.retry) for r in results] == [
        (True, False),
        (False, False),
        (True, False),
    ]
    assert results[1].error_code == "sendgrid:400"
    assert "valid address" in (results[1].error_detail or "")
    resent = fake.bodies()[1]["personalizations"]
    assert [p["custom_args"]["clarion_id"] for p in resent] == ["m0", "m2"]
    await provider.aclose()


async def test_a_bad_request_that_names_no_recipient_fails_all() -> None:
    fake = FakeSendGrid(
        httpx.Response(400, json={"errors": [{"message": "The from is required."}]})
    )
    provider = fake.provider()
    results = await provider.send_emails([outbound(0), outbound(1)])
    assert [(r.accepted, r.retry, r.error_detail) for r in results] == [
        (False, False, "The from is required."),
        (False, False, "The from is required."),
    ]
    await provider.aclose()


def test_sendgrid_from_env_names_what_is_missing_and_hides_the_key() -> None:
    with pytest.raises(ConfigurationError, match="CLARION_SENDGRID_API_KEY"):
        SendGridProvider.from_env({})
    with pytest.raises(ConfigurationError, match="CLARION_SENDGRID_WEBHOOK_PUBLIC_KEY"):
        SendGridProvider.from_env({"CLARION_SENDGRID_API_KEY": "SG.secret"})
    provider = SendGridProvider.from_env(
        {
            "CLARION_SENDGRID_API_KEY": "SG.secret",
            "CLARION_SENDGRID_WEBHOOK_PUBLIC_KEY": SG_PUBLIC_KEY,
        }
    )
    assert "SG.secret" not in repr(provider)


# --- SMTP configuration -------------------------------------------------------------------


def test_smtp_from_env_names_what_is_missing(tmp_path: Path, key: DkimKey) -> None:
    with pytest.raises(ConfigurationError, match="CLARION_SMTP_HOST"):
        SmtpProvider.from_env({})
    with pytest.raises(ConfigurationError, match="CLARION_SMTP_PASSWORD"):
        SmtpProvider.from_env({"CLARION_SMTP_HOST": "mx", "CLARION_SMTP_USERNAME": "u"})
    with pytest.raises(ConfigurationError, match="CLARION_SMTP_PORT"):
        SmtpProvider.from_env({"CLARION_SMTP_HOST": "mx", "CLARION_SMTP_PORT": "smtp"})
    dkim_env = {
        "CLARION_SMTP_HOST": "mx",
        "CLARION_DKIM_SELECTOR": "s1",
        "CLARION_DKIM_DOMAIN": "brand.example",
    }
    with pytest.raises(ConfigurationError, match="CLARION_DKIM_KEY_FILE"):
        SmtpProvider.from_env(dkim_env)
    bad = tmp_path / "bad.pem"
    bad.write_text("not a key")
    with pytest.raises(ConfigurationError, match="CLARION_DKIM_KEY_FILE"):
        SmtpProvider.from_env(dkim_env | {"CLARION_DKIM_KEY_FILE": str(bad)})


def test_smtp_from_env_reads_credentials_and_key_and_never_shows_the_password(
    tmp_path: Path, key: DkimKey
) -> None:
    pem = tmp_path / "dkim.pem"
    pem.write_bytes(key.private_key_pem)
    provider = SmtpProvider.from_env(
        {
            "CLARION_SMTP_HOST": "smtp.example.net",
            "CLARION_SMTP_PORT": "2525",
            "CLARION_SMTP_USERNAME": "apikey",
            "CLARION_SMTP_PASSWORD": "hunter2-very-secret",
            "CLARION_DKIM_SELECTOR": "s2026",
            "CLARION_DKIM_DOMAIN": "brand.example",
            "CLARION_DKIM_KEY_FILE": str(pem),
        }
    )
    assert (provider.host, provider.port, provider.username) == ("smtp.example.net", 2525, "apikey")
    assert provider.tls == "starttls"  # credentials never go out in clear by default
    assert provider.dkim == key
    assert "hunter2" not in repr(provider)
    assert "PRIVATE KEY" not in repr(provider)


def test_a_token_does_not_show_its_ids_and_neighbours_look_unrelated() -> None:
    """Sequential subscriber ids made sequential tokens (the ids were in the clear)."""
    import base64
    import struct

    tokens = [make_token("s3cret", 7, n) for n in (42, 43)]
    for n, token in zip((42, 43), tokens, strict=True):
        raw = base64.urlsafe_b64decode(token + "=")
        assert struct.pack(">Q", n) not in raw
        assert struct.pack(">Q", 7) not in raw
    shared = next(i for i, (a, b) in enumerate(zip(*tokens, strict=True)) if a != b)
    assert shared <= 2  # the version byte, at most a character more


def test_a_version_1_token_made_before_is_still_read() -> None:
    import base64
    import hashlib
    import hmac
    import struct

    ids = struct.pack(">BQQ", 1, 7, 42)
    mac = hmac.new(b"s3cret", b"clarion/unsubscribe/v1\x00" + ids, hashlib.sha256).digest()[:16]
    token = base64.urlsafe_b64encode(ids + mac).rstrip(b"=").decode()
    assert read_token("s3cret", token) == (7, 42)
    with pytest.raises(InvalidInput):
        read_token("other", token)


def test_no_token_is_made_or_read_without_a_secret() -> None:
    with pytest.raises(InvalidInput, match="secret"):
        make_token("", 7, 42)
    with pytest.raises(InvalidInput):
        read_token("", make_token("s3cret", 7, 42))


def test_a_signed_event_webhook_with_non_ascii_digits_as_timestamp_is_forged() -> None:
    """ "¹²³".isdigit() is true and int() of it fails: it was a ValueError (a 500)."""
    private = 0x1234567890ABCDEF
    provider = SendGridProvider(
        "key", webhook_public_key=sendgrid.ec_public_key(private), max_event_age_s=300
    )
    body = b"[]"
    with pytest.raises(ForgedWebhook, match="without signature"):
        provider.parse_events(signed(private, body, timestamp="¹²³"), body)
    asyncio.run(provider.aclose())
