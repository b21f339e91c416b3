"""Subscriber imports: their progress, as each batch of rows goes in, and their rejected rows
(the first `MAX_REJECTIONS_KEPT`; the count is always whole)."""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from clarion.domain.imports import ImportRow, Rejection
from clarion.errors import NotFound
from clarion.store.db import Pool

MAX_REJECTIONS_KEPT = 10_000
_COLUMNS = (
    "id, brand_id, source, status, rows_read, created, existing, rejected, error, created_at,"
    " updated_at, finished_at"
)


async def start(pool: Pool, brand_id: int, source: str) -> int:
    import_id: int = await pool.fetchval(
        "INSERT INTO imports (brand_id, source) VALUES ($1, $2) RETURNING id", brand_id, source
    )
    return import_id


async def progress(
    pool: Pool,
    import_id: int,
    *,
    rows_read: int,
    created: int,
    existing: int,
    rejections: Sequence[Rejection],
) -> None:
    """Add a batch's counts; keep its rejected rows while fewer than `MAX_REJECTIONS_KEPT`
    are kept."""
    async with pool.acquire() as conn, conn.transaction():
        kept = await conn.fetchval(
            "UPDATE imports SET rows_read = rows_read + $2, created = created + $3,"
            " existing = existing + $4, rejected = rejected + $5, updated_at = now()"
            " WHERE id = $1 RETURNING rejected - $5",
            import_id, rows_read, created, existing, len(rejections),
        )  # fmt: skip
        room = max(0, MAX_REJECTIONS_KEPT - kept)
        if room and rejections:
            await conn.copy_records_to_table(
                "import_rejections",
                records=[(import_id, r.row, r.field, r.reason) for r in rejections[:room]],
                columns=["import_id", "row_number", "field", "reason"],
            )


async def earlier_rows(pool: Pool, import_id: int, keys: Sequence[str]) -> dict[str, int]:
    """Of these phones and emails, those an earlier batch of the import brought, with the
    row that brought each."""
    found = await pool.fetch(
        "SELECT key, row_number FROM import_keys WHERE import_id = $1 AND key = ANY($2::text[])",
        import_id, list(keys),
    )  # fmt: skip
    return {r["key"]: r["row_number"] for r in found}


async def remember(pool: Pool, import_id: int, keys: Sequence[str], rows: Sequence[int]) -> None:
    """The phones and emails of a batch's accepted rows, each with its row."""
    if keys:
        await pool.execute(
            "INSERT INTO import_keys (import_id, key, row_number)"
            " SELECT $1, k, r FROM unnest($2::text[], $3::bigint[]) AS g(k, r)"
            " ON CONFLICT DO NOTHING",
            import_id, list(keys), list(rows),
        )  # fmt: skip


async def finish(pool: Pool, import_id: int, *, error: str | None = None) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            "UPDATE imports SET status = $2, error = $3, finished_at = now(), updated_at = now()"
            " WHERE id = $1",
            import_id, "failed" if error else "done", error,
        )  # fmt: skip
        await conn.execute("DELETE FROM import_keys WHERE import_id = $1", import_id)


async def fail_stale(pool: Pool, older_than_s: float) -> int:
    """Imports still running whose process has not moved them for `older_than_s` (it died):
    failed, as interrupted. Returns how many."""
    stale = await pool.fetch(
        "UPDATE imports SET status = 'failed', error = 'interrupted (its process stopped)',"
        " finished_at = now() WHERE status = 'running'"
        " AND updated_at < now() - make_interval(secs => $1) RETURNING id",
        older_than_s,
    )
    if stale:
        await pool.execute(
            "DELETE FROM import_keys WHERE import_id = ANY($1::bigint[])", [r["id"] for r in stale]
        )
    return len(stale)


async def get(pool: Pool, brand_id: int, import_id: int) -> ImportRow:
    row = await pool.fetchrow(
        f"SELECT {_COLUMNS} FROM imports WHERE brand_id = $1 AND id = $2", brand_id, import_id
    )
    if row is None:
        raise NotFound("import", import_id)
    return msgspec.convert(dict(row), ImportRow)


async def listed(pool: Pool, brand_id: int, *, after_id: int, limit: int) -> list[ImportRow]:
    rows = await pool.fetch(
        f"SELECT {_COLUMNS} FROM imports WHERE brand_id = $1 AND id > $2 ORDER BY id LIMIT $3",
        brand_id, after_id, limit,
    )  # fmt: skip
    return [msgspec.convert(dict(r), ImportRow) for r in rows]


async def rejections(pool: Pool, import_id: int, *, after_row: int, limit: int) -> list[Rejection]:
    rows = await pool.fetch(
        "SELECT row_number, field, reason FROM import_rejections WHERE import_id = $1"
        " AND row_number > $2 ORDER BY row_number LIMIT $3",
        import_id, after_row, limit,
    )  # fmt: skip
    return [Rejection(r[0], r[1], r[2]) for r in rows]
