"""What the send stage does with messages the lanes held back: when they are looked at again,
and which can never go (a daily cap that reopens after the campaign's expiry)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from clarion.domain.records import OutboundMessage
from clarion.pipeline.lanes import Admission, next_pacific_midnight
from clarion.pipeline.send import CARRIER_DAILY_CAP, LANE_WAIT
from clarion.pipeline.send_decision import decide_lanes

AT = datetime(2026, 11, 25, 18, 0, tzinfo=UTC)  # 10:00 Pacific


def message(i: int) -> OutboundMessage:
    return OutboundMessage(
        message_id=f"m{i}", subscriber_id=i, to=f"+1212555{i:04d}", body="x", segments=1,
        carrier="T-Mobile",
    )  # fmt: skip


def test_held_messages_wait_for_their_lane_and_capped_ones_for_midnight_pacific() -> None:
    todo = [message(i) for i in range(4)]
    admission = Admission(
        admitted=[0], held=[1, 2, 3], ready_in_s=[0.5, 120.0, math.inf], capped=[3], unused={}
    )
    lanes = decide_lanes(todo, ["s"] * 4, admission, at=AT, expires_at=AT + timedelta(days=2))
    defers, expired = lanes.waits, lanes.expired
    assert lanes.go == [("s", todo[0])]
    assert expired == []
    assert defers == [
        ("m1", AT + timedelta(seconds=0.5), LANE_WAIT, None),
        ("m2", AT + timedelta(seconds=30), LANE_WAIT, None),  # looked at again within 30 s
        ("m3", next_pacific_midnight(AT), CARRIER_DAILY_CAP, "T-Mobile"),
    ]


def test_a_cap_that_reopens_after_expiry_expires_the_message_at_once() -> None:
    todo = [message(0), message(1)]
    admission = Admission(
        admitted=[], held=[0, 1], ready_in_s=[0.0, math.inf], capped=[1], unused={}
    )
    lanes = decide_lanes(todo, ["s"] * 2, admission, at=AT, expires_at=AT + timedelta(hours=12))
    defers, expired = lanes.waits, lanes.expired
    assert defers == [("m0", AT + timedelta(seconds=0.05), LANE_WAIT, None)]  # never busy-loops
    assert expired == [("m1", "expired", CARRIER_DAILY_CAP, "T-Mobile")]
