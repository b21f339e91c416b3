"""Sign-up forms with double opt-in (`POST /v1/signups`): the visitor's number or address
becomes a subscriber who is not sendable yet on that channel; the consent ledger records the
request with its evidence (page, disclosure shown, IP address, user agent); a confirmation
goes out on the transactional path — a text ("Reply Y to confirm…") whose reply Y the
inbound stage records (`pipeline.inbound.respond`), an email whose link, followed and its
button pressed, records the opt-in here (`confirm_email`, with that visit's evidence). Until
then the send gate, which sends marketing only to a subscriber whose latest consent on the
channel is `opted_in`, lets nothing marketing through."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from clarion.domain.brands import BrandInfo
from clarion.domain.contacts import normalize_phone
from clarion.domain.rows import BrandRow
from clarion.domain.subscribers import SignupIn, SubscriberIn, signup_in
from clarion.email.unsubscribe import CONFIRM, make_token, read_token
from clarion.errors import Duplicate, NotFound, Refused
from clarion.pipeline.inbound import double_opt_in_question
from clarion.service import messages
from clarion.service.context import Services
from clarion.store import brands, subscribers

if TYPE_CHECKING:
    from clarion.store.db import Conn

# An address asked to confirm is not asked again for a new sign-up within this time: a form
# filled in again (or by someone else, to harass) sends one confirmation a day at most.
RESEND_AFTER_S = 24 * 3600.0
# An email confirmation link works this long (a newer request replaces it sooner).
CONFIRM_WITHIN_S = 7 * 24 * 3600.0
SOURCE = "signup form"


@dataclass(frozen=True)
class Asked:
    """One channel of a sign-up: `pending` (a confirmation went out now, `confirmation_id`,
    or within the last day) or `confirmed` (subscribed already, nothing sent)."""

    status: str
    confirmation_id: str | None = None


@dataclass(frozen=True)
class SignedUp:
    """The sign-up's subscriber and each channel's outcome; `status` is `confirmed` when
    every channel is, `confirmation_id` the text's (else the email's)."""

    subscriber_id: int
    status: str
    confirmation_id: str | None = None
    channels: dict[str, Asked] = field(default_factory=dict)


async def signup(
    svc: Services, brand_id: int, raw: Any, *, key_id: int | None, now: datetime
) -> SignedUp:
    s = signup_in(raw)
    b = await brands.get_brand(svc.pool, brand_id)
    evidence = {**s.evidence(), "api_key_id": key_id}
    to_send: dict[str, int] = {}  # channel → the ledger entry that asked
    done: dict[str, Asked] = {}
    async with svc.pool.acquire() as conn, conn.transaction():
        subscriber_id = await _subscriber_for(conn, brand_id, s)
        for channel, address in (("sms", s.phone), ("email", s.email)):
            if address is None:
                continue
            latest = await subscribers.latest_consent(conn, subscriber_id, channel)
            status = latest[0] if latest else None
            if status == "opted_in":
                done[channel] = Asked("confirmed")
                continue
            if status == "opted_out" and channel == "sms":
                raise Refused(
                    f"{address} opted out of {b.name}: it subscribes again by texting START or"
                    " JOIN to the brand, not through a form",
                    field="phone",
                )
            if status == "pending" and latest is not None and latest[1] < RESEND_AFTER_S:
                done[channel] = Asked("pending")
                continue
            to_send[channel] = await subscribers.request_consent(
                conn, brand_id, subscriber_id, channel, source=SOURCE,
                disclosure=s.disclosure, evidence=evidence,
            )  # fmt: skip
    if "sms" in to_send:
        assert s.phone is not None
        question = double_opt_in_question(BrandInfo(id=b.id, name=b.name, sender=b.sender))
        sent = await messages.send_transactional(
            svc, brand_id, to=s.phone, body=question, sender=None,
            idempotency_key=f"signup:{to_send['sms']}", now=now,
        )  # fmt: skip
        done["sms"] = Asked("pending", sent.id)
    if "email" in to_send:
        assert s.email is not None
        queued = await _send_email_confirmation(
            svc, b, subscriber_id, s.email, to_send["email"], now
        )
        done["email"] = Asked("pending", queued)
    first = done.get("sms") or done["email"]
    status = "confirmed" if all(a.status == "confirmed" for a in done.values()) else "pending"
    return SignedUp(subscriber_id, status, first.confirmation_id, done)


async def _subscriber_for(conn: Conn, brand_id: int, s: SignupIn) -> int:
    """The brand's subscriber with the sign-up's phone or email, made if neither is known.
    A form never rewrites what a subscriber has: an email is added to a subscriber that
    has none; a phone and an email of two different subscribers are refused."""
    by_phone = await subscribers.find(conn, brand_id, phone=s.phone) if s.phone else []
    by_email = await subscribers.find(conn, brand_id, email=s.email) if s.email else []
    if by_phone and by_email and by_phone[0].id != by_email[0].id:
        raise Refused(
            f"the phone is subscriber {by_phone[0].id}'s and the email subscriber"
            f" {by_email[0].id}'s: sign up with one of them",
            field="email",
        )
    found = by_phone or by_email
    if found:
        known = found[0]
        if s.email and known.email is None:
            await subscribers.add_email(conn, brand_id, known.id, s.email)
        elif s.email and known.email != s.email:
            raise Refused(
                f"subscriber {known.id} has another email: change it with PATCH"
                f" /v1/subscribers/{known.id}, not through a form",
                field="email",
            )
        return known.id
    new = SubscriberIn(
        phone=s.phone, email=s.email,
        timezone=normalize_phone(s.phone)[1] if s.phone else None,
        first_name=s.first_name, last_name=s.last_name, attributes=s.attributes,
        consent={},
    )  # fmt: skip
    try:
        async with conn.transaction():
            return await subscribers.create(conn, brand_id, new)
    except Duplicate as dup:  # a sign-up of the same address at the same moment
        return dup.existing_id


async def _send_email_confirmation(
    svc: Services, b: BrandRow, subscriber_id: int, to: str, entry: int, now: datetime
) -> str:
    link = f"{messages.links_base(svc)}/confirm/{confirm_token(svc, b.id, entry)}"
    text = (
        f"Please confirm that you want email from {b.name}:\n\n{link}\n\n"
        "If you did not sign up, ignore this email: nothing more will be sent."
    )
    queued = await messages.send_transactional_email(
        svc, b.id, subscriber_id=subscriber_id, to=to,
        subject=f"Confirm your subscription to {b.name}", text=text,
        idempotency_key=f"signup-email:{entry}", now=now,
    )  # fmt: skip
    return queued.id


def confirm_token(svc: Services, brand_id: int, entry: int) -> str:
    """The sealed token of an email confirmation link (brand, the entry that asked)."""
    return make_token(messages.secret(svc), brand_id, entry, CONFIRM)


def read_confirm_token(secret: str | bytes, token: str) -> tuple[int, int]:
    """(brand id, entry id) of a confirmation link's token; `InvalidInput` for any other."""
    return read_token(secret, token, CONFIRM)


async def confirm_email(
    svc: Services, brand_id: int, entry_id: int, *, ip: str | None, user_agent: str | None
) -> str:
    """The subscriber followed the confirmation link and pressed the button: record the
    opt-in, with the request it confirms and this visit's evidence. `confirmed` (now) or
    `already` (confirmed before: pressing again records nothing); `NotFound` for no such
    request, `Refused` for a link a newer request, an unsubscribe or time replaced."""
    async with svc.pool.acquire() as conn, conn.transaction():
        asked = await subscribers.asked_consent(conn, brand_id, entry_id)
        if asked is None or asked.channel != "email":
            raise NotFound("confirmation", entry_id)
        if asked.latest == "opted_in":
            return "already"
        if not asked.is_latest or asked.age_s > CONFIRM_WITHIN_S:
            raise Refused("this confirmation link has expired: sign up again", field="token")
        await subscribers.confirm_consent(
            conn, brand_id, asked.subscriber_id, "email", source=f"{SOURCE}: email link",
            disclosure=asked.disclosure,
            evidence={"confirms": entry_id, "ip": ip, "user_agent": user_agent},
        )  # fmt: skip
    return "confirmed"
