"""Token buckets, daily quotas and lane admission, on an injected clock (no sleeping)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from clarion.pipeline.lanes import DailyQuota, Lane, LaneLimit, Lanes, TokenBucket

AT = datetime(2026, 11, 25, 18, 0, tzinfo=UTC)
SLOW: Lane = ("sender", "+15125550100")
FAST: Lane = ("sender", "+15125550200")
ACCOUNT: Lane = ("provider", "sim")


def lanes(**limits: LaneLimit) -> Lanes:
    table = {("sender", "+15125550100"): limits.get("slow"), ACCOUNT: limits.get("account")}
    return Lanes(limit_of=lambda lane: table.get(lane))


def test_a_bucket_refills_at_its_rate_up_to_its_burst() -> None:
    b = TokenBucket(max_rate_per_s=10, burst=5, now_s=0.0)
    assert b.available(0.0) == 5
    b.take(5, 0.0)
    assert b.available(0.2) == pytest.approx(2)
    assert b.wait_s(5, 0.2) == pytest.approx(0.3)
    assert b.available(100.0) == 5


def test_a_throttle_halves_the_rate_and_success_brings_it_back_additively() -> None:
    b = TokenBucket(max_rate_per_s=100, burst=100, now_s=0.0)
    b.throttled()
    assert b.rate_per_s == 50
    assert b.available(0.0) <= 0
    b.throttled()
    assert b.rate_per_s == 25
    for _ in range(100):
        b.succeeded()
    assert b.rate_per_s == 100


def test_an_empty_lane_holds_back_only_its_own_messages() -> None:
    ls = lanes(slow=LaneLimit(rate_per_s=1, burst=1))
    plan = [(ACCOUNT, SLOW), (ACCOUNT, FAST), (ACCOUNT, SLOW), (ACCOUNT, FAST), (ACCOUNT, FAST)]
    a = ls.admit(plan, now_s=0.0, at=AT)
    assert a.admitted == [0, 1, 3, 4]
    assert a.held == [2]
    assert a.retry_after_s == pytest.approx(1.0)
    again = ls.admit([(ACCOUNT, SLOW)], now_s=1.0, at=AT)
    assert again.admitted == [0]


def test_messages_of_a_waiting_lane_keep_their_order() -> None:
    ls = lanes(slow=LaneLimit(rate_per_s=1, burst=2))
    a = ls.admit([(SLOW,), (SLOW,), (SLOW,), (SLOW,)], now_s=0.0, at=AT)
    assert (a.admitted, a.held) == ([0, 1], [2, 3])


def test_a_message_takes_a_token_from_every_lane_or_from_none() -> None:
    ls = lanes(slow=LaneLimit(rate_per_s=1, burst=1), account=LaneLimit(rate_per_s=1, burst=1))
    first = ls.admit([(ACCOUNT, FAST)], now_s=0.0, at=AT)
    assert first.admitted == [0]
    # the account is empty now: a slow-sender message waits and takes nothing from its sender
    second = ls.admit([(ACCOUNT, SLOW)], now_s=0.0, at=AT)
    assert second.held == [0]
    assert ls.buckets[SLOW].available(0.0) == 1


def test_long_code_lanes_count_segments() -> None:
    ls = lanes(slow=LaneLimit(rate_per_s=1, burst=3, per_segment=True))
    a = ls.admit([(SLOW,), (SLOW,)], now_s=0.0, at=AT, segments=[2, 2])
    assert (a.admitted, a.held) == ([0], [1])
    assert a.retry_after_s == pytest.approx(1.0)


def test_a_daily_quota_resets_at_midnight_pacific() -> None:
    q = DailyQuota(limit=2)
    before_midnight_pt = datetime(2026, 11, 26, 7, 59, tzinfo=UTC)  # 23:59 PST
    q.take(2, before_midnight_pt)
    assert q.remaining(before_midnight_pt) == 0
    assert q.remaining(before_midnight_pt + timedelta(minutes=2)) == 2


def test_a_spent_daily_cap_holds_messages_until_tomorrow() -> None:
    ls = Lanes(limit_of=lambda lane: LaneLimit(per_day=1) if lane == SLOW else None)
    a = ls.admit([(SLOW,), (SLOW,)], now_s=0.0, at=AT)
    assert (a.admitted, a.held) == ([0], [1])
    assert a.retry_after_s == math.inf


def test_lanes_without_a_limit_never_hold_anything() -> None:
    ls = lanes()
    a = ls.admit([(ACCOUNT, FAST)] * 10_000, now_s=0.0, at=AT)
    assert len(a.admitted) == 10_000
    assert a.held == []
