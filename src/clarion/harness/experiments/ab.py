"""`clarion experiment ab`: adaptive A/B against test-then-winner, in simulation.

**The campaigns.** A brand's list of `recipients` people of the world (`clarion.sim.world`)
gets `campaigns` campaigns, seeded. Each is sent at a local hour drawn from the day (10:00
to 19:00) and has two or three variants; variant a's factor is 1, each other's is drawn
log-normal (sigma 0.15: most differ from a by 0 to 30 %), so some campaigns have a clear
best and some a near tie, as real tests do. A person clicks variant v with probability
`World.click_probability(person, hour, boost=factor_v)`. A click comes a log-normal delay
after its message (median 12 minutes, sigma 1.2: a quarter after 27 minutes, a tenth after
an hour), a longer tail than the exponential the allocation assumes, so the evaluation does
not flatter the delay model. A round's messages go out over its first 5 minutes.

**Both modes see the same world.** Each campaign draws, per person, one uniform that decides
whether they click (under any variant: they click v if it is below v's probability), one
delay, one place in the sample or rounds and one variant draw, and both modes use the same
draws (common random numbers): the difference between them is the modes' alone.

- *test then winner*: Clarion's `decide` on the sample (`sample` 0.2, split evenly), with the
  clicks come by the end of the wait (60 minutes); the winner goes to the rest.
- *adaptive*: Clarion's `allocate` round by round (5 rounds, 10 % each and the rest, 60
  minutes apart, floor 0.05, confidence 0.95), on exposures counted from message ages
  bucketed by minute as the store counts them.

**What is measured**, per campaign and mode: recipients sent a worse variant than the truly
best (the regret the issue names; `baseline` and `treatment`, as a share of the audience),
expected clicks lost against sending everyone the best, whether the winner is the truly best,
clicks, and how long the test took. `lift` is the relative reduction of the summed regret,
with a 95 % percentile bootstrap interval over campaigns (paired: a resample takes both
modes of a campaign).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from clarion.domain.variants import KEYS, AbTest, ArmStats, decide
from clarion.intelligence.adaptive import ArmData, allocate, exposures, round_seed
from clarion.sim.world import World, WorldConfig

HOURS = (10.0, 11.5, 13.0, 14.5, 16.0, 17.5, 19.0)  # local send hours campaigns draw from
DELAY_MEDIAN_MIN = 12.0
DELAY_SIGMA = 1.2
SEND_SPREAD_MIN = 5.0
FACTOR_SIGMA = 0.15
BOOTSTRAP = 2000


@dataclass(frozen=True)
class AbExperiment:
    recipients: int = 20_000
    campaigns: int = 600
    seed: int = 2026
    test: AbTest = field(default_factory=lambda: AbTest(mode="test", sample=0.2))
    adaptive: AbTest = field(default_factory=lambda: AbTest(mode="adaptive"))


@dataclass(frozen=True)
class Draws:
    """One campaign's world: per person their click probability under each variant (n × k),
    and the common random numbers both modes use."""

    p: np.ndarray  # n × k
    click_u: np.ndarray  # a person clicks v when click_u < p[:, v]
    delay_min: np.ndarray
    slot: np.ndarray  # place in the sample / the rounds, uniform
    pick: np.ndarray  # variant draw, uniform
    send_min: np.ndarray  # offset of the message within its round

    @property
    def best(self) -> int:
        return int(self.p.mean(axis=0).argmax())


@dataclass(frozen=True)
class Outcome:
    """What one mode did with one campaign."""

    variant: np.ndarray  # per person, the index of the variant sent
    winner: int
    duration_min: float


def _pick(u: np.ndarray, weights: list[float]) -> np.ndarray:
    """Variant indices by weights from uniforms (as `assign_by` picks from its hash)."""
    cum = np.cumsum(np.asarray(weights, dtype=float))
    return np.minimum(np.searchsorted(cum / cum[-1], u, side="right"), len(weights) - 1)


def _arms(d: Draws, sent: np.ndarray, variant: np.ndarray, at: np.ndarray, now: float) -> list[Any]:
    """(delivered, clickers so far, ages in minutes) per variant of the people sent by `now`."""
    out = []
    for v in range(d.p.shape[1]):
        mine = sent & (variant == v)
        clicked = mine & (d.click_u < d.p[:, v]) & (at + d.delay_min <= now)
        out.append((int(mine.sum()), int(clicked.sum()), now - at[mine]))
    return out


def run_test(d: Draws, ab: AbTest) -> Outcome:
    """Test then winner: the sample split evenly, the winner by Clarion's rule to the rest."""
    k = d.p.shape[1]
    sample = d.slot < ab.sample
    variant = _pick(d.pick, [1.0] * k)
    at = d.send_min.copy()
    arms = _arms(d, sample, variant, at, float(ab.wait_minutes))
    stats = [ArmStats(KEYS[v], n, c, 0.0, 0.0) for v, (n, c, _) in enumerate(arms)]
    winner = KEYS.index(decide(stats, ab).winner)
    variant = np.where(sample, variant, winner)
    return Outcome(variant, winner, ab.wait_minutes + SEND_SPREAD_MIN)


def run_adaptive(d: Draws, ab: AbTest, campaign: str) -> Outcome:
    """Adaptive: the rounds released `wait_minutes` apart, each split by Clarion's
    `allocate` from the clicks come so far; the winner to the rounds left."""
    k = d.p.shape[1]
    edges = np.cumsum(ab.round_shares())
    round_of = np.minimum(np.searchsorted(edges, d.slot, side="right"), ab.rounds - 1)
    variant = np.full(len(d.slot), -1)
    at = np.full(len(d.slot), np.inf)
    weights, r, now, winner = [1.0] * k, 0, 0.0, -1
    while True:
        last = ab.rounds - 1 if winner >= 0 else r
        people = (round_of >= r) & (round_of <= last)
        variant[people] = _pick(d.pick[people], weights)
        at[people] = now + d.send_min[people]
        if last == ab.rounds - 1:
            break
        now += ab.wait_minutes
        sent = variant >= 0
        arms = []
        for v, (n, c, ages) in enumerate(_arms(d, sent, variant, at, now)):
            buckets = np.bincount(np.floor(ages).astype(int))
            aged = [(a + 0.5, int(m)) for a, m in enumerate(buckets) if m]
            arms.append(ArmData(KEYS[v], n, c, exposures(aged, ab.click_delay_minutes)))
        r = last + 1
        a = allocate(
            arms, floor=ab.floor, confidence=ab.confidence, last=r == ab.rounds - 1,
            seed=round_seed(campaign, r),
        )  # fmt: skip
        weights = [a.weights[KEYS[v]] for v in range(k)]
        if a.final:
            winner = KEYS.index(a.leader)
    return Outcome(variant, winner, now + SEND_SPREAD_MIN)


def _population(world: World, n: int) -> dict[float, np.ndarray]:
    """Each person's click probability at each send hour, with no boost."""
    keys = [f"ab-{i:07d}" for i in range(n)]
    return {h: np.array([world.click_probability(key, h) for key in keys]) for h in HOURS}


def _campaign(base: dict[float, np.ndarray], rng: np.random.Generator) -> Draws:
    hour = HOURS[int(rng.integers(len(HOURS)))]
    k = int(rng.integers(2, 4))
    factors = np.concatenate([[1.0], np.exp(rng.normal(0.0, FACTOR_SIGMA, k - 1))])
    n = len(base[hour])
    return Draws(
        p=np.minimum(1.0, base[hour][:, None] * factors[None, :]),
        click_u=rng.random(n),
        delay_min=DELAY_MEDIAN_MIN * np.exp(rng.normal(0.0, DELAY_SIGMA, n)),
        slot=rng.random(n), pick=rng.random(n),
        send_min=rng.random(n) * SEND_SPREAD_MIN,
    )  # fmt: skip


def _score(d: Draws, o: Outcome) -> dict[str, float]:
    rows = np.arange(len(o.variant))
    p_sent = d.p[rows, o.variant]
    return {
        "worse": float((o.variant != d.best).mean()),
        "clicks_lost": float((d.p[:, d.best] - p_sent).sum()),
        "clicks": float((d.click_u < p_sent).sum()),
        "right": float(o.winner == d.best),
        "duration_min": o.duration_min,
    }


def _lift(base: np.ndarray, treat: np.ndarray, rng: np.random.Generator) -> tuple[float, ...]:
    """Relative reduction of the summed regret, and its 95 % bootstrap interval."""
    idx = rng.integers(0, len(base), size=(BOOTSTRAP, len(base)))
    boot = 1.0 - treat[idx].sum(axis=1) / np.maximum(base[idx].sum(axis=1), 1e-12)
    lift = 1.0 - treat.sum() / max(base.sum(), 1e-12)
    low, high = np.percentile(boot, [2.5, 97.5])
    return float(lift), float(low), float(high)


def run(x: AbExperiment) -> dict[str, Any]:
    """The measurement; one dict, the CLI's JSON line."""
    started = time.monotonic()
    world = World(WorldConfig(seed=x.seed))
    base = _population(world, x.recipients)
    rng = np.random.default_rng(x.seed)
    scores: dict[str, list[dict[str, float]]] = {"test": [], "adaptive": []}
    gaps, agree = [], 0
    for i in range(x.campaigns):
        d = _campaign(base, rng)
        t, a = run_test(d, x.test), run_adaptive(d, x.adaptive, f"{x.seed}:{i}")
        scores["test"].append(_score(d, t))
        scores["adaptive"].append(_score(d, a))
        agree += t.winner == a.winner
        means = np.sort(d.p.mean(axis=0))
        gaps.append(means[-1] / means[-2] - 1.0)
    col = {m: {k: np.array([s[k] for s in v]) for k in v[0]} for m, v in scores.items()}
    clear = np.array(gaps) >= 0.05
    lift, low, high = _lift(col["test"]["worse"], col["adaptive"]["worse"], rng)
    c_lift, c_low, c_high = _lift(col["test"]["clicks_lost"], col["adaptive"]["clicks_lost"], rng)

    def mode(m: str) -> dict[str, float | None]:
        c = col[m]
        clear_right = float(c["right"][clear].mean()) if clear.any() else None
        return {
            "worse_share": round(float(c["worse"].mean()), 4),
            "clicks_lost_per_campaign": round(float(c["clicks_lost"].mean()), 2),
            "winner_accuracy": round(float(c["right"].mean()), 4),
            # on the campaigns whose best beats the runner-up by 5 % or more
            "winner_accuracy_clear": None if clear_right is None else round(clear_right, 4),
            "clicks_per_campaign": round(float(c["clicks"].mean()), 1),
            "duration_h": round(float(c["duration_min"].mean()) / 60, 2),
        }

    return {
        "experiment": "ab",
        "metric": "share of recipients sent a worse variant than the truly best (regret)",
        "baseline": round(float(col["test"]["worse"].mean()), 4),
        "treatment": round(float(col["adaptive"]["worse"].mean()), 4),
        "lift": round(lift, 4), "ci_low": round(low, 4), "ci_high": round(high, 4),
        "n": x.campaigns,
        "recipients": x.recipients, "seed": x.seed,
        "clicks_lost_lift": round(c_lift, 4),
        "clicks_lost_ci": [round(c_low, 4), round(c_high, 4)],
        "test_then_winner": mode("test"), "adaptive": mode("adaptive"),
        "same_winner": round(agree / x.campaigns, 4),
        "clear_campaigns": int(clear.sum()),
        "seconds": round(time.monotonic() - started, 2),
    }  # fmt: skip
