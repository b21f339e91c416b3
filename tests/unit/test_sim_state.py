"""The simulator's in-memory state: idempotent accept and handset delivery."""

from __future__ import annotations

import random

import msgspec

from clarion.sim.state import Report, SimConfig, SimState
from clarion.sim.wire import SendRequest, SimMessage, SimReceipt

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


def receipts(reports: list[Report]) -> list[SimReceipt]:
    assert all(r.to == ("sim", CALLBACK) for r in reports)
    return [r for report in reports for r in report.receipts]


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
    due = receipts(s.pop_due(100))
    assert [r.status for r in due] == ["sent", "delivered"]
    assert {r.provider_id for r in due} == {answer.provider_id}
    assert all(r.carrier for r in due)
    assert due[0].occurred_at <= due[1].occurred_at
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
    for report in s.pop_due(100):  # what a failed webhook post does
        s.requeue(report, 0.0)
    assert s.pending == 2
    again = receipts(s.pop_due(100))
    assert [r.status for r in again] == ["sent", "delivered"]
    assert s.pending == 0
    assert len(s.inbox["+12125557788"]) == 1
    assert s.counts["handset_messages"] == 1


def test_an_undelivered_message_never_reaches_the_handset() -> None:
    s = state(failure_rate=1.0)
    s.accept(request(("m1", "+12125557788")))
    due = receipts(s.pop_due(100))
    assert [r.status for r in due] == ["sent", "undelivered"]
    assert due[1].error_code is not None
    assert s.inbox == {}


def test_pop_due_respects_its_limit() -> None:
    s = state()
    s.accept(request(*((f"m{i}", f"+1212555{7000 + i}") for i in range(5))))
    first = receipts(s.pop_due(3))
    rest = receipts(s.pop_due(100))
    assert (len(first), len(rest)) == (3, 7)
    assert sum(len(v) for v in s.inbox.values()) == 5


def test_the_status_api_knows_each_status_from_its_moment_whether_reported_or_not() -> None:
    later = SimState(config=SimConfig(latency_scale=1000.0, seed=1), rng=random.Random(1))
    (answer,) = later.accept(request(("m1", "+12125557788")))
    assert answer.status == "accepted"
    assert later.status_of("m1") is None  # nothing has happened to it yet
    assert later.pop_due(100) == []

    s = state()
    s.accept(request(("m1", "+12125557788"), ("m2", "+12125550123")))
    final = s.status_of("m1")  # not reported yet: the provider knows before its webhook
    assert final is not None
    assert (final.message_id, final.status) == ("m1", "delivered")
    assert s.status_of("m2") is None  # rejected: it has no status to report
    assert s.status_of("m3") is None


def test_lost_reports_still_deliver_and_each_inbox_keeps_its_order() -> None:
    s = SimState(
        config=SimConfig(latency_scale=0.0, failure_rate=0.0, receipt_loss=1.0, seed=1),
        rng=random.Random(1),
    )
    s.accept(request(("m1", "+12125557788"), ("m2", "+12125557799")))
    s.accept(request(("m3", "+12125557788")))
    assert s.pop_due(100) == []  # every report lost
    assert s.counts["receipts_lost"] == 6  # three messages, two receipts each
    assert [m for m, *_ in s.inbox["+12125557788"]] == ["m1", "m3"]
    assert [m for m, *_ in s.inbox["+12125557799"]] == ["m2"]
    s.accept(request(("m4", "+12125557799")))
    s.pop_due(100)
    assert [m for m, *_ in s.inbox["+12125557799"]] == ["m2", "m4"]  # indexed as read
    assert s.status_of("m4") is not None  # the status API still knows


def test_due_receipts_are_reported_to_their_own_targets_one_report_each() -> None:
    s = state()
    s.accept(request(("m1", "+12125557788")))
    other = SendRequest(
        callback_url="http://other.test/webhooks/sim/status",
        messages=[SimMessage("m2", "+12125557799", "+15550001111", "body of m2")],
    )
    s.accept(other)
    s.accept(request(("m3", "+12125557700")))
    due = s.pop_due(100)
    reports = {r.to: [(x.message_id, x.status) for x in r.receipts] for r in due}
    elsewhere = ("sim", "http://other.test/webhooks/sim/status")
    assert len(due) == 2  # one report per target
    assert set(reports) == {("sim", CALLBACK), elsewhere}
    assert reports[elsewhere] == [("m2", "sent"), ("m2", "delivered")]
    assert sorted(reports[("sim", CALLBACK)]) == [
        ("m1", "delivered"), ("m1", "sent"), ("m3", "delivered"), ("m3", "sent"),
    ]  # fmt: skip


def test_the_backlog_endpoint_counts_receipts_due_and_not_yet_posted() -> None:
    """`GET /stats/backlog`, what a benchmark samples while it runs: both receipts of an
    accepted message (its `sent` and its final status) until they are posted, none of a
    rejected one."""
    from starlette.testclient import TestClient

    from clarion.sim.app import create_app

    client = TestClient(create_app(SimConfig(latency_scale=0.0, seed=1)))  # no dispatcher
    assert client.get("/stats/backlog").json() == {"receipts_pending": 0}
    body = msgspec.json.encode(request(("m1", "+15127771234"), ("m2", "+15125550100")))
    assert client.post("/v1/messages", content=body).status_code == 200
    assert client.get("/stats/backlog").json() == {"receipts_pending": 2}
    assert client.get("/stats").json()["receipts_pending"] == 2
