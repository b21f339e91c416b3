"""Carrier health records: what the carrier stage writes per minute and what the monitor
reads back over its window."""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple


class MinuteRow(NamedTuple):
    brand_id: int
    carrier: str
    minute: datetime
    delivered: int
    failed: int
    latency_sum_s: float
    latency_n: int


class Health(NamedTuple):
    brand_id: int
    carrier: str
    delivered: int
    failed: int

    @property
    def rate(self) -> float:
        total = self.delivered + self.failed
        return self.delivered / total if total else 1.0
