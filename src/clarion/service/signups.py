"""Sign-up forms with double opt-in (`POST /v1/signups`): the visitor's number becomes a
subscriber who is not sendable yet; the consent ledger records the request with its
evidence (page, disclosure shown, IP address, user agent); a confirmation ("Reply Y to
confirm…") goes out on the transactional path; the reply Y, handled by the inbound stage
(`pipeline.inbound.respond`), records the opt-in. Until then the send gate, which sends
marketing only to a subscriber whose latest SMS consent is `opted_in`, lets nothing
marketing through."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from clarion.domain.brands import BrandInfo
from clarion.domain.contacts import normalize_phone
from clarion.domain.subscribers import SubscriberIn, signup_in
from clarion.errors import Duplicate, Refused
from clarion.pipeline.inbound import double_opt_in_question
from clarion.service import messages
from clarion.service.context import Services
from clarion.store import brands, subscribers

# A number asked to confirm is not texted again for a new sign-up within this time: a form
# filled in again (or by someone else, to harass) sends one confirmation a day at most.
RESEND_AFTER_S = 24 * 3600.0
SOURCE = "signup form"


@dataclass(frozen=True)
class SignedUp:
    """`pending`: asked to confirm (a confirmation was texted now, `confirmation_id`, or
    within the last day); `confirmed`: subscribed already, nothing sent."""

    subscriber_id: int
    status: str
    confirmation_id: str | None = None


async def signup(
    svc: Services, brand_id: int, raw: Any, *, key_id: int | None, now: datetime
) -> SignedUp:
    s = signup_in(raw)
    b = await brands.get_brand(svc.pool, brand_id)
    evidence = {**s.evidence(), "api_key_id": key_id}
    async with svc.pool.acquire() as conn, conn.transaction():
        found = await subscribers.find(conn, brand_id, phone=s.phone)
        if found:
            subscriber_id = found[0].id
        else:
            new = SubscriberIn(
                phone=s.phone, email=None, timezone=normalize_phone(s.phone)[1],
                first_name=s.first_name, last_name=s.last_name, attributes=s.attributes,
                consent={},
            )  # fmt: skip
            try:
                async with conn.transaction():
                    subscriber_id = await subscribers.create(conn, brand_id, new)
            except Duplicate as dup:  # a sign-up of the same number at the same moment
                subscriber_id = dup.existing_id
        latest = await subscribers.latest_consent(conn, subscriber_id, "sms")
        status = latest[0] if latest else None
        if status == "opted_in":
            return SignedUp(subscriber_id, "confirmed")
        if status == "opted_out":
            raise Refused(
                f"{s.phone} opted out of {b.name}: it subscribes again by texting START or"
                " JOIN to the brand, not through a form",
                field="phone",
            )
        if status == "pending" and latest is not None and latest[1] < RESEND_AFTER_S:
            return SignedUp(subscriber_id, "pending")
        entry = await subscribers.request_consent(
            conn, brand_id, subscriber_id, "sms", source=SOURCE, disclosure=s.disclosure,
            evidence=evidence,
        )  # fmt: skip
    question = double_opt_in_question(BrandInfo(id=b.id, name=b.name, sender=b.sender))
    sent = await messages.send_transactional(
        svc, brand_id, to=s.phone, body=question, sender=None,
        idempotency_key=f"signup:{entry}", now=now,
    )  # fmt: skip
    return SignedUp(subscriber_id, "pending", sent.id)
