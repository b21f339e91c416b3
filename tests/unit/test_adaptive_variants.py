"""Adaptive A/B tests' settings and rounds: bad settings refused naming the field, each
subscriber in one round by the stated shares, and a round's variant picked by its weights."""

from __future__ import annotations

from collections import Counter

import pytest

from clarion.domain.variants import AbTest, ab_in, assign_by, check_floor, round_of
from clarion.errors import InvalidInput


def test_an_adaptive_test_takes_its_settings() -> None:
    ab = ab_in({"mode": "adaptive", "rounds": 4, "round_share": 0.15, "floor": 0.1,
                "confidence": 0.9, "wait_minutes": 30, "click_delay_minutes": 0})  # fmt: skip
    assert (ab.rounds, ab.round_share, ab.floor, ab.confidence) == (4, 0.15, 0.1, 0.9)
    assert ab.round_shares() == pytest.approx([0.15, 0.15, 0.15, 0.55])


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"mode": "adaptive", "rounds": 1}, "ab.rounds"),
        ({"mode": "adaptive", "rounds": 21}, "ab.rounds"),
        ({"mode": "adaptive", "round_share": 0}, "ab.round_share"),
        ({"mode": "adaptive", "rounds": 10, "round_share": 0.2}, "ab.round_share"),
        ({"mode": "adaptive", "floor": 0.3}, "ab.floor"),
        ({"mode": "adaptive", "confidence": 1.0}, "ab.confidence"),
        ({"mode": "adaptive", "click_delay_minutes": -1}, "ab.click_delay_minutes"),
        ({"mode": "adaptive", "metric": "revenue_per_recipient"}, "ab.metric"),
        ({"mode": "adaptive", "rounds": "many"}, "ab.rounds"),
    ],
)
def test_bad_adaptive_settings_are_refused_naming_the_field(raw: object, field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        ab_in(raw)
    assert caught.value.field == field


def test_a_floor_that_is_all_the_traffic_is_refused() -> None:
    ab = ab_in({"mode": "adaptive", "floor": 0.2})
    check_floor(ab, 4)
    with pytest.raises(InvalidInput) as caught:
        check_floor(ab, 5)
    assert caught.value.field == "ab.floor"
    check_floor(ab_in({"mode": "test"}), 5)  # no floor outside adaptive


def test_each_subscriber_is_in_one_round_by_the_shares() -> None:
    ab = AbTest(mode="adaptive", rounds=5, round_share=0.1)
    got = Counter(round_of("uid-1", s, ab) for s in range(1, 40_001))
    assert set(got) == {0, 1, 2, 3, 4}
    for r in range(4):
        assert abs(got[r] / 40_000 - 0.1) < 0.01
    assert abs(got[4] / 40_000 - 0.6) < 0.01
    assert [round_of("uid-1", s, ab) for s in range(50)] == [
        round_of("uid-1", s, ab) for s in range(50)
    ]


def test_a_rounds_variant_follows_its_weights_and_never_a_zero_one() -> None:
    weights = {"a": 0.2, "b": 0.8, "c": 0.0}
    got = Counter(assign_by("uid-1", s, weights) for s in range(1, 20_001))
    assert "c" not in got
    assert abs(got["b"] / 20_000 - 0.8) < 0.02
    assert all(assign_by("uid-1", s, {"a": 0.0, "b": 1.0}) == "b" for s in range(100))
    same = [assign_by("uid-1", s, weights) for s in range(100)]
    assert same == [assign_by("uid-1", s, weights) for s in range(100)]
