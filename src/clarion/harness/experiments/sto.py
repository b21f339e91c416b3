"""`clarion experiment sto`: does sending at each subscriber's best time earn more clicks than
sending everyone the same campaign at a fixed time?

1. **The world.** N subscribers (the bench's synthetic list: real area codes in every US
   zone) are people of the simulator's world (`clarion.sim.world`, seeded), each with
   engaged hours Clarion never reads.
2. **A history.** The brand has sent `history` (60) campaigns with a tracked link, one every
   two days (three a week, as SMS brands do), each at a local hour of its own (08:00–20:00
   on each subscriber's clock, a minute within it per subscriber): a brand that varies its
   send times. Each person clicked
   as the world says for the local time the message reached them. The messages and clicks
   are written to the tables the pipeline and the redirect write (`store.history`).
3. **The model.** Clarion fits its send-time model from those tables (`service.sto.train`,
   what the `intelligence` worker role runs): a new model version.
4. **The campaign, split at random.** Each subscriber is assigned by a seeded coin to one of
   two arms of the same campaign: **best time** — the moment `service.sto.moments` gives
   within a 24-hour window from 01:00 Eastern (what a best-time campaign's personalize stage
   computes for each message), or **fixed** — 12:00 on each subscriber's clock (a local-time
   send, the marketer's usual choice). The world draws each click for the local time the
   message reaches them.

Subscribers whose zone is not known (a number whose area code spans zones: 1 % of the list)
are left out: the world cannot say what time it is for them.

The send itself is not run through the pipeline: its moments span a day of wall time. What
the pipeline does with a best-time campaign — each message held until its moment, the
compliance window still governing — is tested on its own (tests/integration/test_sto.py).

The campaign is sent `test_campaigns` (10) times, on ten days, each split at random anew:
one campaign to a list of 1,000 has too few clicks (about 80) to measure a lift of a fifth.

Figures: `baseline` and `treatment` are the arms' click rates, `lift` = treatment / baseline
− 1 with a 95 % confidence interval (a bootstrap over subscribers, each with all their sends),
`n` the messages. Besides: the expected rates (from the world's probabilities, no draws) of the
two arms, of everyone at the brand's one best hour, and of an oracle that knows each
person's best allowed hour — what any model could reach.
"""

from __future__ import annotations

import math
import random
import shutil
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from datetime import time as clock_time
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np

from clarion import bootstrap
from clarion.bus.embedded import free_port
from clarion.config import Settings
from clarion.domain.contacts import new_subscriber
from clarion.domain.ids import campaign_message_id
from clarion.domain.schedule import zone_of
from clarion.harness.seed import synthetic_rows
from clarion.intelligence.sto import ALLOWED_HOURS
from clarion.service import sto
from clarion.sim.world import World, WorldConfig, local_hour
from clarion.store import brands, campaigns, history
from clarion.store.history import PastMessage

EASTERN = zone_of("America/New_York")
FIXED_HOUR = 12
WINDOW_H = 24
_CHUNK = 50_000
_LINK = "https://northwind.example/sale"


async def run(
    subscribers: int = 1000,
    *,
    seed: int = 2026,
    history_campaigns: int = 60,
    test_campaigns: int = 10,
    data_dir: Path | None = None,
) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="clarion-sto-")) if data_dir is None else data_dir
    root.mkdir(parents=True, exist_ok=True)
    settings = replace(Settings.from_env(), data_dir=root, bus_namespace=f"sto{free_port()}")
    try:
        async with bootstrap.infrastructure(settings, pool_size=4) as infra:
            return await _experiment(infra, subscribers, seed, history_campaigns, test_campaigns)
    finally:
        if data_dir is None:
            shutil.rmtree(root, ignore_errors=True)


async def _experiment(
    infra: bootstrap.Infra, n: int, seed: int, history_campaigns: int, test_campaigns: int
) -> dict[str, Any]:
    pool = infra.pool
    started = time.perf_counter()
    world = World(WorldConfig(seed=seed))
    brand_id = await brands.create_brand(
        pool, slug=f"sto-{seed}-{int(time.time() * 1000)}", name="Northwind",
        sender="+15125550100",
    )  # fmt: skip
    rows = synthetic_rows(n, seed=seed)
    while chunk := list(islice(rows, _CHUNK)):
        await brands.import_subscribers(
            pool, brand_id, [new_subscriber(r) for r in chunk], source="experiment"
        )
    listed = await history.recipients(pool, brand_id)
    # a number whose area code spans zones (Alaska's 907) has none: the gate holds it to
    # the narrowest window of its zones, which the world cannot place — left out
    people = [p for p in listed if zone_of(p.timezone) is not None]
    now = datetime.now(UTC).replace(microsecond=0)
    rng = random.Random(f"{seed}:history")
    clicks = 0
    for k in range(history_campaigns):
        day = (now - timedelta(days=2 * (history_campaigns - k))).date()
        hour = rng.randrange(ALLOWED_HOURS.start, ALLOWED_HOURS.stop)
        campaign_id = await campaigns.create_campaign(
            pool, brand_id=brand_id, name=f"Past {k + 1}", body=f"Sale! {_LINK} STOP to end"
        )
        uid = str((await campaigns.get_campaign(pool, campaign_id)).uid)
        past = []
        for p in people:
            zone = zone_of(p.timezone) or UTC
            sent = datetime.combine(day, clock_time(hour, rng.randrange(60)), tzinfo=zone)
            clicked = world.clicks(p.phone, local_hour(sent, zone), rng)
            at = sent + timedelta(minutes=rng.expovariate(1 / 10)) if clicked else None
            clicks += clicked
            past.append(PastMessage(
                campaign_message_id(uid, "a", p.id), p.id, p.phone, sent.astimezone(UTC), at
            ))  # fmt: skip
        await history.past_campaign(pool, brand_id, campaign_id, _LINK, past)
    await history.analyze(pool)
    history_s = time.perf_counter() - started
    trained = time.perf_counter()
    model = await sto.train(pool, brand_id, now=now)
    train_s = time.perf_counter() - trained

    outcome: dict[bool, list[int]] = {True: [0, 0], False: [0, 0]}  # arm → [sent, clicks]
    # per subscriber (for the interval): sent and clicks in each arm
    tally = {p.id: [0, 0, 0, 0] for p in people}
    expected = {"best_time": 0.0, "fixed": 0.0, "brand_best_hour": 0.0, "oracle": 0.0}
    outside_window = 0
    brand_hour = _first_allowed(model.summary["brand_hours"] if model else [FIXED_HOUR])
    oracle = {p.id: max(world.click_probability(p.phone, h + 0.5) for h in ALLOWED_HOURS)
              for p in people}  # fmt: skip
    assert EASTERN is not None
    for t in range(test_campaigns):
        # each from 01:00 Eastern on a day of its own: every US zone's day within 24 hours
        start = datetime.combine(
            now.astimezone(EASTERN).date() + timedelta(days=1 + t), clock_time(1), tzinfo=EASTERN
        )
        coin = random.Random(f"{seed}:arms:{t}")
        arms = {p.id: coin.random() < 0.5 for p in people}  # True: best time
        moments: dict[int, datetime] = {}
        for i in range(0, len(people), 1000):
            page = [(p.id, p.timezone) for p in people[i : i + 1000] if arms[p.id]]
            moments.update(await sto.moments(pool, model, page, start=start, window_h=WINDOW_H))
        draw = random.Random(f"{seed}:campaign:{t}")
        for p in people:
            zone = zone_of(p.timezone) or UTC
            fixed = datetime.combine(
                start.astimezone(zone).date(), clock_time(FIXED_HOUR), tzinfo=zone
            )
            at = moments[p.id] if arms[p.id] else fixed
            local = local_hour(at, zone)
            outside_window += not ALLOWED_HOURS.start <= local < ALLOWED_HOURS.stop
            arm = outcome[arms[p.id]]
            arm[0] += 1
            hit = int(world.clicks(p.phone, local, draw))
            arm[1] += hit
            mine = tally[p.id]
            mine[0 if arms[p.id] else 2] += 1
            mine[1 if arms[p.id] else 3] += hit
            expected["best_time" if arms[p.id] else "fixed"] += world.click_probability(
                p.phone, local
            )
            expected["brand_best_hour"] += world.click_probability(p.phone, brand_hour + 0.5)
            expected["oracle"] += oracle[p.id]
    (n_t, c_t), (n_b, c_b) = outcome[True], outcome[False]
    treatment, baseline = c_t / max(n_t, 1), c_b / max(n_b, 1)
    lift = (treatment / baseline - 1) if baseline else 0.0
    low, high = _cluster_ci(list(tally.values()), seed)
    return {
        "experiment": "sto",
        "lift": round(lift, 4),
        "ci_low": round(low, 4),
        "ci_high": round(high, 4),
        "baseline": round(baseline, 5),
        "treatment": round(treatment, 5),
        "n": n_t + n_b,
        "subscribers": len(people),
        "test_campaigns": test_campaigns,
        "left_out_zone_unknown": len(listed) - len(people),
        "arms": {
            "best_time": {"recipients": n_t, "clicks": c_t},
            "fixed": {"recipients": n_b, "clicks": c_b, "local_hour": FIXED_HOUR},
        },
        "expected_click_rate": {
            "best_time": round(expected["best_time"] / max(n_t, 1), 5),
            "fixed": round(expected["fixed"] / max(n_b, 1), 5),
            "brand_best_hour": round(expected["brand_best_hour"] / max(n_t + n_b, 1), 5),
            "oracle": round(expected["oracle"] / max(n_t + n_b, 1), 5),
        },
        "brand_best_hour": brand_hour,
        "outside_compliance_window": outside_window,
        "history": {
            "campaigns": history_campaigns,
            "messages": history_campaigns * len(people),
            "clicks": clicks,
        },
        "model": None
        if model is None
        else {
            "id": model.id,
            "version": model.version,
            **{
                k: model.summary[k]
                for k in ("subscribers", "messages", "clicks", "read_s", "fit_s")
            },
        },
        "train_s": round(train_s, 3),
        "history_s": round(history_s, 3),
        "window_h": WINDOW_H,
        "seed": seed,
    }


def _first_allowed(hours: list[int]) -> int:
    return next((h for h in hours if h in ALLOWED_HOURS), FIXED_HOUR)


def _cluster_ci(tally: list[list[int]], seed: int, replicates: int = 1000) -> tuple[float, float]:
    """The lift's 95 % interval by a bootstrap over subscribers (each drawn with all their
    sends: the same person's clicks in several campaigns are not independent), with Poisson
    weights, in chunks of replicates to bound memory."""
    counts = np.array(tally, dtype=np.float64)  # sent, clicks (best time); sent, clicks (fixed)
    rng = np.random.default_rng(seed)
    lifts = []
    for done in range(0, replicates, 50):
        weights = rng.poisson(1.0, size=(min(50, replicates - done), len(counts)))
        sums = weights @ counts
        with np.errstate(divide="ignore", invalid="ignore"):
            lifts.append((sums[:, 1] / sums[:, 0]) / (sums[:, 3] / sums[:, 2]) - 1)
    found = np.concatenate(lifts)
    found = found[np.isfinite(found)]
    if not len(found):
        return -1.0, math.inf
    return float(np.quantile(found, 0.025)), float(np.quantile(found, 0.975))
