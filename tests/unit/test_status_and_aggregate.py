"""The message state machine and the aggregate fold: statuses only move forward."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from clarion.domain.records import Receipt, ReceiptBatch
from clarion.domain.status import RANK, MessageStatus, advances, is_terminal, rank
from clarion.pipeline.aggregate import fold, fold_reports, unique_events, without_malformed_ids

T0 = datetime(2025, 1, 1, tzinfo=UTC)
ALL = [s.value for s in MessageStatus]
TERMINAL = [s for s in ALL if s in {"delivered", "undelivered", "failed", "expired", "suppressed"}]
PROGRESS = ["queued", "accepted", "sent"]


def receipt(
    message_id: str,
    status: str,
    *,
    at: int = 0,
    carrier: str | None = None,
    error_code: str | None = None,
    provider_message_id: str | None = None,
) -> Receipt:
    return Receipt(
        message_id=message_id,
        status=status,
        occurred_at=T0 + timedelta(seconds=at),
        carrier=carrier,
        error_code=error_code,
        provider_message_id=provider_message_id,
    )


def by_message(receipts: list[Receipt]) -> dict[str, str]:
    return {r.message_id: r.status for r in receipts}


# --- the state machine -----------------------------------------------------------------


def test_a_late_sent_receipt_never_overwrites_delivered() -> None:
    assert not advances("delivered", "sent")
    assert by_message(fold([receipt("m", "delivered"), receipt("m", "sent")])) == {"m": "delivered"}


def test_the_happy_path_advances_one_step_at_a_time() -> None:
    chain = ["queued", "accepted", "sent", "delivered"]
    for current, new in itertools.pairwise(chain):
        assert advances(current, new)


def test_an_unknown_status_ranks_below_everything_and_never_applies() -> None:
    assert rank("read") == -1
    for status in ALL:
        assert not advances(status, "read")


def test_only_the_final_statuses_are_terminal() -> None:
    assert [s for s in ALL if is_terminal(s)] == TERMINAL
    assert not is_terminal("bogus")


@given(current=st.sampled_from(TERMINAL), new=st.sampled_from([*ALL, "read", ""]))
def test_a_terminal_status_never_advances_to_anything(current: str, new: str) -> None:
    assert not advances(current, new)


@given(a=st.sampled_from(ALL), b=st.sampled_from(ALL))
def test_advancing_is_antisymmetric_so_no_two_statuses_can_flip_flop(a: str, b: str) -> None:
    assert not (advances(a, b) and advances(b, a))
    assert advances(a, b) == (RANK[b] > RANK[a])


@given(a=st.sampled_from(ALL), b=st.sampled_from(ALL), c=st.sampled_from(ALL))
def test_advancing_is_transitive(a: str, b: str, c: str) -> None:
    if advances(a, b) and advances(b, c):
        assert advances(a, c)


# --- unique_events ---------------------------------------------------------------------


def test_unique_events_drops_duplicate_message_status_pairs_keeping_the_first() -> None:
    first = receipt("m1", "sent", at=1, carrier="Verizon")
    out = unique_events(
        [
            first,
            receipt("m1", "sent", at=2),
            receipt("m1", "delivered", at=3),
            receipt("m2", "sent", at=4),
            receipt("m1", "delivered", at=5),
        ]
    )
    assert [(r.message_id, r.status) for r in out] == [
        ("m1", "sent"),
        ("m1", "delivered"),
        ("m2", "sent"),
    ]
    assert out[0] is first


def test_unique_events_drops_unknown_statuses() -> None:
    out = unique_events([receipt("m1", "read"), receipt("m1", "sent"), receipt("m2", "opened")])
    assert [(r.message_id, r.status) for r in out] == [("m1", "sent")]


@given(
    st.lists(
        st.tuples(st.sampled_from(["a", "b", "c"]), st.sampled_from([*ALL, "read"])),
        max_size=30,
    )
)
def test_unique_events_is_idempotent_and_leaves_no_duplicates(
    pairs: list[tuple[str, str]],
) -> None:
    receipts = [receipt(m, s, at=i) for i, (m, s) in enumerate(pairs)]
    once = unique_events(receipts)
    keys = [(r.message_id, r.status) for r in once]
    assert len(keys) == len(set(keys))
    assert all(rank(r.status) >= 0 for r in once)
    assert {(m, s) for m, s in pairs if s in RANK} == set(keys)
    assert unique_events(once) == once


# --- fold ------------------------------------------------------------------------------


def test_fold_keeps_the_highest_ranked_status_per_message() -> None:
    out = fold(
        [
            receipt("m1", "sent"),
            receipt("m2", "accepted"),
            receipt("m1", "delivered"),
            receipt("m2", "sent"),
            receipt("m3", "undelivered", error_code="30003"),
        ]
    )
    assert by_message(out) == {"m1": "delivered", "m2": "sent", "m3": "undelivered"}
    assert len(out) == 3
    assert next(r for r in out if r.message_id == "m3").error_code == "30003"


def test_between_two_terminal_statuses_the_first_seen_stands() -> None:
    assert by_message(fold([receipt("m", "delivered"), receipt("m", "failed")])) == {
        "m": "delivered"
    }
    assert by_message(fold([receipt("m", "failed"), receipt("m", "delivered")])) == {"m": "failed"}


def test_fold_ignores_unknown_statuses_entirely() -> None:
    assert fold([receipt("m1", "read", carrier="Verizon")]) == []
    assert by_message(fold([receipt("m2", "sent"), receipt("m2", "read")])) == {"m2": "sent"}


def test_fold_takes_the_carrier_from_an_earlier_receipt_when_the_winner_has_none() -> None:
    out = fold(
        [
            receipt("m", "sent", carrier="T-Mobile"),
            receipt("m", "delivered", at=5, provider_message_id="SM9", error_code=None),
        ]
    )
    (r,) = out
    assert r.status == "delivered"
    assert r.carrier == "T-Mobile"
    assert r.provider_message_id == "SM9"
    assert r.occurred_at == T0 + timedelta(seconds=5)


def test_fold_takes_the_carrier_from_a_later_lower_ranked_receipt() -> None:
    (r,) = fold(
        [
            receipt("m", "undelivered", error_code="30005"),
            receipt("m", "sent", carrier="AT&T"),
        ]
    )
    assert (r.status, r.carrier, r.error_code) == ("undelivered", "AT&T", "30005")


def test_fold_keeps_the_winners_own_carrier() -> None:
    (r,) = fold(
        [receipt("m", "sent", carrier="AT&T"), receipt("m", "delivered", carrier="Verizon")]
    )
    assert r.carrier == "Verizon"


@st.composite
def receipt_lists(draw: st.DrawFn) -> list[Receipt]:
    """Receipts for a few messages, each with at most one terminal status and one carrier
    (what a provider actually reports), repeated and interleaved with unknown statuses."""
    message_ids = draw(st.lists(st.sampled_from("abcd"), min_size=1, max_size=4, unique=True))
    out: list[Receipt] = []
    for m in message_ids:
        terminal = draw(st.none() | st.sampled_from(TERMINAL))
        carrier = draw(st.none() | st.sampled_from(["Verizon", "AT&T"]))
        allowed = [*PROGRESS, "read", *([terminal] if terminal else [])]
        events = draw(
            st.lists(st.tuples(st.sampled_from(allowed), st.booleans()), min_size=1, max_size=5)
        )
        out.extend(
            receipt(m, s, at=i, carrier=carrier if has_carrier else None)
            for i, (s, has_carrier) in enumerate(events)
        )
    return out


def expected_fold(receipts: list[Receipt]) -> dict[str, str]:
    best: dict[str, str] = {}
    for r in receipts:
        if r.status in RANK and RANK[r.status] > RANK.get(best.get(r.message_id, ""), -1):
            best[r.message_id] = r.status
    return best


@settings(max_examples=150)
@given(data=st.data(), receipts=receipt_lists())
def test_any_arrival_order_folds_to_the_same_status_and_carrier_per_message(
    data: st.DataObject, receipts: list[Receipt]
) -> None:
    shuffled = data.draw(st.permutations(receipts))
    folded = fold(receipts)
    refolded = fold(shuffled)
    assert by_message(folded) == by_message(refolded) == expected_fold(receipts)
    carriers = {r.message_id: r.carrier for r in folded}
    assert carriers == {r.message_id: r.carrier for r in refolded}
    for m, c in carriers.items():
        known = [r for r in receipts if r.message_id == m and r.status in RANK]
        assert c == next((r.carrier for r in known if r.carrier), None)


@settings(max_examples=200)
@given(
    data=st.data(),
    pairs=st.lists(st.tuples(st.sampled_from("abc"), st.sampled_from([*ALL, "read"])), max_size=20),
)
def test_the_folded_rank_per_message_never_depends_on_arrival_order(
    data: st.DataObject, pairs: list[tuple[str, str]]
) -> None:
    receipts = [receipt(m, s) for m, s in pairs]
    shuffled = data.draw(st.permutations(receipts))

    def ranks(rs: list[Receipt]) -> dict[str, int]:
        return {r.message_id: rank(r.status) for r in fold(rs)}

    assert ranks(receipts) == ranks(shuffled)
    assert len(fold(receipts)) == len({m for m, s in pairs if s in RANK})


@settings(max_examples=50)
@given(receipts=receipt_lists())
def test_folding_after_deduplication_gives_the_same_result(receipts: list[Receipt]) -> None:
    assert by_message(fold(unique_events(receipts))) == by_message(fold(receipts))


@settings(max_examples=50)
@given(stored=st.sampled_from(TERMINAL), receipts=receipt_lists())
def test_nothing_a_fold_produces_advances_past_a_stored_terminal_status(
    stored: str, receipts: list[Receipt]
) -> None:
    assert not any(advances(stored, r.status) for r in fold(receipts))


# --- fold_reports: both in one pass ----------------------------------------------------


@settings(max_examples=200)
@given(
    batches=st.lists(
        st.tuples(
            st.sampled_from(["webhook", "answer", "reconcile"]),
            st.lists(
                st.tuples(
                    st.sampled_from("abcd"),
                    st.sampled_from([*ALL, "read"]),
                    st.none() | st.sampled_from(["Verizon", "AT&T"]),
                    st.none() | st.sampled_from(["SM1", "SM2"]),
                ),
                max_size=12,
            ),
        ),
        max_size=6,
    )
)
def test_folding_reports_in_one_pass_is_unique_events_and_fold(
    batches: list[tuple[str, list[tuple[str, str, str | None, str | None]]]],
) -> None:
    built = [
        ReceiptBatch(
            batch_id=f"b{i}",
            provider="sim",
            origin=origin,
            receipts=[
                receipt(m, s, at=j, carrier=c, provider_message_id=p)
                for j, (m, s, c, p) in enumerate(rows)
            ],
        )
        for i, (origin, rows) in enumerate(batches)
    ]
    events, folded, complaints = fold_reports(built, answers="answer")
    assert events == unique_events([r for b in built if b.origin != "answer" for r in b.receipts])
    assert folded == fold([r for b in built for r in b.receipts])
    assert complaints == []


def test_folding_reports_names_the_messages_of_spam_complaints_in_any_batch() -> None:
    complaint = receipt("b", "delivered", at=2, error_code="spamreport")
    built = [
        ReceiptBatch(batch_id="b1", provider="sendgrid", receipts=[receipt("a", "delivered")]),
        ReceiptBatch(
            batch_id="b2", provider="sendgrid",
            receipts=[receipt("b", "delivered", at=1), complaint],
        ),
    ]  # fmt: skip
    reports = fold_reports(built, answers="answer")
    assert reports.complaints == ["b"]
    # the complaint is a report (an event) and moves no status past `delivered`
    assert [(r.message_id, r.status) for r in reports.folded] == [
        ("a", "delivered"), ("b", "delivered"),
    ]  # fmt: skip


def test_receipts_with_malformed_message_ids_are_split_from_the_rest_of_their_batches() -> None:
    good = "0190a1b2-0000-8000-8000-000000000001"
    first = ReceiptBatch(
        batch_id="a", provider="sim",
        receipts=[receipt(good, "sent"), receipt("'; DROP TABLE messages", "delivered")],
    )  # fmt: skip
    second = ReceiptBatch(
        batch_id="b", provider="smpp", receipts=[receipt("", "delivered"), receipt("x", "sent")]
    )
    kept, dropped = without_malformed_ids([first, second])
    assert [[r.message_id for r in b.receipts] for b in kept] == [[good], [""]]
    assert [(b.batch_id, b.provider) for b in kept] == [("a", "sim"), ("b", "smpp")]
    assert [(p, r.message_id) for p, r in dropped] == [
        ("sim", "'; DROP TABLE messages"),
        ("smpp", "x"),
    ]


def test_a_receipt_is_encoded_without_the_fields_it_does_not_have() -> None:
    """On the bus and in the receipt log: a report with no error code carries no
    `error_code` key, and reads back the same."""
    import msgspec

    plain = receipt("m1", "delivered", carrier="AT&T", provider_message_id="SM1")
    failed = receipt("m2", "undelivered", error_code="30003")
    encoded = msgspec.json.encode([plain, failed])
    assert b'"error_code"' in encoded  # the failure's
    assert encoded.count(b'"error_code"') == 1
    assert b'"carrier"' in encoded
    assert b"null" not in encoded
    assert msgspec.json.decode(encoded, type=list[Receipt]) == [plain, failed]
    assert msgspec.msgpack.decode(msgspec.msgpack.encode(plain), type=Receipt) == plain
