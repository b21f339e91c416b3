"""A campaign's headline figures (recipients, sent, delivered, people who clicked, revenue)
for lists of campaigns: read from `campaign_figures`, one row per campaign, as last counted;
counted again, for a few campaigns at a time, by `count`. An SMS campaign's sent and
delivered are its final outcomes as the carrier stage counts them (sent: with a final
receipt, seconds behind the hand-over); an email campaign's, its messages counted."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import msgspec

from clarion.store.db import Pool


class Headline(msgspec.Struct, frozen=True, kw_only=True):
    """A campaign in a list, with its figures as last counted (`counted_at` None: never)."""

    id: int
    name: str
    channel: str
    status: str
    created_at: datetime
    launched_at: datetime | None
    scheduled_at: datetime | None
    recipients: int  # the audience resolved at its launch
    sent: int = 0
    delivered: int = 0
    unique_clicks: int = 0
    revenue: float = 0.0
    counted_at: datetime | None = None

    @property
    def click_rate(self) -> float:
        """People who clicked over messages delivered (0 before any delivery)."""
        return self.unique_clicks / self.delivered if self.delivered else 0.0


# Newest first, through the `campaigns_brand (brand_id, id)` index read backwards: a page
# costs its own rows, however many campaigns and messages the brand has.
_PAGE = """
SELECT c.id, c.name, c.channel, c.status, c.created_at, c.launched_at, c.scheduled_at,
       c.audience_count AS recipients, coalesce(f.sent, 0) AS sent,
       coalesce(f.delivered, 0) AS delivered, coalesce(f.unique_clicks, 0) AS unique_clicks,
       coalesce(f.revenue, 0) AS revenue, f.counted_at
FROM campaigns c LEFT JOIN campaign_figures f ON f.campaign_id = c.id
WHERE c.brand_id = $1 AND ($2::bigint IS NULL OR c.id < $2)
ORDER BY c.id DESC LIMIT $3
"""


async def page(pool: Pool, brand_id: int, *, before_id: int | None, limit: int) -> list[Headline]:
    """The brand's campaigns older than `before_id` (None: the newest), newest first."""
    rows = await pool.fetch(_PAGE, brand_id, before_id, limit)
    return [Headline(**dict(r)) for r in rows]


_COUNT = """
INSERT INTO campaign_figures AS f
    (campaign_id, brand_id, sent, delivered, unique_clicks, revenue, counted_at)
SELECT c.id, c.brand_id, m.sent, m.delivered, k.people, o.revenue, now()
FROM campaigns c,
LATERAL (SELECT coalesce(sum(u.sent), 0) AS sent, coalesce(sum(u.delivered), 0) AS delivered
    FROM (
        -- an SMS campaign: the carrier stage's counters of final outcomes, a row per
        -- carrier (what a sending campaign's page polls must not scan its messages)
        SELECT delivered + undelivered + failed AS sent, delivered FROM carrier_stats
        WHERE c.channel = 'sms' AND brand_id = c.brand_id AND campaign_id = c.id
        UNION ALL
        -- email has no carriers: its messages, counted
        SELECT count(*) FILTER (WHERE sent_at IS NOT NULL),
               count(*) FILTER (WHERE status = 'delivered')
        FROM messages WHERE c.channel <> 'sms' AND campaign_id = c.id
    ) u) m,
LATERAL (SELECT count(DISTINCT subscriber_id) AS people FROM clicks
         WHERE campaign_id = c.id AND kind = 'human') k,
LATERAL (SELECT coalesce(sum(value), 0)::float8 AS revenue FROM attributions
         WHERE campaign_id = c.id) o
WHERE c.id = ANY($1::bigint[]) AND c.brand_id = $2
ON CONFLICT (campaign_id) DO UPDATE SET
    sent = excluded.sent, delivered = excluded.delivered,
    unique_clicks = excluded.unique_clicks, revenue = excluded.revenue,
    counted_at = excluded.counted_at
"""


async def count(pool: Pool, brand_id: int, campaign_ids: Sequence[int]) -> None:
    """Count the brand's campaigns' figures now (a campaign of a million messages takes a
    few hundred milliseconds: call it off the request's path)."""
    if campaign_ids:
        await pool.execute(_COUNT, list(campaign_ids), brand_id)
