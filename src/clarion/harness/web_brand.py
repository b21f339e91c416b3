"""A brand the size of a large one, for timing the web UI's pages: `subscribers` with a
phone, an email and their SMS consent, `campaigns` campaigns, the newest of which sent to
`messages` of them over an hour (delivered, failed at two carriers, suppressed, still
sending) with clicks on its link. Written by SQL in Postgres (no rows cross the wire): a
million subscribers and a million messages take about a minute."""

from __future__ import annotations

from dataclasses import dataclass

from clarion.store import brands
from clarion.store.db import Pool

_SUBSCRIBERS = """
INSERT INTO subscribers (brand_id, phone, email, timezone, first_name)
SELECT $1, '+1512' || lpad((2000000 + g)::text, 7, '0'), 'user' || g || '@example.com',
       'America/Chicago', 'Ava'
FROM generate_series(1, $2::int) AS g
"""
_CONSENTS = """
INSERT INTO consents (brand_id, subscriber_id, channel, status, source)
SELECT $1, id, 'sms', 'opted_in', 'seed' FROM subscribers WHERE brand_id = $1
"""
_CAMPAIGNS = """
INSERT INTO campaigns (brand_id, name, body, status, launched_at, audience_count,
                       audience_done)
SELECT $1, 'Campaign ' || g, 'Northwind: 20% off. Reply STOP to opt out.', 'sending',
       now() - interval '1 hour', $3::int, true
FROM generate_series(1, $2::int) AS g
"""
# the newest campaign's messages: 80 % delivered, 5 % failed, 5 % suppressed, 10 % queued
_MESSAGES = """
INSERT INTO messages (id, brand_id, campaign_id, subscriber_id, to_address, body, status,
                      status_rank, carrier, error_code, sent_at, created_at, updated_at)
SELECT gen_random_uuid(), $1, $2, s.id, s.phone, NULL,
       (ARRAY['delivered','delivered','delivered','delivered','delivered','delivered',
              'delivered','delivered','failed','suppressed','queued','delivered',
              'delivered','delivered','delivered','delivered','queued','delivered',
              'delivered','delivered'])[1 + s.id % 20],
       3, CASE WHEN s.id % 2 = 0 THEN 'Verizon' ELSE 'T-Mobile' END,
       CASE s.id % 20 WHEN 8 THEN '30003' WHEN 9 THEN 'no_consent' END,
       CASE WHEN s.id % 20 NOT IN (9, 10, 16)
            THEN now() - interval '1 hour' + (s.id % 3600) * interval '1 second' END,
       now() - interval '1 hour', now() - interval '1 hour' + (s.id % 3600) * interval '1 s'
FROM subscribers s WHERE s.brand_id = $1 ORDER BY s.id LIMIT $3
"""


@dataclass(frozen=True)
class WebBrand:
    brand_id: int
    campaign_ids: list[int]  # oldest first; the last sent the messages
    first_subscriber_id: int
    phone: str  # the first subscriber's


async def seed(pool: Pool, *, subscribers: int, campaigns: int, messages: int) -> WebBrand:
    brand_id = await brands.create_brand(
        pool, slug=f"web-{subscribers}", name="Northwind", sender="+15125550100"
    )
    await pool.execute(_SUBSCRIBERS, brand_id, subscribers, timeout=1200)
    await pool.execute(_CONSENTS, brand_id, timeout=1200)
    ids = [
        r["id"]
        for r in await pool.fetch(
            _CAMPAIGNS + " RETURNING id", brand_id, campaigns, min(messages, subscribers)
        )
    ]
    ids.sort()
    await pool.execute(_MESSAGES, brand_id, ids[-1], messages, timeout=1200)
    for table in ("subscribers", "consents", "messages", "campaigns"):
        await pool.execute(f"VACUUM ANALYZE {table}", timeout=1200)
    first = await pool.fetchrow(
        "SELECT id, phone FROM subscribers WHERE brand_id = $1 ORDER BY id LIMIT 1", brand_id
    )
    assert first is not None
    return WebBrand(brand_id, ids, first["id"], first["phone"])
