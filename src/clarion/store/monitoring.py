"""Delivery monitoring per brand and carrier, and the alerts it raises."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

import msgspec

from clarion.domain.monitoring import AlertRow, CarrierDelivery, Health, MinuteRow
from clarion.store.db import Pool

if TYPE_CHECKING:
    from clarion.store.db import Conn

CARRIER_DELIVERY_RATE = "carrier_delivery_rate"


async def add_minutes(conn: Conn, rows: Sequence[MinuteRow]) -> None:
    if rows:
        await conn.executemany(
            """
            INSERT INTO carrier_minutes AS c
                (brand_id, carrier, minute, delivered, failed, latency_sum_s, latency_n)
            VALUES ($1, $2, $3, $4, $5, $6, $7)
            ON CONFLICT (brand_id, carrier, minute) DO UPDATE SET
                delivered = c.delivered + excluded.delivered,
                failed = c.failed + excluded.failed,
                latency_sum_s = c.latency_sum_s + excluded.latency_sum_s,
                latency_n = c.latency_n + excluded.latency_n
            """,
            rows,
        )


async def add_errors(conn: Conn, rows: Sequence[tuple[int, str, str, int]]) -> None:
    if rows:
        await conn.executemany(
            "INSERT INTO carrier_errors AS e (brand_id, carrier, error_code, n)"
            " VALUES ($1, $2, $3, $4) ON CONFLICT (brand_id, carrier, error_code)"
            " DO UPDATE SET n = e.n + excluded.n",
            rows,
        )


async def window_health(
    conn: Conn, keys: Sequence[tuple[int, str]], since: datetime
) -> list[Health]:
    """Outcomes per (brand, carrier) since `since`."""
    rows = await conn.fetch(
        """
        SELECT c.brand_id, c.carrier, sum(c.delivered)::int AS delivered,
               sum(c.failed)::int AS failed
        FROM carrier_minutes c
        JOIN unnest($1::bigint[], $2::text[]) AS k(brand_id, carrier)
          ON k.brand_id = c.brand_id AND k.carrier = c.carrier
        WHERE c.minute >= $3
        GROUP BY c.brand_id, c.carrier
        """,
        [b for b, _ in keys],
        [c for _, c in keys],
        since,
    )
    return [Health(r["brand_id"], r["carrier"], r["delivered"], r["failed"]) for r in rows]


async def open_alerts(conn: Conn, kind: str, brand_ids: Sequence[int]) -> set[tuple[int, str]]:
    rows = await conn.fetch(
        "SELECT brand_id, subject FROM alerts WHERE kind = $1 AND cleared_at IS NULL"
        " AND brand_id = ANY($2::bigint[])",
        kind,
        list(brand_ids),
    )
    return {(r["brand_id"], r["subject"]) for r in rows}


async def raise_alert(
    conn: Conn, brand_id: int, kind: str, subject: str, message: str, value: float, threshold: float
) -> bool:
    """Open an alert (at most one open per brand, kind and subject); True if it is new."""
    result: str = await conn.execute(
        "INSERT INTO alerts (brand_id, kind, subject, message, value, threshold)"
        " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
        brand_id,
        kind,
        subject,
        message,
        value,
        threshold,
    )
    return result.endswith(" 1")


async def clear_alert(conn: Conn, brand_id: int, kind: str, subject: str) -> None:
    await conn.execute(
        "UPDATE alerts SET cleared_at = now() WHERE brand_id = $1 AND kind = $2"
        " AND subject = $3 AND cleared_at IS NULL",
        brand_id,
        kind,
        subject,
    )


async def list_alerts(
    pool: Pool, *, brand_id: int | None = None, open_only: bool = True
) -> list[AlertRow]:
    """Alerts (of one brand, or all; open ones only, or cleared ones too), newest first."""
    rows = await pool.fetch(
        "SELECT id, brand_id, kind, subject, message, value, threshold, raised_at, cleared_at"
        " FROM alerts WHERE ($1::bigint IS NULL OR brand_id = $1)"
        " AND (NOT $2 OR cleared_at IS NULL) ORDER BY raised_at DESC, id DESC",
        brand_id,
        open_only,
    )
    return msgspec.convert([dict(r) for r in rows], list[AlertRow])


async def carrier_report(pool: Pool, brand_id: int, since: datetime) -> list[CarrierDelivery]:
    """Per carrier since `since`: outcomes, delivery rate, mean delivery latency, and the
    brand's most frequent error codes there (all time)."""
    rows = await pool.fetch(
        """
        SELECT carrier, sum(delivered)::int AS delivered, sum(failed)::int AS failed,
               CASE WHEN sum(latency_n) > 0 THEN sum(latency_sum_s) / sum(latency_n) END
                   AS mean_latency_s
        FROM carrier_minutes WHERE brand_id = $1 AND minute >= $2
        GROUP BY carrier ORDER BY carrier
        """,
        brand_id,
        since,
    )
    errors = await pool.fetch(
        "SELECT carrier, error_code, n FROM carrier_errors WHERE brand_id = $1"
        " ORDER BY carrier, n DESC",
        brand_id,
    )
    out = []
    for r in rows:
        total = r["delivered"] + r["failed"]
        out.append(
            CarrierDelivery(
                carrier=r["carrier"],
                delivered=r["delivered"],
                failed=r["failed"],
                mean_latency_s=r["mean_latency_s"],
                delivery_rate=r["delivered"] / total if total else None,
                errors={e["error_code"]: e["n"] for e in errors if e["carrier"] == r["carrier"]},
            )
        )
    return out


async def prune_processed(conn: Conn | Pool, keep_s: float) -> int:
    """Forget the status batches counted more than `keep_s` ago; returns how many. A batch
    comes back only while it is unacknowledged (minutes at most), so a day's record guards
    against every redelivery, and the table stays the size of a day's batches."""
    result: str = await conn.execute(
        "DELETE FROM processed_batches WHERE processed_at < now() - make_interval(secs => $1)",
        keep_s,
    )
    return int(result.rsplit(" ", 1)[-1])


async def count_batch_once(conn: Conn, hop: str, batch_id: str) -> bool:
    """Record that `batch_id` of `hop` was counted; False when it was before (a
    redelivered batch changes nothing)."""
    done: str = await conn.execute(
        "INSERT INTO processed_batches (hop, batch_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        hop,
        batch_id,
    )
    return done.endswith(" 1")
