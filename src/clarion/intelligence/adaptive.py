"""Adaptive A/B: how to split the next round of a campaign's audience between its variants,
from what the rounds so far did (Thompson sampling over click rates, with delayed clicks).

**The posterior.** Each variant's click rate has a Beta(1 + clicks, 1 + exposures - clicks)
posterior: a uniform prior, and as many trials as its messages are *exposures*.

**Delayed clicks.** A message's clicks come over minutes and hours after it is delivered,
so when a round is decided the last round's messages have had only part of theirs. Counting
them whole would read a recent variant as a worse one (fewer clicks per message so far);
leaving them out would waste most of what was learned. Each delivered message counts as the
share of its eventual clicks that has come by its age (`seen_share`): a click delay taken
as exponential with a half-life (`half_life_min`, the campaign's `click_delay_minutes`):
a message half a half-life old counts 0.29, one a half-life old 0.5, four half-lives 0.94.
Clicks seen so far over those exposures is an unbiased estimate of the click rate when the
delay has that shape and is the same for every variant (what the content changes is
whether people click, not when); a longer tail than assumed biases every variant alike,
and a variant sent more recently only slightly, which the floor absorbs.

**The allocation.** The next round gives each variant its probability of being the best,
P(best), estimated by seeded Monte Carlo draws from the posteriors (Thompson sampling, a
round at a time), with a `floor` for every variant so none starves while the evidence is
thin: weight = floor + (1 - k × floor) × P(best).

**Stopping.** When a variant's P(best) reaches `confidence` (0.95), it is the winner and all
the remaining traffic goes to it, at once. The last round, which no later round learns
from, goes whole to the variant most likely best, whatever its P(best), and says so. Either
way the winner's P(best) is its confidence, and the expected loss (the click rate given up,
in expectation over the posterior, by sending it rather than the truly best) is reported.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

import msgspec
import numpy as np

# Draws from the posteriors per decision: P(best) to within about ±0.004 (one sd at 0.5).
DRAWS = 20_000


def seen_share(age_min: float, half_life_min: float) -> float:
    """The share of a message's eventual clicks that have come `age_min` minutes after it
    was delivered, for an exponential click delay of half-life `half_life_min` (0: all)."""
    if half_life_min <= 0:
        return 1.0
    if age_min <= 0:
        return 0.0
    return float(1.0 - 2.0 ** (-age_min / half_life_min))


def exposures(ages: Iterable[tuple[float, int]], half_life_min: float) -> float:
    """Delivered messages as exposures: `ages` is (age in minutes, messages) per bucket."""
    return sum(n * seen_share(age, half_life_min) for age, n in ages)


class ArmData(msgspec.Struct, frozen=True):
    """What a variant did so far: messages delivered, people who clicked, and those messages
    as exposures (`exposures`: each counted as the share of its clicks that has come)."""

    key: str
    delivered: int
    clicks: int
    exposures: float


class Allocation(msgspec.Struct, frozen=True, kw_only=True):
    """The next round's split and why: each variant's weight (fractions summing to 1), its
    P(best), the leader (highest P(best)) and that P(best) as its confidence, the expected
    click rate lost by sending the leader, and whether this is the final split (the leader
    is the winner and gets all the remaining traffic)."""

    weights: dict[str, float]
    p_best: dict[str, float]
    leader: str
    confidence: float
    expected_loss: float
    final: bool
    reason: str


def round_seed(campaign_uid: str, round_no: int) -> int:
    """The Monte Carlo seed of a campaign's round: a decision made again is the same."""
    digest = hashlib.blake2b(f"{campaign_uid}:{round_no}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def posterior_draws(arms: Sequence[ArmData], *, draws: int, seed: int) -> np.ndarray:
    """`draws` × len(arms) click rates drawn from the arms' Beta posteriors."""
    rng = np.random.default_rng(seed)
    clicks = np.array([a.clicks for a in arms], dtype=float)
    trials = np.array([max(a.exposures, float(a.clicks)) for a in arms], dtype=float)
    out: np.ndarray = rng.beta(1.0 + clicks, 1.0 + trials - clicks, size=(draws, len(arms)))
    return out


def allocate(
    arms: Sequence[ArmData],
    *,
    floor: float,
    confidence: float,
    last: bool,
    seed: int,
    draws: int = DRAWS,
) -> Allocation:
    """The next round's allocation (see the module's rule). `last`: the next round is the
    campaign's last; `seed` fixes the Monte Carlo draws (the same data and seed, the same
    answer)."""
    if not arms:
        raise ValueError("no variants to allocate between")
    k = len(arms)
    if not 0 <= floor * k <= 1:
        raise ValueError(f"a floor of {floor:g} for {k} variants is more than all the traffic")
    keys = [a.key for a in arms]
    theta = posterior_draws(arms, draws=draws, seed=seed)
    best = theta.argmax(axis=1)
    p = np.bincount(best, minlength=k) / draws
    lead = int(np.lexsort((np.arange(k), -p))[0])  # highest P(best); ties: the first
    loss = float((theta.max(axis=1) - theta[:, lead]).mean())
    p_best = {key: round(float(x), 4) for key, x in zip(keys, p, strict=True)}
    leader, conf = keys[lead], float(p[lead])
    if conf >= confidence or last or k == 1:
        weights = {key: 1.0 if i == lead else 0.0 for i, key in enumerate(keys)}
        why = (
            f"{leader} is the best with P = {conf:.3f} >= {confidence:g}"
            if conf >= confidence
            else f"last round: {leader} is the likeliest best (P = {conf:.3f} < {confidence:g})"
        )
        reason = f"{why}: all remaining traffic to {leader}"
        final = True
    else:
        raw = floor + (1.0 - k * floor) * p
        weights = {key: round(float(w), 4) for key, w in zip(keys, raw, strict=True)}
        reason = (
            f"no variant is best with P >= {confidence:g} (leader {leader}, P = {conf:.3f}):"
            f" traffic by P(best), at least {floor:g} each"
        )
        final = False
    return Allocation(
        weights=weights, p_best=p_best, leader=leader, confidence=round(conf, 4),
        expected_loss=round(loss, 6), final=final, reason=reason,
    )  # fmt: skip
