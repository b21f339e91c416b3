"""Transactional messages (one-time codes, confirmations) and a message's status."""

from __future__ import annotations

import contextlib
import uuid
from dataclasses import dataclass
from datetime import datetime

from clarion.compliance.encoding import sms_segments
from clarion.domain.brands import email_sender
from clarion.domain.contacts import normalize_phone
from clarion.domain.ids import api_message_id, partition_of
from clarion.domain.records import OutboundMessage, RenderedBatch
from clarion.domain.rows import MessageStatusRow
from clarion.email.unsubscribe import make_token
from clarion.errors import ConfigurationError, InvalidInput, InvalidPhoneNumber, Refused
from clarion.service.context import Services
from clarion.store import brands, compliance, messages


@dataclass(frozen=True)
class Queued:
    id: str
    segments: int
    status: str = "queued"


async def send_transactional(
    svc: Services,
    brand_id: int,
    *,
    to: str,
    body: str,
    sender: str | None,
    idempotency_key: str | None,
    now: datetime,
) -> Queued:
    """Queue one SMS on the transactional hop, with lanes of its own: it never waits behind
    a campaign. Not marketing, so marketing consent and quiet hours do not apply; a number
    that opted out of the brand (STOP) or is suppressed is `Refused`. The same
    `idempotency_key` sends once. The sender, when given, must be one of the brand's."""
    try:
        number, _ = normalize_phone(to)
    except InvalidPhoneNumber as exc:
        raise InvalidInput(str(exc), field="to") from None
    text = body.strip()
    if not text:
        raise InvalidInput("empty", field="body")
    b = await brands.get_brand(svc.pool, brand_id)
    segments = sms_segments(text).segments
    if segments > b.max_segments:
        raise InvalidInput(
            f"{segments} segments; the brand's limit is {b.max_segments}", field="body"
        )
    async with svc.pool.acquire() as conn:
        sub_id, consent = await compliance.subscriber_consent(conn, brand_id, number)
        state = await compliance.gate_state(conn, brand_id, [], [number], now)
    if consent == "opted_out":
        raise Refused(f"{number} opted out of {b.name} (STOP)", field="to")
    if number in state.suppressed:
        raise Refused(f"{number} is suppressed ({state.suppressed[number]})", field="to")
    mid = api_message_id(brand_id, idempotency_key or uuid.uuid4().hex)
    out = OutboundMessage(
        message_id=mid, subscriber_id=sub_id, to=number, body=text, segments=segments
    )  # fmt: skip
    batch = RenderedBatch(
        batch_id=f"api:{mid}", brand_id=brand_id, campaign_id=None,
        sender=await _sender(svc, brand_id, sender, b.sender),
        messages=[out], kind="transactional", partition=partition_of(sub_id, number),
    )  # fmt: skip
    await svc.bus.publish("transactional", batch, msg_id=batch.batch_id)
    return Queued(id=mid, segments=segments)


async def send_transactional_email(
    svc: Services,
    brand_id: int,
    *,
    subscriber_id: int,
    to: str,
    subject: str,
    text: str,
    idempotency_key: str,
    now: datetime,
) -> Queued:
    """Queue one email on the transactional hop (a sign-up's confirmation), from the brand's
    From, with its one-click unsubscribe link. An address that bounced hard or complained
    (suppressed) is `Refused`; the same `idempotency_key` sends once."""
    b = await brands.get_brand(svc.pool, brand_id)
    async with svc.pool.acquire() as conn:
        state = await compliance.gate_state(conn, brand_id, [], [to], now, "email")
    if to.lower() in state.suppressed:
        raise Refused(f"{to} is suppressed ({state.suppressed[to.lower()]})", field="email")
    mid = api_message_id(brand_id, idempotency_key)
    unsubscribe = f"{links_base(svc)}/u/{unsubscribe_token(svc, brand_id, subscriber_id)}"
    out = OutboundMessage(
        message_id=mid, subscriber_id=subscriber_id, to=to, body=text, segments=1,
        subject=subject, unsubscribe_url=unsubscribe,
    )  # fmt: skip
    batch = RenderedBatch(
        batch_id=f"api:{mid}", brand_id=brand_id, campaign_id=None,
        sender=email_sender(b.name, b.slug, b.email_from), messages=[out],
        kind="transactional", partition=partition_of(subscriber_id, to), channel="email",
    )  # fmt: skip
    await svc.bus.publish("transactional", batch, msg_id=batch.batch_id)
    return Queued(id=mid, segments=1)


def links_base(svc: Services) -> str:
    """Where links in messages point (the https address subscribers reach)."""
    return (svc.settings.links_url or svc.settings.public_url).rstrip("/")


def unsubscribe_token(svc: Services, brand_id: int, subscriber_id: int) -> str:
    return make_token(secret(svc), brand_id, subscriber_id)


def secret(svc: Services) -> str:
    secret = svc.settings.unsubscribe_secret
    if not secret:  # `infrastructure()` sets it
        raise ConfigurationError("the unsubscribe secret is not set")
    return secret


async def _sender(svc: Services, brand_id: int, asked: str | None, default: str) -> str:
    """The brand's default sender, or one of its own senders — never another brand's
    number (`InvalidInput`, without saying whose it is)."""
    if asked is None:
        return default
    forms = [asked.strip()]  # as stored, or as E.164 (a short code is no phone number)
    with contextlib.suppress(InvalidPhoneNumber):
        forms.append(normalize_phone(asked)[0])
    owned = await brands.senders_of(svc.pool, brand_id)
    for number in forms:
        if number in owned:
            return number
    raise InvalidInput(f"{asked!r} is not one of this brand's senders", field="sender")


async def status(svc: Services, brand_id: int, message_id: uuid.UUID) -> MessageStatusRow:
    """A message's current status; another brand's message is `NotFound`."""
    return await messages.message_status(svc.pool, brand_id, message_id)
