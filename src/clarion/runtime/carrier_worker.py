"""The carrier stage's worker: delivery monitoring per brand and carrier. An alert is raised
when a carrier's delivery rate over the window falls below the threshold, and cleared when it
recovers."""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from clarion.domain.monitoring import MinuteRow
from clarion.domain.records import StatusBatch
from clarion.observability import metrics
from clarion.pipeline import carrier
from clarion.runtime.context import WorkerContext
from clarion.store import monitoring

if TYPE_CHECKING:
    from clarion.store.db import Conn

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Monitor:
    """When a carrier's delivery rate raises an alert: below `threshold` over the last
    `window_min` minutes, with at least `min_volume` outcomes to judge by."""

    threshold: float = 0.85
    min_volume: int = 200
    window_min: int = 10


@dataclass
class CarrierWorker:
    ctx: WorkerContext
    monitor: Monitor = field(default_factory=Monitor)

    async def __call__(self, batch: StatusBatch) -> int:
        """Delivery monitoring per brand and carrier: an alert when a carrier's delivery rate
        over the window falls below the threshold (cleared when it recovers), judged for
        the carriers whose outcomes a fold has just counted. A batch published before the
        fold counted its own outcomes carries them: they are counted here, once."""
        minute = batch.minute or self.ctx.clock.now().replace(second=0, microsecond=0)
        counts = carrier.counts_of(batch.changes)
        rows = carrier.minute_rows(counts, minute)
        keys = set(batch.checks) | {(r.brand_id, r.carrier) for r in rows}
        async with self.ctx.pool.acquire() as conn, conn.transaction():
            counted = bool(rows) and await self._count_carried(conn, batch, rows)
            if keys:
                await self._judge_carriers(conn, sorted(keys), minute)
        if counted:  # after commit: a rolled-back batch comes again
            count_outcomes(carrier.tally(counts), rows)
        return len(batch.changes) or len(batch.checks)

    @staticmethod
    async def _count_carried(conn: Conn, batch: StatusBatch, rows: list[MinuteRow]) -> bool:
        """Count the outcomes a batch carries (`rows`: theirs per carrier and minute) once: a
        redelivered batch is recorded as counted. Returns whether they were counted now."""
        if not await monitoring.count_batch_once(conn, "status", batch.batch_id):
            return False
        await monitoring.add_minutes(conn, rows)
        await monitoring.add_errors(conn, carrier.error_rows(batch.changes))
        return True

    async def _judge_carriers(
        self, conn: Conn, keys: list[tuple[int, str]], minute: datetime
    ) -> None:
        since = minute - timedelta(minutes=self.monitor.window_min)
        health = await monitoring.window_health(conn, keys, since)
        kind = monitoring.CARRIER_DELIVERY_RATE
        open_now = await monitoring.open_alerts(conn, kind, sorted({b for b, _ in keys}))
        for h in health:
            metrics.CARRIER_DELIVERY_RATE.labels(str(h.brand_id), h.carrier).set(h.rate)
            verdict = carrier.judge(
                h, threshold=self.monitor.threshold, min_volume=self.monitor.min_volume,
                is_open=(h.brand_id, h.carrier) in open_now,
            )  # fmt: skip
            if verdict == "raise":
                message = (
                    f"{h.carrier} delivered {h.rate:.1%} of {h.delivered + h.failed} messages"
                    f" in the last {self.monitor.window_min} min"
                    f" (threshold {self.monitor.threshold:.0%})"
                )
                if await monitoring.raise_alert(
                    conn, h.brand_id, kind, h.carrier, message, h.rate, self.monitor.threshold
                ):
                    metrics.ALERTS.labels(kind).inc()
                    log.warning("alert: brand %s: %s", h.brand_id, message)
            elif verdict == "clear":
                await monitoring.clear_alert(conn, h.brand_id, kind, h.carrier)


def count_outcomes(
    tallied: dict[tuple[int, int, str], Counter[str]], rows: list[MinuteRow]
) -> None:
    """The carrier metrics of outcomes just counted (their `tally` and minute rows)."""
    for (_, _, name), counts in tallied.items():
        for outcome, n in counts.items():
            metrics.CARRIER_OUTCOMES.labels(name, outcome).inc(n)
    for r in rows:
        if r.latency_n:
            metrics.CARRIER_LATENCY.labels(r.carrier).observe(r.latency_sum_s / r.latency_n)
