"""Audience stage core: turn a keyset page of subscribers into a recipient batch."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from clarion.domain.ids import batch_id
from clarion.domain.records import Recipient, RecipientBatch

_STANDARD_FIELDS = ("first_name", "last_name", "email")


def messages_for(batch: RecipientBatch, channel: str) -> int:
    """How many messages a page becomes: one per recipient and channel they can be reached
    on (a number for SMS, an address for email)."""
    sms = sum(1 for r in batch.recipients if r.phone) if channel in ("sms", "both") else 0
    email = (
        sum(1 for r in batch.recipients if r.fields.get("email"))
        if channel in ("email", "both")
        else 0
    )
    return sms + email


def recipient_batch(
    *,
    brand_id: int,
    campaign_id: int,
    attempt: int,
    rows: Sequence[Any],
    partition: int = 0,
    channel: str = "sms",
) -> RecipientBatch:
    """The recipients of one page: every subscriber with a phone (the send stage's gate
    decides who may be sent to, and records why not).
    The batch id is derived from the page's first key, so a page republished after a crash
    carries the same id."""
    recipients = []
    for row in rows:
        reachable = (channel != "email" and row["phone"] is not None) or (
            channel != "sms" and row["email"] is not None
        )
        if not reachable:
            continue
        fields: dict[str, Any] = dict(row["attributes"] or {})
        for name in _STANDARD_FIELDS:
            if row[name] is not None:
                fields[name] = row[name]
        recipients.append(
            Recipient(
                subscriber_id=row["id"],
                phone=row["phone"] or "",
                timezone=row["timezone"],
                fields=fields,
                carrier=row.get("carrier"),
            )
        )
    first = rows[0]["id"] if rows else 0
    return RecipientBatch(
        batch_id=batch_id("aud", campaign_id, attempt, first),
        brand_id=brand_id,
        campaign_id=campaign_id,
        recipients=recipients,
        partition=partition,
    )
