"""Token buckets, daily quotas and lane admission, on an injected clock (no sleeping)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clarion.domain.lanes import Grant, Lane, LaneLimit
from clarion.pipeline.lanes import (
    DailyQuota,
    Lanes,
    TokenBucket,
    admit,
    admit_in_order,
    demand,
    limit_keys,
    next_pacific_midnight,
    pacific_day,
    resolve_limit,
)

AT = datetime(2026, 11, 25, 18, 0, tzinfo=UTC)
SLOW: Lane = ("sender", "+15125550100")
FAST: Lane = ("sender", "+15125550200")
ACCOUNT: Lane = ("provider", "sim")
PACIFIC = ZoneInfo("America/Los_Angeles")


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


# --- Limit lookup: exact rows, then wildcard rows -----------------------------------------

AT_T_MINUTE: Lane = ("carrier_minute", "7:42:AT&T")
TMOBILE_DAY: Lane = ("brand_carrier_day", "7:T-Mobile")


def test_limit_keys_go_from_the_exact_key_to_all_wildcards() -> None:
    # The brand-wide row "7:*:AT&T" (every campaign of brand 7) is the second choice, as the
    # function's docstring promises; "*:42:AT&T" (campaign 42 of any brand) means nothing.
    assert limit_keys("7:42:AT&T") == ["7:42:AT&T", "7:*:AT&T", "*:*:AT&T"]


def test_limit_keys_of_a_brand_and_carrier_key_fall_back_to_every_brand() -> None:
    assert limit_keys("7:T-Mobile") == ["7:T-Mobile", "*:T-Mobile"]


def test_a_key_without_parts_has_no_wildcard() -> None:
    assert limit_keys("+15125550100") == ["+15125550100"]


def test_an_exact_row_wins_over_every_wildcard_row() -> None:
    exact, brand_wide = LaneLimit(rate_per_s=1), LaneLimit(rate_per_s=2)
    everyone = LaneLimit(rate_per_s=3)
    limits = {
        ("carrier_minute", "*:*:AT&T"): everyone,
        ("carrier_minute", "7:*:AT&T"): brand_wide,
        ("carrier_minute", "7:42:AT&T"): exact,
    }
    assert resolve_limit(limits, AT_T_MINUTE) is exact


def test_a_brand_wide_row_wins_over_the_row_for_every_brand() -> None:
    brand_wide, everyone = LaneLimit(rate_per_s=2), LaneLimit(rate_per_s=3)
    limits = {
        ("carrier_minute", "*:*:AT&T"): everyone,
        ("carrier_minute", "7:*:AT&T"): brand_wide,
    }
    assert resolve_limit(limits, AT_T_MINUTE) is brand_wide
    # another brand's campaigns fall through to the row for every brand
    assert resolve_limit(limits, ("carrier_minute", "8:42:AT&T")) is everyone


def test_a_row_for_every_brand_applies_to_a_brand_without_its_own() -> None:
    everyone = LaneLimit(per_day=2000)
    limits = {("brand_carrier_day", "*:T-Mobile"): everyone}
    assert resolve_limit(limits, TMOBILE_DAY) is everyone


def test_a_lane_without_a_row_has_no_limit() -> None:
    limits = {("carrier_minute", "*:*:AT&T"): LaneLimit(rate_per_s=1)}
    assert resolve_limit(limits, ("carrier_minute", "7:42:Verizon")) is None
    assert resolve_limit({}, AT_T_MINUTE) is None


def test_a_row_only_limits_lanes_of_its_own_kind() -> None:
    limits = {
        ("carrier_minute", "*:T-Mobile"): LaneLimit(rate_per_s=1),
        ("sender", "7:T-Mobile"): LaneLimit(rate_per_s=1),
    }
    assert resolve_limit(limits, TMOBILE_DAY) is None


# --- The Pacific day daily caps count in ---------------------------------------------------


@pytest.mark.parametrize(
    ("at", "day", "midnight"),
    [
        # 23:59 PST on an ordinary day: one minute to go
        (datetime(2026, 11, 26, 7, 59, tzinfo=UTC), "2026-11-25", datetime(2026, 11, 26, 8, 0)),
        # 00:00 PST exactly: the day has just begun, the next one is 24 h away
        (datetime(2026, 11, 26, 8, 0, tzinfo=UTC), "2026-11-26", datetime(2026, 11, 27, 8, 0)),
        # 23:59 PST before spring forward
        (datetime(2026, 3, 8, 7, 59, tzinfo=UTC), "2026-03-07", datetime(2026, 3, 8, 8, 0)),
        # 00:00 PST on 8 March: a 23-hour day, it ends at 00:00 PDT (07:00 UTC)
        (datetime(2026, 3, 8, 8, 0, tzinfo=UTC), "2026-03-08", datetime(2026, 3, 9, 7, 0)),
        # 03:00 PDT, just after the clocks jumped
        (datetime(2026, 3, 8, 10, 0, tzinfo=UTC), "2026-03-08", datetime(2026, 3, 9, 7, 0)),
        # 23:59 PDT at the end of 8 March
        (datetime(2026, 3, 9, 6, 59, tzinfo=UTC), "2026-03-08", datetime(2026, 3, 9, 7, 0)),
        # 00:00 PDT on 1 November: a 25-hour day, it ends at 00:00 PST (08:00 UTC)
        (datetime(2026, 11, 1, 7, 0, tzinfo=UTC), "2026-11-01", datetime(2026, 11, 2, 8, 0)),
        # 01:30 PDT and 01:30 PST: the repeated hour is one day
        (datetime(2026, 11, 1, 8, 30, tzinfo=UTC), "2026-11-01", datetime(2026, 11, 2, 8, 0)),
        (datetime(2026, 11, 1, 9, 30, tzinfo=UTC), "2026-11-01", datetime(2026, 11, 2, 8, 0)),
        # 23:59 PST at the end of 1 November
        (datetime(2026, 11, 2, 7, 59, tzinfo=UTC), "2026-11-01", datetime(2026, 11, 2, 8, 0)),
        # 23:59 PDT the day before fall back
        (datetime(2026, 11, 1, 6, 59, tzinfo=UTC), "2026-10-31", datetime(2026, 11, 1, 7, 0)),
    ],
)
def test_the_pacific_day_and_its_end_follow_daylight_saving(
    at: datetime, day: str, midnight: datetime
) -> None:
    assert pacific_day(at) == day
    end = next_pacific_midnight(at)
    assert end == midnight.replace(tzinfo=UTC)
    assert end.utcoffset() == timedelta(0)
    assert end.tzinfo is UTC


def test_the_pacific_day_does_not_depend_on_the_zone_a_time_is_written_in() -> None:
    tokyo = timezone(timedelta(hours=9))
    at = datetime(2026, 11, 26, 16, 30, tzinfo=tokyo)  # 07:30 UTC, 23:30 PST on the 25th
    assert pacific_day(at) == "2026-11-25"
    assert next_pacific_midnight(at) == datetime(2026, 11, 26, 8, 0, tzinfo=UTC)


@settings(deadline=None, max_examples=300)
@given(
    at=st.datetimes(
        min_value=datetime(2020, 1, 1),
        max_value=datetime(2035, 12, 31),
        timezones=st.just(UTC),
    )
)
def test_the_next_pacific_midnight_ends_the_day_of_any_moment(at: datetime) -> None:
    end = next_pacific_midnight(at)
    assert end.tzinfo is UTC
    assert at < end <= at + timedelta(hours=25)
    assert end.astimezone(PACIFIC).time() == time(0)
    assert pacific_day(end - timedelta(microseconds=1)) == pacific_day(at)
    assert pacific_day(end) != pacific_day(at)


# --- Demand: what a batch asks each lane for ------------------------------------------------

LIMITED: Lane = ("sender", "+15125550300")
SEGMENTED: Lane = ("sender", "+15125550400")
FREE: Lane = ("provider", "free")

LIMITS: dict[Lane, LaneLimit] = {
    LIMITED: LaneLimit(rate_per_s=1, burst=10),
    SEGMENTED: LaneLimit(rate_per_s=1, burst=10, per_segment=True),
}


def limit_of(lane: Lane) -> LaneLimit | None:
    return LIMITS.get(lane)


def test_demand_leaves_unlimited_lanes_out() -> None:
    want = demand([(FREE, LIMITED), (FREE,)], [1, 1], limit_of)
    assert want == {LIMITED: 1.0}


def test_demand_counts_segments_only_on_lanes_that_count_them() -> None:
    want = demand([(LIMITED, SEGMENTED), (LIMITED, SEGMENTED), (SEGMENTED,)], [3, 2, 1], limit_of)
    assert want == {LIMITED: 2.0, SEGMENTED: 6.0}


def test_demand_of_an_empty_batch_is_nothing() -> None:
    assert demand([], [], limit_of) == {}


# --- Admission against grants ---------------------------------------------------------------

A: Lane = ("sender", "+15125550501")
B: Lane = ("sender", "+15125550502")
DAY: Lane = ("brand_carrier_day", "7:T-Mobile")
SEG_LIMITS: dict[Lane, LaneLimit] = {
    A: LaneLimit(rate_per_s=1, burst=10, per_segment=True),
    B: LaneLimit(rate_per_s=1, burst=10),
    DAY: LaneLimit(per_day=10),
}


def seg_limit_of(lane: Lane) -> LaneLimit | None:
    return SEG_LIMITS.get(lane)


def test_once_a_lane_refuses_later_messages_of_that_lane_wait_even_if_they_would_fit() -> None:
    a = admit([(A,), (A,)], [3, 1], seg_limit_of, {A: Grant(tokens=2, rate_per_s=1)})
    assert a.admitted == []
    assert a.held == [0, 1]
    # the first needs one more token than was granted, the second its own one after that
    assert a.ready_in_s == [pytest.approx(1.0), pytest.approx(2.0)]
    assert a.unused == {A: pytest.approx(2.0)}


def test_a_message_held_on_one_lane_does_not_hold_a_later_message_of_another_lane() -> None:
    grants = {A: Grant(tokens=0, rate_per_s=1), B: Grant(tokens=1, rate_per_s=1)}
    a = admit([(A,), (B,)], [1, 1], seg_limit_of, grants)
    assert (a.admitted, a.held) == ([1], [0])


def test_a_held_message_takes_nothing_from_its_open_lanes() -> None:
    grants = {A: Grant(tokens=0, rate_per_s=1), B: Grant(tokens=1, rate_per_s=1)}
    a = admit([(A, B), (B,)], [1, 1], seg_limit_of, grants)
    # the first waits on A; B's only token goes to the second
    assert (a.admitted, a.held) == ([1], [0])
    assert a.unused == {}


def test_the_wait_grows_with_the_place_in_the_lane_queue() -> None:
    a = admit([(B,)] * 4, [1] * 4, seg_limit_of, {B: Grant(tokens=0, rate_per_s=2)})
    assert a.held == [0, 1, 2, 3]
    assert a.ready_in_s == [pytest.approx(x) for x in (0.5, 1.0, 1.5, 2.0)]
    assert a.retry_after_s == pytest.approx(0.5)


def test_the_wait_counts_the_tokens_left_over_on_the_lane() -> None:
    a = admit([(B,)] * 3, [1] * 3, seg_limit_of, {B: Grant(tokens=0.5, rate_per_s=1)})
    assert a.held == [0, 1, 2]
    assert a.ready_in_s == [pytest.approx(x) for x in (0.5, 1.5, 2.5)]
    assert a.unused == {B: pytest.approx(0.5)}


def test_the_wait_on_several_empty_lanes_is_the_slowest_of_them() -> None:
    grants = {A: Grant(tokens=0, rate_per_s=4), B: Grant(tokens=0, rate_per_s=1)}
    a = admit([(A, B)], [1], seg_limit_of, grants)
    assert a.ready_in_s == [pytest.approx(1.0)]


def test_a_spent_daily_quota_caps_its_messages_until_midnight() -> None:
    a = admit([(DAY,)] * 3, [1] * 3, seg_limit_of, {DAY: Grant(tokens=1, daily_spent=True)})
    assert a.admitted == [0]
    assert a.held == a.capped == [1, 2]
    assert a.ready_in_s == [math.inf, math.inf]
    assert a.retry_after_s == math.inf


def test_a_spent_daily_quota_caps_a_lane_that_also_has_a_rate() -> None:
    grants = {B: Grant(tokens=0, rate_per_s=5, daily_spent=True)}
    a = admit([(B,)], [1], seg_limit_of, grants)
    assert a.capped == [0]
    assert a.ready_in_s == [math.inf]


def test_only_messages_on_a_spent_daily_lane_are_capped() -> None:
    grants = {DAY: Grant(tokens=0, daily_spent=True), B: Grant(tokens=0, rate_per_s=2)}
    a = admit([(DAY,), (B,)], [1, 1], seg_limit_of, grants)
    assert a.held == [0, 1]
    assert a.capped == [0]
    assert a.ready_in_s == [math.inf, pytest.approx(0.5)]
    assert a.retry_after_s == pytest.approx(0.5)


def test_granted_tokens_not_taken_are_given_back() -> None:
    grants = {A: Grant(tokens=5, rate_per_s=1), B: Grant(tokens=2, rate_per_s=1)}
    a = admit([(A, B), (A, B)], [2, 1], seg_limit_of, grants)
    assert a.admitted == [0, 1]
    assert a.unused == {A: pytest.approx(2.0)}  # B's two tokens were both taken


def test_lanes_without_a_grant_are_unlimited() -> None:
    a = admit([(A, FREE), (FREE,)], [1, 1], seg_limit_of, {A: Grant(tokens=1, rate_per_s=1)})
    assert a.admitted == [0, 1]
    assert a.held == []


def test_nothing_held_means_no_wait() -> None:
    a = admit([(B,)], [1], seg_limit_of, {B: Grant(tokens=1, rate_per_s=1)})
    assert a.held == []
    assert a.retry_after_s == 0.0


# --- The in-memory lane store ---------------------------------------------------------------


def store(**limits: LaneLimit) -> Lanes:
    table = {("sender", name): limit for name, limit in limits.items()}
    return Lanes(limit_of=lambda lane: table.get(lane))


S: Lane = ("sender", "s")
Q: Lane = ("sender", "q")


def test_a_grant_takes_tokens_and_a_refund_puts_them_back() -> None:
    ls = store(s=LaneLimit(rate_per_s=1, burst=5))
    grants = ls.grant({S: 3}, now_s=0.0, at=AT)
    assert grants == {S: Grant(tokens=3, rate_per_s=1, daily_spent=False)}
    assert ls.buckets[S].available(0.0) == pytest.approx(2)
    ls.refund({S: 3}, now_s=0.0, at=AT)
    assert ls.buckets[S].available(0.0) == pytest.approx(5)


def test_a_grant_gives_at_most_what_the_bucket_has() -> None:
    ls = store(s=LaneLimit(rate_per_s=1, burst=5))
    assert ls.grant({S: 8}, now_s=0.0, at=AT)[S].tokens == pytest.approx(5)
    assert ls.grant({S: 8}, now_s=0.0, at=AT)[S].tokens == 0
    assert ls.grant({S: 8}, now_s=1.5, at=AT)[S].tokens == pytest.approx(1.5)


def test_a_refund_never_fills_a_bucket_past_its_burst() -> None:
    ls = store(s=LaneLimit(rate_per_s=1, burst=5))
    ls.grant({S: 1}, now_s=0.0, at=AT)
    ls.refund({S: 10}, now_s=0.0, at=AT)
    assert ls.buckets[S].available(0.0) == pytest.approx(5)


def test_admitting_leaves_the_bucket_short_by_exactly_what_was_admitted() -> None:
    ls = store(s=LaneLimit(rate_per_s=1, burst=5), q=LaneLimit(rate_per_s=1, burst=2))
    a = ls.admit([(S, Q)] * 4, now_s=0.0, at=AT)
    assert a.admitted == [0, 1]
    # S granted 4, two were taken, two came back
    assert ls.buckets[S].available(0.0) == pytest.approx(3)
    assert ls.buckets[Q].available(0.0) == pytest.approx(0)


def test_a_refund_gives_back_unused_daily_quota() -> None:
    ls = store(s=LaneLimit(rate_per_s=1, burst=1), q=LaneLimit(per_day=5))
    a = ls.admit([(Q, S)] * 3, now_s=0.0, at=AT)
    assert a.admitted == [0]
    assert ls.quotas[Q].remaining(AT) == 4


def test_a_daily_quota_and_a_rate_on_one_lane_count_only_what_was_sent() -> None:
    ls = store(s=LaneLimit(rate_per_s=1, burst=10, per_day=100))
    assert len(ls.admit([(S,)] * 10, now_s=0.0, at=AT).admitted) == 10
    # 2.5 s later the bucket holds 2.5 tokens: two messages go, half a token comes back
    a = ls.admit([(S,)] * 3, now_s=2.5, at=AT)
    assert a.admitted == [0, 1]
    assert ls.quotas[S].remaining(AT) == 100 - 12


def test_the_daily_quota_rolls_over_at_pacific_midnight() -> None:
    ls = store(q=LaneLimit(per_day=2))
    before = datetime(2026, 11, 26, 7, 59, tzinfo=UTC)  # 23:59 PST
    a = ls.admit([(Q,)] * 3, now_s=0.0, at=before)
    assert (a.admitted, a.capped) == ([0, 1], [2])
    assert ls.admit([(Q,)], now_s=30.0, at=before + timedelta(seconds=30)).capped == [0]
    after = ls.admit([(Q,)] * 3, now_s=60.0, at=before + timedelta(minutes=1))  # 00:00 PST
    assert (after.admitted, after.capped) == ([0, 1], [2])


def test_the_daily_quota_of_the_short_spring_day_lasts_until_midnight_pdt() -> None:
    ls = store(q=LaneLimit(per_day=1))
    start = datetime(2026, 3, 8, 8, 0, tzinfo=UTC)  # 00:00 PST, 8 March
    assert ls.admit([(Q,)], now_s=0.0, at=start).admitted == [0]
    late = datetime(2026, 3, 9, 6, 59, tzinfo=UTC)  # 23:59 PDT, still 8 March
    assert ls.admit([(Q,)], now_s=1.0, at=late).capped == [0]
    midnight = datetime(2026, 3, 9, 7, 0, tzinfo=UTC)  # 00:00 PDT, 9 March
    assert ls.admit([(Q,)], now_s=2.0, at=midnight).admitted == [0]


def test_the_daily_quota_of_the_long_autumn_day_lasts_until_midnight_pst() -> None:
    ls = store(q=LaneLimit(per_day=1))
    start = datetime(2026, 11, 1, 7, 0, tzinfo=UTC)  # 00:00 PDT, 1 November
    assert ls.admit([(Q,)], now_s=0.0, at=start).admitted == [0]
    late = datetime(2026, 11, 2, 7, 30, tzinfo=UTC)  # 23:30 PST, still 1 November
    assert ls.admit([(Q,)], now_s=1.0, at=late).capped == [0]
    midnight = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)  # 00:00 PST, 2 November
    assert ls.admit([(Q,)], now_s=2.0, at=midnight).admitted == [0]


def test_a_throttle_halves_a_lane_rate_and_the_wait_follows_it() -> None:
    ls = store(s=LaneLimit(rate_per_s=4, burst=4))
    ls.admit([(S,)], now_s=0.0, at=AT)
    ls.throttled(S, now_s=0.0)
    assert ls.buckets[S].rate_per_s == pytest.approx(2)
    # what was saved up is dropped: nothing goes now, and the next token is 1/2 s away
    a = ls.admit([(S,)], now_s=0.0, at=AT)
    assert a.held == [0]
    assert a.retry_after_s == pytest.approx(0.5)


def test_successes_raise_a_throttled_rate_additively_back_to_its_maximum() -> None:
    ls = store(s=LaneLimit(rate_per_s=100, burst=100))
    ls.throttled(S, now_s=0.0)
    assert ls.buckets[S].rate_per_s == pytest.approx(50)
    ls.succeeded(S, now_s=0.0)
    assert ls.buckets[S].rate_per_s == pytest.approx(55)  # 5% of the maximum a step
    for _ in range(9):
        ls.succeeded(S, now_s=0.0)
    assert ls.buckets[S].rate_per_s == pytest.approx(100)
    ls.succeeded(S, now_s=0.0)
    assert ls.buckets[S].rate_per_s == pytest.approx(100)


def test_a_throttle_never_raises_a_slow_lane_above_its_configured_rate() -> None:
    # three a minute, as a per-minute carrier limit is stored (n / 60): below the 0.1/s floor
    ls = store(s=LaneLimit(rate_per_s=0.05, burst=1))
    ls.throttled(S, now_s=0.0)
    assert ls.buckets[S].rate_per_s <= 0.05


def test_throttles_and_successes_on_an_unlimited_lane_change_nothing() -> None:
    ls = store()
    ls.throttled(S, now_s=0.0)
    ls.succeeded(S, now_s=0.0)
    assert ls.buckets == {}
    assert len(ls.admit([(S,)] * 100, now_s=0.0, at=AT).admitted) == 100


# Rates at or above the throttle floor (0.1/s): below it a throttle raises the rate, see
# test_a_throttle_never_raises_a_slow_lane_above_its_configured_rate.
STEPS = st.lists(
    st.tuples(
        st.floats(min_value=0.0, max_value=5.0),  # seconds since the step before
        st.sampled_from(["admit", "throttled", "succeeded"]),
        st.lists(st.integers(min_value=1, max_value=4), min_size=1, max_size=12),  # segments
        st.lists(st.booleans(), min_size=12, max_size=12),  # whether a message takes S
    ),
    max_size=30,
)


@settings(deadline=None, max_examples=200)
@given(
    rate_per_s=st.floats(min_value=0.1, max_value=50.0),
    burst=st.floats(min_value=1.0, max_value=20.0),
    per_segment=st.booleans(),
    steps=STEPS,
)
def test_a_rate_lane_never_admits_more_than_its_burst_plus_its_rate_times_elapsed(
    rate_per_s: float,
    burst: float,
    per_segment: bool,
    steps: list[tuple[float, str, list[int], list[bool]]],
) -> None:
    ls = store(
        s=LaneLimit(rate_per_s=rate_per_s, burst=burst, per_segment=per_segment),
        q=LaneLimit(rate_per_s=1.0, burst=3.0),
    )
    now_s, admitted = 0.0, 0.0
    for dt_s, op, segments, takes_s in steps:
        now_s += dt_s
        at = AT + timedelta(seconds=now_s)
        if op == "throttled":
            ls.throttled(S, now_s)
        elif op == "succeeded":
            ls.succeeded(S, now_s)
        else:
            plan = [(S, Q) if s else (Q, FAST) for s in takes_s[: len(segments)]]
            a = ls.admit(plan, now_s=now_s, at=at, segments=segments)
            admitted += sum(segments[i] if per_segment else 1 for i in a.admitted if S in plan[i])
        assert admitted <= burst + rate_per_s * now_s + 1e-6


# Lane tuples as the send stage builds them: one object per sender and carrier, shared by
# its messages; `EQUAL_COPY` is equal to the first but another object.
LANE_SETS: list[tuple[Lane, ...]] = [
    (ACCOUNT, SLOW, ("carrier", "Verizon")),
    (ACCOUNT, FAST, ("carrier", "Verizon")),
    (ACCOUNT, SLOW, ("carrier", "T-Mobile")),
    (ACCOUNT, ("brand", "1")),
]
EQUAL_COPY = tuple(list(LANE_SETS[0]))
BATCH_LIMITS: dict[Lane, LaneLimit] = {
    ACCOUNT: LaneLimit(rate_per_s=100),
    SLOW: LaneLimit(rate_per_s=1, per_segment=True),
    FAST: LaneLimit(rate_per_s=50, per_segment=True),
    ("carrier", "T-Mobile"): LaneLimit(per_day=10),
}


@settings(max_examples=300, deadline=None)
@given(
    picks=st.lists(
        st.tuples(st.integers(min_value=0, max_value=4), st.integers(min_value=1, max_value=4)),
        max_size=80,
    ),
    tokens=st.dictionaries(
        st.sampled_from([ACCOUNT, SLOW, FAST, ("carrier", "T-Mobile"), ("brand", "1")]),
        st.one_of(
            st.floats(min_value=0, max_value=400, allow_nan=False),
            st.integers(min_value=0, max_value=400).map(float),
            st.just(math.inf),
        ),
    ),
    spent=st.booleans(),
)
def test_admitting_a_batch_at_once_is_admitting_it_one_message_at_a_time(
    picks: list[tuple[int, int]], tokens: dict[Lane, float], spent: bool
) -> None:
    """`admit` decides a batch that every lane can carry without walking its messages: the
    answer is the walk's, message by message, token by token."""
    choices = [*LANE_SETS, EQUAL_COPY]
    lanes_of = [choices[i] for i, _ in picks]
    segments = [s for _, s in picks]
    grants = {
        lane: Grant(t, rate_per_s=None if spent and lane == SLOW else 5.0, daily_spent=spent)
        for lane, t in tokens.items()
    }
    fast = admit(lanes_of, segments, BATCH_LIMITS.get, grants)
    walked = admit_in_order(lanes_of, segments, BATCH_LIMITS.get, grants)
    assert fast == walked
    want = demand(lanes_of, segments, BATCH_LIMITS.get)
    for lane in want:
        assert want[lane] == sum(
            (s if BATCH_LIMITS[lane].per_segment else 1)
            for ls, s in zip(lanes_of, segments, strict=True)
            if lane in ls
        )
