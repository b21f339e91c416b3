"""Carrier stage core: tally final outcomes per brand, campaign and carrier."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from clarion.domain.records import StatusChange
from clarion.domain.status import MessageStatus

UNKNOWN_CARRIER = "unknown"
OUTCOMES = frozenset({MessageStatus.DELIVERED, MessageStatus.UNDELIVERED, MessageStatus.FAILED})


def tally(changes: Sequence[StatusChange]) -> dict[tuple[int, int, str], Counter[str]]:
    """(brand, campaign, carrier) → count of each final outcome in this batch."""
    out: dict[tuple[int, int, str], Counter[str]] = {}
    for c in changes:
        if c.status not in OUTCOMES:
            continue
        key = (c.brand_id, c.campaign_id or 0, c.carrier or UNKNOWN_CARRIER)
        out.setdefault(key, Counter())[c.status] += 1
    return out


def stats_rows(changes: Sequence[StatusChange]) -> list[tuple[int, int, str, int, int, int]]:
    """(brand, campaign, carrier, delivered, undelivered, failed) to add to the totals."""
    return [
        (brand_id, campaign_id, name, n["delivered"], n["undelivered"], n["failed"])
        for (brand_id, campaign_id, name), n in tally(changes).items()
    ]
