"""Tracked short links: a campaign's registered URLs, and the clicks on them (once per link,
recipient and kind, counted)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

import msgspec

from clarion.store.db import Pool


class LinkRow(msgspec.Struct, frozen=True):
    """A tracked link, with what its redirect and its clicks need."""

    id: int
    brand_id: int
    campaign_id: int
    variant: str
    url: str
    campaign_uid: uuid.UUID
    link_domain: str | None  # the brand's (None: the install's links URL)


class ClickRow(msgspec.Struct, frozen=True, gc=False):
    """One click to record (`record_clicks` folds repeats)."""

    link_id: int
    subscriber_id: int
    kind: str
    brand_id: int
    campaign_id: int
    message_id: str
    at: datetime
    user_agent: str | None


async def register(
    pool: Pool, brand_id: int, campaign_id: int, variant: str, urls: Sequence[str]
) -> dict[str, int]:
    """The link id of each URL of the campaign's variant, registered now if new (any
    process may register the same at the same moment: each gets the same ids)."""
    if not urls:
        return {}
    await pool.execute(
        "INSERT INTO links (brand_id, campaign_id, variant, url)"
        " SELECT $1, $2, $3, u FROM unnest($4::text[]) AS u ON CONFLICT DO NOTHING",
        brand_id, campaign_id, variant, list(urls),
    )  # fmt: skip
    rows = await pool.fetch(
        "SELECT url, id FROM links WHERE campaign_id = $1 AND variant = $2 AND url = ANY($3)",
        campaign_id, variant, list(urls),
    )  # fmt: skip
    return {r["url"]: r["id"] for r in rows}


async def get_link(pool: Pool, link_id: int) -> LinkRow | None:
    row = await pool.fetchrow(
        "SELECT l.id, l.brand_id, l.campaign_id, l.variant, l.url, c.uid, b.link_domain"
        " FROM links l JOIN campaigns c ON c.id = l.campaign_id"
        " JOIN brands b ON b.id = l.brand_id WHERE l.id = $1",
        link_id,
    )
    return None if row is None else LinkRow(*row)


async def brand_of_domain(pool: Pool, domain: str) -> int | None:
    """The brand whose link domain this is, if any."""
    found: int | None = await pool.fetchval("SELECT id FROM brands WHERE link_domain = $1", domain)
    return found


async def set_link_domain(pool: Pool, brand_id: int, domain: str | None) -> None:
    await pool.execute("UPDATE brands SET link_domain = $2 WHERE id = $1", brand_id, domain)


async def record_clicks(pool: Pool, clicks: Sequence[ClickRow]) -> None:
    """Fold the clicks into `clicks`: one row per link, recipient and kind, counted, with
    the first and last time (a batch may hold repeats: folded first)."""
    folded: dict[tuple[int, int, str], list[ClickRow]] = {}
    for c in clicks:
        folded.setdefault((c.link_id, c.subscriber_id, c.kind), []).append(c)
    rows = [
        (k[0], k[1], k[2], cs[0].brand_id, cs[0].campaign_id, cs[0].message_id,
         min(c.at for c in cs), max(c.at for c in cs), len(cs), cs[0].user_agent)
        for k, cs in folded.items()
    ]  # fmt: skip
    if not rows:
        return
    cols = list(zip(*rows, strict=True))
    await pool.execute(
        """
        INSERT INTO clicks (link_id, subscriber_id, kind, brand_id, campaign_id, message_id,
                            first_at, last_at, clicks, user_agent)
        SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::bigint[],
                             $5::bigint[], $6::uuid[], $7::timestamptz[], $8::timestamptz[],
                             $9::int[], $10::text[])
        ORDER BY 1, 2, 3
        ON CONFLICT (link_id, subscriber_id, kind) DO UPDATE
        SET clicks = clicks.clicks + excluded.clicks,
            first_at = least(clicks.first_at, excluded.first_at),
            last_at = greatest(clicks.last_at, excluded.last_at)
        """,
        *[list(c) for c in cols],
    )


class LinkClicks(msgspec.Struct, frozen=True):
    """A link of a campaign and its clicks: unique (recipients) and total, by people;
    and fetches by scanners, unfurlers and HEAD requests."""

    link_id: int
    variant: str
    url: str
    unique_clicks: int
    total_clicks: int
    bot_fetches: int


async def campaign_links(pool: Pool, campaign_id: int) -> list[LinkClicks]:
    rows = await pool.fetch(
        """
        SELECT l.id, l.variant, l.url,
               count(k.*) FILTER (WHERE k.kind = 'human'),
               coalesce(sum(k.clicks) FILTER (WHERE k.kind = 'human'), 0),
               coalesce(sum(k.clicks) FILTER (WHERE k.kind <> 'human'), 0)
        FROM links l LEFT JOIN clicks k ON k.link_id = l.id
        WHERE l.campaign_id = $1 GROUP BY l.id ORDER BY l.id
        """,
        campaign_id,
    )
    return [LinkClicks(*r) for r in rows]
