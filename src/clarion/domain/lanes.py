"""Flow-control lanes as data: a lane's name, its configured limit, and what it granted a
batch. The store reads and writes them; the send stage's token buckets work on them."""

from __future__ import annotations

from dataclasses import dataclass

# A lane: (kind, key), e.g. ("sender", "+15125550100"), ("provider", "sim"),
# ("carrier_minute", "7:42:AT&T") per brand, campaign and carrier,
# ("brand_carrier_day", "7:T-Mobile") per brand and carrier.
Lane = tuple[str, str]


@dataclass(frozen=True, slots=True)
class LaneLimit:
    """A lane's configured limit: a rate (per second) and burst, or a daily quota."""

    rate_per_s: float | None = None
    burst: float | None = None
    per_day: int | None = None
    per_segment: bool = False  # count SMS segments, not messages (long-code senders)


@dataclass(frozen=True, slots=True)
class Grant:
    """What a lane gave a batch: `tokens` now, its current `rate_per_s` (None: no rate, only a
    daily quota), and whether a daily quota is what ran out (nothing more until midnight)."""

    tokens: float
    rate_per_s: float | None = None
    daily_spent: bool = False
