"""Revenue attribution, in Postgres: each `ordered` event is attributed to one message — the
last one the subscriber clicked (a person's click, not a scanner's) within the brand's click
window before the order, or failing that the last one delivered to them within its view
window — and to that message's campaign. One row per order (`attributions`' key), replaced
when a new look finds another message: an order that arrives late or out of order is judged
by what happened before it, whenever it is recorded; a delivery receipt that arrives after
the order is taken into account by the next look (`reattribute_recent`).

A click is known by its first and last time per link (`clicks`): the click taken for an
order is the last one at or before it if that is known, else the first. A delivery is known
by its message's row: delivered, at the time its final receipt was folded (`updated_at`;
the receipt log is not read on this path).
"""

from __future__ import annotations

from collections.abc import Sequence

from clarion.store.db import Pool

# Orders of these ids, each with its best touch: a click first, else a delivery.
_ATTRIBUTE = """
WITH o AS (
    SELECT e.id, e.brand_id, e.subscriber_id, e.occurred_at, e.value,
           make_interval(secs => b.click_window_h * 3600) AS click_window,
           make_interval(secs => b.view_window_h * 3600) AS view_window
    FROM events e JOIN brands b ON b.id = e.brand_id
    WHERE e.id = ANY($1::bigint[]) AND e.type = 'ordered'
), touched AS (
    SELECT o.*, t.message_id, t.campaign_id, t.how, t.touched_at
    FROM o CROSS JOIN LATERAL (
        (SELECT k.message_id, k.campaign_id, 'click' AS how,
                CASE WHEN k.last_at <= o.occurred_at THEN k.last_at ELSE k.first_at END
                    AS touched_at, 1 AS rank
         FROM clicks k
         WHERE k.subscriber_id = o.subscriber_id AND k.kind = 'human'
           AND k.brand_id = o.brand_id AND k.first_at <= o.occurred_at
           AND k.last_at >= o.occurred_at - o.click_window
         ORDER BY 4 DESC LIMIT 1)
        UNION ALL
        (SELECT m.id, m.campaign_id, 'view', m.updated_at, 2
         FROM messages m
         WHERE m.subscriber_id = o.subscriber_id AND m.brand_id = o.brand_id
           AND m.campaign_id IS NOT NULL AND m.status = 'delivered'
           AND m.updated_at <= o.occurred_at AND m.updated_at >= o.occurred_at - o.view_window
         ORDER BY m.updated_at DESC LIMIT 1)
        ORDER BY rank LIMIT 1
    ) t
    WHERE t.touched_at >= o.occurred_at - CASE WHEN t.how = 'click' THEN o.click_window
                                               ELSE o.view_window END
)
INSERT INTO attributions (event_id, brand_id, subscriber_id, campaign_id, message_id, how,
                          value, ordered_at, touched_at)
SELECT id, brand_id, subscriber_id, campaign_id, message_id, how, value, occurred_at,
       touched_at
FROM touched
ORDER BY id
ON CONFLICT (event_id) DO UPDATE
SET campaign_id = excluded.campaign_id, message_id = excluded.message_id, how = excluded.how,
    touched_at = excluded.touched_at, attributed_at = now()
WHERE (attributions.message_id, attributions.how, attributions.touched_at)
      IS DISTINCT FROM (excluded.message_id, excluded.how, excluded.touched_at)
RETURNING event_id
"""


async def attribute(pool: Pool, event_ids: Sequence[int]) -> int:
    """Attribute these events (those that are orders); how many attributions were made or
    changed."""
    if not event_ids:
        return 0
    rows = await pool.fetch(_ATTRIBUTE, list(event_ids))
    return len(rows)


async def recent_orders(pool: Pool, within_s: float, after_id: int, limit: int) -> list[int]:
    """Ids of the orders recorded in the last `within_s` seconds (the database's clock),
    after `after_id`, in id order."""
    rows = await pool.fetch(
        "SELECT id FROM events WHERE type = 'ordered'"
        " AND recorded_at >= now() - make_interval(secs => $1) AND id > $2 ORDER BY id LIMIT $3",
        within_s, after_id, limit,
    )  # fmt: skip
    return [r["id"] for r in rows]
