"""Brands, subscribers and the consent ledger."""

from __future__ import annotations

import bisect
from collections.abc import Sequence

import msgspec

from clarion.compliance.encoding import MAX_SEGMENTS
from clarion.domain.contacts import NewSubscriber
from clarion.domain.reports import SubscriberCounts
from clarion.domain.rows import SUBSCRIBER_COLUMNS, BrandRow, SubscriberRow
from clarion.domain.senders import normalize_sender
from clarion.errors import NotFound
from clarion.store.db import Pool


async def create_brand(
    pool: Pool,
    *,
    slug: str,
    name: str,
    sender: str,
    help_text: str = "",
    max_segments: int = MAX_SEGMENTS,
) -> int:
    """A new brand; `max_segments` (1 to 10) is the most parts one of its SMS may have."""
    brand_id: int = await pool.fetchval(
        "INSERT INTO brands (slug, name, sender, help_text, max_segments)"
        " VALUES ($1, $2, $3, $4, $5) RETURNING id",
        slug,
        name,
        normalize_sender(sender),
        help_text,
        max_segments,
    )
    return brand_id


async def get_brand(pool: Pool, brand_id: int) -> BrandRow:
    """The brand; `NotFound` if there is none."""
    row = await pool.fetchrow("SELECT * FROM brands WHERE id = $1", brand_id)
    if row is None:
        raise NotFound("brand", brand_id)
    return msgspec.convert(dict(row), BrandRow)


async def set_macros(pool: Pool, brand_id: int, macros: dict[str, str]) -> None:
    done = await pool.execute("UPDATE brands SET macros = $2 WHERE id = $1", brand_id, macros)
    if done == "UPDATE 0":
        raise NotFound("brand", brand_id)


async def set_attribution_windows(
    pool: Pool, brand_id: int, click_window_h: float, view_window_h: float
) -> None:
    done = await pool.execute(
        "UPDATE brands SET click_window_h = $2, view_window_h = $3 WHERE id = $1",
        brand_id, click_window_h, view_window_h,
    )  # fmt: skip
    if done == "UPDATE 0":
        raise NotFound("brand", brand_id)


async def senders_of(pool: Pool, brand_id: int) -> set[str]:
    """The numbers (and short codes) a brand may send from: its default sender and the
    senders configured for it."""
    rows = await pool.fetch(
        "SELECT sender AS number FROM brands WHERE id = $1"
        " UNION SELECT number FROM senders WHERE brand_id = $1",
        brand_id,
    )
    return {r["number"] for r in rows}


_STAGING = """
CREATE TEMP TABLE IF NOT EXISTS staging_subscribers (
    n int, phone text, email text, timezone text, first_name text, last_name text,
    attributes jsonb, sms_consent boolean, email_consent boolean
) ON COMMIT DELETE ROWS
"""


async def analyze_subscribers(pool: Pool) -> None:
    """Fresh statistics keep the audience's keyset pages on the index after a big import."""
    await pool.execute("ANALYZE subscribers, consents")


async def import_subscribers(
    pool: Pool,
    brand_id: int,
    subscribers: Sequence[NewSubscriber],
    *,
    source: str,
    disclosure: str | None = None,
    analyze: bool = True,
) -> int:
    """COPY subscribers in; existing ones (same phone or email) are left as they are.
    `analyze`: refresh the tables' statistics after (an import in many calls does it once,
    after the last).
    New subscribers with SMS (or email) consent get an `opted_in` ledger row per channel with
    `source`. Of rows sharing a phone or an email, the first is stored, with its consent: a
    later one adds nothing to the ledger (`domain.csv_import` rejects them before).
    Returns how many subscribers were new."""
    records = [
        (
            n,
            s.phone,
            s.email,
            s.timezone,
            s.first_name,
            s.last_name,
            s.attributes,
            s.sms_consent,
            s.email_consent,
        )
        for n, s in enumerate(subscribers)
    ]
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(_STAGING)
        await conn.copy_records_to_table("staging_subscribers", records=records)
        inserted: int = await conn.fetchval(
            """
            WITH ins AS (
                INSERT INTO subscribers
                    (brand_id, phone, email, timezone, first_name, last_name, attributes)
                SELECT $1, phone, email, timezone, first_name, last_name, attributes
                FROM staging_subscribers
                ORDER BY n  -- of rows sharing a phone or an email, the first is inserted
                ON CONFLICT DO NOTHING
                RETURNING id, phone, email
            ), stored AS (
                -- the staging row each new subscriber came from: the first with both its
                -- phone and its email (joined on both: a row sharing only one was skipped;
                -- coalesce, not IS NOT DISTINCT FROM, so that it is a hash join)
                SELECT DISTINCT ON (ins.id) ins.id, s.sms_consent, s.email_consent
                FROM ins JOIN staging_subscribers s
                    ON coalesce(s.phone, '') = coalesce(ins.phone, '')
                    AND coalesce(s.email, '') = coalesce(ins.email, '')
                ORDER BY ins.id, s.n
            ), consent AS (
                INSERT INTO consents (brand_id, subscriber_id, channel, status, source, disclosure)
                SELECT $1, id, 'sms', 'opted_in', $2, $3 FROM stored WHERE sms_consent
            ), email_consent AS (
                INSERT INTO consents (brand_id, subscriber_id, channel, status, source, disclosure)
                SELECT $1, id, 'email', 'opted_in', $2, $3 FROM stored WHERE email_consent
            )
            SELECT count(*) FROM ins
            """,
            brand_id,
            source,
            disclosure,
        )
    if analyze:
        await analyze_subscribers(pool)
    return inserted


async def record_consent(
    pool: Pool,
    *,
    brand_id: int,
    subscriber_id: int,
    channel: str,
    status: str,
    source: str,
    keyword: str | None = None,
    disclosure: str | None = None,
) -> None:
    """Append to the consent ledger; the latest row is the subscriber's current consent."""
    await pool.execute(
        "INSERT INTO consents (brand_id, subscriber_id, channel, status, source, keyword,"
        " disclosure) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        brand_id,
        subscriber_id,
        channel,
        status,
        source,
        keyword,
        disclosure,
    )


# One keyset page of a brand's subscribers (by id): an index range scan of bounded size.
# Consent is not filtered here: the send stage's gate checks it at the moment of sending and
# records why each recipient without it was not sent to.
# One read of the audience: the next `$3` subscribers of a brand after id `$2`, a contiguous
# range of the (brand_id, id) index, split into the partitions' pages by the audience stage
# (`pipeline.audience.split_pages`). Reading each partition's page on its own (every eighth
# row, through an index on `id % 8`) visited each heap page once per partition: 0.7 against
# 0.17 s of Postgres for 300,000 subscribers (BENCHMARKS.md's history, thirteenth pass).
# Both queries select `SubscriberRow`'s fields in its order: its rows are built by position.
_SUBSCRIBER = ", ".join(f"s.{column}" for column in SUBSCRIBER_COLUMNS)
AUDIENCE_RANGE = f"""
SELECT {_SUBSCRIBER}
FROM subscribers s
WHERE s.brand_id = $1 AND s.id > $2
ORDER BY s.brand_id, s.id
LIMIT $3
"""


# A targeted campaign's audience, resolved into `campaign_audience_chunks` (sorted chunks of
# ids), read the same way: the chunks that hold the page's ids, cut here, then the rows by
# one walk of the primary key (a sorted `= ANY` is a single index search). A row per
# subscriber, read row by row, took 8 s of Postgres for a million against the whole list's
# 1.3 (BENCHMARKS.md, "The audience API").
AUDIENCE_CHUNK = 10_000  # ids a chunk holds
_CHUNKS = """
SELECT ids FROM campaign_audience_chunks WHERE campaign_id = $1 AND last_id > $2
ORDER BY campaign_id, last_id LIMIT $3
"""
_ROWS_BY_ID = f"""
SELECT {_SUBSCRIBER} FROM subscribers s
WHERE s.brand_id = $1 AND s.id = ANY($2::bigint[])
ORDER BY s.brand_id, s.id
"""

_PHONE_PAGE = f"""
SELECT {_SUBSCRIBER}
FROM subscribers s
WHERE s.brand_id = $1 AND s.id > $2 AND s.phone IS NOT NULL
ORDER BY s.brand_id, s.id
LIMIT $3
"""


async def audience_range(
    pool: Pool, brand_id: int, after_id: int, limit: int
) -> list[SubscriberRow]:
    """The next `limit` subscribers of the brand after `after_id`, in id order (the
    audience's keyset page)."""
    # by position, unchecked: 0.3 ms a page of 2,000 records (by name, checked, 2 ms)
    return [SubscriberRow(*r) for r in await pool.fetch(AUDIENCE_RANGE, brand_id, after_id, limit)]


async def campaign_audience_range(
    pool: Pool, brand_id: int, campaign_id: int, after_id: int, limit: int
) -> list[SubscriberRow]:
    """`audience_range` for a campaign whose audience is a segment (resolved): its next
    `limit` subscribers after `after_id` who still exist, in id order."""
    chunks = -(-limit // AUDIENCE_CHUNK) + 1  # the first may be partly behind `after_id`
    ids: list[int] = []
    for (chunk,) in await pool.fetch(_CHUNKS, campaign_id, after_id, chunks):
        ids += chunk[bisect.bisect_right(chunk, after_id) :] if not ids else chunk
        if len(ids) >= limit:
            break
    if not ids:
        return []
    rows = await pool.fetch(_ROWS_BY_ID, brand_id, ids[:limit])
    return [SubscriberRow(*r) for r in rows]


async def phone_page(pool: Pool, brand_id: int, after_id: int, limit: int) -> list[SubscriberRow]:
    """The next `limit` subscribers with a phone after `after_id`, in id order (the plan's
    page)."""
    return [SubscriberRow(*r) for r in await pool.fetch(_PHONE_PAGE, brand_id, after_id, limit)]


async def count_subscribers(pool: Pool, brand_id: int) -> SubscriberCounts:
    """The brand's subscribers, and how many of them may be sent SMS marketing."""
    row = await pool.fetchrow(
        """
        SELECT count(*) AS total,
               count(*) FILTER (WHERE (SELECT c.status FROM consents c
                   WHERE c.subscriber_id = s.id AND c.channel = 'sms'
                   ORDER BY c.id DESC LIMIT 1) = 'opted_in') AS sms_opted_in
        FROM subscribers s WHERE s.brand_id = $1
        """,
        brand_id,
    )
    assert row is not None
    return msgspec.convert(dict(row), SubscriberCounts)
