"""What a campaign earned, counted in Postgres: its messages by variant and carrier (a
message's variant is known from its id: `prefixes`, the first 19 characters of a variant's
ids → its key), people's clicks on its links, opt-outs after it, orders attributed to it,
and all of that per minute."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import msgspec

from clarion.store.db import Pool


class Slice(msgspec.Struct, kw_only=True):
    """The figures of a part of a campaign (a variant, a carrier, or all of it)."""

    recipients: int = 0  # messages made (one per subscriber and channel)
    sent: int = 0  # handed to a provider
    delivered: int = 0
    failed: int = 0  # undelivered or failed
    suppressed: int = 0  # dropped by the compliance gate, expired or cancelled
    deferred: int = 0  # waiting for a later moment
    segments: int = 0  # SMS parts handed over: the cost
    unique_clicks: int = 0  # people who clicked
    total_clicks: int = 0
    opt_outs: int = 0  # who opted out within a week of their message
    orders: int = 0
    revenue: float = 0.0

    @property
    def click_rate(self) -> float:
        return round(self.unique_clicks / self.delivered, 6) if self.delivered else 0.0

    @property
    def revenue_per_message(self) -> float:
        return round(self.revenue / self.sent, 4) if self.sent else 0.0


_BY_MESSAGE = """
SELECT substr(m.id::text, 1, 19) AS p, coalesce(m.carrier, 'unknown') AS carrier,
       count(*) AS recipients,
       count(*) FILTER (WHERE m.sent_at IS NOT NULL) AS sent,
       count(*) FILTER (WHERE m.status = 'delivered') AS delivered,
       count(*) FILTER (WHERE m.status IN ('undelivered', 'failed')) AS failed,
       count(*) FILTER (WHERE m.status IN ('suppressed', 'expired', 'cancelled')) AS suppressed,
       count(*) FILTER (WHERE m.status = 'deferred') AS deferred,
       coalesce(sum(m.segments) FILTER (WHERE m.sent_at IS NOT NULL), 0) AS segments
FROM messages m WHERE m.campaign_id = $1 GROUP BY 1, 2
"""
_CLICKS = """
SELECT substr(k.message_id::text, 1, 19) AS p, coalesce(m.carrier, 'unknown') AS carrier,
       count(DISTINCT k.subscriber_id) AS unique_clicks, sum(k.clicks) AS total_clicks
FROM clicks k LEFT JOIN messages m ON m.id = k.message_id
WHERE k.campaign_id = $1 AND k.kind = 'human' GROUP BY 1, 2
"""
_ORDERS = """
SELECT substr(a.message_id::text, 1, 19) AS p, coalesce(m.carrier, 'unknown') AS carrier,
       count(*) AS orders, coalesce(sum(a.value), 0)::float8 AS revenue
FROM attributions a LEFT JOIN messages m ON m.id = a.message_id
WHERE a.campaign_id = $1 GROUP BY 1, 2
"""
_OPT_OUTS = """
SELECT substr(m.id::text, 1, 19) AS p, coalesce(m.carrier, 'unknown') AS carrier,
       count(DISTINCT m.subscriber_id) AS opt_outs
FROM messages m JOIN consents c ON c.subscriber_id = m.subscriber_id AND c.channel = m.channel
WHERE m.campaign_id = $1 AND m.sent_at IS NOT NULL AND c.status = 'opted_out'
  AND c.created_at >= m.sent_at AND c.created_at < m.sent_at + interval '7 days'
GROUP BY 1, 2
"""


async def slices(
    pool: Pool, campaign_id: int, prefixes: Mapping[str, str]
) -> tuple[Slice, dict[str, Slice], dict[str, Slice]]:
    """(all of it, by variant key, by carrier)."""
    total = Slice()
    variants: dict[str, Slice] = {}
    carriers: dict[str, Slice] = {}

    def add(rows: list[Any], fields: tuple[str, ...]) -> None:
        for r in rows:
            key = prefixes.get(r["p"], "?")
            parts = (
                total,
                variants.setdefault(key, Slice()),
                carriers.setdefault(r["carrier"], Slice()),
            )
            for target in parts:
                for f in fields:
                    setattr(target, f, getattr(target, f) + (r[f] or 0))

    add(await pool.fetch(_BY_MESSAGE, campaign_id), (
        "recipients", "sent", "delivered", "failed", "suppressed", "deferred", "segments",
    ))  # fmt: skip
    add(await pool.fetch(_CLICKS, campaign_id), ("unique_clicks", "total_clicks"))
    add(await pool.fetch(_ORDERS, campaign_id), ("orders", "revenue"))
    add(await pool.fetch(_OPT_OUTS, campaign_id), ("opt_outs",))
    return total, variants, carriers


class Minute(msgspec.Struct, frozen=True):
    minute: datetime
    sent: int
    delivered: int
    clicks: int
    orders: int
    revenue: float


async def per_minute(pool: Pool, campaign_id: int, limit: int = 10_080) -> list[Minute]:
    """The campaign over time, for charts: per minute, messages handed over, delivered,
    people's first clicks, orders and their revenue (a week of minutes at most)."""
    rows = await pool.fetch(
        """
        WITH s AS (SELECT date_trunc('minute', sent_at) AS t, count(*) AS n FROM messages
                   WHERE campaign_id = $1 AND sent_at IS NOT NULL GROUP BY 1),
             d AS (SELECT date_trunc('minute', updated_at) AS t, count(*) AS n
                   FROM messages WHERE campaign_id = $1 AND status = 'delivered' GROUP BY 1),
             k AS (SELECT date_trunc('minute', first_at) AS t, count(*) AS n FROM clicks
                   WHERE campaign_id = $1 AND kind = 'human' GROUP BY 1),
             o AS (SELECT date_trunc('minute', ordered_at) AS t, count(*) AS n,
                          coalesce(sum(value), 0)::float8 AS v
                   FROM attributions WHERE campaign_id = $1 GROUP BY 1)
        SELECT t, coalesce(s.n, 0), coalesce(d.n, 0), coalesce(k.n, 0), coalesce(o.n, 0),
               coalesce(o.v, 0)
        FROM s FULL JOIN d USING (t) FULL JOIN k USING (t) FULL JOIN o USING (t)
        ORDER BY t LIMIT $2
        """,
        campaign_id, limit,
    )  # fmt: skip
    return [Minute(*r) for r in rows]
