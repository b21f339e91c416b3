"""Provider webhooks onto the bus: verified and parsed by the provider's adapter, checked,
and published in the batch they came in, answered only once stored. A provider that sees an
error retries, and the batch id makes the retry a no-op. Also what a probe asks: whether
this process can reach its dependencies."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any, Literal

import asyncpg
import msgspec

from clarion.bus.jetstream import Bus, encode
from clarion.domain.ports import Provider
from clarion.domain.records import InboundBatch, ReceiptBatch
from clarion.errors import InvalidInput, TooLarge
from clarion.store.db import ping

# The longest batch id a webhook may name (it becomes the bus's de-duplication key).
MAX_BATCH_ID_CHARS = 200
# A NUL character as it comes in a body: raw, JSON-escaped, form-encoded.
_NUL_FORMS = (b"\x00", b"\\u0000", b"%00")
# Each readiness check must answer within this time.
READY_TIMEOUT_S = 2.0

Kind = Literal["status", "inbound"]


def _batch(kind: Kind, key: str, provider: str, items: list[Any]) -> msgspec.Struct:
    if kind == "status":
        return ReceiptBatch(batch_id=key, provider=provider, receipts=items)
    return InboundBatch(batch_id=key, provider=provider, messages=items)


async def accept(
    bus: Bus, provider: Provider, kind: Kind, url: str, headers: Mapping[str, str], body: bytes
) -> int:
    """Verify, parse and publish one webhook (`kind`: status reports or inbound messages);
    how many items it carried. Raises `ForgedWebhook` (signature), `TooLarge` (an item over
    what the bus carries) or `InvalidInput` (malformed; a NUL character, which Postgres text
    cannot hold, so its batch would fail at every retry and hold back every receipt folded
    with it; a batch id over `MAX_BATCH_ID_CHARS`)."""
    items: list[Any]
    if kind == "status":
        batch_id, items = provider.parse_status_webhook(url, headers, body)
    else:
        batch_id, items = provider.parse_inbound_webhook(url, headers, body)
    if any(nul in body for nul in _NUL_FORMS):
        raise InvalidInput("a NUL character in the webhook")
    if not 0 < len(batch_id) <= MAX_BATCH_ID_CHARS:
        raise InvalidInput(f"batch id must have 1 to {MAX_BATCH_ID_CHARS} characters")
    key = f"{provider.name}:{batch_id}"
    hop = "receipts" if kind == "status" else "inbound"
    limit = bus.max_payload_bytes
    # A batch encodes smaller than the JSON or form it came in: only a body near the bus's
    # limit is measured (an encoding more per webhook otherwise).
    parts = (
        [(key, _batch(kind, key, provider.name, items))]
        if 2 * len(body) <= limit
        else fitting(key, items, lambda k, i: _batch(kind, k, provider.name, i), limit)
    )
    for part_key, part in parts:
        await bus.publish(hop, part, msg_id=part_key)
    return len(items)


def fitting(
    key: str,
    items: list[Any],
    make: Callable[[str, list[Any]], msgspec.Struct],
    limit_bytes: int,
) -> list[tuple[str, msgspec.Struct]]:
    """The items as (key, batch) pairs the bus can carry: one batch when it fits, else
    halves, recursively. The split depends only on the items, so a provider's retry of the
    same webhook makes the same keys and the bus drops the repeat."""
    whole = make(key, items)
    if len(encode(whole)) <= limit_bytes:
        return [(key, whole)]
    if len(items) <= 1:
        raise TooLarge(f"one item is larger than the bus carries ({limit_bytes} bytes)")
    half = len(items) // 2
    return [
        *fitting(f"{key}/0", items[:half], make, limit_bytes),
        *fitting(f"{key}/1", items[half:], make, limit_bytes),
    ]


def alive(bus: Bus) -> bool:
    """Whether the bus client may still (re)connect: nats-py reconnects by itself; a closed
    client never comes back, and the process should be restarted."""
    return not bus.nc.is_closed


async def readiness(pool: asyncpg.Pool | None, bus: Bus) -> dict[str, str]:
    """Each dependency's answer now ("ok", or "down: why"): Postgres a query, NATS a
    JetStream round trip, each within `READY_TIMEOUT_S`."""
    postgres, nats = await asyncio.gather(_check_postgres(pool), _check_nats(bus))
    return {"postgres": postgres, "nats": nats}


async def _check_postgres(pool: asyncpg.Pool | None) -> str:
    if pool is None:
        return "ok"  # this process does not use the database over HTTP
    try:
        async with asyncio.timeout(READY_TIMEOUT_S):
            await ping(pool)
    except Exception as exc:  # any failure is the answer, not an error of the probe
        return f"down: {type(exc).__name__}"
    return "ok"


async def _check_nats(bus: Bus) -> str:
    if not bus.nc.is_connected:
        return "down: not connected"
    try:
        async with asyncio.timeout(READY_TIMEOUT_S):
            await bus.js.account_info()
    except Exception as exc:  # as above
        return f"down: {type(exc).__name__}"
    return "ok"
