"""The send stage's worker: it loads what the decision
needs (the campaign's status, current consent and suppressions, the waiting messages, the
lanes' admission), calls the pure core (`pipeline.send_decision`), writes the decision and
hands over to a provider (`handover.py`; routes, breakers and lanes in `routing.py`)."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import asyncpg

from clarion.domain.records import OutboundMessage, RenderedBatch
from clarion.observability import metrics
from clarion.pipeline import send
from clarion.pipeline.send_decision import SendDecision, SendState, decide, decide_lanes
from clarion.runtime.context import WorkerContext
from clarion.runtime.handover import HandOver, count_gate, count_lane_defers
from clarion.runtime.routing import Routing
from clarion.store import campaigns, compliance, messages

if TYPE_CHECKING:
    from clarion.store.db import Conn


@dataclass
class SendWorker:
    """The send stage, for marketing and transactional batches."""

    ctx: WorkerContext
    routing: Routing
    handover: HandOver

    async def __call__(self, batch: RenderedBatch) -> int:
        """Persist, pass the compliance gate (marketing only), pick the provider (the first of
        the brand's route whose circuit is closed), take tokens from every lane, hand over,
        record answers. Whatever may not go now waits in Postgres (deferred, with the reason
        and the moment to look again) and the batch is acknowledged: a waiting message never
        holds its bus partition."""
        at = self.ctx.clock.now()
        marketing = batch.kind == "marketing" and batch.campaign_id is not None
        expires_at, smart_h = (None, 0.0)
        if marketing:
            assert batch.campaign_id is not None
            expires_at, smart_h = await self.routing.campaign_send_context(
                batch.brand_id, batch.campaign_id
            )
            if not batch.stored:
                sent = await self._send_new(batch, at, expires_at, smart_h)
                if sent is not None:
                    return sent
        rows = send.rows_to_persist(batch, expires_at=expires_at)
        async with self.ctx.pool.acquire() as conn:
            async with conn.transaction():
                await messages.persist(conn, rows)
            # After a crash some may be handed over already (skipped), and some may have been
            # claimed for a provider call the crash cut short (`interrupted`).
            waiting, interrupted = await messages.still_pending(
                conn, [m.message_id for m in batch.messages], at
            )
            # Repeating a cut-short call to a provider without idempotency keys could reach
            # the handset twice: report those as of unknown fate; receipts reconcile them.
            unsafe = {mid for mid, name in interrupted.items() if not self.routing.idempotent(name)}
            await messages.mark_unknown(conn, sorted(unsafe))
        resumed = set(interrupted) - unsafe
        todo = [m for m in batch.messages if m.message_id in waiting or m.message_id in resumed]
        await self.routing.refresh_limits()
        provider, wait_s = self.routing.route(batch.brand_id, batch.channel)
        if marketing and todo and provider is not None and batch.channel == "sms":
            todo = await self.routing.lookup_carriers(provider, todo)
        async with self.ctx.pool.acquire() as conn, conn.transaction():
            if marketing and todo:
                todo = await self._gate(conn, batch, todo, at, expires_at, smart_h, resumed)
            if provider is None:  # every provider of the route is failing: wait for one
                later = at + timedelta(seconds=wait_s)
                await messages.defer(
                    conn, [(m.message_id, later, send.RETRY, "no provider") for m in todo]
                )
                return len(rows)
            # A cancel that commits after the status check has already turned these messages
            # `suppressed`, so the claim (queued/deferred/sending only) skips them; one that
            # comes later leaves claimed messages to the provider's outcome.
            claimed = await messages.claim(conn, [m.message_id for m in todo], provider.name)
            todo = [m for m in todo if m.message_id in claimed]
        if not todo:
            return len(rows)
        senders, admission = await self.routing.take_lanes(provider, batch, todo, at)
        lanes = decide_lanes(todo, senders, admission, at=at, expires_at=expires_at)
        if lanes.waits or lanes.expired:
            # Before the provider call: a crash during it must not leave these claimed (a
            # provider without idempotency would then report them as of unknown fate).
            async with self.ctx.pool.acquire() as conn, conn.transaction():
                await compliance.record_gate(conn, lanes.expired, [])
                await messages.defer(conn, lanes.waits)
            count_lane_defers(lanes.waits, lanes.expired)
        await self.handover.deliver(provider, batch, lanes.go, at)
        return len(rows)

    async def _send_new(
        self, batch: RenderedBatch, at: datetime, expires_at: datetime | None, smart_h: float
    ) -> int | None:
        """A marketing batch seen for the first time: the gate, the sequence check and the
        lanes decide first, and each message is written once, by COPY, with that decision
        (claimed for the provider, dropped with its reason, or waiting until a moment) —
        instead of inserted as queued and then updated, one statement per decision. Returns
        None, having written nothing, when the batch must take the general way: it was seen
        before (a redelivery: the COPY meets the unique key), its campaign is not sending
        (paused, cancelled), or no provider of the route may be called now."""
        assert batch.campaign_id is not None
        await self.routing.refresh_limits()
        provider, _ = self.routing.route(batch.brand_id, batch.channel)
        if provider is None:
            return None
        todo = list(batch.messages)
        if todo and batch.channel == "sms":
            todo = await self.routing.lookup_carriers(provider, todo)
        async with self.ctx.pool.acquire() as conn:
            # The claim time is the database's: reconciliation reads hand-overs by it on the
            # database's clock (`messages.to_reconcile`), and a claim of the general way
            # (`messages.claim`) is stamped so. A worker whose clock is behind would write
            # hand-overs below the reconciliation's floor, never to be asked about.
            read = await campaigns.status_and_now(conn, batch.campaign_id)
            if read is None or read[0] != "sending":
                return None
            claimed_at = read[1]
            state = await self._send_state(conn, batch, todo, at, "sending", expires_at, smart_h)
        d = decide(batch.channel, todo, state, new=True)
        senders, admission = await self.routing.take_lanes(provider, batch, d.go, at)
        lanes = decide_lanes(d.go, senders, admission, at=at, expires_at=expires_at)
        rows = send.decided_rows(
            batch, expires_at=expires_at, provider=provider.name,
            drops=d.drops + lanes.expired, quiet=d.quiet, waits=d.waits + lanes.waits,
            sent_at=claimed_at,
        )  # fmt: skip
        try:
            async with self.ctx.pool.acquire() as conn, conn.transaction():
                # A pause or cancel committed since the read above is seen here (and this
                # batch writes nothing); one that comes later waits for these rows and finds
                # them claimed, in flight.
                await campaigns.hold_control_shared(conn, batch.campaign_id)
                if await campaigns.status_of(conn, batch.campaign_id) != "sending":
                    return None
                await messages.copy_new(conn, rows)
        except asyncpg.UniqueViolationError:
            return None  # seen before; the lane tokens it took are not given back (rare)
        self._count_decision(d)
        count_lane_defers(lanes.waits, lanes.expired)
        await self.handover.deliver(provider, batch, lanes.go, at)
        return len(rows)

    async def _gate(
        self,
        conn: Conn,
        batch: RenderedBatch,
        todo: list[OutboundMessage],
        at: datetime,
        expires_at: datetime | None,
        smart_h: float,
        interrupted: set[str],
    ) -> list[OutboundMessage]:
        """Campaign status (pause, cancel), the compliance gate and the subscriber sequence,
        read right before the provider call and written; returns the messages that may go
        now. (One worker holds a subscriber at a time, by partition, so the sequence read
        cannot race.)"""
        status = await campaigns.status_of(conn, batch.campaign_id)
        if status in ("paused", "cancelled"):  # the status alone decides
            state = SendState(at=at, status=status, interrupted=interrupted)
        else:
            state = await self._send_state(
                conn, batch, todo, at, status, expires_at, smart_h, interrupted
            )
        d = decide(batch.channel, todo, state)
        await messages.mark_unknown(conn, d.unknown)
        await compliance.record_gate(conn, d.drops, d.quiet)
        await messages.defer(conn, d.waits)
        if status not in ("paused", "cancelled"):
            self._count_decision(d)
        return d.go

    async def _send_state(
        self,
        conn: Conn,
        batch: RenderedBatch,
        todo: list[OutboundMessage],
        at: datetime,
        status: str | None,
        expires_at: datetime | None,
        smart_h: float,
        interrupted: Collection[str] = frozenset(),
    ) -> SendState:
        """Current state for the gate and the sequence, read now, so an opt-out that landed
        after the batch was rendered wins."""
        subscriber_ids = [m.subscriber_id for m in todo if m.subscriber_id is not None]
        gate = await compliance.gate_state(
            conn, batch.brand_id, subscriber_ids, [m.to for m in todo], at - timedelta(hours=24),
            channel=batch.channel, recent=False,
        )  # fmt: skip
        # One read for smart sending and the sequence check, before the gate's decisions are
        # written (the core applies them to `waiting`, or they are written with the batch).
        recent, waiting = await messages.recent_and_waiting(
            conn, subscriber_ids, since=at - timedelta(hours=24), now=at,
            channel=batch.channel, handed_over=compliance.HANDED_OVER,
            now_sending={m.message_id for m in todo},
        )  # fmt: skip
        return SendState(
            at=at, status=status, expires_at=expires_at, smart_sending_h=smart_h,
            consent=gate.consent, suppressed=gate.suppressed, recent_sends=recent,
            waiting=waiting, interrupted=interrupted,
            local_wave=self.routing.local_wave(batch.campaign_id),
            best_time=self.routing.best_time(batch.campaign_id),
        )  # fmt: skip

    @staticmethod
    def _count_decision(d: SendDecision) -> None:
        count_gate(d.gate)
        if d.held:
            metrics.MESSAGES.labels("deferred").inc(d.held)
