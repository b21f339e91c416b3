"""The aggregate stage's worker: receipt batches (webhooks, send answers, reconciliation)
folded into messages in one transaction, with hard failures suppressed and each carrier's
outcomes counted in the same transaction; then the carrier stage is told which carriers to
judge."""

from __future__ import annotations

import logging
import operator
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING

import asyncpg
import msgspec

from clarion.domain.ids import batch_id
from clarion.domain.records import ReceiptBatch, StatusBatch
from clarion.domain.status import MessageStatus
from clarion.observability import metrics
from clarion.pipeline import aggregate, carrier, send
from clarion.pipeline.carrier import OUTCOMES
from clarion.pipeline.send import ANSWER
from clarion.runtime.carrier_worker import count_outcomes
from clarion.runtime.context import WorkerContext
from clarion.store import compliance, messages, monitoring

if TYPE_CHECKING:
    from clarion.store.db import Conn

log = logging.getLogger(__name__)

_message_id = operator.attrgetter("message_id")


@dataclass
class AggregateWorker:
    ctx: WorkerContext

    async def __call__(self, batches: list[ReceiptBatch]) -> int:
        """Fold receipt batches in one transaction; returns how many receipts were handled.
        A receipt whose message id is malformed would fail the fold, and with it every
        receipt folded with it, at each redelivery: it is logged and left out."""
        try:
            return await self._aggregate(batches)
        except asyncpg.DataError:
            kept, dropped = aggregate.without_malformed_ids(batches)
            if not dropped:
                raise
        for provider, r in dropped:
            log.warning(
                "receipt from %s left out: %r is not a message id (status %s, provider's id %s)",
                provider, r.message_id, r.status, r.provider_message_id,
            )  # fmt: skip
        metrics.RECEIPTS_DROPPED.labels("malformed_id").inc(len(dropped))
        return await self._aggregate(kept) + len(dropped)

    async def _aggregate(self, batches: list[ReceiptBatch]) -> int:
        async with self.ctx.pool.acquire() as conn, conn.transaction():
            # Receipts that name only the provider's id (SMPP) get ours from the id map;
            # those that came before their send answer are kept until it lands.
            batches = [await self._resolve(conn, b) for b in batches]
            # A send answer moves the status but is not one of the provider's reports.
            events, folded, complaints = aggregate.fold_reports(batches, answers=ANSWER)
            # Rows are locked in id order, so concurrent batches cannot deadlock.
            folded.sort(key=_message_id)
            providers = sorted({b.provider for b in batches})
            if len(providers) == 1:  # the common case: nothing to split
                counts, failures = await messages.apply_receipts(conn, providers[0], events, folded)
            else:
                counts, failures = [], []
                for provider in providers:
                    mine = {
                        r.message_id for b in batches if b.provider == provider for r in b.receipts
                    }
                    got = await messages.apply_receipts(
                        conn,
                        provider,
                        [e for e in events if e.message_id in mine],
                        [f for f in folded if f.message_id in mine],
                    )
                    counts += got.counts
                    failures += got.failures
            hard = send.hard_failure_suppressions(failures)
            # A complaint comes after `delivered` (no status change): suppress from events.
            if complaints:
                for brand_id, address in await messages.recipients_of(conn, complaints):
                    hard.append((brand_id, address, "complaint", "receipt:spamreport"))
            await compliance.suppress(conn, hard)
            # Outcomes per carrier, and per carrier and minute for delivery monitoring, are
            # counted in the same transaction as the status changes they come from: a
            # rolled-back fold counts nothing, a redelivered batch changes nothing (its
            # changes are already applied), so the counts are exact.
            tallied = carrier.tally(counts)
            await messages.add_carrier_stats(conn, carrier.stats_rows(tallied))
            minute = self.ctx.clock.now().replace(second=0, microsecond=0)
            minutes = carrier.minute_rows(counts, minute)
            await monitoring.add_minutes(conn, minutes)
            await monitoring.add_errors(conn, carrier.error_rows(failures))
        if minutes:
            count_outcomes(tallied, minutes)
            # After commit, the carrier stage judges the carriers whose outcomes were just
            # counted. A message reaches a final status once (the fold only moves it up), so
            # the first of the outcomes' ids names this fold's batch.
            key = batch_id("status", min(c.first_id for c in counts if c.status in OUTCOMES))
            out = StatusBatch(
                batch_id=key, checks=[(r.brand_id, r.carrier) for r in minutes], minute=minute
            )
            await self.ctx.bus.publish("status", out, msg_id=key)
        by_status: Counter[str] = Counter()
        for c in counts:
            by_status[c.status] += c.n
        for status, n in by_status.items():
            if status != MessageStatus.ACCEPTED:  # counted at the hand-over
                metrics.MESSAGES.labels(status).inc(n)
        return sum(len(b.receipts) for b in batches)

    @staticmethod
    async def _resolve(conn: Conn, batch: ReceiptBatch) -> ReceiptBatch:
        anonymous = [r for r in batch.receipts if not r.message_id]
        if not anonymous:
            return batch
        ours = await messages.resolve_provider_ids(
            conn, batch.provider, sorted({r.provider_message_id or "" for r in anonymous})
        )
        await messages.keep_early(
            conn, batch.provider, [r for r in anonymous if r.provider_message_id not in ours]
        )
        receipts = [
            r if r.message_id else msgspec.structs.replace(r, message_id=ours[pid])
            for r in batch.receipts
            if r.message_id or (pid := r.provider_message_id or "") in ours
        ]
        return msgspec.structs.replace(batch, receipts=receipts)
