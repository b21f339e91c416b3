"""Events: stored once per brand and client id (a retried request changes nothing), tied to
the brand's subscribers."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import msgspec

from clarion.domain.events import Event
from clarion.store.db import Pool

_json = msgspec.json.Encoder().encode


async def subscriber_ids(
    pool: Pool, brand_id: int, *, ids: Sequence[int], phones: Sequence[str], emails: Sequence[str]
) -> tuple[set[int], dict[str, int], dict[str, int]]:
    """Of these ids, phones (E.164) and emails, those of the brand's subscribers (erased ones
    are no one's): (ids, id by phone, id by email)."""
    rows = await pool.fetch(
        "SELECT id, phone, email FROM subscribers WHERE brand_id = $1 AND erased_at IS NULL"
        " AND (id = ANY($2::bigint[]) OR phone = ANY($3::text[]) OR email = ANY($4::text[]))",
        brand_id, list(ids), list(phones), list(emails),
    )  # fmt: skip
    wanted_ids, wanted_phones, wanted_emails = set(ids), set(phones), set(emails)
    return (
        {r["id"] for r in rows if r["id"] in wanted_ids},
        {r["phone"]: r["id"] for r in rows if r["phone"] in wanted_phones},
        {r["email"]: r["id"] for r in rows if r["email"] in wanted_emails},
    )


async def append(pool: Pool, brand_id: int, events: Sequence[Event]) -> dict[str, int]:
    """Store the events; returns the id of each stored now, by client id (the others were
    stored before, or twice in this batch: the first is kept)."""
    if not events:
        return {}
    rows = await pool.fetch(
        """
        INSERT INTO events
            (brand_id, client_id, subscriber_id, type, occurred_at, value, properties, items)
        SELECT $1, e.client_id, e.subscriber_id, e.type, e.occurred_at, e.value,
               e.properties::jsonb, e.items::jsonb
        FROM unnest($2::text[], $3::bigint[], $4::text[], $5::timestamptz[], $6::float8[],
                    $7::text[], $8::text[])
            AS e(client_id, subscriber_id, type, occurred_at, value, properties, items)
        ON CONFLICT (brand_id, client_id) DO NOTHING
        RETURNING client_id, id
        """,
        brand_id,
        [e.client_id for e in events],
        [e.subscriber_id for e in events],
        [e.type for e in events],
        [e.occurred_at for e in events],
        [e.value for e in events],
        # as JSON text: a list would be taken for one more dimension of the array
        [None if e.properties is None else _json(e.properties).decode() for e in events],
        [None if e.items is None else _json(e.items).decode() for e in events],
    )
    return {r["client_id"]: r["id"] for r in rows}


# (client id, subscriber id, type, occurred_at, value, items): an event as `copy_events` takes it
EventCopy = tuple[str, int, str, datetime, float | None, list[dict[str, Any]] | None]


async def copy_events(pool: Pool, brand_id: int, rows: Sequence[EventCopy]) -> int:
    """COPY events in, unchecked and new (a backfill, a harness's seeding: a client id
    already stored fails the whole COPY). Returns how many."""
    async with pool.acquire() as conn:
        await conn.copy_records_to_table(
            "events",
            records=[(brand_id, c, s, t, at, v, items) for c, s, t, at, v, items in rows],
            columns=("brand_id", "client_id", "subscriber_id", "type", "occurred_at", "value",
                     "items"),
        )  # fmt: skip
    return len(rows)
