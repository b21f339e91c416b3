"""Lane limits and sender pools, as data."""

from __future__ import annotations

from clarion.pipeline.lanes import Lane, LaneLimit
from clarion.store.db import Pool


async def load_limits(pool: Pool) -> tuple[dict[Lane, LaneLimit], dict[int, list[str]]]:
    """(every configured lane limit, each brand's sender pool)."""
    limits: dict[Lane, LaneLimit] = {}
    pools: dict[int, list[str]] = {}
    for r in await pool.fetch("SELECT * FROM lane_limits"):
        limits[(r["kind"], r["key"])] = LaneLimit(
            rate_per_s=r["rate_per_s"], burst=r["burst"], per_day=r["per_day"],
            per_segment=r["per_segment"],
        )  # fmt: skip
    for r in await pool.fetch("SELECT brand_id, number, rate_per_s, per_segment FROM senders"):
        pools.setdefault(r["brand_id"], []).append(r["number"])
        if r["rate_per_s"] is not None:
            limits[("sender", r["number"])] = LaneLimit(
                rate_per_s=r["rate_per_s"], per_segment=r["per_segment"]
            )
    for numbers in pools.values():
        numbers.sort()
    return limits, pools


async def add_sender(
    pool: Pool,
    brand_id: int,
    number: str,
    *,
    kind: str = "long_code",
    rate_per_s: float | None = None,
    per_segment: bool = False,
) -> None:
    await pool.execute(
        "INSERT INTO senders (brand_id, number, kind, rate_per_s, per_segment)"
        " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (brand_id, number) DO UPDATE"
        " SET kind = excluded.kind, rate_per_s = excluded.rate_per_s,"
        " per_segment = excluded.per_segment",
        brand_id,
        number,
        kind,
        rate_per_s,
        per_segment,
    )


async def set_lane_limit(
    pool: Pool,
    kind: str,
    key: str,
    *,
    rate_per_s: float | None = None,
    burst: float | None = None,
    per_day: int | None = None,
) -> None:
    await pool.execute(
        "INSERT INTO lane_limits (kind, key, rate_per_s, burst, per_day)"
        " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (kind, key) DO UPDATE SET"
        " rate_per_s = excluded.rate_per_s, burst = excluded.burst, per_day = excluded.per_day",
        kind,
        key,
        rate_per_s,
        burst,
        per_day,
    )
