"""Lane limits and sender pools, as data."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from clarion.domain.lanes import Grant, Lane, LaneLimit
from clarion.domain.senders import normalize_sender
from clarion.store.db import Pool

if TYPE_CHECKING:
    from clarion.store.db import Conn


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
        normalize_sender(number),
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


async def lease(
    conn: Conn,
    want: Mapping[Lane, float],
    limit_of: Callable[[Lane], LaneLimit | None],
    *,
    now_s: float,
    today: str,
) -> dict[Lane, Grant]:
    """Take up to `want` tokens from each lane's shared state (every send process leases
    from the same rows, so a limit holds across processes). `now_s`: epoch seconds."""
    if not want:
        return {}
    lanes = sorted(want)
    limits = [limit_of(lane) for lane in lanes]
    rows = await conn.fetch(
        "SELECT * FROM lane_lease($1, $2, $3, $4, $5, $6, $7, $8)",
        [k for k, _ in lanes],
        [key for _, key in lanes],
        [want[lane] for lane in lanes],
        [lim.rate_per_s if lim else None for lim in limits],
        [_burst(lim) for lim in limits],
        [lim.per_day if lim else None for lim in limits],
        now_s,
        today,
    )
    return {(r["kind"], r["key"]): Grant(r["granted"], r["rate"], r["daily_spent"]) for r in rows}


def _burst(limit: LaneLimit | None) -> float | None:
    if limit is None or limit.rate_per_s is None:
        return None
    return limit.burst if limit.burst is not None else max(1.0, limit.rate_per_s)


async def refund(conn: Conn, unused: Mapping[Lane, float], *, today: str) -> None:
    """Give back tokens a batch leased but did not use."""
    if not unused:
        return
    lanes = sorted(unused)
    await conn.execute(
        """
        UPDATE lane_state s SET
            tokens = CASE WHEN s.rate IS NULL THEN s.tokens ELSE least(s.burst, s.tokens + u.n) END,
            used = CASE WHEN s.day = $4 THEN greatest(0, s.used - floor(u.n)) ELSE s.used END
        FROM unnest($1::text[], $2::text[], $3::float8[]) AS u(kind, key, n)
        WHERE s.kind = u.kind AND s.key = u.key
        """,
        [k for k, _ in lanes],
        [key for _, key in lanes],
        [unused[lane] for lane in lanes],
        today,
    )


async def throttled(conn: Conn, lane: Lane, floor_per_s: float = 0.1) -> None:
    """The provider said slow down: halve the lane's rate and drop what it saved up."""
    await conn.execute(
        "UPDATE lane_state SET rate = greatest(least($3, max_rate), rate / 2),"
        " tokens = least(tokens, 0)"
        " WHERE kind = $1 AND key = $2 AND rate IS NOT NULL",
        *lane,
        floor_per_s,
    )


async def succeeded(conn: Conn, lane: Lane, step_fraction: float = 0.05) -> None:
    """Additive increase back towards the configured rate."""
    await conn.execute(
        "UPDATE lane_state SET rate = least(max_rate, rate + max_rate * $3)"
        " WHERE kind = $1 AND key = $2 AND rate < max_rate",
        *lane,
        step_fraction,
    )


async def load_routes(pool: Pool, channel: str) -> dict[int, list[str]]:
    """Each brand's route for a channel: provider account names, most preferred first."""
    routes: dict[int, list[str]] = {}
    for r in await pool.fetch(
        "SELECT brand_id, provider FROM brand_routes WHERE channel = $1"
        " ORDER BY brand_id, position",
        channel,
    ):
        routes.setdefault(r["brand_id"], []).append(r["provider"])
    return routes


async def set_route(pool: Pool, brand_id: int, channel: str, providers: list[str]) -> None:
    """Replace a brand's route for a channel."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            "DELETE FROM brand_routes WHERE brand_id = $1 AND channel = $2", brand_id, channel
        )
        await conn.executemany(
            "INSERT INTO brand_routes (brand_id, channel, position, provider)"
            " VALUES ($1, $2, $3, $4)",
            [(brand_id, channel, i, name) for i, name in enumerate(providers)],
        )


async def daily_used(pool: Pool, brand_id: int, day: str) -> dict[tuple[str, str], int]:
    """The brand's use of its daily carrier caps on `day` (Pacific), from the lane state."""
    rows = await pool.fetch(
        "SELECT kind, key, used FROM lane_state WHERE kind = 'brand_carrier_day'"
        " AND key LIKE $1 AND day = $2",
        f"{brand_id}:%",
        day,
    )
    return {(r["kind"], r["key"]): int(r["used"]) for r in rows}
