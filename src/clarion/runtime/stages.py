"""A worker's stages, composed: each stage's worker decodes a batch, calls its pure core,
commits, publishes the next batch and returns (the consume loop acks). `Stages` builds them
over one context (database, bus, providers, clock) and hands each consume loop its stage.

One module per stage: audience_worker, personalize_worker, send_worker (with routing.py and
handover.py), aggregate_worker, carrier_worker, inbound_worker; the elected singletons are
in sweeps.py."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from clarion.bus.jetstream import Bus
from clarion.config import RECONCILE_MAX_AGE_S
from clarion.domain.clock import SystemClock
from clarion.domain.ports import Clock, Provider
from clarion.pipeline.breaker import Breaker
from clarion.runtime.aggregate_worker import AggregateWorker
from clarion.runtime.audience_worker import AudienceWorker
from clarion.runtime.carrier_worker import CarrierWorker, Monitor
from clarion.runtime.context import WorkerContext
from clarion.runtime.handover import HandOver
from clarion.runtime.inbound_worker import InboundWorker
from clarion.runtime.personalize_worker import PersonalizeWorker
from clarion.runtime.routing import Routing
from clarion.runtime.send_worker import SendWorker
from clarion.runtime.sweeps import Sweeps
from clarion.store.db import Pool

__all__ = ["RECEIPTS_PER_FETCH", "SERIAL_STAGES", "STAGES", "STAGE_HOPS", "Monitor", "Stages"]

# stage name → the hop it consumes
STAGE_HOPS = {
    "audience": "launch",
    "personalize": "audience",
    "send": "rendered",
    "aggregate": "receipts",
    "carrier": "status",
    "inbound": "inbound",
    "transactional": "transactional",
}
STAGES = tuple(STAGE_HOPS)
# Batches one process handles at once, per stage. Aggregate and carrier update rows that
# concurrent batches share (a message's several receipts; a carrier's counters), so they run
# one batch at a time per process: overlapping transactions would only queue on row locks.
SERIAL_STAGES = frozenset({"aggregate", "carrier"})
# Receipt webhooks arrive as many small batches; the aggregate takes up to this many bus
# messages at a time (into its holding; see `consumer.consume_holding`).
RECEIPTS_PER_FETCH = 32


class Stages:
    """Every stage of one worker process over one database, bus, set of providers and clock.
    `provider` is the default; `providers` adds the other accounts by name."""

    def __init__(
        self,
        pool: Pool,
        bus: Bus,
        provider: Provider,
        *,
        clock: Clock | None = None,
        providers: dict[str, Provider] | None = None,
        page_size: int = 2000,
        max_attempts: int = 8,
        retry_base_s: float = 0.5,
        new_breaker: Callable[[], Breaker] = Breaker,
        monitor: Monitor | None = None,
        public_url: str = "http://127.0.0.1:8080",
        unsubscribe_secret: str = "clarion-unsubscribe",
    ) -> None:
        self.ctx = ctx = WorkerContext(
            pool, bus, provider, providers=dict(providers or {}), clock=clock or SystemClock()
        )
        routing = Routing(ctx, new_breaker=new_breaker)
        handover = HandOver(ctx, routing, max_attempts=max_attempts, retry_base_s=retry_base_s)
        self.audience = AudienceWorker(ctx, page_size=page_size)
        self.personalize = PersonalizeWorker(
            ctx, public_url=public_url, unsubscribe_secret=unsubscribe_secret
        )
        self.send = SendWorker(ctx, routing, handover)
        self.aggregate = AggregateWorker(ctx)
        self.carrier = CarrierWorker(ctx, monitor or Monitor())
        self.inbound = InboundWorker(ctx)
        self.sweeps = Sweeps(ctx)

    @property
    def providers(self) -> dict[str, Provider]:
        return self.ctx.providers

    def handler(self, stage: str) -> Callable[[Any], Any]:
        """What the consume loop of `stage` calls with each batch (a list of batches for the
        aggregate)."""
        handlers: dict[str, Callable[[Any], Any]] = {
            "audience": self.audience,
            "personalize": self.personalize,
            "send": self.send,
            "aggregate": self.aggregate,
            "carrier": self.carrier,
            "inbound": self.inbound,
            "transactional": self.send,
        }
        return handlers[stage]

    async def reconcile(
        self, older_than_s: float, limit: int = 1000, *, max_age_s: float = RECONCILE_MAX_AGE_S
    ) -> int:
        return await self.sweeps.reconcile(older_than_s, limit, max_age_s=max_age_s)
