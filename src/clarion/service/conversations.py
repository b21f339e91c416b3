"""Conversations: replies that are no keyword (STOP, HELP and START are the inbound stage's)
land in the brand's inbox, one thread per subscriber; a user reads a thread and answers it.
An answer is a transactional SMS through the same gate as `POST /v1/messages`
(`messages.send_transactional`): a subscriber who opted out is `Refused`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from clarion.compliance.encoding import MAX_SMS_CHARS
from clarion.domain.subscribers import Subscriber
from clarion.errors import InvalidInput
from clarion.service import messages
from clarion.service.context import Services
from clarion.store import conversations as store
from clarion.store import subscribers
from clarion.store.conversations import ThreadRow

__all__ = ["Entry", "Thread", "ThreadRow", "answer", "inbox", "read", "unread"]

# The most threads the inbox lists, and the most messages each way a thread shows.
INBOX_LIMIT = 100
THREAD_LIMIT = 200
MAX_IDEMPOTENCY_CHARS = 100


@dataclass(frozen=True, slots=True)
class Entry:
    """A message of a thread, in or out."""

    direction: str  # "in" (from the subscriber) or "out" (to them)
    at: datetime
    body: str | None  # None: the text is not kept (a campaign's message, or erased)
    intent: str | None = None  # an inbound message's: other, opt_out, help, opt_in
    kind: str | None = None  # an outbound message's: marketing or transactional
    status: str | None = None  # an outbound message's (queued: not yet handed over)
    error_code: str | None = None
    campaign_id: int | None = None
    answered_by: str | None = None  # the user's email, for an answer sent from the thread


@dataclass(frozen=True, slots=True)
class Thread:
    subscriber: Subscriber
    entries: list[Entry]  # oldest first

    @property
    def opted_out(self) -> bool:
        return self.subscriber.consent.get("sms") == "opted_out"


async def inbox(svc: Services, brand_id: int, *, limit: int = INBOX_LIMIT) -> list[ThreadRow]:
    """The brand's threads with a free-text reply: unread first, then the latest first."""
    return await store.inbox(svc.pool, brand_id, limit=limit)


async def unread(svc: Services, brand_id: int) -> int:
    """How many of the brand's threads have a reply nobody opened yet."""
    return await store.unread_count(svc.pool, brand_id)


async def read(
    svc: Services, brand_id: int, subscriber_id: int, *, mark_read: bool = True
) -> Thread:
    """A subscriber's thread, its messages in and out in time order (another brand's
    subscriber is `NotFound`); opening it marks its replies read."""
    sub = await subscribers.get(svc.pool, brand_id, subscriber_id)
    ins = await store.inbound(svc.pool, brand_id, subscriber_id, limit=THREAD_LIMIT)
    outs = await store.outbound(svc.pool, brand_id, subscriber_id, limit=THREAD_LIMIT)
    answered = await store.answers(svc.pool, brand_id, subscriber_id, limit=THREAD_LIMIT)
    by_message = {a.message_id: a for a in answered}
    entries = [Entry("in", m.received_at, m.body, intent=m.intent) for m in ins]
    for m in outs:
        a = by_message.pop(m.id, None)
        entries.append(
            Entry(
                "out", m.at, a.body if a else m.body, kind=m.kind, status=m.status,
                error_code=m.error_code, campaign_id=m.campaign_id,
                answered_by=a.user_email if a else None,
            )
        )  # fmt: skip
    # answers the transactional stage has not recorded as messages yet
    entries += [
        Entry("out", a.created_at, a.body, kind="transactional", status="queued",
              answered_by=a.user_email)
        for a in by_message.values()
    ]  # fmt: skip
    entries.sort(key=lambda e: e.at)
    if mark_read and ins:
        await store.mark_read(svc.pool, brand_id, subscriber_id, max(m.id for m in ins))
    return Thread(sub, entries)


async def answer(
    svc: Services,
    brand_id: int,
    subscriber_id: int,
    body: str,
    *,
    user_id: int | None,
    idempotency_key: str,
    now: datetime,
) -> messages.Queued:
    """Answer a thread: one transactional SMS to the subscriber, through the gate of
    `POST /v1/messages` (opted out or suppressed: `Refused`, field `to`). The same
    `idempotency_key` (a form sent twice) sends once."""
    sub = await subscribers.get(svc.pool, brand_id, subscriber_id)
    if len(body) > MAX_SMS_CHARS:
        raise InvalidInput(f"at most {MAX_SMS_CHARS} characters", field="body")
    if not 0 < len(idempotency_key) <= MAX_IDEMPOTENCY_CHARS:
        raise InvalidInput(f"1 to {MAX_IDEMPOTENCY_CHARS} characters", field="idempotency_key")
    if sub.phone is None:
        raise InvalidInput("the subscriber has no phone number", field="to")
    queued = await messages.send_transactional(
        svc, brand_id, to=sub.phone, body=body, sender=None,
        idempotency_key=f"conversation:{subscriber_id}:{idempotency_key}", now=now,
    )  # fmt: skip
    await store.record_answer(svc.pool, brand_id, subscriber_id, queued.id, user_id, body.strip())
    return queued
