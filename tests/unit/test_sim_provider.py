"""The `sim` provider's status webhook: signature check and receipt parsing."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import msgspec
import pytest
import standardwebhooks

from clarion.errors import ForgedWebhook, InvalidInput
from clarion.providers.sim import SimProvider
from clarion.sim.wire import (
    ID_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    ReceiptPost,
    SimReceipt,
    signed_headers,
)

SECRET = "unit-secret"
AT = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def provider() -> Iterator[SimProvider]:
    """One provider for the module (its HTTP client is never used; parsing does no I/O)."""
    p = SimProvider("http://sim.invalid", SECRET, "http://clarion.invalid/webhooks/sim/status")
    yield p
    asyncio.run(p.aclose())


def body_of(*receipts: SimReceipt, batch_id: str = "post-1") -> bytes:
    return msgspec.json.encode(ReceiptPost(batch_id=batch_id, receipts=list(receipts)))


def signed(body: bytes, secret: str = SECRET, at: datetime | None = None) -> dict[str, str]:
    """Headers signed by the Standard Webhooks library (an independent signer)."""
    at = at or datetime.now(UTC)
    signature = standardwebhooks.Webhook(secret.encode()).sign("msg-1", at, body)
    return {
        ID_HEADER: "msg-1",
        TIMESTAMP_HEADER: str(int(at.timestamp())),
        SIGNATURE_HEADER: signature,
    }


def sim_receipt(
    status: str,
    *,
    message_id: str = "m1",
    error_code: str | None = None,
    carrier: str | None = None,
) -> SimReceipt:
    return SimReceipt(message_id, "SMabc", status, AT, error_code, carrier)


def test_a_signed_body_parses_into_receipts(provider: SimProvider) -> None:
    body = body_of(
        sim_receipt("sent", carrier="Verizon"),
        sim_receipt("undelivered", message_id="m2", error_code="30003", carrier="AT&T"),
        batch_id="post-42",
    )
    batch_id, receipts = provider.parse_status_webhook("/webhooks/sim/status", signed(body), body)
    assert batch_id == "post-42"
    assert [(r.message_id, r.status, r.carrier, r.error_code) for r in receipts] == [
        ("m1", "sent", "Verizon", None),
        ("m2", "undelivered", "AT&T", "30003"),
    ]
    assert receipts[0].provider_message_id == "SMabc"
    assert receipts[0].occurred_at == AT


@pytest.mark.parametrize(
    ("sim_status", "status"),
    [
        ("queued", "accepted"),
        ("accepted", "accepted"),
        ("sending", "accepted"),
        ("sent", "sent"),
        ("delivered", "delivered"),
        ("undelivered", "undelivered"),
        ("failed", "failed"),
        ("read", "read"),
    ],
)
def test_simulator_statuses_map_to_clarion_statuses(
    provider: SimProvider, sim_status: str, status: str
) -> None:
    body = body_of(sim_receipt(sim_status))
    _, (receipt,) = provider.parse_status_webhook("/", signed(body), body)
    assert receipt.status == status


def test_a_tampered_body_is_a_forged_webhook(provider: SimProvider) -> None:
    body = body_of(sim_receipt("undelivered", error_code="30003"))
    headers = signed(body)
    tampered = body.replace(b"undelivered", b"delivered")
    assert tampered != body
    with pytest.raises(ForgedWebhook):
        provider.parse_status_webhook("/", headers, tampered)


def test_a_body_signed_with_another_secret_is_a_forged_webhook(
    provider: SimProvider,
) -> None:
    body = body_of(sim_receipt("delivered"))
    with pytest.raises(ForgedWebhook):
        provider.parse_status_webhook("/", signed(body, secret="not-the-secret"), body)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {SIGNATURE_HEADER: ""},
        {SIGNATURE_HEADER: "sha256=00"},
        {ID_HEADER: "m", TIMESTAMP_HEADER: "1", SIGNATURE_HEADER: "v1,AAAA"},
        # not ASCII: compared as bytes, never a TypeError (a 500 before)
        {ID_HEADER: "m", TIMESTAMP_HEADER: "1", SIGNATURE_HEADER: "sha256=\xe9"},
        {ID_HEADER: "\xe9", TIMESTAMP_HEADER: "\u00b2", SIGNATURE_HEADER: "v1,\xe9"},
    ],
)
def test_a_missing_or_garbage_signature_is_a_forged_webhook(
    provider: SimProvider, headers: dict[str, str]
) -> None:
    body = body_of(sim_receipt("delivered"))
    with pytest.raises(ForgedWebhook):
        provider.parse_status_webhook("/", headers, body)


@pytest.mark.parametrize(
    "body",
    [
        b"[]",
        b'{"batch_id": 1, "receipts": []}',
        b'{"batch_id": "x"}',
        b'{"batch_id": "x", "receipts": [{"message_id": "m1"}]}',
        b'{"batch_id": "x", "receipts": [{"message_id": "m1", "provider_id": "p",'
        b' "status": "sent", "occurred_at": "yesterday"}]}',
    ],
)
def test_a_correctly_signed_malformed_body_is_invalid_input(
    provider: SimProvider, body: bytes
) -> None:
    with pytest.raises(InvalidInput, match="malformed status webhook"):
        provider.parse_status_webhook("/", signed(body), body)


def test_the_signature_is_checked_before_the_body_is_parsed(provider: SimProvider) -> None:
    body = b'{"batch_id": 1}'
    with pytest.raises(ForgedWebhook):
        provider.parse_status_webhook("/", signed(body, secret="wrong"), body)


def test_a_captured_webhook_replayed_after_five_minutes_is_refused(provider: SimProvider) -> None:
    body = body_of(sim_receipt("delivered"))
    now = datetime.now(UTC)
    batch_id, _ = provider.parse_status_webhook(
        "/", signed(body, at=now - timedelta(minutes=4)), body
    )
    assert batch_id == "post-1"
    for skew in (timedelta(minutes=6), -timedelta(minutes=6)):
        with pytest.raises(ForgedWebhook, match="5 minutes"):
            provider.parse_status_webhook("/", signed(body, at=now - skew), body)


def test_a_non_ascii_signature_with_a_fresh_timestamp_is_forged_not_an_error(
    provider: SimProvider,
) -> None:
    body = body_of(sim_receipt("delivered"))
    headers = {**signed(body), SIGNATURE_HEADER: "v1,\xe9\u20ac"}
    with pytest.raises(ForgedWebhook, match="does not verify"):
        provider.parse_status_webhook("/", headers, body)


def test_the_simulator_signs_as_standard_webhooks_verify() -> None:
    body = body_of(sim_receipt("delivered"))
    headers = signed_headers(SECRET, "post-1", body, datetime.now(UTC).timestamp())
    standardwebhooks.Webhook(SECRET.encode()).verify(body, headers)  # raises if not
    with pytest.raises(standardwebhooks.WebhookVerificationError):
        standardwebhooks.Webhook(b"another").verify(body, headers)
