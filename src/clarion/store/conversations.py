"""Conversations: a brand's inbox of free-text replies (`inbound_messages` of intent
`other`, one thread per subscriber), a thread's messages in and out, how far each thread was
read, and the answers users sent from the web UI (migration 0043). Every query is within
one brand."""

from __future__ import annotations

import uuid
from datetime import datetime

import msgspec

from clarion.store.db import Pool


class ThreadRow(msgspec.Struct, frozen=True, kw_only=True):
    """A line of the inbox: a subscriber's latest free-text reply."""

    subscriber_id: int
    phone: str | None
    first_name: str | None
    last_name: str | None
    last_body: str
    last_at: datetime  # when the latest reply was received
    replies: int  # free-text replies in the thread
    unread: bool  # a reply came after the thread was last opened


class InboundRow(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    body: str
    intent: str  # other, opt_out, help, opt_in (compliance.keywords.InboundIntent)
    received_at: datetime


class OutboundRow(msgspec.Struct, frozen=True, kw_only=True):
    """A message to the subscriber as `messages` holds it (a campaign's or transactional)."""

    id: uuid.UUID
    campaign_id: int | None
    kind: str  # marketing or transactional
    body: str | None  # None: not kept (erased, or a campaign's message rendered elsewhere)
    status: str
    error_code: str | None
    at: datetime  # when it was handed to the provider, else when it was created


class AnswerRow(msgspec.Struct, frozen=True, kw_only=True):
    """An answer a user sent from the thread."""

    message_id: uuid.UUID
    body: str
    user_email: str | None  # None: the user was deleted since
    created_at: datetime


_INBOX = """
WITH latest AS (
    SELECT subscriber_id, max(id) AS last_id, count(*) AS replies
    FROM inbound_messages
    WHERE brand_id = $1 AND subscriber_id IS NOT NULL AND intent = 'other'
    GROUP BY subscriber_id
)
SELECT l.subscriber_id, s.phone, s.first_name, s.last_name, i.body AS last_body,
       i.received_at AS last_at, l.replies,
       l.last_id > coalesce(r.read_up_to, 0) AS unread
FROM latest l
JOIN inbound_messages i ON i.id = l.last_id
JOIN subscribers s ON s.id = l.subscriber_id AND s.brand_id = $1 AND s.erased_at IS NULL
LEFT JOIN conversation_reads r ON r.brand_id = $1 AND r.subscriber_id = l.subscriber_id
ORDER BY unread DESC, l.last_id DESC
LIMIT $2
"""


async def inbox(pool: Pool, brand_id: int, *, limit: int) -> list[ThreadRow]:
    """The brand's threads with a free-text reply: unread first, then the latest reply first."""
    rows = await pool.fetch(_INBOX, brand_id, limit)
    return [msgspec.convert(dict(r), ThreadRow) for r in rows]


async def unread_count(pool: Pool, brand_id: int) -> int:
    n: int = await pool.fetchval(
        "SELECT count(*) FROM (SELECT i.subscriber_id, max(i.id) AS last_id"
        " FROM inbound_messages i WHERE i.brand_id = $1 AND i.subscriber_id IS NOT NULL"
        " AND i.intent = 'other' GROUP BY i.subscriber_id) l"
        " LEFT JOIN conversation_reads r ON r.brand_id = $1 AND r.subscriber_id = l.subscriber_id"
        " WHERE l.last_id > coalesce(r.read_up_to, 0)",
        brand_id,
    )
    return n


async def inbound(pool: Pool, brand_id: int, subscriber_id: int, *, limit: int) -> list[InboundRow]:
    """The subscriber's latest messages to the brand (keywords too), newest first."""
    rows = await pool.fetch(
        "SELECT id, body, intent, received_at FROM inbound_messages"
        " WHERE brand_id = $1 AND subscriber_id = $2 ORDER BY id DESC LIMIT $3",
        brand_id, subscriber_id, limit,
    )  # fmt: skip
    return [msgspec.convert(dict(r), InboundRow) for r in rows]


async def outbound(
    pool: Pool, brand_id: int, subscriber_id: int, *, limit: int
) -> list[OutboundRow]:
    """The brand's latest SMS to the subscriber, newest first."""
    rows = await pool.fetch(
        "SELECT id, campaign_id, kind, body, status, error_code,"
        " coalesce(sent_at, created_at) AS at FROM messages"
        " WHERE subscriber_id = $2 AND brand_id = $1 AND channel = 'sms'"
        " ORDER BY coalesce(sent_at, created_at) DESC LIMIT $3",
        brand_id, subscriber_id, limit,
    )  # fmt: skip
    return [msgspec.convert(dict(r), OutboundRow) for r in rows]


async def answers(pool: Pool, brand_id: int, subscriber_id: int, *, limit: int) -> list[AnswerRow]:
    """The answers users sent in the thread, newest first."""
    rows = await pool.fetch(
        "SELECT a.message_id, a.body, u.email AS user_email, a.created_at"
        " FROM conversation_answers a LEFT JOIN users u ON u.id = a.user_id"
        " WHERE a.brand_id = $1 AND a.subscriber_id = $2 ORDER BY a.id DESC LIMIT $3",
        brand_id, subscriber_id, limit,
    )  # fmt: skip
    return [msgspec.convert(dict(r), AnswerRow) for r in rows]


async def record_answer(
    pool: Pool,
    brand_id: int,
    subscriber_id: int,
    message_id: str,
    user_id: int | None,
    body: str,
) -> None:
    """Keep an answer sent from the thread (once per message id: a repeated form is one)."""
    await pool.execute(
        "INSERT INTO conversation_answers (brand_id, subscriber_id, message_id, user_id, body)"
        " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (message_id) DO NOTHING",
        brand_id, subscriber_id, uuid.UUID(message_id), user_id, body,
    )  # fmt: skip


async def mark_read(pool: Pool, brand_id: int, subscriber_id: int, up_to: int) -> None:
    """The thread was read up to inbound message `up_to` (never moves back)."""
    await pool.execute(
        "INSERT INTO conversation_reads (brand_id, subscriber_id, read_up_to)"
        " VALUES ($1, $2, $3) ON CONFLICT (brand_id, subscriber_id) DO UPDATE"
        " SET read_up_to = greatest(conversation_reads.read_up_to, excluded.read_up_to)",
        brand_id, subscriber_id, up_to,
    )  # fmt: skip
