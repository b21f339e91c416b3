"""What every stage worker is given: the database, the bus, the providers and the one clock,
and the one thing several stages do with them: put receipts found other than by a webhook
onto the receipts hop."""

from __future__ import annotations

from dataclasses import dataclass, field

from clarion.bus.jetstream import Bus
from clarion.domain.clock import SystemClock
from clarion.domain.ids import batch_id
from clarion.domain.ports import Clock, Provider
from clarion.domain.records import Receipt, ReceiptBatch
from clarion.store.db import Pool


@dataclass
class WorkerContext:
    """The ports a worker's stages share. `providers` holds every provider account by name,
    `provider` (the default) among them."""

    pool: Pool
    bus: Bus
    provider: Provider
    providers: dict[str, Provider] = field(default_factory=dict)
    clock: Clock = field(default_factory=SystemClock)

    def __post_init__(self) -> None:
        self.providers = {self.provider.name: self.provider, **self.providers}

    async def publish_receipts(self, origin: str, provider: str, receipts: list[Receipt]) -> None:
        """Receipts found other than by a webhook (send answers, early ones now matched,
        reconciliation) onto the receipts hop, marked with their origin; the batch id is
        derived from them, so a repeat is dropped."""
        key = batch_id(origin, provider, *(f"{r.message_id}:{r.status}" for r in receipts))
        out = ReceiptBatch(batch_id=key, provider=provider, receipts=receipts, origin=origin)
        await self.bus.publish("receipts", out, msg_id=key)
