"""Send stage core: what to persist for a rendered batch, and how provider answers map to
status updates. The worker persists first, then calls the provider, then records results."""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from clarion.domain.records import RenderedBatch
from clarion.domain.status import RANK, MessageStatus


class MessageRow(msgspec.Struct, frozen=True, array_like=True):
    """A `messages` row as the worker COPYs it (column order matches `MESSAGE_COLUMNS`)."""

    id: str
    brand_id: int
    campaign_id: int
    subscriber_id: int
    to_address: str
    sender: str
    body: str | None
    segments: int
    status: str
    status_rank: int
    error_code: str | None
    error_detail: str | None


MESSAGE_COLUMNS = tuple(MessageRow.__struct_fields__)


class SendResult(msgspec.Struct, frozen=True, kw_only=True):
    """A provider's synchronous answer about one message."""

    message_id: str
    accepted: bool
    provider_message_id: str | None = None
    error_code: str | None = None
    error_detail: str | None = None


class StatusUpdate(msgspec.Struct, frozen=True, kw_only=True):
    message_id: str
    status: str
    status_rank: int
    provider_message_id: str | None
    error_code: str | None
    error_detail: str | None


def rows_to_persist(batch: RenderedBatch) -> list[MessageRow]:
    """Queued rows for rendered messages, failed rows (with the reason) for render failures."""
    queued_rank = RANK[MessageStatus.QUEUED]
    failed_rank = RANK[MessageStatus.FAILED]
    rows = [
        MessageRow(
            m.message_id,
            batch.brand_id,
            batch.campaign_id,
            m.subscriber_id,
            m.to,
            batch.sender,
            m.body,
            m.segments,
            MessageStatus.QUEUED,
            queued_rank,
            None,
            None,
        )
        for m in batch.messages
    ]
    rows.extend(
        MessageRow(
            f.message_id,
            batch.brand_id,
            batch.campaign_id,
            f.subscriber_id,
            f.to,
            batch.sender,
            None,
            0,
            MessageStatus.FAILED,
            failed_rank,
            "template_error",
            f.error,
        )
        for f in batch.failures
    )
    return rows


def status_updates(results: Sequence[SendResult]) -> list[StatusUpdate]:
    """Accepted → `accepted` with the provider's id; rejected → `failed` with its error."""
    accepted_rank = RANK[MessageStatus.ACCEPTED]
    failed_rank = RANK[MessageStatus.FAILED]
    return [
        StatusUpdate(
            message_id=r.message_id,
            status=MessageStatus.ACCEPTED if r.accepted else MessageStatus.FAILED,
            status_rank=accepted_rank if r.accepted else failed_rank,
            provider_message_id=r.provider_message_id,
            error_code=r.error_code,
            error_detail=r.error_detail,
        )
        for r in results
    ]
