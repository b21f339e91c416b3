"""The recommendations model (intelligence/recs.py): it finds what people buy next better
than popularity where tastes are clear, recommends nothing out of stock, and leaves the
people it never saw to the popularity list."""

from __future__ import annotations

import numpy as np

from clarion.harness import shop
from clarion.intelligence import recs
from clarion.sim.world import World, WorldConfig

# A world whose people keep to one or two categories and browse often: a model that learns
# tastes can beat popularity by far (the default world's ceiling is +32 %: see
# `clarion experiment recs`).
CLEAR = WorldConfig(seed=11, sessions=15.0, taste_alpha=0.1, taste_weight=0.95,
                    popularity_exponent=0.6)  # fmt: skip


def interactions(
    world: World, n: int, *, in_stock: np.ndarray | None = None
) -> tuple[recs.Interactions, dict[int, str]]:
    people = {1000 + i: f"+1512555{i:04d}" for i in range(n)}
    copies, held = shop.histories(world, people, "session")
    ids = [p.id for p in world.catalog]
    position = {p: i for i, p in enumerate(ids)}
    return recs.Interactions(
        subscribers=np.array([c[1] for c in copies], dtype=np.int64),
        products=np.array([position[c[5][0]["product_id"]] for c in copies], dtype=np.int64),
        weights=np.array([recs.WEIGHTS[c[2]] for c in copies], dtype=np.float32),
        product_ids=ids,
        in_stock=np.ones(len(ids), dtype=bool) if in_stock is None else in_stock,
    ), held


def test_the_model_finds_held_out_orders_better_than_popularity_where_tastes_are_clear() -> None:
    data, held = interactions(World(CLEAR), 2000)
    fitted = recs.fit(data)
    lists = dict(zip(fitted.subscribers.tolist(), fitted.lists, strict=True))
    popular = fitted.popular[:5]
    model = np.mean([p in lists.get(s, popular)[:5] for s, p in held.items()])
    baseline = np.mean([p in popular for p in held.values()])
    assert len(held) > 1000
    assert model > 1.3 * baseline, (model, baseline)
    assert all(len(ps) == recs.LIST_SIZE for ps in fitted.lists)
    assert fitted.summary["subscribers"] == len(fitted.subscribers)


def test_no_product_out_of_stock_is_recommended_or_popular() -> None:
    world = World(CLEAR)
    full, _ = interactions(world, 500)
    gone = set(recs.popularity(full, n=20))  # the twenty most popular sell out
    stock = np.array([p.id not in gone for p in world.catalog])
    data, _ = interactions(world, 500, in_stock=stock)
    fitted = recs.fit(data)
    assert not gone & {p for ps in fitted.lists for p in ps}
    assert not gone & set(fitted.popular)
    assert len(fitted.popular) == recs.POPULAR_SIZE


def test_only_people_with_events_are_fitted_the_others_are_newcomers() -> None:
    data, _ = interactions(World(CLEAR), 300)
    fitted = recs.fit(data)
    assert set(fitted.subscribers.tolist()) == set(data.subscribers.tolist())
    assert 999 not in set(fitted.subscribers.tolist())
