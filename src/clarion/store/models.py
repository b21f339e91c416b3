"""Learned models' versions (`models`) and their per-subscriber output: send hours here;
recommendations in `store/recommendations.py`."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import msgspec

from clarion.store.db import Pool

if TYPE_CHECKING:
    from clarion.store.db import Conn


class ModelRow(msgspec.Struct, frozen=True):
    id: int
    brand_id: int
    kind: str
    version: int
    trained_at: datetime
    data_until: datetime
    summary: dict[str, Any]
    pruned_at: datetime | None = None


_COLUMNS = "id, brand_id, kind, version, trained_at, data_until, summary, pruned_at"
# Superseded versions whose per-subscriber output is kept (a campaign sending may read one).
KEEP_OUTPUT = 2


async def new_model(
    conn: Conn | Pool, brand_id: int, kind: str, data_until: datetime, summary: dict[str, Any]
) -> ModelRow:
    """The brand's next version of a kind (its output is written after, in the same
    transaction when `conn` is one)."""
    row = await conn.fetchrow(
        f"INSERT INTO models (brand_id, kind, version, data_until, summary)"
        f" SELECT $1, $2, coalesce(max(version), 0) + 1, $3, $4 FROM models"
        f" WHERE brand_id = $1 AND kind = $2 RETURNING {_COLUMNS}",
        brand_id, kind, data_until, summary,
    )  # fmt: skip
    assert row is not None
    return _row(row)


async def latest(pool: Pool | Conn, brand_id: int, kind: str) -> ModelRow | None:
    """The brand's newest model of a kind whose output is there (None: never trained)."""
    row = await pool.fetchrow(
        f"SELECT {_COLUMNS} FROM models WHERE brand_id = $1 AND kind = $2"
        f" AND pruned_at IS NULL ORDER BY version DESC LIMIT 1",
        brand_id, kind,
    )  # fmt: skip
    return None if row is None else _row(row)


async def get_model(pool: Pool | Conn, model_id: int, *, brand_id: int) -> ModelRow | None:
    row = await pool.fetchrow(
        f"SELECT {_COLUMNS} FROM models WHERE id = $1 AND brand_id = $2", model_id, brand_id
    )
    return None if row is None else _row(row)


async def listed(pool: Pool, brand_id: int, kind: str | None = None) -> list[ModelRow]:
    rows = await pool.fetch(
        f"SELECT {_COLUMNS} FROM models WHERE brand_id = $1 AND ($2::text IS NULL OR kind = $2)"
        f" ORDER BY kind, version DESC LIMIT 100",
        brand_id, kind,
    )  # fmt: skip
    return [_row(r) for r in rows]


async def superseded(pool: Pool, brand_id: int, kind: str) -> list[int]:
    """Versions of a kind older than the newest `KEEP_OUTPUT` whose output is still kept:
    what to prune."""
    rows = await pool.fetch(
        "SELECT id FROM models WHERE brand_id = $1 AND kind = $2 AND pruned_at IS NULL"
        " ORDER BY version DESC OFFSET $3",
        brand_id, kind, KEEP_OUTPUT,
    )  # fmt: skip
    return [r["id"] for r in rows]


async def mark_pruned(conn: Conn | Pool, model_id: int) -> None:
    await conn.execute("UPDATE models SET pruned_at = now() WHERE id = $1", model_id)


def _row(row: Any) -> ModelRow:
    return msgspec.convert(dict(row), ModelRow)


async def due(pool: Pool, kind: str, trained_before: datetime) -> list[int]:
    """Brands whose model of a kind is due a new version: none yet, or the newest trained
    before `trained_before`, and something new since its data (for send times, a campaign
    launched within a week before it — clicks come for days; for recommendations, a shop
    event)."""
    fresh = (
        "EXISTS (SELECT 1 FROM campaigns k WHERE k.brand_id = b.id AND k.launched_at >"
        " coalesce(m.data_until - interval '7 days', '-infinity'))"
        if kind == "sto"
        else "EXISTS (SELECT 1 FROM events e WHERE e.brand_id = b.id AND e.type IN"
        " ('viewed_product', 'added_to_cart', 'started_checkout', 'ordered')"
        " AND e.occurred_at > coalesce(m.data_until, '-infinity'))"
    )
    rows = await pool.fetch(
        "SELECT b.id FROM brands b LEFT JOIN LATERAL (SELECT trained_at, data_until FROM models"
        "   WHERE brand_id = b.id AND kind = $1 ORDER BY version DESC LIMIT 1) m ON true"
        f" WHERE (m.trained_at IS NULL OR m.trained_at < $2) AND {fresh} ORDER BY b.id",
        kind, trained_before,
    )  # fmt: skip
    return [r["id"] for r in rows]
