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
from dataclasses import dataclass, replace
from datetime import timedelta
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np

from clarion import bootstrap
from clarion.bus.embedded import free_port
from clarion.config import Settings
from clarion.domain.contacts import NewSubscriber, new_subscriber
from clarion.harness import shop
from clarion.harness.seed import synthetic_rows
from clarion.service import recs as service_recs
from clarion.sim.world import World, WorldConfig
from clarion.store import brands
from clarion.store.db import Pool

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
    await shop.write_catalog(pool, brand_id, world)
    held: dict[int, str] = {}  # subscriber id → the product of their held-out order
    phones: dict[int, str] = {}  # subscriber id → the person's key
    written = 0
    rows = synthetic_rows(opts.subscribers, seed=opts.seed)
    while chunk := list(islice(rows, _CHUNK)):
        subs = await asyncio.to_thread(_normalised, chunk)
        await brands.import_subscribers(pool, brand_id, subs, source="experiment", analyze=False)
        ids = await shop.people(pool, brand_id, [s.phone for s in subs if s.phone])
        n, chunk_held = await shop.write_histories(pool, brand_id, world, ids, holdout=opts.holdout)
        written += n
        held.update(chunk_held)
        phones.update(ids)
    await pool.execute("ANALYZE subscribers; ANALYZE events")
    seed_s = time.perf_counter() - seeding

    training = time.perf_counter()
    model = await service_recs.train(pool, brand_id, now=shop.START + timedelta(days=shop.DAYS + 1))
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
    ceiling = await asyncio.to_thread(_ceiling, world, phones, held)
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
        # the world's truth (each person's true odds of each product, which Clarion never
        # reads): the hit-rate@5 of the best any model could do, and its lift
        "ceiling": round(ceiling, 4),
        "ceiling_lift": round(ceiling / b - 1, 4) if b else None,
        "n_known": int(known.sum()),
        "treatment_known": round(float(treated[known].mean()), 4) if known.any() else None,
        "baseline_known": round(float(baseline[known].mean()), 4) if known.any() else None,
        "model_version": model.version,
        "train": {k: summary.get(k) for k in _TRAIN_FIGURES},
        "seed_s": round(seed_s, 1),
        "world_seed": opts.seed,
    }


def _ceiling(world: World, phones: dict[int, str], held: dict[int, str]) -> float:
    """The hit-rate@5 of each person's own five likeliest products (their true odds)."""
    if not held:
        return 0.0
    ids = [p.id for p in world.catalog]
    hits = 0
    for sid, product in held.items():
        odds = np.asarray(world.product_odds(phones[sid]))
        hits += product in {ids[i] for i in np.argpartition(-odds, TOP)[:TOP]}
    return hits / len(held)


def _normalised(rows: list[dict[str, str]]) -> list[NewSubscriber]:
    return [new_subscriber(r) for r in rows]


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
