"""Audience stage core: turn a keyset page of subscribers into a recipient batch."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from clarion.domain.ids import batch_id
from clarion.domain.records import Recipient, RecipientBatch

_STANDARD_FIELDS = ("first_name", "last_name", "email")


def recipient_batch(
    *, brand_id: int, campaign_id: int, attempt: int, rows: Sequence[Any], partition: int = 0
) -> RecipientBatch:
    """The recipients of one page: every subscriber with a phone (the send stage's gate
    decides who may be sent to, and records why not).
    The batch id is derived from the page's first key, so a page republished after a crash
    carries the same id."""
    recipients = []
    for row in rows:
        if row["phone"] is None:
            continue
        fields: dict[str, Any] = dict(row["attributes"] or {})
        for name in _STANDARD_FIELDS:
            if row[name] is not None:
                fields[name] = row[name]
        recipients.append(
            Recipient(
                subscriber_id=row["id"],
                phone=row["phone"],
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
