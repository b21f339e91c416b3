"""Send stage: rows to persist before sending, and provider answers as status updates."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec

from clarion.domain.messages import MESSAGE_COLUMNS, MessageRow, SendResult
from clarion.domain.records import OutboundMessage, RenderedBatch, RenderFailure
from clarion.domain.status import RANK
from clarion.pipeline.send import answer_receipts, decided_rows, rows_to_persist, status_updates

BATCH = RenderedBatch(
    batch_id="b",
    brand_id=4,
    campaign_id=8,
    sender="+15550001111",
    messages=[
        OutboundMessage(message_id="m1", subscriber_id=1, to="+12125550001", body="Hi", segments=1),
        OutboundMessage(
            message_id="m2", subscriber_id=2, to="+12125550002", body="x" * 200, segments=2
        ),
    ],
    failures=[
        RenderFailure(
            message_id="m3",
            subscriber_id=3,
            to="+12125550003",
            error="template_error: unknown field ('promo' is undefined)",
        )
    ],
)


def test_rendered_messages_persist_as_queued_rows() -> None:
    rows = rows_to_persist(BATCH, expires_at=None)
    queued = [r for r in rows if r.status == "queued"]
    assert queued == [
        MessageRow(
            "m1",
            4,
            8,
            1,
            "+12125550001",
            "+15550001111",
            "Hi",
            1,
            "queued",
            0,
            None,
            None,
            "marketing",
            None,
            "sms",
        ),
        MessageRow(
            "m2",
            4,
            8,
            2,
            "+12125550002",
            "+15550001111",
            "x" * 200,
            2,
            "queued",
            0,
            None,
            None,
            "marketing",
            None,
            "sms",
        ),
    ]


def test_render_failures_persist_as_failed_rows_with_template_error_and_the_detail() -> None:
    rows = rows_to_persist(BATCH, expires_at=None)
    failed = [r for r in rows if r.status == "failed"]
    assert len(failed) == 1
    (f,) = failed
    assert f.id == "m3"
    assert f.subscriber_id == 3
    assert f.to_address == "+12125550003"
    assert f.body is None
    assert f.segments == 0
    assert f.status_rank == RANK["failed"] == 3
    assert f.error_code == "template_error"
    assert f.error_detail == "template_error: unknown field ('promo' is undefined)"
    assert (f.brand_id, f.campaign_id, f.sender) == (4, 8, "+15550001111")


def test_every_message_and_failure_gets_exactly_one_row() -> None:
    rows = rows_to_persist(BATCH, expires_at=None)
    assert [r.id for r in rows] == ["m1", "m2", "m3"]


def test_a_row_encodes_as_an_array_in_message_columns_order() -> None:
    encoded = msgspec.json.decode(msgspec.json.encode(rows_to_persist(BATCH, expires_at=None)[2]))
    assert isinstance(encoded, list)
    row = dict(zip(MESSAGE_COLUMNS, encoded, strict=True))
    assert row["id"] == "m3"
    assert row["to_address"] == "+12125550003"
    assert row["status"] == "failed"
    assert row["error_code"] == "template_error"


def test_an_accepted_result_becomes_accepted_rank_one_with_the_provider_id() -> None:
    (u,) = status_updates([SendResult(message_id="m1", accepted=True, provider_message_id="SM1")])
    assert u.message_id == "m1"
    assert u.status == "accepted"
    assert u.status_rank == 1
    assert u.provider_message_id == "SM1"
    assert u.error_code is None


def test_a_rejected_result_becomes_failed_rank_three_with_the_error() -> None:
    (u,) = status_updates(
        [
            SendResult(
                message_id="m2",
                accepted=False,
                error_code="21211",
                error_detail="Invalid 'To' Phone Number",
            )
        ]
    )
    assert u.status == "failed"
    assert u.status_rank == 3
    assert u.error_code == "21211"
    assert u.error_detail == "Invalid 'To' Phone Number"
    assert u.provider_message_id is None


def test_accepted_answers_become_accepted_receipts_with_the_provider_id() -> None:
    at = datetime(2026, 11, 26, 12, 0, 2, tzinfo=UTC)
    receipts = answer_receipts(
        [
            SendResult(message_id="a", accepted=True, provider_message_id="SMa"),
            SendResult(message_id="b", accepted=False, error_code="30007"),
            SendResult(message_id="c", accepted=False, retry=True, error_detail="503"),
            SendResult(message_id="d", accepted=True, provider_message_id="SMd"),
        ],
        at,
    )
    assert [(r.message_id, r.status, r.provider_message_id, r.occurred_at) for r in receipts] == [
        ("a", "accepted", "SMa", at),
        ("d", "accepted", "SMd", at),
    ]


def test_status_updates_keep_one_update_per_result_in_order() -> None:
    updates = status_updates(
        [
            SendResult(message_id="a", accepted=True, provider_message_id="SMa"),
            SendResult(message_id="b", accepted=False, error_code="30007"),
            SendResult(message_id="c", accepted=True, provider_message_id="SMc"),
        ]
    )
    assert [(u.message_id, u.status) for u in updates] == [
        ("a", "accepted"),
        ("b", "failed"),
        ("c", "accepted"),
    ]


# --- A new batch written once, with the send stage's decision --------------------------------

LATER = datetime(2026, 11, 26, 13, 0, tzinfo=UTC)
CLAIMED = datetime(2026, 11, 26, 12, 0, 1, tzinfo=UTC)
THREE = RenderedBatch(
    batch_id="b3",
    brand_id=4,
    campaign_id=8,
    sender="+15550001111",
    messages=[
        OutboundMessage(
            message_id=f"m{i}", subscriber_id=i, to=f"+1212555000{i}", body="Hi", segments=1
        )
        for i in range(1, 6)
    ],
    failures=[RenderFailure(message_id="f1", subscriber_id=9, to="+12125550009", error="x")],
)


def _decided() -> dict[str, MessageRow]:
    rows = decided_rows(
        THREE,
        expires_at=LATER,
        provider="sim",
        drops=[
            ("m1", "suppressed", "opted_out", None),
            ("m2", "expired", "carrier_daily_cap", "AT&T"),
        ],
        quiet=[("m3", LATER, "federal 08:00-21:00")],
        waits=[("m4", LATER, "lane_wait", None)],
        sent_at=CLAIMED,
    )
    return {r.id: r for r in rows}


def test_a_new_batch_gets_one_row_per_message_and_failure_with_its_decision() -> None:
    rows = decided_rows(
        THREE, expires_at=None, provider="sim", drops=[("m1", "suppressed", "opted_out", None)],
        quiet=[], waits=[], sent_at=CLAIMED,
    )  # fmt: skip
    assert [r.id for r in rows] == ["m1", "m2", "m3", "m4", "m5", "f1"]


def test_a_dropped_message_is_written_final_with_its_reason() -> None:
    rows = _decided()
    assert (rows["m1"].status, rows["m1"].status_rank, rows["m1"].error_code) == (
        "suppressed", 3, "opted_out",
    )  # fmt: skip
    assert (rows["m2"].status, rows["m2"].error_code, rows["m2"].error_detail) == (
        "expired", "carrier_daily_cap", "AT&T",
    )  # fmt: skip
    assert rows["m1"].provider is None


def test_a_quiet_hours_deferral_is_written_as_the_gate_records_it() -> None:
    m3 = _decided()["m3"]
    assert (m3.status, m3.status_rank, m3.not_before) == ("deferred", 0, LATER)
    assert (m3.error_code, m3.error_detail) == ("quiet_hours_deferred", "federal 08:00-21:00")


def test_a_lane_or_sequence_wait_is_written_with_its_reason_and_moment() -> None:
    m4 = _decided()["m4"]
    assert (m4.status, m4.not_before, m4.error_code) == ("deferred", LATER, "lane_wait")


def test_every_other_message_is_written_claimed_for_the_provider() -> None:
    m5 = _decided()["m5"]
    assert (m5.status, m5.status_rank, m5.provider, m5.not_before) == ("sending", 0, "sim", None)
    assert m5.expires_at == LATER
    # claimed at that moment: caps and smart sending count it from now, answer or not
    assert m5.sent_at == CLAIMED


def test_only_a_claimed_message_carries_a_send_time() -> None:
    rows = _decided()
    assert [r.id for r in rows.values() if r.sent_at is not None] == ["m5"]


def test_a_render_failure_stays_failed_in_a_decided_batch() -> None:
    f1 = _decided()["f1"]
    assert (f1.status, f1.error_code, f1.provider) == ("failed", "template_error", None)
