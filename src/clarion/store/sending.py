"""A brand's sending settings as the settings page reads and changes them: its routes, its
senders' rates, its limits at each carrier (lanes `carrier_minute` and
`brand_carrier_day`), smart sending; and the install's own lane limits, which it only reads."""

from __future__ import annotations

import msgspec

from clarion.errors import NotFound
from clarion.store.db import Pool

# Lanes of the install (every brand's): shown, never changed from a brand's page.
INSTALL_LANE_KINDS = ("provider", "provider_tx", "sender", "sender_tx")
CARRIER_MINUTE = "carrier_minute"  # per campaign and carrier, a rate (AT&T style)
CARRIER_DAY = "brand_carrier_day"  # per brand and carrier, a daily cap (T-Mobile style)


class SenderLimit(msgspec.Struct, frozen=True, kw_only=True):
    number: str
    kind: str  # long_code, toll_free, short_code
    rate_per_s: float | None  # None: no limit of its own
    per_segment: bool


class LaneLimitRow(msgspec.Struct, frozen=True, kw_only=True):
    kind: str
    key: str
    rate_per_s: float | None
    burst: float | None
    per_day: int | None


async def routes(pool: Pool, brand_id: int) -> dict[str, list[str]]:
    """The brand's providers per channel, most preferred first (a channel without a route
    uses every provider account)."""
    found: dict[str, list[str]] = {}
    for r in await pool.fetch(
        "SELECT channel, provider FROM brand_routes WHERE brand_id = $1 ORDER BY channel, position",
        brand_id,
    ):
        found.setdefault(r["channel"], []).append(r["provider"])
    return found


async def senders(pool: Pool, brand_id: int) -> list[SenderLimit]:
    rows = await pool.fetch(
        "SELECT number, kind, rate_per_s, per_segment FROM senders WHERE brand_id = $1"
        " ORDER BY number",
        brand_id,
    )
    return [msgspec.convert(dict(r), SenderLimit) for r in rows]


async def carrier_limits(pool: Pool, brand_id: int) -> list[LaneLimitRow]:
    """The carrier lanes that apply to the brand: its own rows (`carrier_minute`
    "brand:*:carrier", `brand_carrier_day` "brand:carrier") and the install's defaults
    ("*:*:carrier", "*:carrier")."""
    rows = await pool.fetch(
        "SELECT kind, key, rate_per_s, burst, per_day FROM lane_limits"
        " WHERE (kind = $1 AND (key LIKE $3 OR key LIKE '*:*:%'))"
        " OR (kind = $2 AND (key LIKE $4 OR key LIKE '*:%')) ORDER BY kind, key",
        CARRIER_MINUTE, CARRIER_DAY, f"{brand_id}:*:%", f"{brand_id}:%",
    )  # fmt: skip
    return [msgspec.convert(dict(r), LaneLimitRow) for r in rows]


async def set_carrier_limit(
    pool: Pool, brand_id: int, carrier: str, *, rate_per_s: float | None, per_day: int | None
) -> None:
    """Set the brand's own limits at a carrier: a rate per campaign (None: the install's)
    and a daily cap (None: the install's)."""
    minute_key, day_key = f"{brand_id}:*:{carrier}", f"{brand_id}:{carrier}"
    async with pool.acquire() as conn, conn.transaction():
        for kind, key, given in (
            (CARRIER_MINUTE, minute_key, rate_per_s),
            (CARRIER_DAY, day_key, per_day),
        ):
            if given is None:
                await conn.execute(
                    "DELETE FROM lane_limits WHERE kind = $1 AND key = $2", kind, key
                )
        if rate_per_s is not None:
            await conn.execute(
                "INSERT INTO lane_limits (kind, key, rate_per_s, burst) VALUES ($1, $2, $3, $3)"
                " ON CONFLICT (kind, key) DO UPDATE SET rate_per_s = excluded.rate_per_s,"
                " burst = excluded.burst",
                CARRIER_MINUTE, minute_key, rate_per_s,
            )  # fmt: skip
        if per_day is not None:
            await conn.execute(
                "INSERT INTO lane_limits (kind, key, per_day) VALUES ($1, $2, $3)"
                " ON CONFLICT (kind, key) DO UPDATE SET per_day = excluded.per_day",
                CARRIER_DAY, day_key, per_day,
            )  # fmt: skip


async def install_limits(pool: Pool) -> list[LaneLimitRow]:
    """The install's lane limits (providers, senders, carriers per minute)."""
    rows = await pool.fetch(
        "SELECT kind, key, rate_per_s, burst, per_day FROM lane_limits"
        " WHERE kind = ANY($1::text[]) ORDER BY kind, key LIMIT 200",
        list(INSTALL_LANE_KINDS),
    )
    return [msgspec.convert(dict(r), LaneLimitRow) for r in rows]


async def set_smart_sending(pool: Pool, brand_id: int, hours: float) -> None:
    done = await pool.execute(
        "UPDATE brands SET smart_sending_h = $2 WHERE id = $1", brand_id, hours
    )
    if done == "UPDATE 0":
        raise NotFound("brand", brand_id)
