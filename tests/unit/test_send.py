"""Send stage: rows to persist before sending, and provider answers as status updates."""

from __future__ import annotations

import msgspec

from clarion.domain.records import OutboundMessage, RenderedBatch, RenderFailure
from clarion.domain.status import RANK
from clarion.pipeline.send import (
    MESSAGE_COLUMNS,
    MessageRow,
    SendResult,
    rows_to_persist,
    status_updates,
)

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
