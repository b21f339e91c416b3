"""The simulator's world as a brand's shop in Clarion: its catalog, and its people's shop
histories written as their subscribers' events (in bulk), for `clarion experiment recs`
and `clarion bench --recs`."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime

from clarion.domain.catalog import Product
from clarion.sim.world import ShopEvent, World
from clarion.store import catalog, events
from clarion.store.db import Pool
from clarion.store.events import EventCopy

START = datetime(2026, 5, 1, tzinfo=UTC)  # the histories' first day
DAYS = 180.0
_COPY_ROWS = 50_000


async def write_catalog(pool: Pool, brand_id: int, world: World) -> int:
    """The world's catalog as the brand's products (all in stock)."""
    products = [
        Product(id=p.id, name=p.name, url=p.url, price=p.price, categories=[p.category])
        for p in world.catalog
    ]
    for k in range(0, len(products), 1000):
        await catalog.upsert(pool, brand_id, products[k : k + 1000])
    return len(products)


async def write_histories(
    pool: Pool, brand_id: int, world: World, people: dict[int, str], *, holdout: str | None
) -> tuple[int, dict[int, str]]:
    """Write each person's shop history (subscriber id → their key, the phone) as events,
    less what `holdout` keeps back: "session", the last order and the session that led to
    it; "order", the last order alone; None, nothing. Returns how many events were written,
    and the product of each held-out order."""
    copies, held = await asyncio.to_thread(histories, world, people, holdout)
    written = 0
    for k in range(0, len(copies), _COPY_ROWS):
        written += await events.copy_events(pool, brand_id, copies[k : k + _COPY_ROWS])
    return written, held


def histories(
    world: World, people: dict[int, str], holdout: str | None
) -> tuple[list[EventCopy], dict[int, str]]:
    """`write_histories`' events to write (client id, subscriber, type, time, value,
    items) and held-out orders."""
    copies: list[EventCopy] = []
    held: dict[int, str] = {}
    for sid, key in people.items():
        history = world.history(key, start=START, days=DAYS)
        kept = history
        last = _last_order(history) if holdout is not None else None
        if last is not None:
            held[sid] = history[last].product.id
            if holdout == "session":
                kept = history[: _session_start(history, last)]
            else:
                kept = history[:last] + history[last + 1 :]
        copies += [_copy(sid, i, e) for i, e in enumerate(kept)]
    return copies, held


def _last_order(history: Sequence[ShopEvent]) -> int | None:
    for i in range(len(history) - 1, -1, -1):
        if history[i].type == "ordered":
            return i
    return None


def _session_start(history: Sequence[ShopEvent], order: int) -> int:
    """Where the session of the order at `order` began: its product's view before its cart
    (the world's sessions are view → cart → order of one product). Everything from there
    on happened after the moment the recommendations would have been sent."""
    product, wanted = history[order].product.id, ["added_to_cart", "viewed_product"]
    for i in range(order - 1, -1, -1):
        if history[i].product.id == product and history[i].type == wanted[0]:
            wanted.pop(0)
            if not wanted:
                return i
    return order


def _copy(sid: int, i: int, e: ShopEvent) -> EventCopy:
    item = {"product_id": e.product.id, "quantity": 1, "price": e.product.price}
    value = e.product.price if e.type == "ordered" else None
    return (f"w{sid}-{i}", sid, e.type, e.at, value, [item])


async def people(pool: Pool, brand_id: int, phones: Sequence[str]) -> dict[int, str]:
    """The brand's subscribers of these phones: subscriber id → phone (a person's key)."""
    rows = await pool.fetch(
        "SELECT id, phone FROM subscribers WHERE brand_id = $1 AND phone = ANY($2::text[])",
        brand_id, list(phones),
    )  # fmt: skip
    return {r["id"]: r["phone"] for r in rows}
