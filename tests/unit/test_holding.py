"""The aggregate's holding of receipts: a message's reports wait for its final one, so its
row is written once; nothing is lost, every bus message is finished exactly when all its
receipts are released."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from clarion.domain.records import Receipt, ReceiptBatch
from clarion.pipeline.aggregate import Holding

AT = datetime(2026, 12, 1, 18, 0, tzinfo=UTC)


def r(message_id: str, status: str) -> Receipt:
    return Receipt(message_id=message_id, status=status, occurred_at=AT)


def batch(*receipts: Receipt, origin: str = "webhook", provider: str = "sim") -> ReceiptBatch:
    return ReceiptBatch(batch_id="b", provider=provider, receipts=list(receipts), origin=origin)


def released(batches: list[ReceiptBatch]) -> list[tuple[str, str]]:
    return sorted((x.message_id, x.status) for b in batches for x in b.receipts)


def test_an_answer_and_its_reports_are_released_together_when_the_final_one_comes() -> None:
    h: Holding[str] = Holding(hold_s=2.0)
    h.add("answers", batch(r("m1", "accepted"), r("m2", "accepted"), origin="answer"), 0.0)
    h.add("hook1", batch(r("m1", "sent"), r("m2", "sent")), 0.1)
    assert h.take(0.2) == ([], [])  # nothing final yet: all held
    h.add("hook2", batch(r("m1", "delivered")), 0.3)
    out, done = h.take(0.3)
    assert released(out) == [("m1", "accepted"), ("m1", "delivered"), ("m1", "sent")]
    # the answer keeps its origin (folded, not an event) and the reports theirs
    assert {(b.origin, len(b.receipts)) for b in out} == {("answer", 1), ("webhook", 2)}
    assert done == ["hook2"]  # the others still carry m2's receipts
    assert h.next_due() == 2.0  # m2's first receipt came at 0.0


def test_a_message_whose_final_report_never_comes_is_released_after_the_hold() -> None:
    h: Holding[str] = Holding(hold_s=2.0)
    h.add("answers", batch(r("m1", "accepted"), origin="answer"), 0.0)
    h.add("hook", batch(r("m1", "sent")), 1.5)
    assert h.take(1.99) == ([], [])
    out, done = h.take(2.0)  # timed from the message's first receipt, not its last
    assert released(out) == [("m1", "accepted"), ("m1", "sent")]
    assert sorted(done) == ["answers", "hook"]
    assert h.next_due() is None


def test_a_report_that_comes_after_its_messages_final_one_does_not_wait() -> None:
    h: Holding[str] = Holding(hold_s=2.0)
    h.add("hook1", batch(r("m1", "delivered")), 0.0)
    assert released(h.take(0.0)[0]) == [("m1", "delivered")]
    h.add("hook2", batch(r("m1", "sent")), 0.5)  # overtaken by the final one
    h.add("answers", batch(r("m1", "accepted"), origin="answer"), 0.6)
    out, done = h.take(0.6)
    assert released(out) == [("m1", "accepted"), ("m1", "sent")]
    assert sorted(done) == ["answers", "hook2"]
    # the final one is remembered for one or two holds only
    assert h.take(4.0) == ([], [])
    h.add("hook3", batch(r("m1", "sent")), 4.1)
    assert h.take(4.1) == ([], [])


def test_receipts_that_name_no_message_go_at_once_for_the_fold_to_resolve() -> None:
    h: Holding[str] = Holding(hold_s=2.0)
    anonymous = Receipt(message_id="", status="sent", occurred_at=AT, provider_message_id="p1")
    h.add("smpp", batch(anonymous, r("m1", "accepted")), 0.0)
    out, done = h.take(0.0)
    assert [x.provider_message_id for b in out for x in b.receipts] == ["p1"]
    assert done == []  # m1's answer is still held in the same bus message


def test_an_empty_batch_is_done_at_once() -> None:
    h: Holding[str] = Holding(hold_s=2.0)
    h.add("empty", batch(), 0.0)
    assert h.next_due() == 0.0
    assert h.take(0.0) == ([], ["empty"])


def test_batches_keep_their_provider() -> None:
    h: Holding[str] = Holding(hold_s=2.0)
    h.add("a", batch(r("m1", "delivered"), provider="twilio"), 0.0)
    h.add("b", batch(r("m2", "failed"), provider="sim"), 0.0)
    out, done = h.take(0.0)
    assert {(b.provider, b.receipts[0].message_id) for b in out} == {
        ("twilio", "m1"),
        ("sim", "m2"),
    }
    assert sorted(done) == ["a", "b"]


def test_stop_releases_everything_and_a_failure_hands_everything_back() -> None:
    h: Holding[str] = Holding(hold_s=2.0)
    h.add("a", batch(r("m1", "accepted")), 0.0)
    out, done = h.take(0.0, everything=True)
    assert released(out) == [("m1", "accepted")]
    assert done == ["a"]
    h.add("b", batch(r("m2", "accepted"), r("m3", "delivered")), 0.0)
    h.add("c", batch(), 0.0)
    assert sorted(h.drop()) == ["b", "c"]
    assert h.take(10.0) == ([], [])


def test_with_too_many_bus_messages_in_hand_everything_is_released() -> None:
    h: Holding[int] = Holding(hold_s=60.0, max_batches=3)
    for i in range(2):
        h.add(i, batch(r(f"m{i}", "accepted")), 0.0)
    assert h.take(0.0) == ([], [])
    h.add(2, batch(r("m2", "sent")), 0.0)  # the third: the bus would soon stop handing out
    out, done = h.take(0.0)
    assert released(out) == [("m0", "accepted"), ("m1", "accepted"), ("m2", "sent")]
    assert sorted(done) == [0, 1, 2]


def test_held_bus_messages_are_reported_in_progress_once_per_period() -> None:
    h: Holding[str] = Holding(hold_s=60.0)
    h.add("a", batch(r("m1", "accepted")), 0.0)
    assert h.stale(5.0, 10.0) == []
    assert h.stale(10.0, 10.0) == ["a"]
    assert h.stale(15.0, 10.0) == []  # reported at 10.0
    assert h.stale(20.0, 10.0) == ["a"]


STATUSES = ("accepted", "sent", "delivered", "undelivered", "failed", "bogus")


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.lists(
            st.tuples(st.sampled_from(["m1", "m2", "m3", ""]), st.sampled_from(STATUSES)),
            max_size=5,
        ),
        max_size=8,
    ),
    st.lists(st.floats(min_value=0, max_value=1.0), min_size=8, max_size=8),
)
def test_every_receipt_is_released_once_and_a_bus_message_is_done_after_its_last(
    batches: list[list[tuple[str, str]]], gaps: list[float]
) -> None:
    h: Holding[int] = Holding(hold_s=1.0)
    now, out, done = 0.0, Counter[tuple[str, str]](), []
    for i, items in enumerate(batches):
        h.add(i, batch(*(r(m, s) for m, s in items)), now)
        now += gaps[i]
        got, finished = h.take(now)
        out.update((x.message_id, x.status) for b in got for x in b.receipts)
        for j in finished:  # done only once everything it carried is out
            assert not Counter(batches[j]) - out
        done += finished
    got, finished = h.take(now + 1.5)  # the hold is over for everyone
    out.update((x.message_id, x.status) for b in got for x in b.receipts)
    done += finished
    assert sorted(done) == list(range(len(batches)))  # every bus message done, once
    assert out == Counter(x for b in batches for x in b)  # every receipt, once
