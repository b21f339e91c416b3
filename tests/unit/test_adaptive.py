"""The adaptive allocation: traffic shifts toward the better variant, no variant falls below
the floor until one is the winner, the same data and seed give the same answer, and recent
messages whose clicks are still coming do not read as a worse variant."""

from __future__ import annotations

import pytest

from clarion.intelligence.adaptive import ArmData, allocate, exposures, round_seed, seen_share


def _arm(key: str, delivered: int, clicks: int, exposed: float | None = None) -> ArmData:
    return ArmData(key, delivered, clicks, float(delivered) if exposed is None else exposed)


def test_a_message_counts_as_the_share_of_its_clicks_come_by_its_age() -> None:
    assert seen_share(15.0, 15.0) == pytest.approx(0.5)
    assert seen_share(60.0, 15.0) == pytest.approx(1 - 1 / 16)
    assert seen_share(0.0, 15.0) == 0.0
    assert seen_share(5.0, 0.0) == 1.0  # no delay assumed: every message whole
    assert exposures([(15.0, 100), (60.0, 16)], 15.0) == pytest.approx(50 + 15)


def test_traffic_shifts_toward_the_better_variant() -> None:
    a = allocate([_arm("a", 1000, 50), _arm("b", 1000, 65)], floor=0.05, confidence=0.95,
                 last=False, seed=1)  # fmt: skip
    assert not a.final
    assert a.leader == "b"
    assert a.weights["b"] > 0.7 > 0.3 > a.weights["a"]
    assert a.p_best["b"] == pytest.approx(0.9, abs=0.08)
    assert sum(a.weights.values()) == pytest.approx(1.0, abs=1e-3)


def test_no_variant_falls_below_the_floor_before_a_winner() -> None:
    arms = [_arm("a", 1000, 20), _arm("b", 1000, 60), _arm("c", 1000, 62)]
    a = allocate(arms, floor=0.05, confidence=0.99, last=False, seed=2)
    assert not a.final
    assert a.p_best["a"] < 0.001
    assert a.weights["a"] == pytest.approx(0.05, abs=1e-3)
    assert min(a.weights.values()) >= 0.05 - 1e-9


def test_the_same_data_and_seed_give_the_same_allocation() -> None:
    arms = [_arm("a", 400, 22), _arm("b", 400, 27), _arm("c", 400, 25)]
    first = allocate(arms, floor=0.05, confidence=0.95, last=False, seed=round_seed("u", 1))
    again = allocate(arms, floor=0.05, confidence=0.95, last=False, seed=round_seed("u", 1))
    assert first == again
    assert round_seed("u", 1) != round_seed("u", 2)


def test_recent_messages_whose_clicks_are_coming_are_not_a_worse_variant() -> None:
    # both variants have a 6 % click rate; b's messages were sent a half-life ago, so half
    # of its clicks have come
    old, recent = 2000, [(15.0, 2000)]
    counted_whole = allocate([_arm("a", old, 120), _arm("b", 2000, 60)], floor=0.05,
                             confidence=0.95, last=False, seed=3)  # fmt: skip
    assert counted_whole.p_best["b"] < 0.01  # reading b's messages whole wrongs it
    aged = [_arm("a", old, 120), _arm("b", 2000, 60, exposures(recent, 15.0))]
    fair = allocate(aged, floor=0.05, confidence=0.95, last=False, seed=3)
    assert 0.2 < fair.p_best["b"] < 0.8
    assert not fair.final


def test_a_variant_best_with_the_confidence_takes_all_the_rest() -> None:
    a = allocate([_arm("a", 3000, 150), _arm("b", 3000, 240)], floor=0.05, confidence=0.95,
                 last=False, seed=4)  # fmt: skip
    assert a.final
    assert a.weights == {"a": 0.0, "b": 1.0}
    assert a.confidence >= 0.95
    assert "all remaining traffic to b" in a.reason


def test_the_last_round_goes_to_the_likeliest_best_and_says_it_is_unsure() -> None:
    a = allocate([_arm("a", 300, 20), _arm("b", 300, 23)], floor=0.05, confidence=0.95,
                 last=True, seed=5)  # fmt: skip
    assert a.final
    assert a.weights[a.leader] == 1.0
    assert a.confidence < 0.95
    assert a.reason.startswith("last round")
    assert a.expected_loss > 0


def test_a_floor_above_all_the_traffic_is_refused() -> None:
    with pytest.raises(ValueError, match="floor"):
        allocate([_arm("a", 1, 0), _arm("b", 1, 0), _arm("c", 1, 0)], floor=0.4,
                 confidence=0.95, last=False, seed=6)  # fmt: skip
