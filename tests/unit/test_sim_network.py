"""The simulated network's rules: invalid numbers, carrier ownership, delivery outcomes."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from clarion.sim.network import CARRIERS, FAILURES, INVALID_NUMBER, carrier_for, decide, is_invalid

FAILURE_CODES = {code: message for code, message, _ in FAILURES}


@pytest.mark.parametrize(
    "number",
    [
        "+12125550100",
        "+12125550123",
        "+14155550199",
        "+442079460958",
        "+33123456789",
        "+1212555778",
        "+121255577889",
        "12125557788",
        "+1212555778x",
        "",
    ],
)
def test_fictional_555_01xx_and_non_nanp_numbers_are_invalid(number: str) -> None:
    assert is_invalid(number)


@pytest.mark.parametrize(
    "number", ["+12125557788", "+12125550200", "+12125550099", "+14155552671", "+15550100000"]
)
def test_ordinary_ten_digit_nanp_numbers_are_valid(number: str) -> None:
    assert not is_invalid(number)


def test_the_invalid_number_error_is_twilios_21211() -> None:
    assert INVALID_NUMBER[0] == "21211"


def test_a_number_always_belongs_to_the_same_carrier() -> None:
    numbers = [f"+1646{i:07d}" for i in range(0, 2_000_000, 9973)]
    first = [carrier_for(n) for n in numbers]
    assert first == [carrier_for(n) for n in numbers]
    assert len(set(first)) > 1


def test_carriers_own_numbers_roughly_in_proportion_to_their_share() -> None:
    counts = Counter(carrier_for(f"+1212{i:07d}").name for i in range(10_000))
    assert sum(counts.values()) == 10_000
    for c in CARRIERS:
        assert abs(counts[c.name] / 10_000 - c.share) < 0.03, (c.name, counts[c.name])


def test_carrier_shares_add_up_to_one() -> None:
    assert sum(c.share for c in CARRIERS) == pytest.approx(1.0)


def test_with_no_failure_rate_every_message_is_delivered() -> None:
    rng = random.Random(7)
    outcomes = [
        decide(f"+1212{i:07d}", rng, failure_rate=0.0, latency_scale=1.0) for i in range(2_000)
    ]
    assert all(o.delivered for o in outcomes)
    assert all(o.error_code is None and o.error_message is None for o in outcomes)
    assert all(o.latency_s > 0 for o in outcomes)


def test_with_a_failure_rate_of_one_no_message_is_delivered_and_codes_come_from_failures() -> None:
    rng = random.Random(7)
    outcomes = [
        decide(f"+1212{i:07d}", rng, failure_rate=1.0, latency_scale=1.0) for i in range(2_000)
    ]
    assert not any(o.delivered for o in outcomes)
    assert {o.error_code for o in outcomes} == set(FAILURE_CODES)
    assert all(o.error_message == FAILURE_CODES[o.error_code] for o in outcomes)
    most_common = Counter(o.error_code for o in outcomes).most_common(1)[0][0]
    assert most_common == "30003"


def test_the_failure_rate_is_respected_roughly() -> None:
    rng = random.Random(11)
    failures = sum(
        not decide("+12125557788", rng, failure_rate=0.2, latency_scale=1.0).delivered
        for _ in range(5_000)
    )
    assert 0.17 < failures / 5_000 < 0.23


def test_the_same_seed_gives_the_same_outcomes() -> None:
    def run(seed: int) -> list[object]:
        rng = random.Random(seed)
        return [
            decide(f"+1212{i:07d}", rng, failure_rate=0.3, latency_scale=1.0) for i in range(200)
        ]

    assert run(3) == run(3)
    assert run(3) != run(4)


def test_latency_scales_with_latency_scale_and_zero_means_immediate() -> None:
    zero = decide("+12125557788", random.Random(1), failure_rate=0.0, latency_scale=0.0)
    one = decide("+12125557788", random.Random(1), failure_rate=0.0, latency_scale=1.0)
    two = decide("+12125557788", random.Random(1), failure_rate=0.0, latency_scale=2.0)
    assert zero.latency_s == 0.0
    assert two.latency_s == pytest.approx(2 * one.latency_s)
