"""Audience stage core: turn a keyset page of subscribers into a recipient batch."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from clarion.domain.ids import batch_id
from clarion.domain.records import Recipient, RecipientBatch
from clarion.domain.rows import SubscriberRow


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


def split_pages(
    rows: Sequence[SubscriberRow], cursors: Sequence[int], *, page_size: int, exhausted: bool
) -> tuple[list[tuple[int, list[SubscriberRow]]], list[int]]:
    """One read of the audience, a contiguous range of subscribers in id order, as pages
    per partition (subscriber id % len(cursors)), and the cursors after them.

    `cursors[p]` is the last subscriber id partition p has published (-1: done); rows at or
    below it are skipped (after an upgrade, partitions walked on their own may stand at
    different ids). A partition publishes at most `page_size` rows a read: if it has that
    many, its cursor moves to its page's last row, and the rest of its rows come in the next
    read; if it has fewer, they are all it has up to the end of the read, so its cursor
    moves to the read's last id, or stays if it stood further on (`exhausted`, the read
    reached the end of the audience: -1).
    Every read therefore moves the lowest open cursor, where the next read starts."""
    parts = len(cursors)
    pages: list[list[SubscriberRow]] = [[] for _ in range(parts)]
    for row in rows:
        sid = row.id
        page = pages[sid % parts]
        if sid > cursors[sid % parts] >= 0 and len(page) < page_size:
            page.append(row)
    end = -1 if exhausted or not rows else rows[-1].id
    out: list[tuple[int, list[SubscriberRow]]] = []
    after = list(cursors)
    for p, page in enumerate(pages):
        if cursors[p] < 0:
            continue
        if page:
            out.append((p, page))
        if len(page) == page_size:
            after[p] = page[-1].id
        else:  # a partition further on than the read (after an upgrade) stays where it is
            after[p] = end if end < 0 else max(end, cursors[p])
    return out, after


def recipient_batch(
    *,
    brand_id: int,
    campaign_id: int,
    attempt: int,
    rows: Sequence[SubscriberRow],
    partition: int = 0,
    channel: str = "sms",
) -> RecipientBatch:
    """The recipients of one page: every subscriber with a phone (the send stage's gate
    decides who may be sent to, and records why not).
    The batch id is derived from the page's first key, so a page republished after a crash
    carries the same id."""
    recipients = []
    for row in rows:
        reachable = (channel != "email" and row.phone is not None) or (
            channel != "sms" and row.email is not None
        )
        if not reachable:
            continue
        fields: dict[str, Any] = dict(row.attributes or {})
        if row.first_name is not None:
            fields["first_name"] = row.first_name
        if row.last_name is not None:
            fields["last_name"] = row.last_name
        if row.email is not None:
            fields["email"] = row.email
        recipients.append(
            Recipient(
                subscriber_id=row.id,
                phone=row.phone or "",
                timezone=row.timezone,
                fields=fields,
                carrier=row.carrier,
            )
        )
    first = rows[0].id if rows else 0
    return RecipientBatch(
        batch_id=batch_id("aud", campaign_id, attempt, first),
        brand_id=brand_id,
        campaign_id=campaign_id,
        recipients=recipients,
        partition=partition,
    )
