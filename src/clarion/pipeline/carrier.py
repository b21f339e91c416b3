"""Carrier stage core: tally final outcomes per brand, campaign and carrier."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from clarion.domain.monitoring import Health, MinuteRow
from clarion.domain.records import StatusChange, StatusCount
from clarion.domain.status import MessageStatus

UNKNOWN_CARRIER = "unknown"
OUTCOMES = frozenset({MessageStatus.DELIVERED, MessageStatus.UNDELIVERED, MessageStatus.FAILED})


def counts_of(changes: Sequence[StatusChange]) -> list[StatusCount]:
    """Status changes counted per brand, campaign, carrier and status, as the fold counts
    them in Postgres (`messages.apply_receipts`): for changes carried one by one (status
    batches from before the fold counted its own)."""
    acc: dict[tuple[int, int | None, str | None, str], list[Any]] = {}
    for c in changes:
        key = (c.brand_id, c.campaign_id, c.carrier, c.status)
        if (row := acc.get(key)) is None:
            row = acc[key] = [0, 0.0, 0, c.message_id]
        row[0] += 1
        if c.latency_s is not None:
            row[1] += c.latency_s
            row[2] += 1
        row[3] = min(row[3], c.message_id)
    return [StatusCount(*key, *row) for key, row in acc.items()]


def tally(counts: Sequence[StatusCount]) -> dict[tuple[int, int, str], Counter[str]]:
    """(brand, campaign, carrier) → count of each final outcome in this batch."""
    out: dict[tuple[int, int, str], Counter[str]] = {}
    for c in counts:
        if c.status not in OUTCOMES:
            continue
        key = (c.brand_id, c.campaign_id or 0, c.carrier or UNKNOWN_CARRIER)
        if (per := out.get(key)) is None:
            per = out[key] = Counter()
        per[c.status] += c.n
    return out


def stats_rows(
    tallied: dict[tuple[int, int, str], Counter[str]],
) -> list[tuple[int, int, str, int, int, int]]:
    """(brand, campaign, carrier, delivered, undelivered, failed) to add to the totals, from
    a batch's `tally`."""
    return [
        (brand_id, campaign_id, name, n["delivered"], n["undelivered"], n["failed"])
        for (brand_id, campaign_id, name), n in tallied.items()
    ]


def minute_rows(counts: Sequence[StatusCount], minute: datetime) -> list[MinuteRow]:
    """Final outcomes and delivery latency per (brand, carrier) for this minute."""
    acc: dict[tuple[int, str], list[float]] = {}
    for c in counts:
        if c.status not in OUTCOMES:
            continue
        row = acc.setdefault((c.brand_id, c.carrier or UNKNOWN_CARRIER), [0, 0, 0.0, 0])
        if c.status == MessageStatus.DELIVERED:
            row[0] += c.n
            row[2] += c.latency_sum_s
            row[3] += c.latency_n
        else:
            row[1] += c.n
    return [
        MinuteRow(b, name, minute, int(d), int(f), s, int(n))
        for (b, name), (d, f, s, n) in sorted(acc.items())
    ]


def error_rows(changes: Sequence[StatusChange]) -> list[tuple[int, str, str, int]]:
    """(brand, carrier, error code, count) of the failures in this batch."""
    n: Counter[tuple[int, str, str]] = Counter(
        (c.brand_id, c.carrier or UNKNOWN_CARRIER, c.error_code)
        for c in changes
        if c.status in OUTCOMES and c.status != MessageStatus.DELIVERED and c.error_code
    )
    return [(b, name, code, k) for (b, name, code), k in sorted(n.items())]


def judge(
    health: Health, *, threshold: float, min_volume: int, is_open: bool, hysteresis: float = 0.02
) -> str | None:
    """ "raise" when a carrier's delivery rate over the window fell below the threshold (with
    enough volume to judge), "clear" when an open alert's rate is back above it (with a
    margin, so an alert does not flap), else None."""
    if health.delivered + health.failed < min_volume:
        return None
    if not is_open and health.rate < threshold:
        return "raise"
    if is_open and health.rate >= threshold + hysteresis:
        return "clear"
    return None
