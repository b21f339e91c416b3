"""Variants and A/B tests: input checked with the bad field named, deterministic assignment
by weight, and the winner's stated rule (significance, Bonferroni, fallback)."""

from __future__ import annotations

from collections import Counter

import pytest

from clarion.domain.variants import (
    AbTest,
    ArmStats,
    ab_in,
    assign,
    decide,
    in_sample,
    message_variant,
    variants_in,
)
from clarion.errors import InvalidInput


def test_variants_take_weights_that_sum_to_100_or_split_equally() -> None:
    two = variants_in([{"body": "A"}, {"body": "B", "name": "Short"}])
    assert [(v.key, v.name, v.weight) for v in two] == [
        ("a", "Variant A", 50.0), ("b", "Short", 50.0),
    ]  # fmt: skip
    weighted = variants_in([{"body": "A", "weight": 70}, {"body": "B", "weight": 30}])
    assert [v.weight for v in weighted] == [70.0, 30.0]


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ([], "variants"),
        ([{"body": str(i)} for i in range(6)], "variants"),
        ([{"body": "A", "weight": 60}, {"body": "B", "weight": 30}], "variants"),
        ([{"body": "A", "weight": 0}, {"body": "B", "weight": 100}], "variants[0].weight"),
        ([{"body": "A", "weight": True}], "variants[0].weight"),
        ([{"body": "A"}, {"body": " "}], "variants[1].body"),
        ([{"body": "A", "colour": "red"}], "variants[0].colour"),
        (["A"], "variants[0]"),
        ("A", "variants"),
    ],
)
def test_bad_variants_are_refused_naming_the_field(raw: object, field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        variants_in(raw)
    assert caught.value.field == field


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"mode": "bandit"}, "ab.mode"),
        ({"mode": "test", "sample": 0.95}, "ab.sample"),
        ({"mode": "test", "wait_minutes": 0}, "ab.wait_minutes"),
        ({"mode": "test", "metric": "opens"}, "ab.metric"),
        ({"mode": "test", "sample": "lots"}, "ab.sample"),
        ({"mode": "test", "size": 3}, "ab"),
    ],
)
def test_bad_tests_are_refused_naming_the_field(raw: object, field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        ab_in(raw)
    assert caught.value.field == field


def test_assignment_is_deterministic_and_follows_the_weights() -> None:
    variants = variants_in([{"body": "A", "weight": 70}, {"body": "B", "weight": 30}])
    got = Counter(assign("uid-1", s, variants).key for s in range(1, 20_001))
    assert abs(got["a"] / 20_000 - 0.7) < 0.02
    assert [assign("uid-1", s, variants).key for s in range(1, 50)] == [
        assign("uid-1", s, variants).key for s in range(1, 50)
    ]
    other = [assign("uid-2", s, variants).key for s in range(1, 200)]
    assert other != [assign("uid-1", s, variants).key for s in range(1, 200)]
    test = AbTest(mode="test", sample=0.2)
    share = sum(in_sample("uid-1", s, test) for s in range(1, 20_001)) / 20_000
    assert abs(share - 0.2) < 0.02
    assert all(in_sample("uid-1", s, None) for s in range(1, 100))


def test_message_ids_of_variant_a_are_those_of_a_campaign_without_variants() -> None:
    assert message_variant("sms", "a") == "a"
    assert message_variant("email", "a") == "email"
    assert message_variant("email", "c") == "email-c"


def test_a_clear_leader_wins_with_its_confidence() -> None:
    d = decide(
        [ArmStats("a", 1000, 50, 0, 0), ArmStats("b", 1000, 120, 0, 0)],
        AbTest(mode="test", metric="click_rate"),
    )
    assert d.winner == "b"
    assert d.significant
    assert d.confidence is not None
    assert d.confidence > 0.999
    assert "Bonferroni" in d.reason


def test_a_lead_within_the_noise_falls_back_as_stated() -> None:
    arms = [ArmStats("a", 200, 20, 0, 0), ArmStats("b", 200, 24, 0, 0)]
    leader = decide(arms, AbTest(mode="test"))
    assert (leader.winner, leader.significant) == ("b", False)
    assert "no variant is significantly better" in leader.reason
    first = decide(arms, AbTest(mode="test", fallback="first"))
    assert first.winner == "a"


def test_three_variants_need_the_leader_to_beat_both_at_the_corrected_level() -> None:
    # b beats a clearly but c only at p ~ 0.04: not below 0.05 / 2
    arms = [
        ArmStats("a", 1000, 50, 0, 0), ArmStats("b", 1000, 100, 0, 0),
        ArmStats("c", 1000, 78, 0, 0),
    ]  # fmt: skip
    d = decide(arms, AbTest(mode="test"))
    assert d.winner == "b"
    assert d.significant == (d.p_value is not None and d.p_value < 0.025)


def test_revenue_per_recipient_uses_each_arms_spread() -> None:
    # a: 10 orders of 100 in 1000; b: 40 orders of 100 in 1000
    a = ArmStats("a", 1000, 0, 1000.0, 10 * 100.0**2)
    b = ArmStats("b", 1000, 0, 4000.0, 40 * 100.0**2)
    d = decide([a, b], AbTest(mode="test", metric="revenue_per_recipient"))
    assert (d.winner, d.significant) == ("b", True)
    assert d.values == {"a": 1.0, "b": 4.0}
