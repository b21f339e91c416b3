"""What the benchmark reads back from the record of truth.

Queries only `clarion bench` needs: the timestamps and counts it reports, the subscribers it
looks up and has text STOP, and Postgres' own statement statistics.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import NamedTuple

from clarion.errors import NotFound
from clarion.store.db import Pool


class SubscriberPhone(NamedTuple):
    id: int
    phone: str


class CampaignTimes(NamedTuple):
    """When a campaign launched and sent, first stored a message, last recorded a receipt."""

    launched_at: datetime | None
    first_send_at: datetime | None
    last_sent_at: datetime | None
    first_persisted_at: datetime | None
    last_receipt_at: datetime | None


class OptoutTiming(NamedTuple):
    subscriber_id: int
    opted_out_at: datetime | None  # the first SMS opt-out recorded
    sent_at: datetime | None  # the campaign's message to them, if sent


class StatementStats(NamedTuple):
    calls: int
    total_exec_time: float  # milliseconds
    rows: int
    wal_bytes: Decimal
    wal_fpi: int
    query: str  # whitespace collapsed, the first 120 characters


async def vacuum_subscribers(pool: Pool) -> None:
    """Vacuum and analyse the subscribers and consents tables (what autovacuum would do)."""
    await pool.execute("VACUUM (ANALYZE) subscribers, consents")


async def phones_after(pool: Pool, brand_id: int, after_id: int) -> list[SubscriberPhone]:
    """The next 10,000 of the brand's subscribers with a phone after `after_id`, in id order."""
    rows = await pool.fetch(
        "SELECT id, phone FROM subscribers WHERE brand_id = $1 AND id > $2"
        " AND phone IS NOT NULL ORDER BY id LIMIT 10000",
        brand_id,
        after_id,
    )
    return [SubscriberPhone(r["id"], r["phone"]) for r in rows]


async def first_send_at(pool: Pool, campaign_id: int) -> datetime | None:
    """When the campaign's first provider call was made (None: not yet)."""
    value: datetime | None = await pool.fetchval(
        "SELECT first_send_at FROM campaigns WHERE id = $1", campaign_id
    )
    return value


async def outcomes_counted(pool: Pool, campaign_id: int) -> int:
    """How many of the campaign's outcomes the carrier stage has counted."""
    value: int = await pool.fetchval(
        "SELECT coalesce(sum(delivered + undelivered + failed), 0) FROM carrier_stats"
        " WHERE campaign_id = $1",
        campaign_id,
    )
    return value


async def unsent_subscribers(
    pool: Pool, brand_id: int, campaign_id: int, limit: int
) -> list[SubscriberPhone]:
    """Up to `limit` of the brand's phones the campaign has not sent to, highest ids first."""
    rows = await pool.fetch(
        """
        SELECT s.id, s.phone FROM subscribers s
        WHERE s.brand_id = $1 AND s.phone IS NOT NULL
          AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.campaign_id = $2
                          AND m.subscriber_id = s.id AND m.sent_at IS NOT NULL)
        ORDER BY s.id DESC LIMIT $3
        """,
        brand_id,
        campaign_id,
        limit,
    )
    return [SubscriberPhone(r["id"], r["phone"]) for r in rows]


async def optout_timings(
    pool: Pool, subscriber_ids: Sequence[int], campaign_id: int
) -> list[OptoutTiming]:
    """For each subscriber: when their SMS opt-out was recorded and the campaign sent to them."""
    rows = await pool.fetch(
        """
        SELECT s.id,
               (SELECT min(c.created_at) FROM consents c WHERE c.subscriber_id = s.id
                  AND c.channel = 'sms' AND c.status = 'opted_out') AS opted_out_at,
               (SELECT m.sent_at FROM messages m WHERE m.campaign_id = $2
                  AND m.subscriber_id = s.id) AS sent_at
        FROM subscribers s WHERE s.id = ANY($1::bigint[])
        """,
        list(subscriber_ids),
        campaign_id,
    )
    return [OptoutTiming(r["id"], r["opted_out_at"], r["sent_at"]) for r in rows]


async def campaign_times(pool: Pool, campaign_id: int) -> CampaignTimes:
    """The campaign's timestamps, as the database recorded them. Raises `NotFound`."""
    row = await pool.fetchrow(
        """
        SELECT c.launched_at, c.first_send_at,
               (SELECT max(m.sent_at) FROM messages m WHERE m.campaign_id = c.id) AS last_sent_at,
               (SELECT min(m.created_at) FROM messages m WHERE m.campaign_id = c.id)
                   AS first_persisted_at,
               -- the newest log row with a report of the campaign's (the log's
               -- newest rows first: it stops at the first such row)
               (SELECT l.recorded_at FROM receipt_log l
                 WHERE EXISTS (SELECT 1 FROM json_array_elements(l.events) e
                                JOIN messages m ON m.id = (e->>'message_id')::uuid
                               WHERE m.campaign_id = c.id)
                 ORDER BY l.recorded_at DESC LIMIT 1) AS last_receipt_at
        FROM campaigns c WHERE c.id = $1
        """,
        campaign_id,
    )
    if row is None:
        raise NotFound("campaign", campaign_id)
    return CampaignTimes(
        row["launched_at"],
        row["first_send_at"],
        row["last_sent_at"],
        row["first_persisted_at"],
        row["last_receipt_at"],
    )


async def enable_statement_stats(pool: Pool) -> None:
    """Create the pg_stat_statements extension if the database lacks it."""
    await pool.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")


async def reset_statement_stats(pool: Pool) -> None:
    """Forget the statement statistics gathered so far."""
    await pool.execute("SELECT pg_stat_statements_reset()")


async def top_statements(pool: Pool, n: int) -> list[StatementStats]:
    """The `n` statements Postgres spent most time on since the last reset, most first."""
    rows = await pool.fetch(
        "SELECT calls, total_exec_time, rows, wal_bytes, wal_fpi,"
        " left(regexp_replace(query, '\\s+', ' ', 'g'), 120) AS q"
        " FROM pg_stat_statements ORDER BY total_exec_time DESC LIMIT $1",
        n,
    )
    return [
        StatementStats(
            r["calls"], r["total_exec_time"], r["rows"], r["wal_bytes"], r["wal_fpi"], r["q"]
        )
        for r in rows
    ]
