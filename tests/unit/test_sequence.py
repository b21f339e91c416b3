"""Per-subscriber order: which lanes a message takes, which messages wait for an older one
to the same subscriber, and the partition that keeps a subscriber on one worker."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from clarion.domain.ids import PARTITIONS, partition_of
from clarion.domain.messages import Waiting
from clarion.domain.records import OutboundMessage
from clarion.pipeline.send import lanes_for, sequence_holds, unwritten

AT = datetime(2026, 11, 25, 18, 0, tzinfo=UTC)
SECOND = timedelta(seconds=1)


def message(message_id: str, subscriber_id: int | None = 1) -> OutboundMessage:
    return OutboundMessage(
        message_id=message_id,
        subscriber_id=subscriber_id,
        to=f"+1212555{subscriber_id or 0:04d}",
        body="Hi",
        segments=1,
    )


def waiting(
    message_id: str,
    created_at: datetime,
    *,
    subscriber_id: int = 1,
    not_before: datetime | None = None,
) -> Waiting:
    return Waiting(message_id, subscriber_id, created_at, not_before)


# --- Lanes a message takes a token from -----------------------------------------------------


def test_transactional_messages_have_lanes_of_their_own() -> None:
    tx = lanes_for("sim", "+15125550100", True, brand_id=7, campaign_id=42, carrier="AT&T")
    assert tx == (("provider_tx", "sim"), ("sender_tx", "+15125550100"))
    marketing = lanes_for("sim", "+15125550100", False)
    assert not set(tx) & set(marketing)


def test_a_marketing_message_of_an_unknown_carrier_takes_only_provider_and_sender() -> None:
    assert lanes_for("sim", "+15125550100", False, brand_id=7, campaign_id=42) == (
        ("provider", "sim"),
        ("sender", "+15125550100"),
    )
    assert lanes_for("sim", "+15125550100", False, brand_id=7, carrier="") == (
        ("provider", "sim"),
        ("sender", "+15125550100"),
    )


def test_a_marketing_message_of_a_known_carrier_takes_its_carrier_lanes() -> None:
    assert lanes_for("sim", "+15125550100", False, brand_id=7, campaign_id=42, carrier="AT&T") == (
        ("provider", "sim"),
        ("sender", "+15125550100"),
        ("carrier_minute", "7:42:AT&T"),
        ("brand_carrier_day", "7:AT&T"),
    )


def test_a_message_without_a_campaign_counts_as_campaign_zero_on_its_carrier() -> None:
    lanes = lanes_for("sim", "+15125550100", False, brand_id=7, carrier="T-Mobile")
    assert ("carrier_minute", "7:0:T-Mobile") in lanes
    assert ("brand_carrier_day", "7:T-Mobile") in lanes


# --- Sequence holds -------------------------------------------------------------------------


def test_an_older_waiting_message_holds_a_newer_one_until_just_after_its_moment() -> None:
    later = AT + timedelta(hours=2)
    holds = sequence_holds(
        [message("new")],
        [waiting("old", AT - 2 * SECOND, not_before=later), waiting("new", AT - SECOND)],
        at=AT,
    )
    assert holds == {"new": later + SECOND}


def test_an_older_queued_message_without_a_moment_holds_until_just_after_now() -> None:
    holds = sequence_holds(
        [message("new")], [waiting("old", AT - 2 * SECOND), waiting("new", AT - SECOND)], at=AT
    )
    assert holds == {"new": AT + SECOND}


def test_a_hold_is_never_earlier_than_now() -> None:
    past = AT - timedelta(hours=1)
    holds = sequence_holds(
        [message("new")],
        [waiting("old", AT - 2 * SECOND, not_before=past), waiting("new", AT - SECOND)],
        at=AT,
    )
    assert holds == {"new": AT + SECOND}


def test_several_older_messages_hold_until_the_last_of_them() -> None:
    first, last = AT + timedelta(minutes=5), AT + timedelta(hours=3)
    holds = sequence_holds(
        [message("new")],
        [
            waiting("old1", AT - 3 * SECOND, not_before=last),
            waiting("old2", AT - 2 * SECOND, not_before=first),
            waiting("new", AT - SECOND),
        ],
        at=AT,
    )
    assert holds == {"new": last + SECOND}


def test_a_newer_waiting_message_does_not_hold_an_older_one() -> None:
    holds = sequence_holds(
        [message("old")],
        [
            waiting("old", AT - 2 * SECOND),
            waiting("new", AT - SECOND, not_before=AT + timedelta(hours=1)),
        ],
        at=AT,
    )
    assert holds == {}


def test_messages_of_one_batch_never_hold_each_other() -> None:
    holds = sequence_holds(
        [message("first"), message("second")],
        [waiting("first", AT - 2 * SECOND), waiting("second", AT - SECOND)],
        at=AT,
    )
    assert holds == {}


def test_of_two_messages_created_at_once_exactly_one_waits_for_the_other() -> None:
    # whichever batch each is in, they must not wait for each other forever
    both = [waiting("a", AT), waiting("b", AT)]
    held_a = sequence_holds([message("a")], both, at=AT)
    held_b = sequence_holds([message("b")], both, at=AT)
    assert len(held_a) + len(held_b) == 1


def test_a_waiting_message_of_another_subscriber_holds_nothing() -> None:
    holds = sequence_holds(
        [message("mine", subscriber_id=1)],
        [
            waiting("theirs", AT - 2 * SECOND, subscriber_id=2, not_before=AT + SECOND),
            waiting("mine", AT - SECOND, subscriber_id=1),
        ],
        at=AT,
    )
    assert holds == {}


def test_subscribers_without_waiting_messages_pass() -> None:
    assert sequence_holds([message("a", 1), message("b", 2)], [], at=AT) == {}


def test_only_the_message_behind_an_older_one_is_held() -> None:
    holds = sequence_holds(
        [message("behind", 1), message("free", 2)],
        [
            waiting("older", AT - 2 * SECOND, subscriber_id=1),
            waiting("behind", AT - SECOND, subscriber_id=1),
            waiting("free", AT - SECOND, subscriber_id=2),
        ],
        at=AT,
    )
    assert holds == {"behind": AT + SECOND}


MOMENTS = st.one_of(
    st.none(),
    st.integers(min_value=-7200, max_value=7200).map(lambda s: AT + timedelta(seconds=s)),
)


@settings(deadline=None, max_examples=200)
@given(
    ages_s=st.lists(st.integers(min_value=0, max_value=100), min_size=1, max_size=8),
    moments=st.lists(MOMENTS, min_size=8, max_size=8),
    in_batch=st.lists(st.booleans(), min_size=8, max_size=8),
)
def test_a_held_message_waits_past_now_and_every_older_message_outside_its_batch(
    ages_s: list[int], moments: list[datetime | None], in_batch: list[bool]
) -> None:
    rows = [
        waiting(f"m{i}", AT - timedelta(seconds=age), not_before=moments[i])
        for i, age in enumerate(ages_s)
    ]
    mine = [w for w, inside in zip(rows, in_batch, strict=False) if inside]
    outside = [w for w, inside in zip(rows, in_batch, strict=False) if not inside]
    holds = sequence_holds([message(w.message_id) for w in mine], rows, at=AT)
    for w in mine:
        older = [o for o in outside if (o.created_at, o.message_id) < (w.created_at, w.message_id)]
        if not older:
            assert w.message_id not in holds
            continue
        until = holds[w.message_id]
        assert until > AT
        assert all(until > (o.not_before or AT) for o in older)


# --- Partitions -----------------------------------------------------------------------------


def test_a_subscriber_partition_is_its_id_modulo_the_partition_count() -> None:
    for subscriber_id in (0, 1, 7, 8, 9, 12_345, 2**40 + 3):
        assert partition_of(subscriber_id, "+12125550100") == subscriber_id % PARTITIONS
    # the address does not matter once the subscriber is known
    assert partition_of(13, "+12125550100") == partition_of(13, "+13105550123") == 13 % PARTITIONS


def test_a_number_without_a_subscriber_always_lands_on_the_same_partition() -> None:
    # Pinned: a partition must not change between processes or releases (a process-salted
    # hash() would pass an in-process comparison but move work between workers).
    assert partition_of(None, "+12125550100") == 4
    assert partition_of(None, "+13105550123") == 7
    assert partition_of(None, "+15125550199") == 0


def test_numbers_without_a_subscriber_spread_over_every_partition() -> None:
    numbers = [f"+1212555{i:04d}" for i in range(200)]
    partitions = [partition_of(None, n) for n in numbers]
    assert set(partitions) == set(range(PARTITIONS))
    assert partitions == [partition_of(None, n) for n in numbers]


# --- The waiting list once the gate has decided ---------------------------------------------


def test_after_the_gate_a_dropped_message_no_longer_holds_a_younger_one() -> None:
    from clarion.pipeline.send import GateOutcome, after_gate

    older, mine = waiting("old", AT - 60 * SECOND), waiting("new", AT)
    dropped = GateOutcome(send=[], drops=[("old", "suppressed", "opted_out", None)], defers=[])
    left = after_gate([older, mine], dropped)
    assert [w.message_id for w in left] == ["new"]
    assert sequence_holds([message("new")], left, at=AT) == {}
    # had the older one stayed, the younger would wait for it
    assert sequence_holds([message("new")], [older, mine], at=AT) == {"new": AT + SECOND}


def test_after_the_gate_a_deferred_message_holds_until_its_new_moment() -> None:
    from clarion.pipeline.send import GateOutcome, after_gate

    morning = AT + timedelta(hours=9)
    older, mine = waiting("old", AT - 60 * SECOND), waiting("new", AT)
    deferred = GateOutcome(send=[], drops=[], defers=[("old", morning, "quiet_hours")])
    left = after_gate([older, mine], deferred)
    assert sequence_holds([message("new")], left, at=AT) == {"new": morning + SECOND}
    # an interrupted message the gate holds back is of unknown fate: it holds nobody
    assert after_gate([older, mine], deferred, interrupted={"old"}) == [mine]


def test_a_message_not_stored_yet_is_held_by_any_stored_one_still_waiting() -> None:
    later = AT + timedelta(minutes=5)
    new = [message("new"), message("free", subscriber_id=2)]
    stored = [waiting("old", AT + timedelta(days=1), not_before=later)]  # even a "newer" clock
    holds = sequence_holds(new, stored + unwritten(new), at=AT)
    assert holds == {"new": later + SECOND}


def test_messages_not_stored_yet_never_hold_each_other() -> None:
    new = [message("a"), message("b", subscriber_id=2)]
    assert sequence_holds(new, unwritten(new), at=AT) == {}
