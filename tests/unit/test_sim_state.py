"""The simulator's in-memory state: idempotent accept and handset delivery."""

from __future__ import annotations

import random

from clarion.sim.app import SimConfig, SimState
from clarion.sim.wire import SendRequest, SimMessage

CALLBACK = "http://clarion.test/webhooks/sim/status"


def state(*, failure_rate: float = 0.0) -> SimState:
    return SimState(
        config=SimConfig(latency_scale=0.0, failure_rate=failure_rate, seed=1),
        rng=random.Random(1),
    )


def request(*messages: tuple[str, str]) -> SendRequest:
    return SendRequest(
        callback_url=CALLBACK,
        messages=[SimMessage(mid, to, "+15550001111", f"body of {mid}") for mid, to in messages],
    )


def test_the_same_message_id_twice_returns_the_same_provider_id_and_counts_a_duplicate() -> None:
    s = state()
    (first,) = s.accept(request(("m1", "+12125557788")))
    (second,) = s.accept(request(("m1", "+12125557788")))
    assert first.status == "accepted"
    assert first.provider_id is not None
    assert first.provider_id.startswith("SM")
    assert second == first
    assert s.counts["accepted"] == 1
    assert s.counts["duplicates"] == 1
    assert s.pending == 2  # one sent + one final receipt, planned once


def test_a_duplicate_within_one_request_is_answered_once() -> None:
    s = state()
    a, b = s.accept(request(("m1", "+12125557788"), ("m1", "+12125557788")))
    assert a == b
    assert (s.counts["accepted"], s.counts["duplicates"]) == (1, 1)


def test_an_invalid_number_is_rejected_with_21211_and_never_scheduled() -> None:
    s = state()
    (result,) = s.accept(request(("m1", "+12125550123")))
    assert result.status == "rejected"
    assert result.error_code == "21211"
    assert result.provider_id is None
    assert s.counts["rejected"] == 1
    assert s.pending == 0
    (again,) = s.accept(request(("m1", "+12125550123")))
    assert again == result
    assert s.counts["rejected"] == 1


def test_a_delivered_message_reaches_the_handset_inbox_exactly_once() -> None:
    s = state()
    (answer,) = s.accept(request(("m1", "+12125557788")))
    due = s.pop_due(100)
    assert [d.receipt.status for d in due] == ["sent", "delivered"]
    assert {d.receipt.provider_id for d in due} == {answer.provider_id}
    assert all(d.callback_url == CALLBACK for d in due)
    assert all(d.receipt.carrier for d in due)
    inbox = s.inbox["+12125557788"]
    assert len(inbox) == 1
    assert inbox[0][:3] == ("m1", "+15550001111", "body of m1")
    assert s.counts["handset_messages"] == 1

    assert s.pop_due(100) == []
    s.accept(request(("m1", "+12125557788")))
    assert s.pop_due(100) == []
    assert len(s.inbox["+12125557788"]) == 1


def test_a_receipt_requeued_after_a_failed_post_does_not_deliver_again() -> None:
    s = state()
    s.accept(request(("m1", "+12125557788")))
    due = s.pop_due(100)
    for item in due:  # what a failed webhook post does
        s.requeue(item, 0.0)
    again = s.pop_due(100)
    assert [d.receipt.status for d in again] == ["sent", "delivered"]
    assert len(s.inbox["+12125557788"]) == 1
    assert s.counts["handset_messages"] == 1


def test_an_undelivered_message_never_reaches_the_handset() -> None:
    s = state(failure_rate=1.0)
    s.accept(request(("m1", "+12125557788")))
    due = s.pop_due(100)
    assert [d.receipt.status for d in due] == ["sent", "undelivered"]
    assert due[1].receipt.error_code is not None
    assert s.inbox == {}


def test_pop_due_respects_its_limit() -> None:
    s = state()
    s.accept(request(*((f"m{i}", f"+1212555{7000 + i}") for i in range(5))))
    first = s.pop_due(3)
    rest = s.pop_due(100)
    assert (len(first), len(rest)) == (3, 7)
    assert sum(len(v) for v in s.inbox.values()) == 5
