"""The send decision as a function of what the worker read: the campaign's status, the gate,
the sequence, the lanes and retries decide with plain records, no database."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from clarion.domain.lanes import Lane
from clarion.domain.messages import SendResult, Waiting
from clarion.domain.records import OutboundMessage
from clarion.pipeline.lanes import Admission
from clarion.pipeline.send import LANE_WAIT, PAUSED, RETRY, SEQUENCE_WAIT
from clarion.pipeline.send_decision import (
    FOREVER,
    SendState,
    backoff_waits,
    decide,
    decide_lanes,
    senders_and_lanes,
    throttle_waits,
)

AT = datetime(2026, 11, 25, 18, 0, tzinfo=UTC)  # 13:00 in New York: inside the window
SECOND = timedelta(seconds=1)


def message(i: int) -> OutboundMessage:
    return OutboundMessage(
        message_id=f"m{i}", subscriber_id=i, to=f"+1212555{i:04d}", body="Hi", segments=1
    )


def opted_in(todo: list[OutboundMessage]) -> dict[int, str]:
    return {m.subscriber_id: "opted_in" for m in todo if m.subscriber_id is not None}


def test_everything_goes_when_every_recipient_opted_in_and_nothing_waits() -> None:
    todo = [message(i) for i in range(3)]
    d = decide("sms", todo, SendState(at=AT, consent=opted_in(todo)))
    assert d.go == todo
    assert (d.drops, d.quiet, d.waits, d.unknown, d.held) == ([], [], [], [], 0)


def test_a_paused_campaign_holds_everything_until_resume() -> None:
    todo = [message(i) for i in range(3)]
    d = decide("sms", todo, SendState(at=AT, status="paused", consent=opted_in(todo)))
    assert d.go == []
    assert d.drops == []
    assert d.waits == [(f"m{i}", FOREVER, PAUSED, None) for i in range(3)]


def test_a_cancelled_campaign_drops_its_messages_but_an_interrupted_one_is_of_unknown_fate() -> (
    None
):
    todo = [message(i) for i in range(3)]
    d = decide("sms", todo, SendState(at=AT, status="cancelled", interrupted={"m1"}))
    assert d.go == []
    assert d.drops == [
        ("m0", "suppressed", "cancelled", None),
        ("m2", "suppressed", "cancelled", None),
    ]
    assert d.unknown == ["m1"]


def test_an_expired_campaign_drops_every_message_as_expired() -> None:
    todo = [message(i) for i in range(2)]
    d = decide("sms", todo, SendState(at=AT, expires_at=AT, consent=opted_in(todo)))
    assert d.go == []
    assert [(mid, status) for mid, status, _, _ in d.drops] == [
        ("m0", "expired"),
        ("m1", "expired"),
    ]


def test_an_opted_out_recipient_is_dropped_and_an_interrupted_one_becomes_unknown() -> None:
    todo = [message(i) for i in range(3)]
    state = SendState(
        at=AT, consent={0: "opted_in", 1: "opted_out", 2: "opted_out"}, interrupted={"m2"}
    )
    d = decide("sms", todo, state)
    assert d.go == [todo[0]]
    assert [x[0] for x in d.drops] == ["m1"]
    assert d.unknown == ["m2"]
    assert len(d.gate.drops) == 2  # both are counted as the gate's


def test_a_message_never_overtakes_an_older_one_to_the_same_subscriber() -> None:
    todo = [message(1), message(2)]
    older = Waiting("old", 1, AT - timedelta(hours=1), AT + timedelta(minutes=5))
    own = [Waiting(m.message_id, m.subscriber_id or 0, AT, None) for m in todo]
    d = decide("sms", todo, SendState(at=AT, consent=opted_in(todo), waiting=[older, *own]))
    assert d.go == [todo[1]]
    assert d.waits == [("m1", AT + timedelta(minutes=5) + SECOND, SEQUENCE_WAIT, None)]
    assert d.held == 1


def test_a_new_batch_is_newer_than_every_stored_message() -> None:
    todo = [message(1)]
    older = Waiting("old", 1, AT - timedelta(hours=1), None)
    d = decide("sms", todo, SendState(at=AT, consent=opted_in(todo), waiting=[older]), new=True)
    assert d.go == []
    assert d.waits == [("m1", AT + SECOND, SEQUENCE_WAIT, None)]


def test_email_is_gated_on_email_consent_without_a_sending_window() -> None:
    todo = [message(0), message(1)]
    d = decide("email", todo, SendState(at=AT, consent={0: "opted_in"}))
    assert d.go == [todo[0]]
    assert [x[0] for x in d.drops] == ["m1"]


def test_a_lane_admission_defers_the_excess_and_the_rest_goes_from_its_sender() -> None:
    todo = [message(i) for i in range(4)]
    admission = Admission(
        admitted=[0, 2], held=[1, 3], ready_in_s=[2.0, math.inf], capped=[], unused={}
    )
    lanes = decide_lanes(todo, ["a", "b", "a", "b"], admission, at=AT, expires_at=None)
    assert lanes.go == [("a", todo[0]), ("a", todo[2])]
    assert lanes.waits == [
        ("m1", AT + 2 * SECOND, LANE_WAIT, None),
        ("m3", AT + 30 * SECOND, LANE_WAIT, None),
    ]
    assert lanes.expired == []


def test_a_subscriber_always_hears_from_the_same_number_of_the_pool() -> None:
    todo = [message(i) for i in range(20)]
    pool = ["+15550001", "+15550002", "+15550003"]

    def pick(todo: list[OutboundMessage]) -> tuple[list[str], list[tuple[Lane, ...]]]:
        return senders_and_lanes(
            "sim", todo, sender_pool=pool, brand_id=1, campaign_id=2, channel="sms",
            transactional=False,
        )  # fmt: skip

    senders, lanes = pick(todo)
    again, _ = pick(list(reversed(todo)))
    assert senders == list(reversed(again))
    assert len(set(senders)) > 1
    assert lanes[0] == (("provider", "sim"), ("sender", senders[0]))


def test_a_throttled_message_waits_its_retry_after_and_a_failed_one_a_growing_backoff() -> None:
    again = [
        SendResult(message_id="t", accepted=False, retry=True, throttled=True, retry_after_s=7),
        SendResult(message_id="f", accepted=False, retry=True, error_code="500"),
    ]
    assert throttle_waits(again, AT) == [("t", AT + 7 * SECOND, LANE_WAIT, None)]
    waits = backoff_waits([("a", 1), ("b", 3)], AT, base_s=0.5, jitter=1.0, error="boom")
    assert waits == [
        ("a", AT + timedelta(seconds=0.5), RETRY, "boom"),
        ("b", AT + timedelta(seconds=2.0), RETRY, "boom"),
    ]
