"""The receipts side's workers: folding receipts into messages (aggregate), matching early
receipts, reconciliation, and carrier monitoring (`ReceiptsSide`, part of `stages.Stages`)."""

from __future__ import annotations

import logging
import operator
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import msgspec

from clarion.config import RECONCILE_MAX_AGE_S
from clarion.domain.ids import batch_id
from clarion.domain.monitoring import MinuteRow
from clarion.domain.records import Receipt, ReceiptBatch, StatusBatch
from clarion.domain.status import MessageStatus
from clarion.errors import ProviderError
from clarion.observability import metrics
from clarion.pipeline import aggregate, carrier, send
from clarion.pipeline.carrier import OUTCOMES
from clarion.pipeline.send import ANSWER
from clarion.runtime.stage_base import StageBase
from clarion.store import compliance, messages, monitoring

log = logging.getLogger(__name__)

_message_id = operator.attrgetter("message_id")


class ReceiptsSide(StageBase):
    """The aggregate and carrier stages, and the receipts singletons, of a `Stages` worker."""

    async def sweep_early_receipts(self) -> int:
        """Early receipts whose send answer has landed since: back on the receipts hop (a
        singleton, with the deferred sweeper). Catches the race where a receipt was kept by
        one transaction while another recorded its answer."""
        async with self.pool.acquire() as conn, conn.transaction():
            found = await messages.matched_early(conn)
            by_provider: dict[str, list[Receipt]] = {}
            for provider, receipt in found:
                by_provider.setdefault(provider, []).append(receipt)
            for provider, receipts in by_provider.items():
                await self._publish_receipts("early", provider, receipts)
        return len(found)

    async def reconcile(
        self, older_than_s: float, limit: int = 1000, *, max_age_s: float = RECONCILE_MAX_AGE_S
    ) -> int:
        """Ask each provider about messages handed over more than `older_than_s` ago (and
        less than `max_age_s`) that still have no final status (their receipts lost, or
        their fate unknown after a crash); what it says goes onto the receipts hop like any
        receipt. A singleton. It reads hand-overs from the floor below which every message
        has been asked about or has settled, kept in Postgres, so a newly elected sweeper
        goes on from where the last one stopped (`messages.to_reconcile`). Those never asked
        come first, in hand-over order; then those asked before, the longest-asked first, so
        a message the provider keeps calling `sent` goes to the back of the line."""
        async with self.pool.acquire() as conn, conn.transaction():
            rows = await messages.to_reconcile(
                conn, older_than_s=older_than_s, max_age_s=max_age_s, limit=limit
            )
        by_provider: dict[str, list[tuple[str, str | None]]] = {}
        for message_id, provider_name, provider_id in rows:
            by_provider.setdefault(provider_name, []).append((message_id, provider_id))
        found = 0
        for name, refs in by_provider.items():
            provider = self.providers.get(name)
            fetch = getattr(provider, "fetch_status", None)
            if fetch is None:
                continue  # this provider cannot be asked
            try:
                receipts: list[Receipt] = await fetch(refs)
            except ProviderError as exc:
                log.warning("reconciliation with %s failed: %s", name, exc)
                continue
            if receipts:
                await self._publish_receipts("reconcile", name, receipts)
                found += len(receipts)
        return found

    async def aggregate(self, batches: list[ReceiptBatch]) -> int:
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
        async with self.pool.acquire() as conn, conn.transaction():
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
            minute = self.clock().replace(second=0, microsecond=0)
            minutes = carrier.minute_rows(counts, minute)
            await monitoring.add_minutes(conn, minutes)
            await monitoring.add_errors(conn, carrier.error_rows(failures))
        if minutes:
            _count_outcomes(tallied, minutes)
            # After commit, the carrier stage judges the carriers whose outcomes were just
            # counted. A message reaches a final status once (the fold only moves it up), so
            # the first of the outcomes' ids names this fold's batch.
            key = batch_id("status", min(c.first_id for c in counts if c.status in OUTCOMES))
            out = StatusBatch(
                batch_id=key, checks=[(r.brand_id, r.carrier) for r in minutes], minute=minute
            )
            await self.bus.publish("status", out, msg_id=key)
        by_status: Counter[str] = Counter()
        for c in counts:
            by_status[c.status] += c.n
        for status, n in by_status.items():
            if status != MessageStatus.ACCEPTED:  # counted at the hand-over
                metrics.MESSAGES.labels(status).inc(n)
        return sum(len(b.receipts) for b in batches)

    @staticmethod
    async def _resolve(conn: Any, batch: ReceiptBatch) -> ReceiptBatch:
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

    async def carrier(self, batch: StatusBatch) -> int:
        """Delivery monitoring per brand and carrier: an alert when a carrier's delivery rate
        over the window falls below the threshold (cleared when it recovers), judged for
        the carriers whose outcomes a fold has just counted. A batch published before the
        fold counted its own outcomes carries them: they are counted here, once."""
        minute = batch.minute or self.clock().replace(second=0, microsecond=0)
        counts = carrier.counts_of(batch.changes)
        rows = carrier.minute_rows(counts, minute)
        keys = set(batch.checks) | {(r.brand_id, r.carrier) for r in rows}
        async with self.pool.acquire() as conn, conn.transaction():
            counted = bool(rows) and await self._count_carried(conn, batch, rows)
            if keys:
                await self._judge_carriers(conn, sorted(keys), minute)
        if counted:  # after commit: a rolled-back batch comes again
            _count_outcomes(carrier.tally(counts), rows)
        return len(batch.changes) or len(batch.checks)

    @staticmethod
    async def _count_carried(conn: Any, batch: StatusBatch, rows: list[MinuteRow]) -> bool:
        """Count the outcomes a batch carries (`rows`: theirs per carrier and minute) once: a
        redelivered batch is recorded as counted. Returns whether they were counted now."""
        if not await monitoring.count_batch_once(conn, "status", batch.batch_id):
            return False
        await monitoring.add_minutes(conn, rows)
        await monitoring.add_errors(conn, carrier.error_rows(batch.changes))
        return True

    async def _judge_carriers(
        self, conn: Any, keys: list[tuple[int, str]], minute: datetime
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


def _count_outcomes(
    tallied: dict[tuple[int, int, str], Counter[str]], rows: list[MinuteRow]
) -> None:
    """The carrier metrics of outcomes just counted (their `tally` and minute rows)."""
    for (_, _, name), counts in tallied.items():
        for outcome, n in counts.items():
            metrics.CARRIER_OUTCOMES.labels(name, outcome).inc(n)
    for r in rows:
        if r.latency_n:
            metrics.CARRIER_LATENCY.labels(r.carrier).observe(r.latency_sum_s / r.latency_n)
