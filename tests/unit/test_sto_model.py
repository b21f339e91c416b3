"""The send-time model on the simulator's world: it finds people's hours from deliveries and
clicks alone, borrows the brand's pattern for a thin history, and everyone's for a brand with
little of its own."""

from __future__ import annotations

import random

import numpy as np

from clarion.intelligence import sto
from clarion.sim.world import World, WorldConfig


def _history(world: World, n: int, campaigns: int, seed: int) -> list[tuple[int, int, int, int]]:
    rng = random.Random(seed)
    counts: dict[tuple[int, int], list[int]] = {}
    for _ in range(campaigns):
        hour = rng.randrange(8, 21)
        for i in range(n):
            clicked = world.clicks(f"p{i}", hour + rng.random(), rng)
            cell = counts.setdefault((i, hour), [0, 0])
            cell[0] += 1
            cell[1] += int(clicked)
    return [(i, h, s, c) for (i, h), (s, c) in counts.items()]


def test_the_model_finds_better_hours_than_a_fixed_time() -> None:
    world = World(WorldConfig(seed=5))
    n = 600
    fitted = sto.fit(_history(world, n, 40, seed=1))
    best = {
        int(sid): next(int(h) for h in row if 8 <= h < 21)
        for sid, row in zip(fitted.subscriber_ids, fitted.ranked, strict=True)
    }
    chosen = np.mean([world.click_probability(f"p{i}", best[i] + 0.5) for i in range(n)])
    noon = np.mean([world.click_probability(f"p{i}", 12.5) for i in range(n)])
    oracle = np.mean(
        [max(world.click_probability(f"p{i}", h + 0.5) for h in range(8, 21)) for i in range(n)]
    )
    assert chosen > 1.25 * noon
    assert chosen < oracle
    # the curve falls off from the peak, as the world's does
    assert fitted.curve[0] > 2 * fitted.curve[6]


def test_one_click_moves_a_subscriber_toward_its_hour_and_none_keeps_the_brands() -> None:
    rows = []
    for sid in range(1, 201):  # the brand: everyone clicks in the evening
        rows += [(sid, h, 2, 1 if h == 19 else 0) for h in range(8, 21)]
    rows += [(500, 10, 1, 1)]  # one delivery, at 10:00, clicked
    rows += [(501, 14, 1, 0)]  # one delivery, not clicked
    fitted = sto.fit(rows)
    ranked = dict(zip(fitted.subscriber_ids.tolist(), fitted.ranked.tolist(), strict=True))
    assert fitted.brand_ranked[0] == 19
    assert ranked[1][0] == 19
    assert ranked[500][0] in (9, 10, 11)  # one click says more than the brand's pattern
    assert ranked[501][0] == 19  # a non-click at 14:00 says little: the brand's evening


def test_a_brand_with_no_history_of_its_own_borrows_everyones_pattern() -> None:
    evening = tuple(1.0 if h == 20 else 0.0 for h in range(24))
    others = [sto.Totals((100.0,) * 24, (5.0,) * 24, evening)]
    fitted = sto.fit([(1, 12, 1, 0)], others)
    assert fitted.peaks[20] > 0.4
    assert sto.fit([]).subscriber_ids.size == 0
    assert sorted(sto.fit([]).brand_ranked) == list(range(24))


def test_brand_hours_are_read_back_from_a_summary() -> None:
    assert sto.brand_hours({"brand_hours": list(range(23, -1, -1))})[0] == 23
    assert sto.brand_hours({}) == list(range(24))
    assert sto.brand_hours({"brand_hours": [1, 2]}) == list(range(24))
