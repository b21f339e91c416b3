"""Carrier health records: what the carrier stage writes per minute, what the monitor
reads back over its window, and what an operator sees (alerts, delivery per carrier)."""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

import msgspec


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


class AlertRow(msgspec.Struct, frozen=True, kw_only=True):
    """An alert (`alerts`), as `GET /v1/alerts` shows it: the fields are its JSON keys, in
    its order."""

    id: int
    brand_id: int
    kind: str  # what is watched, e.g. carrier_delivery_rate
    subject: str  # what it is about, e.g. the carrier
    message: str
    value: float | None  # the measure that raised it (a delivery rate: 0 to 1)
    threshold: float | None  # the measure's limit
    raised_at: datetime
    cleared_at: datetime | None  # None: still open


class CarrierDelivery(msgspec.Struct, frozen=True, kw_only=True):
    """A brand's delivery through one carrier over a window, as `GET /v1/carriers` shows it:
    the fields are its JSON keys, in its order."""

    carrier: str
    delivered: int
    failed: int  # undelivered or failed
    mean_latency_s: float | None  # send to delivery receipt (None: none measured)
    delivery_rate: float | None  # delivered / (delivered + failed), 0 to 1 (None: no outcome)
    errors: dict[str, int]  # error code → messages, most frequent first (all time)
