"""The send plan: counts, quiet hours, sticky senders, lanes, daily caps and the finish
estimate, on injected times (no sleeping, no database)."""

from __future__ import annotations

import dataclasses
import zlib
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clarion.domain.lanes import LaneLimit
from clarion.pipeline.lanes import next_pacific_midnight
from clarion.pipeline.plan import (
    MAX_HOLD_DAYS,
    Actual,
    CapPlan,
    HourCount,
    LanePlan,
    PlanContext,
    Planner,
    PlanRecipient,
    SendPlan,
    plan_vs_actual,
)

# A Wednesday, 09:00 in New York and 06:00 in Los Angeles: New York may be texted now,
# Los Angeles only from 08:00 Pacific (16:00 UTC).
AT = datetime(2026, 11, 25, 14, 0, tzinfo=UTC)
LA_WINDOW_OPENS = datetime(2026, 11, 25, 16, 0, tzinfo=UTC)
NEXT_PACIFIC_MIDNIGHT = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)  # 00:00 PST
BRAND, CAMPAIGN = 7, 42
SENDER = "+15125550100"
TMOBILE_DAY = ("brand_carrier_day", "7:T-Mobile")

BASE = PlanContext(
    at=AT,
    brand_id=BRAND,
    campaign_id=CAMPAIGN,
    provider="sim",
    sender_pool=[SENDER],
    default_sender="+15125550999",
    limits={},
)


def context(**changes: Any) -> PlanContext:
    return dataclasses.replace(BASE, **changes)


def ny(i: int, **fields: Any) -> PlanRecipient:
    """A New York number (its zone comes from the number)."""
    values: dict[str, Any] = {"timezone": None, "carrier": None, "segments": 1}
    values |= {"consent": "opted_in"} | fields
    return PlanRecipient(subscriber_id=i, phone=f"+1212555{i:04d}", **values)


def la(i: int, **fields: Any) -> PlanRecipient:
    """A Los Angeles number with its stored zone."""
    values: dict[str, Any] = {"timezone": "America/Los_Angeles", "carrier": None, "segments": 1}
    values |= {"consent": "opted_in"} | fields
    return PlanRecipient(subscriber_id=10_000 + i, phone=f"+1213555{i:04d}", **values)


def plan_of(recipients: list[PlanRecipient], **changes: Any) -> SendPlan:
    planner = Planner(context(**changes))
    planner.add(recipients)
    return planner.result()


def lane_of(plan: SendPlan, kind: str, key: str) -> LanePlan:
    (found,) = [p for p in plan.lanes if (p.kind, p.key) == (kind, key)]
    return found


def test_the_constants_describe_the_clock_the_tests_use() -> None:
    assert next_pacific_midnight(AT) == NEXT_PACIFIC_MIDNIGHT


def test_gate_drops_and_render_errors_are_counted_by_reason() -> None:
    recipients = [
        ny(1),
        ny(2, consent="opted_out"),
        ny(3, consent=None),
        ny(4, consent="pending"),
        ny(5, suppression="landline"),
        ny(6, recent_sends=(AT - timedelta(hours=2),)),
        ny(7, render_error="'promo' is undefined", segments=0),
        # Florida: three sends in the last 24 h, none in the last 16 h
        PlanRecipient(
            subscriber_id=8,
            phone="+13055550100",
            timezone=None,
            carrier=None,
            segments=1,
            consent="opted_in",
            recent_sends=tuple(AT - timedelta(hours=h) for h in (17, 18, 19)),
        ),
        ny(9),
    ]
    plan = plan_of(recipients)
    assert plan.excluded == {
        "frequency_capped": 1,
        "no_consent": 2,
        "opted_out": 1,
        "state_frequency_cap": 1,
        "suppressed": 1,
        "template_error": 1,
    }
    assert (plan.audience, plan.eligible, plan.send_now) == (9, 2, 2)
    assert plan.segments == 2


def test_new_york_goes_now_and_los_angeles_waits_for_its_window() -> None:
    plan = plan_of([ny(1), ny(2), ny(3), la(1), la(2)])
    assert (plan.eligible, plan.send_now, plan.deferred) == (5, 3, 2)
    assert plan.deferred_by_hour == [HourCount(LA_WINDOW_OPENS, 2)]
    assert plan.first_send_at == AT
    assert plan.finish_at is not None
    assert plan.finish_at >= LA_WINDOW_OPENS


def test_a_window_that_opens_after_expiry_drops_as_expired() -> None:
    plan = plan_of([ny(1), la(1), la(2)], expires_at=AT + timedelta(hours=1))
    assert plan.excluded == {"expired": 2}
    assert plan.expire_in_quiet_hours == 2
    assert (plan.eligible, plan.deferred, plan.deferred_by_hour) == (1, 0, [])


def test_a_campaign_planned_after_its_expiry_sends_nothing() -> None:
    plan = plan_of([ny(1), la(1)], expires_at=AT)
    assert plan.excluded == {"expired": 2}
    assert plan.expire_in_quiet_hours == 0  # expired outright, not because of a window
    assert (plan.eligible, plan.lanes, plan.bottleneck) == (0, [], None)
    assert (plan.first_send_at, plan.finish_at, plan.duration_s) == (None, None, None)


def test_each_recipient_hears_from_the_send_stages_sticky_sender() -> None:
    pool = ["+15125550300", "+15125550100", "+15125550200"]  # unsorted, as a caller may pass
    recipients = [ny(i) for i in range(60)]
    ordered = sorted(pool)
    expected = Counter(ordered[zlib.crc32(r.phone.encode()) % 3] for r in recipients)
    assert len(expected) == 3  # the numbers do spread, so the check below means something

    plan = plan_of(recipients, sender_pool=pool)
    senders = {p.key: p.recipients for p in plan.lanes if p.kind == "sender"}
    assert senders == dict(expected)


def test_an_empty_pool_sends_from_the_default_sender() -> None:
    plan = plan_of([ny(1), ny(2)], sender_pool=[])
    assert lane_of(plan, "sender", "+15125550999").recipients == 2


def test_a_per_segment_sender_lane_counts_segments_and_others_count_messages() -> None:
    limits = {("sender", SENDER): LaneLimit(rate_per_s=2, per_segment=True)}
    plan = plan_of([ny(i, segments=3) for i in range(4)], limits=limits)
    sender = lane_of(plan, "sender", SENDER)
    assert (sender.recipients, sender.tokens, sender.busy_s) == (4, 12, 6.0)
    assert lane_of(plan, "provider", "sim").tokens == 4
    assert plan.segments == 12
    assert plan.duration_s == pytest.approx(6.0)
    assert plan.bottleneck == f"sender:{SENDER}"


def test_carrier_lanes_resolve_through_wildcard_rows_and_set_the_finish() -> None:
    limits = {("carrier_minute", "*:*:AT&T"): LaneLimit(rate_per_s=10 / 60)}
    recipients = [ny(i, carrier="AT&T") for i in range(600)]
    recipients += [ny(1000 + i, carrier="T-Mobile") for i in range(50)]
    plan = plan_of(recipients, limits=limits)

    att = lane_of(plan, "carrier_minute", f"{BRAND}:{CAMPAIGN}:AT&T")
    assert (att.recipients, att.tokens, att.rate_per_s) == (600, 600, 10 / 60)
    assert att.busy_s == pytest.approx(3600)
    assert lane_of(plan, "carrier_minute", f"{BRAND}:{CAMPAIGN}:T-Mobile").rate_per_s is None
    assert plan.carriers == {"AT&T": 600, "T-Mobile": 50}
    assert plan.duration_s is not None
    assert plan.duration_s >= 3600
    assert plan.duration_s == pytest.approx(3600)
    assert plan.bottleneck == f"carrier_minute:{BRAND}:{CAMPAIGN}:AT&T"
    assert plan.lanes[0] == att


def test_lanes_work_side_by_side_but_a_lane_serves_one_group_after_another() -> None:
    both = {
        ("carrier_minute", "*:*:AT&T"): LaneLimit(rate_per_s=1),
        ("carrier_minute", "*:*:T-Mobile"): LaneLimit(rate_per_s=1),
    }
    side_by_side = plan_of(
        [ny(i, carrier="AT&T") for i in range(10)]
        + [ny(100 + i, carrier="T-Mobile") for i in range(10)],
        limits=both,
    )
    assert side_by_side.duration_s == pytest.approx(10)  # not 20

    # One slow sender: New York's 10 keep it busy until +10,000 s, past Los Angeles' window
    # (+7,200 s), so Los Angeles' 5 start when the sender is free, not when they are released.
    slow = {("sender", SENDER): LaneLimit(rate_per_s=1 / 1000)}
    queued = plan_of([ny(i) for i in range(10)] + [la(i) for i in range(5)], limits=slow)
    assert queued.finish_at == AT + timedelta(seconds=15_000)


def test_the_platform_rate_bounds_every_message() -> None:
    plan = plan_of([ny(i) for i in range(1000)], platform_rate_mps=100.0)
    platform = lane_of(plan, "platform", "all")
    assert (platform.recipients, platform.busy_s) == (1000, pytest.approx(10))
    assert plan.bottleneck == "platform:all"
    assert plan.duration_s == pytest.approx(10)


TMOBILE_CAP = {("brand_carrier_day", "*:T-Mobile"): LaneLimit(per_day=100)}


def test_a_daily_cap_holds_the_rest_until_the_next_pacific_midnight() -> None:
    recipients = [ny(i, carrier="T-Mobile") for i in range(50)]
    plan = plan_of(recipients, limits=TMOBILE_CAP, daily_used={TMOBILE_DAY: 70})
    assert plan.caps == [
        CapPlan(
            kind="brand_carrier_day",
            key="7:T-Mobile",
            per_day=100,
            remaining_today=30,
            recipients=50,
            left_over=20,
            resumes_at=NEXT_PACIFIC_MIDNIGHT,
            expire=0,
        )
    ]
    assert (plan.eligible, plan.send_now, plan.capped, plan.expire_after_caps) == (50, 50, 20, 0)
    assert plan.finish_at is not None
    assert plan.finish_at >= NEXT_PACIFIC_MIDNIGHT
    assert lane_of(plan, *TMOBILE_DAY).per_day == 100


def test_a_cap_with_room_today_is_not_reported() -> None:
    recipients = [ny(i, carrier="T-Mobile") for i in range(30)]
    plan = plan_of(recipients, limits=TMOBILE_CAP, daily_used={TMOBILE_DAY: 70})
    assert (plan.caps, plan.capped) == ([], 0)
    assert plan.finish_at is not None
    assert plan.finish_at < NEXT_PACIFIC_MIDNIGHT


@pytest.mark.parametrize(
    "expires_at",
    [AT + timedelta(hours=6), NEXT_PACIFIC_MIDNIGHT],
    ids=["before-midnight", "at-midnight"],
)
def test_left_overs_expire_when_the_campaign_expires_before_they_resume(
    expires_at: datetime,
) -> None:
    recipients = [ny(i, carrier="T-Mobile") for i in range(50)]
    plan = plan_of(
        recipients, limits=TMOBILE_CAP, daily_used={TMOBILE_DAY: 70}, expires_at=expires_at
    )
    (cap,) = plan.caps
    assert (cap.left_over, cap.expire, cap.recipients) == (0, 20, 50)
    assert (plan.eligible, plan.expire_after_caps) == (30, 20)
    assert plan.excluded == {}
    assert plan.finish_at is not None
    assert plan.finish_at < NEXT_PACIFIC_MIDNIGHT


def test_a_backlog_rolls_over_one_day_cap_at_a_time() -> None:
    limits = {("brand_carrier_day", "*:T-Mobile"): LaneLimit(per_day=10)}
    recipients = [ny(i, carrier="T-Mobile") for i in range(25)]
    plan = plan_of(recipients, limits=limits, daily_used={TMOBILE_DAY: 10})
    (cap,) = plan.caps
    assert (cap.remaining_today, cap.left_over, cap.resumes_at) == (0, 25, NEXT_PACIFIC_MIDNIGHT)
    assert plan.first_send_at == NEXT_PACIFIC_MIDNIGHT  # nothing fits today
    # 10 the first night, 10 the second, the last 5 the third
    third_night = next_pacific_midnight(next_pacific_midnight(NEXT_PACIFIC_MIDNIGHT))
    assert plan.finish_at is not None
    assert third_night <= plan.finish_at < third_night + timedelta(hours=1)


def test_a_cap_of_zero_a_day_never_sends() -> None:
    limits = {("brand_carrier_day", "*:T-Mobile"): LaneLimit(per_day=0)}
    plan = plan_of([ny(i, carrier="T-Mobile") for i in range(5)], limits=limits)
    assert (plan.eligible, plan.expire_after_caps, plan.finish_at) == (0, 5, None)


def test_a_backlog_beyond_the_plan_horizon_counts_as_expiring() -> None:
    limits = {("brand_carrier_day", "*:T-Mobile"): LaneLimit(per_day=1)}
    plan = plan_of([ny(i, carrier="T-Mobile") for i in range(400)], limits=limits)
    # one today, one on each of the next MAX_HOLD_DAYS nights, the rest past the horizon
    assert plan.eligible == 1 + MAX_HOLD_DAYS
    assert plan.expire_after_caps == 400 - 1 - MAX_HOLD_DAYS
    assert plan.finish_at is not None
    assert plan.finish_at <= AT + timedelta(days=MAX_HOLD_DAYS)


def test_a_deferred_group_released_tomorrow_counts_against_tomorrows_cap() -> None:
    # 23:30 Pacific: nobody may be texted; everyone's window opens the next Pacific day,
    # whose cap has not been used, so the cap holds nobody over.
    late = datetime(2026, 11, 26, 7, 30, tzinfo=UTC)
    recipients = [la(i, carrier="T-Mobile") for i in range(50)]
    plan = plan_of(recipients, at=late, limits=TMOBILE_CAP, daily_used={TMOBILE_DAY: 100})
    assert (plan.deferred, plan.caps) == (50, [])


def test_plan_vs_actual_puts_each_figure_next_to_what_happened() -> None:
    recipients = [ny(i, carrier="AT&T", segments=2) for i in range(3)] + [la(1), la(2)]
    plan = plan_of(recipients, expires_at=AT + timedelta(days=1))
    actual = Actual(
        eligible=5,
        sent=3,
        deferred=2,
        capped=0,
        expired=1,
        segments=8,
        first_send_at=AT + timedelta(seconds=4),
        finished_at=AT + timedelta(hours=2, seconds=30),
        carriers={"AT&T": 3, "Verizon": 1},
    )
    rows = {r.metric: (r.planned, r.actual) for r in plan_vs_actual(plan, actual)}
    assert rows["eligible"] == (5, 5)
    assert rows["sent now"] == (3, 3)
    assert rows["deferred"] == (2, 2)
    assert rows["capped"] == (0, 0)
    assert rows["expired"] == (0, 1)
    assert rows["segments"] == (8, 8)
    assert rows["first send (s)"] == (0.0, 4.0)
    assert rows["duration (s)"] == (plan.duration_s, 2 * 3600 + 26.0)
    assert rows["finish"] == (plan.finish_at, AT + timedelta(hours=2, seconds=30))
    assert rows["carrier AT&T"] == (3, 3)
    assert rows["carrier unknown"] == (2, 0)
    assert rows["carrier Verizon"] == (0, 1)


def test_the_plan_and_its_report_encode_as_json() -> None:
    limits = TMOBILE_CAP | {("carrier_minute", "*:*:AT&T"): LaneLimit(rate_per_s=1)}
    recipients = [ny(i, carrier="T-Mobile") for i in range(120)] + [la(1, carrier="AT&T")]
    plan = plan_of(recipients, limits=limits, expires_at=AT + timedelta(days=2))
    data = msgspec.json.encode(plan)
    assert b'"computed_at":"2026-11-25T14:00:00Z"' in data
    assert msgspec.json.decode(data, type=SendPlan) == plan
    assert plan.caps  # the encoded plan has every kind of part in it
    assert plan.deferred_by_hour

    actual = Actual(
        eligible=0,
        sent=0,
        deferred=0,
        capped=0,
        expired=0,
        segments=0,
        first_send_at=None,
        finished_at=None,
        carriers={},
    )
    rows = msgspec.json.decode(msgspec.json.encode(plan_vs_actual(plan, actual)))
    assert rows[0] == {"metric": "eligible", "planned": 121, "actual": 0}


def test_a_launch_moment_without_a_zone_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        context(at=datetime(2026, 11, 25, 14, 0))


# --- properties over generated audiences -------------------------------------------------

PHONES = [
    *((f"+1212555{i:04d}", None) for i in range(8)),
    *((f"+1213555{i:04d}", "America/Los_Angeles") for i in range(8)),
    *((f"+1305555{i:04d}", None) for i in range(4)),
]
recipient_st = st.builds(
    lambda i, phone, carrier, segments, consent, recent, broken: PlanRecipient(
        subscriber_id=i,
        phone=phone[0],
        timezone=phone[1],
        carrier=carrier,
        segments=segments,
        consent=consent,
        recent_sends=(AT - timedelta(hours=recent),) if recent else (),
        render_error="boom" if broken else None,
    ),
    st.integers(1, 10**6),
    st.sampled_from(PHONES),
    st.sampled_from([None, "AT&T", "T-Mobile"]),
    st.integers(1, 3),
    st.sampled_from(["opted_in", "opted_in", "opted_in", "opted_out", None]),
    st.sampled_from([0, 0, 0, 2, 20]),
    st.sampled_from([False, False, False, True]),
)
context_st = st.builds(
    lambda per_day, used, expiry_h: context(
        sender_pool=["+15125550100", "+15125550200"],
        limits={
            ("brand_carrier_day", "*:T-Mobile"): LaneLimit(per_day=per_day),
            ("carrier_minute", "*:*:AT&T"): LaneLimit(rate_per_s=0.5),
            ("sender", "+15125550200"): LaneLimit(rate_per_s=2, per_segment=True),
        },
        daily_used={TMOBILE_DAY: used},
        expires_at=AT + timedelta(hours=expiry_h) if expiry_h else None,
    ),
    st.integers(0, 6),
    st.integers(0, 6),
    st.sampled_from([0, 1, 3, 20, 48]),
)


@settings(max_examples=60, deadline=None)
@given(ctx=context_st, recipients=st.lists(recipient_st, max_size=40), cuts=st.data())
def test_pages_add_up_to_the_same_plan_as_one_page(
    ctx: PlanContext, recipients: list[PlanRecipient], cuts: st.DataObject
) -> None:
    whole = Planner(ctx)
    whole.add(recipients)

    points = sorted(cuts.draw(st.lists(st.integers(0, len(recipients)), max_size=5)))
    paged = Planner(ctx)
    for start, end in zip([0, *points], [*points, len(recipients)], strict=True):
        paged.add(iter(recipients[start:end]))  # a page may be any iterable, even empty

    assert paged.result() == whole.result()


@settings(max_examples=60, deadline=None)
@given(ctx=context_st, recipients=st.lists(recipient_st, max_size=40))
def test_every_recipient_is_accounted_for_exactly_once(
    ctx: PlanContext, recipients: list[PlanRecipient]
) -> None:
    planner = Planner(ctx)
    planner.add(recipients)
    plan = planner.result()
    assert plan.audience == len(recipients)
    assert plan.audience == plan.eligible + sum(plan.excluded.values()) + plan.expire_after_caps
    assert plan.eligible == plan.send_now + plan.deferred == sum(plan.carriers.values())
    assert plan.deferred == sum(h.count for h in plan.deferred_by_hour)
    if plan.eligible:
        assert lane_of(plan, "platform", "all").recipients == plan.eligible
        assert plan.first_send_at is not None
        assert plan.finish_at is not None
        assert plan.first_send_at <= plan.finish_at
    busy = [p.busy_s for p in plan.lanes]
    assert busy == sorted(busy, reverse=True)
