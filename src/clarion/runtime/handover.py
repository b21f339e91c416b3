"""The hand-over to a provider and what follows its answer: one call per sender and
`max_batch`, the answers recorded (or published as receipts), hard failures suppressed, the
lane's shared rate adjusted, and what the provider did not take retried later or
dead-lettered."""

from __future__ import annotations

import asyncio
import logging
import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

from clarion.domain.messages import NO_ANSWER, SendResult
from clarion.domain.ports import Provider
from clarion.domain.records import OutboundMessage, Receipt, RenderedBatch
from clarion.email.message import OutboundEmail
from clarion.errors import ProviderError
from clarion.observability import metrics
from clarion.pipeline import send
from clarion.pipeline.send import ANSWER, GateOutcome
from clarion.pipeline.send_decision import Deferral, Drop, backoff_waits, throttle_waits
from clarion.runtime.context import WorkerContext
from clarion.runtime.routing import Routing
from clarion.store import campaigns, compliance, messages
from clarion.store import lanes as lane_store

if TYPE_CHECKING:
    from clarion.store.db import Conn

log = logging.getLogger(__name__)

# Provider calls one send batch makes at once (a page is a few calls of `max_batch`).
_CALLS_PER_BATCH = 4


def _emails(from_addr: str, chunk: list[OutboundMessage]) -> list[OutboundEmail]:
    return [
        OutboundEmail(
            message_id=m.message_id,
            to=m.to,
            from_addr=from_addr,
            subject=m.subject or "",
            text=m.body,
            html=m.html,
            unsubscribe_url=m.unsubscribe_url or "",
            subscriber_id=m.subscriber_id,
        )
        for m in chunk
    ]


def count_gate(outcome: GateOutcome) -> None:
    for reason, n in Counter(d[2] for d in outcome.drops).items():
        metrics.MESSAGES.labels(reason).inc(n)
    metrics.MESSAGES.labels("deferred").inc(len(outcome.defers))


def count_lane_defers(deferred: list[Deferral], expired: list[Drop]) -> None:
    if expired:
        metrics.MESSAGES.labels("expired").inc(len(expired))
    if deferred:
        metrics.MESSAGES.labels("deferred").inc(len(deferred))


# Campaigns whose first provider call one process remembers as stamped.
_FIRST_SENDS_KEPT = 100_000


@dataclass
class HandOver:
    """Provider calls and their answers, for the send stage."""

    ctx: WorkerContext
    routing: Routing
    max_attempts: int = 8  # provider calls a message may fail before it is dead-lettered
    retry_base_s: float = 0.5  # the first backoff after a failed call
    # Campaigns whose first provider call this process knows is stamped (first_send_at).
    _first_sent: set[int] = field(default_factory=set)

    async def deliver(
        self,
        provider: Provider,
        batch: RenderedBatch,
        admitted: list[tuple[str, OutboundMessage]],
        at: datetime,
    ) -> None:
        """Hand the admitted messages over, one provider call per sender and `max_batch`."""
        by_sender: dict[str, list[OutboundMessage]] = {}
        for sender, m in admitted:
            by_sender.setdefault(sender, []).append(m)
        if by_sender and batch.campaign_id is not None:
            await self._stamp_first_send(batch.campaign_id)
        tx = batch.kind == "transactional"
        chunks = [
            (sender, group[j : j + provider.max_batch])
            for sender, group in by_sender.items()
            for j in range(0, len(group), provider.max_batch)
        ]
        # A batch's provider calls go out together (a few at a time): they are different
        # subscribers', so nothing orders them, and the batch, which holds its partition,
        # is done in the time of its slowest call instead of the sum of them.
        calls = asyncio.Semaphore(_CALLS_PER_BATCH)

        async def hand_over(sender: str, chunk: list[OutboundMessage]) -> int:
            async with calls:
                return await self._hand_over(provider, batch, sender, chunk, at, tx)

        sent = await asyncio.gather(*(hand_over(sender, chunk) for sender, chunk in chunks))
        metrics.MESSAGES.labels("accepted").inc(sum(sent))

    async def _stamp_first_send(self, campaign_id: int) -> None:
        """The campaign's first provider call happens now (stamped just before it, once per
        campaign and process: launch → first call is a figure the campaign reports)."""
        if campaign_id in self._first_sent:
            return
        await campaigns.stamp_first_send(self.ctx.pool, campaign_id)
        if (
            len(self._first_sent) >= _FIRST_SENDS_KEPT
        ):  # a long-lived process: forget the oldest set
            self._first_sent.clear()
        self._first_sent.add(campaign_id)

    async def _hand_over(
        self,
        provider: Provider,
        batch: RenderedBatch,
        sender: str,
        chunk: list[OutboundMessage],
        at: datetime,
        transactional: bool,
    ) -> int:
        """One provider call; returns how many messages it handed over. A call that fails as
        a whole, or answers "not now" for every message, counts against the provider's
        circuit breaker; those messages wait (a backoff, or the provider's Retry-After) and
        may go through the next provider of the route."""
        lane = ("provider_tx" if transactional else "provider", provider.name)
        breaker = self.routing.breaker(provider.name)
        try:
            if batch.channel == "email":
                results = await cast(Any, provider).send_emails(_emails(sender, chunk))
            else:
                results = await provider.send(sender, chunk)
        except ProviderError as exc:
            results = [
                SendResult(
                    message_id=m.message_id,
                    accepted=False,
                    retry=True,
                    throttled=exc.throttled,
                    retry_after_s=exc.retry_after_s,
                    error_detail=str(exc),
                )
                for m in chunk
            ]
        done = [r for r in results if not r.retry]
        # A request that got no answer may have been taken: repeating it could reach the
        # handset twice, unless the provider honours our id. Its fate is unknown until a
        # receipt (or reconciliation) says.
        unsure = [
            r.message_id
            for r in results
            if r.retry and r.error_code == NO_ANSWER and not provider.idempotent
        ]
        again = [r for r in results if r.retry and r.message_id not in unsure]
        throttled = any(r.throttled for r in again)
        if not throttled:  # a throttle is the provider working as agreed, not failing
            breaker.record(bool(done), self.ctx.clock.monotonic())
        # An SMTP 250 is the receiving server taking the message: final for email sent that
        # way (no receipts follow), so it is recorded here. Other acceptances are folded
        # with the provider's receipts (published first: durable before anything else).
        final = bool(getattr(provider, "final_on_accept", False))
        if not final and (
            answers := send.answer_receipts(
                done, datetime.fromtimestamp(self.ctx.clock.epoch(), UTC)
            )
        ):
            await self.ctx.publish_receipts(ANSWER, provider.name, answers)
        early: list[Receipt] = []
        async with self.ctx.pool.acquire() as conn, conn.transaction():
            await messages.apply_send_results(
                conn,
                provider.name,
                send.status_updates([r for r in done if final or not r.accepted], final=final),
            )
            if getattr(provider, "reports_by_provider_id", False):
                refs = [(r.provider_message_id, r.message_id) for r in done if r.accepted]
                early = await messages.record_refs(
                    conn, provider.name, [(pid, mid) for pid, mid in refs if pid]
                )
            await compliance.suppress(conn, send.hard_failures(batch.brand_id, done, chunk))
            if throttled:  # the provider said slow down: halve the lane's shared rate
                await lane_store.throttled(conn, lane)
            elif done and self.routing.limit_of(lane) is not None:
                await lane_store.succeeded(conn, lane)
            await self._retry_later(conn, provider, again, at)
            await messages.mark_unknown(conn, unsure)
        if early:  # receipts that beat their send answer: fold them now
            await self.ctx.publish_receipts("early", provider.name, early)
        return sum(1 for r in done if r.accepted)

    async def _retry_later(
        self, conn: Conn, provider: Provider, again: list[SendResult], at: datetime
    ) -> None:
        """Messages a provider did not take, for a passing reason. Throttled: they wait for
        the provider's Retry-After without counting an attempt. Otherwise an attempt is
        counted and they wait an exponential backoff until `max_attempts`, then they are
        dead-lettered with the error."""
        if not again:
            return
        await messages.defer(conn, throttle_waits(again, at))
        failing = [r for r in again if not r.throttled]
        if not failing:
            return
        error = failing[0].error_detail or failing[0].error_code or "provider error"
        retried = await messages.record_failed_attempt(
            conn, [r.message_id for r in failing], max_attempts=self.max_attempts, error=error
        )
        waits = backoff_waits(
            retried, at, base_s=self.retry_base_s, jitter=random.uniform(0.5, 1.5), error=error
        )
        await messages.defer(conn, waits)
        log.warning(
            "provider %s: %d messages retry later, %d dead-lettered: %s",
            provider.name, len(retried), len(failing) - len(retried), error,
        )  # fmt: skip
