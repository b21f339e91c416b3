"""Send-time optimisation's data: what a brand's subscribers were delivered at each local
hour and clicked (what a fit learns from), and each subscriber's hours, best first (what a
fit wrote, per model version)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from clarion.store.db import Pool

if TYPE_CHECKING:
    from clarion.store.db import Conn


async def exposures(pool: Pool, brand_id: int, since: datetime) -> list[tuple[int, int, int, int]]:
    """(subscriber id, local hour, deliveries, clicked) of the brand's campaign messages
    delivered since `since` that had tracked links: the hour on the subscriber's clock (UTC
    when their zone is not known), a click a person's (not a scanner's or an unfurler's).
    Two reads, each by the campaigns' indexes: the deliveries, and the clicked messages
    (each found by its id)."""
    hour = "extract(hour FROM m.sent_at AT TIME ZONE coalesce(s.timezone, 'UTC'))::int"
    tracked = "SELECT id FROM campaigns WHERE brand_id = $1 AND track_links"
    delivered = await pool.fetch(
        f"SELECT m.subscriber_id, {hour} AS hour, count(*)::int AS n"
        " FROM messages m JOIN subscribers s ON s.id = m.subscriber_id"
        f" WHERE m.campaign_id IN ({tracked}) AND m.brand_id = $1"
        "   AND m.status = 'delivered' AND m.sent_at >= $2"
        " GROUP BY 1, 2",
        brand_id, since,
    )  # fmt: skip
    clicked = await pool.fetch(
        f"SELECT m.subscriber_id, {hour} AS hour, count(DISTINCT m.id)::int AS n"
        " FROM clicks c JOIN messages m ON m.id = c.message_id"
        " JOIN subscribers s ON s.id = m.subscriber_id"
        f" WHERE c.campaign_id IN ({tracked}) AND c.kind = 'human'"
        "   AND m.status = 'delivered' AND m.sent_at >= $2"
        " GROUP BY 1, 2",
        brand_id, since,
    )  # fmt: skip
    clicks = {(r["subscriber_id"], r["hour"]): r["n"] for r in clicked}
    return [
        (r["subscriber_id"], r["hour"], r["n"], clicks.get((r["subscriber_id"], r["hour"]), 0))
        for r in delivered
    ]


async def newest_exposure(pool: Pool, brand_id: int) -> datetime | None:
    """When the brand's newest click or delivery happened: what a new fit would learn up to."""
    return await pool.fetchval(  # type: ignore[no-any-return]
        "SELECT greatest((SELECT max(first_at) FROM clicks WHERE brand_id = $1),"
        " (SELECT max(sent_at) FROM messages WHERE brand_id = $1 AND campaign_id IS NOT NULL))",
        brand_id,
    )


async def everyone_totals(pool: Pool, brand_id: int) -> list[dict[str, Any]]:
    """The hour totals of every other brand's newest send-time model (everyone's pattern)."""
    rows = await pool.fetch(
        "SELECT DISTINCT ON (brand_id) summary FROM models"
        " WHERE kind = 'sto' AND brand_id <> $1 ORDER BY brand_id, version DESC",
        brand_id,
    )
    return [r["summary"] for r in rows]


async def write(
    conn: Conn, model_id: int, subscriber_ids: Sequence[int], ranked: Sequence[Sequence[int]]
) -> None:
    await conn.copy_records_to_table(
        "send_hours",
        records=((model_id, sid, list(hours)) for sid, hours in zip(subscriber_ids, ranked,
                                                                  strict=True)),
        columns=("model_id", "subscriber_id", "hours"),
    )  # fmt: skip


async def read(
    pool: Pool | Conn, model_id: int, subscriber_ids: Sequence[int]
) -> dict[int, list[int]]:
    """The hours, best first, of those of `subscriber_ids` the model has (others: the
    brand's order, in the model's summary)."""
    rows = await pool.fetch(
        "SELECT subscriber_id, hours FROM send_hours"
        " WHERE model_id = $1 AND subscriber_id = ANY($2::bigint[])",
        model_id, list(subscriber_ids),
    )  # fmt: skip
    return {r["subscriber_id"]: list(r["hours"]) for r in rows}


async def prune(pool: Pool, model_id: int) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("DELETE FROM send_hours WHERE model_id = $1", model_id)
        await conn.execute("UPDATE models SET pruned_at = now() WHERE id = $1", model_id)
