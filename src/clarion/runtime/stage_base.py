"""What every stage worker holds (the database, the bus, the providers, the clock, the
caches) and the one thing both sides of the pipeline do: put receipts found other than by a
webhook onto the receipts hop. `Stages` (stages.py) is the worker; its send side
(send_side.py) and receipts side (receipts_side.py) are written against this."""

from __future__ import annotations

import asyncio
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from clarion.bus.jetstream import Bus
from clarion.domain.ids import batch_id
from clarion.domain.lanes import Lane, LaneLimit
from clarion.domain.ports import Clock, Provider
from clarion.domain.records import Receipt, ReceiptBatch
from clarion.pipeline import personalize
from clarion.pipeline.breaker import Breaker
from clarion.store.db import Pool


@dataclass(frozen=True)
class CampaignTemplates:
    """A campaign's compiled templates and what rendering needs, read once per campaign."""

    channel: str
    sms: personalize.Template
    brand: dict[str, Any]
    sender: str
    uid: str
    email: personalize.Template | None
    subject: personalize.Template | None
    email_from: str
    max_segments: int  # the brand's: a longer SMS fails for its recipient


@dataclass(frozen=True)
class Monitor:
    """When a carrier's delivery rate raises an alert: below `threshold` over the last
    `window_min` minutes, with at least `min_volume` outcomes to judge by."""

    threshold: float = 0.85
    min_volume: int = 200
    window_min: int = 10


@dataclass
class StageBase:
    pool: Pool
    bus: Bus
    provider: Provider
    page_size: int = 2000
    # The time the send decision runs on (quiet hours, expiry, waits): tests pin it to a
    # moment inside every sending window. `now_s` and `wall_s` are the real clock: intervals
    # (breakers, re-reads) on the monotonic one, and what other processes or the database
    # compare with (the shared lane state, the time of a provider's answer) on the wall one.
    clock: Clock = field(default=lambda: datetime.now(UTC))
    _send_context: OrderedDict[int, tuple[datetime | None, float]] = field(
        default_factory=OrderedDict
    )
    now_s: Callable[[], float] = time.monotonic
    # Epoch seconds: lane state is shared between processes, so it runs on the wall clock.
    wall_s: Callable[[], float] = time.time
    max_attempts: int = 8
    retry_base_s: float = 0.5
    # Every provider account by name (the default `provider` among them), each brand's SMS
    # route (provider names in order of preference), and a circuit breaker per provider.
    providers: dict[str, Provider] = field(default_factory=dict)
    _routes: dict[tuple[int, str], list[str]] = field(default_factory=dict)
    _breakers: dict[str, Breaker] = field(default_factory=dict)
    new_breaker: Callable[[], Breaker] = Breaker
    monitor: Monitor = field(default_factory=lambda: Monitor())
    _limits: dict[Lane, LaneLimit] = field(default_factory=dict)
    _resolved: dict[Lane, LaneLimit | None] = field(default_factory=dict)
    _sender_pools: dict[int, list[str]] = field(default_factory=dict)
    _limits_read_at: float = -math.inf
    _limits_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    _templates: OrderedDict[int, CampaignTemplates] = field(default_factory=OrderedDict)
    # Campaigns whose first provider call this process knows is stamped (first_send_at).
    _first_sent: set[int] = field(default_factory=set)
    # Where one-click unsubscribe links point, and the secret that signs them.
    public_url: str = "http://127.0.0.1:8080"
    unsubscribe_secret: str = "clarion-unsubscribe"

    def __post_init__(self) -> None:
        self.providers = {self.provider.name: self.provider, **self.providers}

    def wall_time(self) -> datetime:
        """The real time now (from `wall_s`), as an aware UTC datetime."""
        return datetime.fromtimestamp(self.wall_s(), UTC)

    async def _publish_receipts(self, origin: str, provider: str, receipts: list[Receipt]) -> None:
        """Receipts found other than by a webhook (send answers, early ones now matched,
        reconciliation) onto the receipts hop, marked with their origin; the batch id is
        derived from them, so a repeat is dropped."""
        key = batch_id(origin, provider, *(f"{r.message_id}:{r.status}" for r in receipts))
        out = ReceiptBatch(batch_id=key, provider=provider, receipts=receipts, origin=origin)
        await self.bus.publish("receipts", out, msg_id=key)
