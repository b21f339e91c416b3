"""A campaign's variants (one to five: an SMS body; an email subject and text) and its A/B
test: each subscriber's variant is deterministic; a "test then winner" campaign first sends a
sample, then — after a set wait — the winner to the rest, chosen by a stated rule.

**Assignment.** Two numbers in [0, 1) from a hash of the campaign's uid and the subscriber:
the first places a subscriber in the sample (below `sample`), the second picks a variant by
the weights. A relaunch, a second process, a replay: the same subscriber, the same variant.

**The winner** (`decide`). Click rate: unique people who clicked over messages delivered.
Revenue per recipient: attributed revenue over messages delivered. The leader (highest
observed) is significant when a one-sided test against every other variant gives p below
`alpha / (k - 1)` (Bonferroni over the k - 1 comparisons): a two-proportion z-test for click
rates, Welch's z-test (normal approximation: samples of a campaign's size) for revenue per
recipient. When it is not, the fallback is sent — the leader (`fallback: "leader"`, the
default) or the first variant (`"first"`, a control) — and the decision says so.

**Adaptive** (`mode: "adaptive"`). The audience is sent in `rounds`: a third number from
the hash places each subscriber in one (each round but the last takes `round_share` of the
audience, the last the rest). The first round is split by the variants' weights; every
`wait_minutes` after a round is released, the next round's weights are decided from the
clicks so far (`clarion.intelligence.adaptive`), and a subscriber's variant in a round is
picked by that round's weights with the same second number. Once a variant is the best
with P >= `confidence`, all the rounds left go to it at once.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping, Sequence
from statistics import NormalDist
from typing import Any

import msgspec

from clarion.errors import InvalidInput

KEYS = "abcde"
MAX_VARIANTS = len(KEYS)
METRICS = ("click_rate", "revenue_per_recipient")
_NORMAL = NormalDist()
_NAME = re.compile(r"[^\x00-\x1f]{1,100}")


class Variant(msgspec.Struct, frozen=True, kw_only=True):
    key: str  # a to e, in order
    name: str
    weight: float  # percent of the (test) audience
    body: str  # the SMS text (a template)
    subject: str | None = None  # email
    email_body: str | None = None  # email text (None: `body`)
    email_html: str | None = None  # email HTML (None: text only)


MODES = ("split", "test", "adaptive")


class AbTest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """`split`: every subscriber gets a variant by the weights. `test`: a `sample` of the
    audience is split by the weights; `wait_minutes` after the launch the winner by
    `metric` is sent to the rest. `adaptive`: the audience goes out in `rounds`, each but
    the last `round_share` of it, `wait_minutes` apart, each split by P(best) so far (at
    least `floor` each) until one is best with P >= `confidence`; clicks are counted
    against messages as their share of clicks come by their age (half of them within
    `click_delay_minutes`)."""

    mode: str = "split"
    sample: float = 0.2
    wait_minutes: int = 60
    metric: str = "click_rate"
    alpha: float = 0.05
    fallback: str = "leader"
    rounds: int = 5
    round_share: float = 0.1
    floor: float = 0.05
    confidence: float = 0.95
    click_delay_minutes: float = 15.0

    def round_shares(self) -> list[float]:
        """Each round's share of the audience (adaptive)."""
        early = [self.round_share] * (self.rounds - 1)
        return [*early, max(0.0, 1.0 - sum(early))]


def variants_in(raw: Any) -> list[Variant]:
    """A campaign's variants from JSON (`[{"name", "weight", "body", "subject",
    "email_body"}, …]`); weights are percentages summing to 100 (all absent: equal)."""
    if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_VARIANTS:
        raise InvalidInput(f"1 to {MAX_VARIANTS} variants", field="variants")
    weights = [v.get("weight") if isinstance(v, Mapping) else None for v in raw]
    if all(w is None for w in weights):
        weights = [100 / len(raw)] * len(raw)
    out = []
    for i, (v, w) in enumerate(zip(raw, weights, strict=True)):
        where = f"variants[{i}]"
        if not isinstance(v, Mapping):
            raise InvalidInput("a variant is a JSON object", field=where)
        unknown = sorted(set(v) - {"name", "weight", "body", "subject", "email_body", "email_html"})
        if unknown:
            raise InvalidInput(
                f"unknown field {unknown[0][:40]!r}", field=f"{where}.{unknown[0][:40]}"
            )
        if isinstance(w, bool) or not isinstance(w, int | float) or not 0 < w <= 100:
            raise InvalidInput("a weight is a percentage above 0", field=f"{where}.weight")
        body = v.get("body")
        if not isinstance(body, str) or not body.strip():
            raise InvalidInput("the variant's text is required", field=f"{where}.body")
        name = v.get("name", f"Variant {KEYS[i].upper()}")
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise InvalidInput("1 to 100 characters", field=f"{where}.name")
        texts = {k: v.get(k) for k in ("subject", "email_body", "email_html")}
        for k, t in texts.items():
            if t is not None and not isinstance(t, str):
                raise InvalidInput("text", field=f"{where}.{k}")
        out.append(Variant(key=KEYS[i], name=name, weight=float(w), body=body, **texts))
    total = sum(v.weight for v in out)
    if abs(total - 100) > 0.01:
        raise InvalidInput(f"the weights sum to {total:g}, not 100", field="variants")
    return out


def ab_in(raw: Any) -> AbTest:
    try:
        ab = msgspec.convert(raw, AbTest, strict=False)
    except msgspec.ValidationError as exc:
        text = str(exc)
        path = text.rsplit("at `$.", 1)
        field = "ab." + path[1].rstrip("`") if len(path) == 2 else "ab"
        raise InvalidInput(text.split(" - at ")[0], field=field) from None
    if ab.mode not in MODES:
        raise InvalidInput("split, test or adaptive", field="ab.mode")
    if not 0.01 <= ab.sample <= 0.9:
        raise InvalidInput("a share of the audience from 0.01 to 0.9", field="ab.sample")
    if not 1 <= ab.wait_minutes <= 7 * 24 * 60:
        raise InvalidInput("1 minute to 7 days", field="ab.wait_minutes")
    if ab.metric not in METRICS:
        raise InvalidInput(f"one of {', '.join(METRICS)}", field="ab.metric")
    if not 0.001 <= ab.alpha <= 0.2:
        raise InvalidInput("from 0.001 to 0.2", field="ab.alpha")
    if ab.fallback not in ("leader", "first"):
        raise InvalidInput("leader or first", field="ab.fallback")
    if ab.mode == "adaptive":
        _check_adaptive(ab)
    return ab


def _check_adaptive(ab: AbTest) -> None:
    if ab.metric != "click_rate":
        raise InvalidInput("an adaptive test learns from click_rate", field="ab.metric")
    if not 2 <= ab.rounds <= 20:
        raise InvalidInput("2 to 20 rounds", field="ab.rounds")
    if not 0.01 <= ab.round_share <= 0.5:
        raise InvalidInput("a share of the audience from 0.01 to 0.5", field="ab.round_share")
    if (ab.rounds - 1) * ab.round_share > 0.9:
        raise InvalidInput(
            f"{ab.rounds - 1} rounds of {ab.round_share:g} leave the last round less than"
            " 0.1 of the audience",
            field="ab.round_share",
        )
    if not 0 <= ab.floor <= 0.2:
        raise InvalidInput("a share from 0 to 0.2", field="ab.floor")
    if not 0.5 <= ab.confidence <= 0.999:
        raise InvalidInput("a probability from 0.5 to 0.999", field="ab.confidence")
    if not 0 <= ab.click_delay_minutes <= 24 * 60:
        raise InvalidInput("0 to 1440 minutes", field="ab.click_delay_minutes")


def check_floor(ab: AbTest, variants: int) -> None:
    """Refuse an adaptive test whose floor, given to every variant, is all the traffic."""
    if ab.mode == "adaptive" and ab.floor * variants >= 1:
        raise InvalidInput(
            f"a floor of {ab.floor:g} for each of {variants} variants leaves nothing to adapt",
            field="ab.floor",
        )


def _unit(campaign_uid: str, subscriber_id: int, salt: str) -> float:
    h = hashlib.blake2b(f"{salt}:{campaign_uid}:{subscriber_id}".encode(), digest_size=8)
    return int.from_bytes(h.digest(), "big") / 2**64


def in_sample(campaign_uid: str, subscriber_id: int, ab: AbTest | None) -> bool:
    """Whether the subscriber is in the test's sample (everyone, without a test)."""
    if ab is None or ab.mode != "test":
        return True
    return _unit(campaign_uid, subscriber_id, "sample") < ab.sample


def assign(campaign_uid: str, subscriber_id: int, variants: Sequence[Variant]) -> Variant:
    """The subscriber's variant by the weights."""
    if len(variants) == 1:
        return variants[0]
    u = _unit(campaign_uid, subscriber_id, "variant") * sum(v.weight for v in variants)
    for v in variants:
        u -= v.weight
        if u < 0:
            return v
    return variants[-1]


def round_of(campaign_uid: str, subscriber_id: int, ab: AbTest) -> int:
    """The round of an adaptive test the subscriber is sent in (0 first)."""
    u = _unit(campaign_uid, subscriber_id, "round")
    shares = ab.round_shares()
    for r, share in enumerate(shares):
        u -= share
        if u < 0:
            return r
    return len(shares) - 1


def assign_by(campaign_uid: str, subscriber_id: int, weights: Mapping[str, float]) -> str:
    """The subscriber's variant key by a round's `weights` (key → share; a variant with
    none is never picked), from the same number `assign` uses."""
    picked = [(k, w) for k, w in weights.items() if w > 0]
    u = _unit(campaign_uid, subscriber_id, "variant") * sum(w for _, w in picked)
    for key, w in picked:
        u -= w
        if u < 0:
            return key
    return picked[-1][0]


def message_variant(channel: str, key: str) -> str:
    """The variant part of a message's id: the SMS ids of variant a are those of a campaign
    without variants ("a"), and so are its email ids ("email")."""
    if channel == "email":
        return "email" if key == "a" else f"email-{key}"
    return key


# --- the winner ---------------------------------------------------------------------------


class ArmStats(msgspec.Struct, frozen=True):
    """What a variant's sample did: messages delivered, people who clicked, attributed
    revenue and its sum of squares per recipient."""

    key: str
    delivered: int
    clickers: int
    revenue: float
    revenue_sq: float

    def value(self, metric: str) -> float:
        if not self.delivered:
            return 0.0
        if metric == "click_rate":
            return self.clickers / self.delivered
        return self.revenue / self.delivered


class Decision(msgspec.Struct, frozen=True):
    winner: str
    metric: str
    significant: bool
    p_value: float | None  # the leader against its closest rival (None: one arm)
    confidence: float | None  # 1 - p
    values: dict[str, float]
    reason: str


def _p_better(a: ArmStats, b: ArmStats, metric: str) -> float:
    """One-sided p-value of "a is better than b"."""
    na, nb = a.delivered, b.delivered
    if na == 0 or nb == 0:
        return 1.0
    if metric == "click_rate":
        pooled = (a.clickers + b.clickers) / (na + nb)
        se = math.sqrt(pooled * (1 - pooled) * (1 / na + 1 / nb))
        diff = a.value(metric) - b.value(metric)
    else:
        va = max(a.revenue_sq / na - a.value(metric) ** 2, 0.0) * na / max(na - 1, 1)
        vb = max(b.revenue_sq / nb - b.value(metric) ** 2, 0.0) * nb / max(nb - 1, 1)
        se = math.sqrt(va / na + vb / nb)
        diff = a.value(metric) - b.value(metric)
    if se == 0:
        return 0.0 if diff > 0 else 1.0
    return 1 - _NORMAL.cdf(diff / se)


def decide(arms: Sequence[ArmStats], ab: AbTest) -> Decision:
    """The variant to send the rest (see the module's rule)."""
    metric = ab.metric
    values = {a.key: round(a.value(metric), 6) for a in arms}
    ranked = sorted(arms, key=lambda a: (-a.value(metric), a.key))
    leader = ranked[0]
    if len(arms) == 1:
        return Decision(leader.key, metric, False, None, None, values, "one variant")
    threshold = ab.alpha / (len(arms) - 1)
    ps = [_p_better(leader, other, metric) for other in ranked[1:]]
    worst = max(ps)
    if worst < threshold:
        reason = (
            f"{leader.key} leads on {metric} and beats every other variant at p < "
            f"{threshold:.4g} (alpha {ab.alpha:g}, Bonferroni over {len(arms) - 1})"
        )
        return Decision(leader.key, metric, True, worst, 1 - worst, values, reason)
    pick = leader.key if ab.fallback == "leader" else min(a.key for a in arms)
    reason = (
        f"no variant is significantly better (the leader {leader.key}'s p = {worst:.3g} >= "
        f"{threshold:.4g}): sending the {'leader' if ab.fallback == 'leader' else 'first variant'}"
    )
    return Decision(pick, metric, False, worst, 1 - worst, values, reason)
