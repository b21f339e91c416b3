"""Outbound webhooks in Postgres: a brand's endpoints, the events waiting for them (written
by triggers: migration 0036), and what each delivery attempt did."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

import msgspec

from clarion.errors import NotFound
from clarion.pipeline.hooks import Event
from clarion.store.db import Pool

if TYPE_CHECKING:
    from clarion.store.db import Conn


class Endpoint(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    brand_id: int
    url: str
    event_types: list[str]
    enabled: bool
    failing_since: datetime | None
    disabled_at: datetime | None
    disabled_reason: str | None
    created_at: datetime
    pending: int = 0  # events not yet delivered (of the outbox's types)
    delivered: int = 0
    receipts_after: int = 0  # message.* events: the receipt log read and posted up to here
    receipts_next_at: datetime | None = None


_COLUMNS = (
    "e.id, e.brand_id, e.url, e.event_types, e.enabled, e.failing_since, e.disabled_at,"
    " e.disabled_reason, e.created_at, e.receipts_after, e.receipts_next_at,"
    " (SELECT count(*) FROM webhook_deliveries d WHERE d.endpoint_id = e.id"
    "  AND d.status = 'pending') AS pending,"
    " (SELECT count(*) FROM webhook_deliveries d WHERE d.endpoint_id = e.id"
    "  AND d.status = 'delivered') AS delivered"
)


async def create(
    pool: Pool, brand_id: int, url: str, event_types: Sequence[str], secret: str
) -> Endpoint:
    row = await pool.fetchrow(
        "INSERT INTO webhook_endpoints (brand_id, url, event_types, secret, receipts_after)"
        " VALUES ($1, $2, $3, $4, (SELECT coalesce(max(id), 0) FROM receipt_log))"
        " RETURNING id",
        brand_id, url, list(event_types), secret,
    )  # fmt: skip
    assert row is not None
    return await get(pool, brand_id, row["id"])


async def get(pool: Pool, brand_id: int, endpoint_id: int) -> Endpoint:
    row = await pool.fetchrow(
        f"SELECT {_COLUMNS} FROM webhook_endpoints e WHERE e.brand_id = $1 AND e.id = $2",
        brand_id, endpoint_id,
    )  # fmt: skip
    if row is None:
        raise NotFound("webhook endpoint", endpoint_id)
    return msgspec.convert(dict(row), Endpoint)


async def listed(pool: Pool, brand_id: int, *, after_id: int, limit: int) -> list[Endpoint]:
    rows = await pool.fetch(
        f"SELECT {_COLUMNS} FROM webhook_endpoints e WHERE e.brand_id = $1 AND e.id > $2"
        " ORDER BY e.id LIMIT $3",
        brand_id, after_id, limit,
    )  # fmt: skip
    return [msgspec.convert(dict(r), Endpoint) for r in rows]


async def delete(pool: Pool, brand_id: int, endpoint_id: int) -> None:
    done = await pool.execute(
        "DELETE FROM webhook_endpoints WHERE brand_id = $1 AND id = $2", brand_id, endpoint_id
    )
    if done == "DELETE 0":
        raise NotFound("webhook endpoint", endpoint_id)


async def enable(pool: Pool, brand_id: int, endpoint_id: int) -> None:
    """Enabled again: its pending events are tried at once."""
    async with pool.acquire() as conn, conn.transaction():
        done = await conn.execute(
            "UPDATE webhook_endpoints SET enabled = true, failing_since = NULL,"
            " disabled_at = NULL, disabled_reason = NULL WHERE brand_id = $1 AND id = $2",
            brand_id, endpoint_id,
        )  # fmt: skip
        if done == "UPDATE 0":
            raise NotFound("webhook endpoint", endpoint_id)
        await conn.execute(
            "UPDATE webhook_deliveries SET next_at = now()"
            " WHERE endpoint_id = $1 AND status = 'pending'",
            endpoint_id,
        )
        await conn.execute(
            "UPDATE webhook_endpoints SET receipts_next_at = now(), receipts_attempts = 0"
            " WHERE id = $1",
            endpoint_id,
        )


async def disable(pool: Pool, brand_id: int, endpoint_id: int, reason: str) -> None:
    """Disabled: its events wait (pending) until it is enabled again."""
    done = await pool.execute(
        "UPDATE webhook_endpoints SET enabled = false, disabled_at = now(), disabled_reason = $3"
        " WHERE brand_id = $1 AND id = $2",
        brand_id, endpoint_id, reason,
    )  # fmt: skip
    if done == "UPDATE 0":
        raise NotFound("webhook endpoint", endpoint_id)


class Due(msgspec.Struct, frozen=True):
    """An endpoint with events due, the oldest first (at most a request's worth)."""

    endpoint_id: int
    brand_id: int
    url: str
    secret: str
    failing_since: datetime | None
    attempts: int
    events: list[Event]


async def due(pool: Pool, per_request: int, endpoints: int = 16) -> list[Due]:
    """Enabled endpoints with deliveries due now (the database's clock, which wrote them),
    each with its oldest due events."""
    heads = await pool.fetch(
        """
        SELECT DISTINCT d.endpoint_id FROM webhook_deliveries d
        JOIN webhook_endpoints e ON e.id = d.endpoint_id AND e.enabled
        WHERE d.status = 'pending' AND d.next_at <= now() LIMIT $1
        """,
        endpoints,
    )
    out = []
    for h in heads:
        rows = await pool.fetch(
            """
            SELECT e.id AS endpoint_id, e.brand_id, e.url, e.secret, e.failing_since,
                   d.attempts, v.id, v.type, v.created_at, v.payload
            FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id
            JOIN webhook_events v ON v.id = d.event_id
            WHERE d.endpoint_id = $1 AND d.status = 'pending' AND d.next_at <= now()
            ORDER BY d.event_id LIMIT $2
            """,
            h["endpoint_id"], per_request,
        )  # fmt: skip
        if rows:
            r0 = rows[0]
            out.append(
                Due(
                    r0["endpoint_id"], r0["brand_id"], r0["url"], r0["secret"],
                    r0["failing_since"], max(r["attempts"] for r in rows),
                    [Event(f"evt_{r['id']}", r["type"], r["created_at"], r["payload"])
                     for r in rows],
                )
            )  # fmt: skip
    return out


async def delivered(pool: Pool, endpoint_id: int, event_ids: Sequence[int], code: int) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            "UPDATE webhook_deliveries SET status = 'delivered', delivered_at = now(),"
            " attempts = attempts + 1, last_code = $3, last_error = NULL"
            " WHERE endpoint_id = $1 AND event_id = ANY($2::bigint[])",
            endpoint_id, list(event_ids), code,
        )  # fmt: skip
        await conn.execute(
            "UPDATE webhook_endpoints SET failing_since = NULL WHERE id = $1", endpoint_id
        )


async def failed(
    pool: Pool,
    endpoint_id: int,
    event_ids: Sequence[int],
    *,
    code: int | None,
    error: str,
    retry_after_s: float,
    disable_after_s: float,
) -> bool:
    """Record a failed attempt and when to try again (`retry_after_s` from now); disable
    the endpoint if it has been failing for `disable_after_s`. True if it was disabled
    now."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            "UPDATE webhook_deliveries SET attempts = attempts + 1, last_code = $3,"
            " last_error = $4, next_at = now() + make_interval(secs => $5)"
            " WHERE endpoint_id = $1 AND event_id = ANY($2::bigint[])",
            endpoint_id, list(event_ids), code, error[:500], retry_after_s,
        )  # fmt: skip
        return await _fail(conn, endpoint_id, error, disable_after_s)


async def _fail(conn: Conn, endpoint_id: int, error: str, disable_after_s: float) -> bool:
    """The endpoint failed now: failing since when? Disabled (with an alert) once failing
    for `disable_after_s`; True if disabled now."""
    row = await conn.fetchrow(
        "UPDATE webhook_endpoints SET failing_since = coalesce(failing_since, now())"
        " WHERE id = $1 RETURNING failing_since, brand_id, url,"
        " failing_since < now() - make_interval(secs => $2) AS too_long",
        endpoint_id, disable_after_s,
    )  # fmt: skip
    assert row is not None
    if not row["too_long"]:
        return False
    reason = f"failing since {row['failing_since'].isoformat()}: {error[:200]}"
    await conn.execute(
        "UPDATE webhook_endpoints SET enabled = false, disabled_at = now(),"
        " disabled_reason = $2 WHERE id = $1",
        endpoint_id, reason,
    )  # fmt: skip
    await conn.execute(
        "INSERT INTO alerts (brand_id, kind, subject, message) VALUES ($1, $2, $3, $4)"
        " ON CONFLICT DO NOTHING",
        row["brand_id"], "webhook_endpoint_disabled", str(endpoint_id),
        f"webhook endpoint {endpoint_id} ({row['url']}) was disabled: {reason}",
    )  # fmt: skip
    return True


class Attempt(msgspec.Struct, frozen=True):
    event_id: int
    type: str
    status: str
    attempts: int
    last_code: int | None
    last_error: str | None
    next_at: datetime
    delivered_at: datetime | None


async def recent(pool: Pool, brand_id: int, endpoint_id: int, limit: int = 50) -> list[Attempt]:
    """The endpoint's latest events and what became of them."""
    await get(pool, brand_id, endpoint_id)
    rows = await pool.fetch(
        "SELECT d.event_id, v.type, d.status, d.attempts, d.last_code, d.last_error,"
        " d.next_at, d.delivered_at FROM webhook_deliveries d"
        " JOIN webhook_events v ON v.id = d.event_id WHERE d.endpoint_id = $1"
        " ORDER BY d.event_id DESC LIMIT $2",
        endpoint_id, limit,
    )  # fmt: skip
    return [Attempt(*r) for r in rows]


# --- message.delivered and message.failed: read from the receipt log -----------------------


class ReceiptStream(msgspec.Struct, frozen=True):
    """An endpoint that asked for message events, due to read on from `after`."""

    endpoint_id: int
    brand_id: int
    url: str
    secret: str
    event_types: list[str]
    after: int
    attempts: int


async def receipt_streams(pool: Pool, types: Sequence[str]) -> list[ReceiptStream]:
    """Enabled endpoints that asked for any of `types`, due now, with log rows to read."""
    rows = await pool.fetch(
        """
        SELECT id, brand_id, url, secret, event_types, receipts_after, receipts_attempts
        FROM webhook_endpoints
        WHERE enabled AND event_types && $1::text[] AND receipts_next_at <= now()
          AND receipts_after < (SELECT coalesce(max(id), 0) FROM receipt_log)
        ORDER BY id LIMIT 16
        """,
        list(types),
    )
    return [ReceiptStream(*r) for r in rows]


async def receipt_events(
    pool: Pool, stream: ReceiptStream, statuses: Sequence[str], log_rows: int
) -> tuple[list[dict[str, object]], int]:
    """The brand's final receipts in the next `log_rows` rows of the log (one per fold),
    first report of each (message, status) kept; and the last row read."""
    last: int | None = await pool.fetchval(
        "SELECT max(id) FROM (SELECT id FROM receipt_log WHERE id > $1 ORDER BY id LIMIT $2) x",
        stream.after, log_rows,
    )  # fmt: skip
    if last is None:
        return [], stream.after
    rows = await pool.fetch(
        """
        SELECT DISTINCT ON (m.id, e->>'status')
               m.id::text AS message_id, e->>'status' AS status, e->>'error_code' AS error_code,
               e->>'carrier' AS carrier, e->>'occurred_at' AS occurred_at,
               m.campaign_id, m.subscriber_id, m.channel, l.recorded_at
        FROM receipt_log l CROSS JOIN LATERAL json_array_elements(l.events) AS e
        JOIN messages m ON m.id = clarion_uuid_or_null(e->>'message_id')
        WHERE l.id > $1 AND l.id <= $2 AND m.brand_id = $3 AND e->>'status' = ANY($4::text[])
        ORDER BY m.id, e->>'status', l.id
        """,
        stream.after, last, stream.brand_id, list(statuses),
    )  # fmt: skip
    return [dict(r) for r in rows], last


async def receipts_posted(pool: Pool, endpoint_id: int, up_to: int) -> None:
    await pool.execute(
        "UPDATE webhook_endpoints SET receipts_after = greatest(receipts_after, $2),"
        " receipts_attempts = 0, failing_since = NULL WHERE id = $1",
        endpoint_id, up_to,
    )  # fmt: skip


async def receipts_failed(
    pool: Pool, endpoint_id: int, *, error: str, retry_after_s: float, disable_after_s: float
) -> bool:
    """A failed post of message events: tried again after `retry_after_s`; the endpoint is
    disabled (with an alert) once failing for `disable_after_s`. True if disabled now."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            "UPDATE webhook_endpoints SET receipts_attempts = receipts_attempts + 1,"
            " receipts_next_at = now() + make_interval(secs => $2) WHERE id = $1",
            endpoint_id, retry_after_s,
        )  # fmt: skip
        return await _fail(conn, endpoint_id, error, disable_after_s)
