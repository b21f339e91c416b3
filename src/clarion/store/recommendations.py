"""Recommendations: what the model learns from (the brand's shop events, summed per
subscriber and product in SQL), what it writes (each subscriber's products, COPY), what a
send reads (a batch's lists in one query), and the pruning of a superseded version's."""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

import msgspec
import numpy as np

from clarion.domain.catalog import Product
from clarion.domain.events import STANDARD_TYPES
from clarion.intelligence.recs import WEIGHTS, Interactions
from clarion.store.db import Pool

if TYPE_CHECKING:
    from clarion.store.db import Conn

# COPY's binary rows of (bigint, integer, real): a field count, then each field's length and
# value, big-endian; read straight into arrays. At a million subscribers the interactions
# are millions of rows: as asyncpg records they cost more than the fit.
_ROW = np.dtype([
    ("fields", ">i2"), ("n1", ">i4"), ("subscriber", ">i8"), ("n2", ">i4"), ("product", ">i4"),
    ("n3", ">i4"), ("weight", ">f4"),
])  # fmt: skip
_HEADER = 19  # PGCOPY signature (11), flags (4), header extension length (4)
_TRAILER = 2  # a field count of -1


async def interactions(pool: Pool, brand_id: int, *, until: datetime) -> Interactions:
    """The brand's shop events up to `until` as the model reads them: each subscriber's sum
    of `WEIGHTS` per catalog product (events of products not in the catalog, and of erased
    subscribers, are left out), with the catalog and what is in stock."""
    catalog = await pool.fetch(
        "SELECT id, in_stock FROM products WHERE brand_id = $1 ORDER BY seq", brand_id
    )
    types = [t for t in STANDARD_TYPES if t in WEIGHTS]
    buffer = io.BytesIO()
    async with pool.acquire() as conn:
        await conn.copy_from_query(
            """
            WITH catalog AS (
                SELECT id, (row_number() OVER (ORDER BY seq) - 1)::int AS position
                FROM products WHERE brand_id = $1
            ), weights AS (
                SELECT * FROM unnest($2::text[], $3::real[]) AS w(type, weight)
            )
            SELECT e.subscriber_id, c.position, sum(w.weight)::real
            FROM events e
            JOIN weights w ON w.type = e.type
            CROSS JOIN LATERAL jsonb_array_elements(e.items) AS item
            JOIN catalog c ON c.id = item ->> 'product_id'
            JOIN subscribers s ON s.id = e.subscriber_id AND s.erased_at IS NULL
            WHERE e.brand_id = $1 AND e.type = ANY($2::text[]) AND e.occurred_at <= $4
              AND jsonb_typeof(e.items) = 'array'
            GROUP BY e.subscriber_id, c.position
            """,
            brand_id, types, [WEIGHTS[t] for t in types], until,
            output=buffer, format="binary",
        )  # fmt: skip
    raw = buffer.getbuffer()[_HEADER : len(buffer.getbuffer()) - _TRAILER]
    rows = np.frombuffer(raw, dtype=_ROW)
    if len(rows) and not (
        (rows["fields"] == 3).all() and (rows["n1"] == 8).all() and (rows["n2"] == 4).all()
    ):
        raise RuntimeError("COPY's binary rows are not (bigint, integer, real)")
    return Interactions(
        subscribers=rows["subscriber"].astype(np.int64),
        products=rows["product"].astype(np.int64),
        weights=rows["weight"].astype(np.float32),
        product_ids=[r["id"] for r in catalog],
        in_stock=np.array([r["in_stock"] for r in catalog], dtype=bool),
    )


async def data_until(pool: Pool, brand_id: int, *, until: datetime) -> datetime | None:
    """When the brand's newest shop event up to `until` happened (None: it has none)."""
    found: datetime | None = await pool.fetchval(
        "SELECT max(occurred_at) FROM events WHERE brand_id = $1 AND type = ANY($2::text[])"
        " AND occurred_at <= $3",
        brand_id, list(WEIGHTS), until,
    )  # fmt: skip
    return found


async def popular_now(pool: Pool, brand_id: int, *, days: int, limit: int) -> list[str]:
    """The products with the most weight in the brand's shop events of the last `days`,
    best first: the fallback of a brand with no model yet."""
    rows = await pool.fetch(
        """
        SELECT item ->> 'product_id' AS id
        FROM events e
        JOIN unnest($2::text[], $3::real[]) AS w(type, weight) ON w.type = e.type
        CROSS JOIN LATERAL jsonb_array_elements(e.items) AS item
        WHERE e.brand_id = $1 AND e.type = ANY($2::text[])
          AND e.occurred_at > now() - make_interval(days => $4)
          AND jsonb_typeof(e.items) = 'array'
        GROUP BY 1 ORDER BY sum(w.weight) DESC, 1 LIMIT $5
        """,
        brand_id, list(WEIGHTS), list(WEIGHTS.values()), days, limit,
    )  # fmt: skip
    return [r["id"] for r in rows if r["id"]]


async def write(
    conn: Conn, model_id: int, subscribers: Sequence[int], lists: Sequence[Sequence[str]]
) -> int:
    """COPY a model's lists in (subscriber i's is `lists[i]`); returns how many."""
    records = [
        (model_id, s, list(products)) for s, products in zip(subscribers, lists, strict=True)
    ]
    await conn.copy_records_to_table(
        "recommendations", records=records,
        columns=("model_id", "subscriber_id", "product_ids"),
    )  # fmt: skip
    return len(records)


async def lists(
    pool: Pool, model_id: int, subscriber_ids: Sequence[int], take: int = 10
) -> dict[int, list[str]]:
    """The first `take` of the lists of these subscribers that the model has (a newcomer
    has none)."""
    rows = await pool.fetch(
        "SELECT subscriber_id, product_ids[1:$3] AS product_ids FROM recommendations"
        " WHERE model_id = $1 AND subscriber_id = ANY($2::bigint[])",
        model_id, list(subscriber_ids), take,
    )  # fmt: skip
    return {r["subscriber_id"]: r["product_ids"] for r in rows}


async def prune(conn: Conn, model_id: int) -> int:
    """Delete a superseded model's lists (its row, and its popularity list, stay)."""
    done = await conn.execute("DELETE FROM recommendations WHERE model_id = $1", model_id)
    return int(done.rsplit(" ", 1)[-1])


async def in_stock(pool: Pool, brand_id: int, product_ids: Sequence[str]) -> dict[str, Product]:
    """Of these products of the brand's catalog, those in stock now."""
    rows = await pool.fetch(
        "SELECT id, name, url, price::float8 AS price, image_url FROM products"
        " WHERE brand_id = $1 AND id = ANY($2::text[]) AND in_stock",
        brand_id, list(product_ids),
    )  # fmt: skip
    return {r["id"]: msgspec.convert(dict(r), Product) for r in rows}


async def campaign_model(pool: Pool, campaign_id: int, brand_id: int) -> int | None:
    """The recommendations model a campaign names (set at its launch), if any."""
    found: int | None = await pool.fetchval(
        "SELECT recs_model_id FROM campaigns WHERE id = $1 AND brand_id = $2",
        campaign_id, brand_id,
    )  # fmt: skip
    return found
