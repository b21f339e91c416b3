"""`clarion experiment recs`: does the recommendations model find what people buy next
better than popularity does?

The simulator's world (`clarion.sim.world`) has people with tastes and a catalog; each
person's shop history is written into Clarion as a subscriber's events, except their last
order, which is held out. Clarion trains its model (`service.recs.train`, timed) on what
it was given, and each person's held-out order is looked for in the first five products
of their list (the model's) and of the popularity list (the baseline): hit-rate@5. The
lift is model / popularity - 1, with a 95 % interval from a paired bootstrap over the
people (seeded).

What is held out: the last order and the session that led to it, that is every event
from the view that began it (a view and a cart of the same product minutes before the
order). Holding out the order alone would leave that view and cart in the training data,
and the model would "predict" an order from the cart it came from (`holdout="order"`
measures that too, for comparison). A person whose only events were in that session is a
newcomer to the model and gets popularity in both arms.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np

from clarion import bootstrap
from clarion.bus.embedded import free_port
from clarion.config import Settings
from clarion.domain.catalog import Product
from clarion.domain.contacts import new_subscriber
from clarion.harness.seed import synthetic_rows
from clarion.service import recs as service_recs
from clarion.sim.world import ShopEvent, World, WorldConfig
from clarion.store import brands, catalog, events
from clarion.store.db import Pool
from clarion.store.events import EventCopy

START = datetime(2026, 5, 1, tzinfo=UTC)  # the histories' first day
DAYS = 180.0
TOP = 5  # hit-rate@5
_CHUNK = 50_000  # people written at a time (flat memory in N)
# what the model's summary says of its training, reported
_TRAIN_FIGURES = (
    "read_s", "fit_s", "rank_s", "rows", "subscribers", "products", "factors", "iterations",
    "regularization", "alpha",
)  # fmt: skip


@dataclass(frozen=True)
class RecsExperiment:
    subscribers: int = 10_000
    seed: int = 2026  # the world's
    resamples: int = 1000
    holdout: str = "session"  # or "order": the last order alone
    data_dir: Path | None = None


async def run(opts: RecsExperiment) -> dict[str, Any]:
    """Start Postgres and NATS (embedded, in a throwaway data directory unless one is
    given), run the experiment, report."""
    root = Path(tempfile.mkdtemp(prefix="clarion-recs-")) if opts.data_dir is None else None
    root = root or opts.data_dir
    assert root is not None
    settings = replace(Settings.from_env(), data_dir=root, bus_namespace=f"recs{free_port()}")
    try:
        async with bootstrap.infrastructure(settings, pool_size=4) as infra:
            return await _experiment(infra.pool, opts)
    finally:
        if opts.data_dir is None:
            shutil.rmtree(root, ignore_errors=True)


async def _experiment(pool: Pool, opts: RecsExperiment) -> dict[str, Any]:
    world = World(WorldConfig(seed=opts.seed))
    seeding = time.perf_counter()
    brand_id = await brands.create_brand(
        pool, slug=f"recs-{int(time.time() * 1000)}", name="Northwind", sender="+15125550100"
    )
    await _write_catalog(pool, brand_id, world)
    held: dict[int, str] = {}  # subscriber id → the product of their held-out order
    written = 0
    rows = synthetic_rows(opts.subscribers, seed=opts.seed)
    while chunk := list(islice(rows, _CHUNK)):
        subs = await asyncio.to_thread(lambda c=chunk: [new_subscriber(r) for r in c])
        await brands.import_subscribers(pool, brand_id, subs, source="experiment", analyze=False)
        ids = await _ids(pool, brand_id, [s.phone for s in subs if s.phone])
        copies, chunk_held = await asyncio.to_thread(_histories, world, ids, opts.holdout)
        for k in range(0, len(copies), _CHUNK):
            written += await events.copy_events(pool, brand_id, copies[k : k + _CHUNK])
        held.update(chunk_held)
    await pool.execute("ANALYZE subscribers; ANALYZE events")
    seed_s = time.perf_counter() - seeding

    training = time.perf_counter()
    model = await service_recs.train(pool, brand_id, now=START + timedelta(days=DAYS + 1))
    fit_s = time.perf_counter() - training
    if model is None:
        raise RuntimeError("no model: the world wrote no shop events")
    lists = await _lists(pool, model.id)
    popular = [str(p) for p in model.summary["popular"]][:TOP]
    people = sorted(held)
    treated = np.array([held[s] in lists.get(s, popular)[:TOP] for s in people], dtype=float)
    baseline = np.array([held[s] in popular for s in people], dtype=float)
    known = np.array([s in lists for s in people])
    low, high = paired_lift_interval(treated, baseline, opts.resamples, seed=opts.seed)
    b, t = baseline.mean(), treated.mean()
    summary = model.summary
    return {
        "lift": round(t / b - 1, 4) if b else None,
        "ci_low": round(low, 4),
        "ci_high": round(high, 4),
        "baseline": round(b, 4),  # popularity's hit-rate@5
        "treatment": round(t, 4),  # the model's
        "n": len(people),  # people with a held-out order
        "metric": f"hit-rate@{TOP} of the held-out last order",
        "holdout": opts.holdout,
        "fit_s": round(fit_s, 2),  # service.recs.train: read, fit, rank, write
        "subscribers": opts.subscribers,
        "events": written,
        # people with a held-out order whom the model knew (the others got popularity)
        "n_known": int(known.sum()),
        "treatment_known": round(float(treated[known].mean()), 4) if known.any() else None,
        "baseline_known": round(float(baseline[known].mean()), 4) if known.any() else None,
        "model_version": model.version,
        "train": {k: summary.get(k) for k in _TRAIN_FIGURES},
        "seed_s": round(seed_s, 1),
        "world_seed": opts.seed,
    }


async def _write_catalog(pool: Pool, brand_id: int, world: World) -> None:
    products = [
        Product(id=p.id, name=p.name, url=p.url, price=p.price, categories=[p.category])
        for p in world.catalog
    ]
    for k in range(0, len(products), 1000):
        await catalog.upsert(pool, brand_id, products[k : k + 1000])


async def _ids(pool: Pool, brand_id: int, phones: Sequence[str]) -> dict[int, str]:
    rows = await pool.fetch(
        "SELECT id, phone FROM subscribers WHERE brand_id = $1 AND phone = ANY($2::text[])",
        brand_id, list(phones),
    )  # fmt: skip
    return {r["id"]: r["phone"] for r in rows}


def _histories(
    world: World, people: dict[int, str], holdout: str
) -> tuple[list[EventCopy], dict[int, str]]:
    """Each person's events to write, and the product of their held-out order."""
    copies: list[EventCopy] = []
    held: dict[int, str] = {}
    for sid, phone in people.items():
        history = world.history(phone, start=START, days=DAYS)
        kept = history
        last = _last_order(history)
        if last is not None:
            held[sid] = history[last].product.id
            cut = _session_start(history, last) if holdout == "session" else last
            kept = history[:cut] + ([] if holdout == "session" else history[last + 1 :])
        for i, e in enumerate(kept):
            copies.append(_copy(sid, i, e))
    return copies, held


def _last_order(history: Sequence[ShopEvent]) -> int | None:
    for i in range(len(history) - 1, -1, -1):
        if history[i].type == "ordered":
            return i
    return None


def _session_start(history: Sequence[ShopEvent], order: int) -> int:
    """Where the session of the order at `order` began: its product's view before its cart
    (the world's sessions are view → cart → order of one product). Everything from there
    on is after the moment the recommendations would have been sent."""
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


async def _lists(pool: Pool, model_id: int) -> dict[int, list[str]]:
    rows = await pool.fetch(
        "SELECT subscriber_id, product_ids FROM recommendations WHERE model_id = $1", model_id
    )
    return {r["subscriber_id"]: r["product_ids"] for r in rows}


def paired_lift_interval(
    treated: np.ndarray[Any, Any], baseline: np.ndarray[Any, Any], resamples: int, *, seed: int
) -> tuple[float, float]:
    """The 95 % interval of treated.mean() / baseline.mean() - 1, by a paired bootstrap:
    people drawn with replacement, each with both outcomes."""
    n = len(treated)
    if n == 0:
        return (0.0, 0.0)
    rng = np.random.default_rng(seed)
    lifts = np.empty(resamples)
    for k in range(resamples):
        counts = np.bincount(rng.integers(0, n, size=n), minlength=n)
        b = counts @ baseline
        lifts[k] = (counts @ treated) / b - 1 if b else np.nan
    low, high = np.nanpercentile(lifts, [2.5, 97.5])
    return float(low), float(high)
