"""The send stage's worker: the compliance gate, the first write of a batch, lanes, the hand-over
to providers, their answers, retries and expiry (`SendSide`, part of `stages.Stages`)."""

from __future__ import annotations

import asyncio
import logging
import random
import zlib
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import asyncpg
import msgspec

from clarion.domain.lanes import Lane, LaneLimit
from clarion.domain.messages import NO_ANSWER, SendResult, Waiting
from clarion.domain.ports import Provider
from clarion.domain.records import OutboundMessage, Receipt, RenderedBatch
from clarion.email.message import OutboundEmail
from clarion.errors import ProviderError
from clarion.observability import metrics
from clarion.pipeline import send
from clarion.pipeline.lanes import (
    Admission,
    admit,
    demand,
    next_pacific_midnight,
    pacific_day,
    resolve_limit,
)
from clarion.pipeline.send import ANSWER, GateOutcome
from clarion.runtime.stage_base import StageBase, now
from clarion.store import brands, campaigns, compliance, messages
from clarion.store import lanes as lane_store

log = logging.getLogger(__name__)

# A message waits at most this long for a lane before it is looked at again.
_MAX_LANE_WAIT_S = 30.0
# `not_before` of messages a paused campaign holds: until resume sets them free.
_FOREVER = datetime.max.replace(tzinfo=UTC)
# (message id, not_before, reason, detail)
Deferral = tuple[str, datetime, str, str | None]


def _emails(from_addr: str, chunk: list[OutboundMessage]) -> list[OutboundEmail]:
    return [
        OutboundEmail(
            message_id=m.message_id,
            to=m.to,
            from_addr=from_addr,
            subject=m.subject or "",
            text=m.body,
            unsubscribe_url=m.unsubscribe_url or "",
            subscriber_id=m.subscriber_id,
        )
        for m in chunk
    ]


def _backoff_s(attempts: int, base_s: float, cap_s: float = 300.0) -> float:
    """Exponential backoff after `attempts` failed provider calls (before jitter)."""
    return min(cap_s, base_s * 2.0 ** min(attempts - 1, 16))


# Provider calls one send batch makes at once (a page is a few calls of `max_batch`).
_CALLS_PER_BATCH = 4


class SendSide(StageBase):
    """The send stage (marketing and transactional batches) of a `Stages` worker."""

    async def _campaign_send_context(
        self, brand_id: int, campaign_id: int
    ) -> tuple[datetime | None, float]:
        """(expires_at, smart sending hours) of a campaign, read once per campaign."""
        cached = self._send_context.get(campaign_id)
        if cached is None:
            c = await campaigns.get_campaign(self.pool, campaign_id, brand_id=brand_id)
            b = await brands.get_brand(self.pool, brand_id)
            cached = (c["expires_at"], float(b["smart_sending_h"]))
            self._send_context[campaign_id] = cached
            while len(self._send_context) > 256:
                self._send_context.popitem(last=False)
        return cached

    async def _gate(
        self,
        conn: Any,
        batch: RenderedBatch,
        todo: list[OutboundMessage],
        at: datetime,
        expires_at: datetime | None,
        smart_h: float,
        interrupted: set[str],
    ) -> list[OutboundMessage]:
        """Campaign status (pause, cancel), the compliance gate and the subscriber sequence,
        read right before the provider call; returns the messages that may go now."""
        status = await campaigns.status_of(conn, batch.campaign_id)
        if status == "paused":
            # They wait in Postgres, not on the bus (a held batch would stall its partition
            # for every other campaign); resume sets them free.
            await messages.defer(conn, [(m.message_id, _FOREVER, send.PAUSED, None) for m in todo])
            return []
        if status == "cancelled":
            await messages.mark_unknown(
                conn, [m.message_id for m in todo if m.message_id in interrupted]
            )
            drops = [
                (m.message_id, "suppressed", "cancelled", None)
                for m in todo
                if m.message_id not in interrupted
            ]
            await compliance.record_gate(conn, drops, [])
            return []
        outcome, waiting = await self._judge(conn, batch, todo, at, expires_at, smart_h)
        # An interrupted message the gate now holds back may have reached the provider
        # before the crash: its fate is unknown, not suppressed.
        unsure = [d[0] for d in outcome.drops if d[0] in interrupted]
        unsure += [d[0] for d in outcome.defers if d[0] in interrupted]
        await messages.mark_unknown(conn, unsure)
        await compliance.record_gate(
            conn,
            [d for d in outcome.drops if d[0] not in interrupted],
            [d for d in outcome.defers if d[0] not in interrupted],
        )
        self._count_gate(outcome)
        # Sequence: never overtake an older message to the same subscriber that still waits
        # (one worker holds a subscriber at a time, by partition, so this read cannot race).
        waiting = send.after_gate(waiting, outcome, interrupted)
        holds = send.sequence_holds(outcome.send, waiting, at=at)
        if holds:
            await messages.defer(
                conn, [(mid, t, send.SEQUENCE_WAIT, None) for mid, t in holds.items()]
            )
            metrics.MESSAGES.labels("deferred").inc(len(holds))
        return [m for m in outcome.send if m.message_id not in holds]

    async def _judge(
        self,
        conn: Any,
        batch: RenderedBatch,
        todo: list[OutboundMessage],
        at: datetime,
        expires_at: datetime | None,
        smart_h: float,
    ) -> tuple[send.GateOutcome, list[Waiting]]:
        """The compliance gate's verdict on `todo` against current state, and the batch's
        subscribers' messages that still wait (for the sequence check)."""
        # Current state now, so an opt-out that landed after the batch was rendered wins.
        subscriber_ids = [m.subscriber_id for m in todo if m.subscriber_id is not None]
        state = await compliance.gate_state(
            conn, batch.brand_id, subscriber_ids, [m.to for m in todo], at - timedelta(hours=24),
            channel=batch.channel, recent=False,
        )  # fmt: skip
        # One read for smart sending and the sequence check, before the gate's decisions are
        # written (the caller applies them to `waiting`, or writes them with the batch).
        state.recent_sends, waiting = await messages.recent_and_waiting(
            conn, subscriber_ids, since=at - timedelta(hours=24), now=at,
            channel=batch.channel, handed_over=compliance.HANDED_OVER,
            now_sending={m.message_id for m in todo},
        )  # fmt: skip
        if batch.channel == "email":
            outcome = send.gate_emails(
                todo, at=at, consent=state.consent, suppressed=state.suppressed,
                expires_at=expires_at,
            )  # fmt: skip
        else:
            outcome = send.gate_batch(
                todo, at=at, consent=state.consent, suppressed=state.suppressed,
                recent_sends=state.recent_sends, expires_at=expires_at, smart_sending_h=smart_h,
            )  # fmt: skip
        return outcome, waiting

    async def _lookup_carriers(
        self, provider: Provider, todo: list[OutboundMessage]
    ) -> list[OutboundMessage]:
        """Fill in unknown carriers with the provider's lookup (remembered on the subscriber),
        so carrier lanes apply from a number's first message."""
        unknown = sorted({m.to for m in todo if m.carrier is None})
        if not unknown:
            return todo
        found = await provider.lookup_carriers(unknown)
        if found:
            async with self.pool.acquire() as conn:
                await messages.set_carriers(
                    conn,
                    sorted(
                        {
                            (m.subscriber_id, found[m.to])
                            for m in todo
                            if m.carrier is None and m.subscriber_id is not None and m.to in found
                        }
                    ),
                )
        return [
            m
            if m.carrier is not None or m.to not in found
            else msgspec.structs.replace(m, carrier=found[m.to])
            for m in todo
        ]

    async def send(self, batch: RenderedBatch) -> int:
        """Persist, pass the compliance gate (marketing only), pick the provider (the first of
        the brand's route whose circuit is closed), take tokens from every lane, hand over,
        record answers. Whatever may not go now waits in Postgres (deferred, with the reason
        and the moment to look again) and the batch is acknowledged: a waiting message never
        holds its bus partition."""
        at = self.clock()
        marketing = batch.kind == "marketing" and batch.campaign_id is not None
        expires_at, smart_h = (None, 0.0)
        if marketing:
            assert batch.campaign_id is not None
            expires_at, smart_h = await self._campaign_send_context(
                batch.brand_id, batch.campaign_id
            )
            if not batch.stored:
                sent = await self._send_new(batch, at, expires_at, smart_h)
                if sent is not None:
                    return sent
        rows = send.rows_to_persist(batch, expires_at=expires_at)
        async with self.pool.acquire() as conn:
            async with conn.transaction():
                await messages.persist(conn, rows)
            # After a crash some may be handed over already (skipped), and some may have been
            # claimed for a provider call the crash cut short (`interrupted`).
            waiting, interrupted = await messages.still_pending(
                conn, [m.message_id for m in batch.messages], at
            )
            # Repeating a cut-short call to a provider without idempotency keys could reach
            # the handset twice: report those as of unknown fate; receipts reconcile them.
            unsafe = {mid for mid, name in interrupted.items() if not self._idempotent(name)}
            await messages.mark_unknown(conn, sorted(unsafe))
        resumed = set(interrupted) - unsafe
        todo = [m for m in batch.messages if m.message_id in waiting or m.message_id in resumed]
        await self._refresh_limits()
        provider, wait_s = self._route(batch.brand_id, batch.channel)
        if marketing and todo and provider is not None and batch.channel == "sms":
            todo = await self._lookup_carriers(provider, todo)
        async with self.pool.acquire() as conn, conn.transaction():
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
        senders, admission = await self._take_lanes(provider, batch, todo, at)
        deferred, expired = self._lane_defers(todo, admission, at, expires_at)
        if deferred or expired:
            # Before the provider call: a crash during it must not leave these claimed (a
            # provider without idempotency would then report them as of unknown fate).
            async with self.pool.acquire() as conn, conn.transaction():
                await compliance.record_gate(conn, expired, [])
                await messages.defer(conn, deferred)
            self._count_lane_defers(deferred, expired)
        await self._deliver(
            provider, batch, [(senders[i], todo[i]) for i in admission.admitted], at
        )
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
        await self._refresh_limits()
        provider, _ = self._route(batch.brand_id, batch.channel)
        if provider is None:
            return None
        todo = list(batch.messages)
        if todo and batch.channel == "sms":
            todo = await self._lookup_carriers(provider, todo)
        async with self.pool.acquire() as conn:
            # The claim time is the database's: reconciliation reads hand-overs by it on the
            # database's clock (`messages.to_reconcile`), and a claim of the general way
            # (`messages.claim`) is stamped so. A worker whose clock is behind would write
            # hand-overs below the reconciliation's floor, never to be asked about.
            read = await campaigns.status_and_now(conn, batch.campaign_id)
            if read is None or read[0] != "sending":
                return None
            claimed_at = read[1]
            outcome, waiting = await self._judge(conn, batch, todo, at, expires_at, smart_h)
        holds = send.sequence_holds(outcome.send, waiting + send.unwritten(outcome.send), at=at)
        go = [m for m in outcome.send if m.message_id not in holds]
        senders, admission = await self._take_lanes(provider, batch, go, at)
        deferred, expired = self._lane_defers(go, admission, at, expires_at)
        rows = send.decided_rows(
            batch, expires_at=expires_at, provider=provider.name,
            drops=outcome.drops + expired, quiet=outcome.defers,
            waits=[(mid, t, send.SEQUENCE_WAIT, None) for mid, t in holds.items()] + deferred,
            sent_at=claimed_at,
        )  # fmt: skip
        try:
            async with self.pool.acquire() as conn, conn.transaction():
                # A pause or cancel committed since the read above is seen here (and this
                # batch writes nothing); one that comes later waits for these rows and finds
                # them claimed, in flight.
                await campaigns.hold_control_shared(conn, batch.campaign_id)
                if await campaigns.status_of(conn, batch.campaign_id) != "sending":
                    return None
                await messages.copy_new(conn, rows)
        except asyncpg.UniqueViolationError:
            return None  # seen before; the lane tokens it took are not given back (rare)
        self._count_gate(outcome)
        metrics.MESSAGES.labels("deferred").inc(len(holds))
        self._count_lane_defers(deferred, expired)
        await self._deliver(provider, batch, [(senders[i], go[i]) for i in admission.admitted], at)
        return len(rows)

    async def _take_lanes(
        self, provider: Provider, batch: RenderedBatch, todo: list[OutboundMessage], at: datetime
    ) -> tuple[list[str], Admission]:
        """Each message's sender (sticky within the brand's pool) and which of them the lanes
        admit now."""
        tx = batch.kind == "transactional"
        pool_of = self._sender_pools.get(batch.brand_id) if batch.channel == "sms" else None
        pool_of = pool_of or [batch.sender]
        # A subscriber always hears from the same number of the pool (sticky sender).
        if len(pool_of) == 1:
            senders = [pool_of[0]] * len(todo)
        else:
            senders = [pool_of[zlib.crc32(m.to.encode()) % len(pool_of)] for m in todo]
        known: dict[tuple[str, str | None], tuple[Lane, ...]] = {}
        lanes_of = []
        for sender, m in zip(senders, todo, strict=True):
            lanes = known.get((sender, m.carrier))
            if lanes is None:
                lanes = known[sender, m.carrier] = send.lanes_for(
                    provider.name,
                    sender,
                    tx,
                    brand_id=batch.brand_id,
                    campaign_id=batch.campaign_id,
                    carrier=m.carrier,
                    channel=batch.channel,
                )
            lanes_of.append(lanes)
        segments = [m.segments for m in todo]
        return senders, await self._admit(lanes_of, segments, at)

    @staticmethod
    def _count_gate(outcome: GateOutcome) -> None:
        for reason, n in Counter(d[2] for d in outcome.drops).items():
            metrics.MESSAGES.labels(reason).inc(n)
        metrics.MESSAGES.labels("deferred").inc(len(outcome.defers))

    @staticmethod
    def _count_lane_defers(deferred: list[Deferral], expired: list[Any]) -> None:
        if expired:
            metrics.MESSAGES.labels("expired").inc(len(expired))
        if deferred:
            metrics.MESSAGES.labels("deferred").inc(len(deferred))

    async def _deliver(
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
        await campaigns.stamp_first_send(self.pool, campaign_id)
        if len(self._first_sent) >= 100_000:  # a long-lived process: forget the oldest set
            self._first_sent.clear()
        self._first_sent.add(campaign_id)

    def _idempotent(self, provider_name: str | None) -> bool:
        """Whether the provider a message was claimed for honours our id as idempotency key."""
        provider = self.providers.get(provider_name or "", self.provider)
        return provider.idempotent

    def _route(self, brand_id: int, channel: str = "sms") -> tuple[Provider | None, float]:
        """The provider to use now: the first of the brand's route for the channel whose
        circuit breaker lets a call through; else (None, seconds until one may be tried)."""
        names = self._routes.get((brand_id, channel)) or [
            name
            for name, p in self.providers.items()
            if hasattr(p, "send_emails") == (channel == "email")
        ]
        now_s = self.now_s()
        waits = []
        for name in names:
            provider = self.providers.get(name)
            if provider is None:
                continue
            breaker = self._breakers.setdefault(name, self.new_breaker())
            if breaker.allow(now_s):
                return provider, 0.0
            waits.append(breaker.retry_in_s(now_s))
        return None, max(0.5, min(waits, default=1.0))

    async def _admit(
        self, lanes_of: list[tuple[Lane, ...]], segments: list[int], at: datetime
    ) -> Admission:
        """Take tokens from every lane the batch uses, from the lane state all send processes
        share; admit in order; give back what was not used."""
        want = demand(lanes_of, segments, self._limit_of)
        if not want:  # no lane of this batch has a limit
            return admit(lanes_of, segments, self._limit_of, {})
        today = pacific_day(at)
        async with self.pool.acquire() as conn:
            grants = await lane_store.lease(
                conn, want, self._limit_of, now_s=self.wall_s(), today=today
            )
            admission = admit(lanes_of, segments, self._limit_of, grants)
            await lane_store.refund(conn, admission.unused, today=today)
        return admission

    def _limit_of(self, lane: Lane) -> LaneLimit | None:
        """A lane's limit (wildcards resolved once per lane until the limits are re-read:
        every message asks for each of its lanes)."""
        try:
            return self._resolved[lane]
        except KeyError:
            limit = self._resolved[lane] = resolve_limit(self._limits, lane)
            return limit

    @staticmethod
    def _lane_defers(
        todo: list[OutboundMessage],
        admission: Admission,
        at: datetime,
        expires_at: datetime | None,
    ) -> tuple[list[Deferral], list[tuple[str, str, str, str | None]]]:
        """Messages an empty lane holds back wait in Postgres until their lane should have
        room; a spent daily cap holds them until midnight Pacific, or, when that is after
        the campaign's expiry, they expire now (they could never go)."""
        capped = set(admission.capped)
        defers: list[Deferral] = []
        expired: list[tuple[str, str, str, str | None]] = []
        for i, ready_s in zip(admission.held, admission.ready_in_s, strict=True):
            mid = todo[i].message_id
            if i in capped:
                resume = next_pacific_midnight(at)
                if expires_at is not None and resume >= expires_at:
                    expired.append((mid, "expired", send.CARRIER_DAILY_CAP, todo[i].carrier))
                else:
                    defers.append((mid, resume, send.CARRIER_DAILY_CAP, todo[i].carrier))
            else:
                wait = timedelta(seconds=min(_MAX_LANE_WAIT_S, max(0.05, ready_s)))
                defers.append((mid, at + wait, send.LANE_WAIT, None))
        return defers, expired

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
        breaker = self._breakers.setdefault(provider.name, self.new_breaker())
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
            breaker.record(bool(done), self.now_s())
        # An SMTP 250 is the receiving server taking the message: final for email sent that
        # way (no receipts follow), so it is recorded here. Other acceptances are folded
        # with the provider's receipts (published first: durable before anything else).
        final = bool(getattr(provider, "final_on_accept", False))
        if not final and (answers := send.answer_receipts(done, now())):
            await self._publish_receipts(ANSWER, provider.name, answers)
        early: list[Receipt] = []
        async with self.pool.acquire() as conn, conn.transaction():
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
            elif done and self._limit_of(lane) is not None:
                await lane_store.succeeded(conn, lane)
            await self._retry_later(conn, provider, again, at)
            await messages.mark_unknown(conn, unsure)
        if early:  # receipts that beat their send answer: fold them now
            await self._publish_receipts("early", provider.name, early)
        return sum(1 for r in done if r.accepted)

    async def _retry_later(
        self, conn: Any, provider: Provider, again: list[SendResult], at: datetime
    ) -> None:
        """Messages a provider did not take, for a passing reason. Throttled: they wait for
        the provider's Retry-After without counting an attempt. Otherwise an attempt is
        counted and they wait an exponential backoff (one jitter per failed call, so they
        come back together and other batches at other moments) until `max_attempts`, then
        they are dead-lettered with the error."""
        if not again:
            return
        await messages.defer(
            conn,
            [
                (r.message_id, at + timedelta(seconds=r.retry_after_s or 1.0), send.LANE_WAIT,
                 r.error_detail or r.error_code)
                for r in again
                if r.throttled
            ],
        )  # fmt: skip
        failing = [r for r in again if not r.throttled]
        if not failing:
            return
        error = failing[0].error_detail or failing[0].error_code or "provider error"
        retried = await messages.record_failed_attempt(
            conn, [r.message_id for r in failing], max_attempts=self.max_attempts, error=error
        )
        jitter = random.uniform(0.5, 1.5)
        await messages.defer(
            conn,
            [
                (mid, at + timedelta(seconds=_backoff_s(n, self.retry_base_s) * jitter),
                 send.RETRY, error)
                for mid, n in retried
            ],
        )  # fmt: skip
        log.warning(
            "provider %s: %d messages retry later, %d dead-lettered: %s",
            provider.name, len(retried), len(failing) - len(retried), error,
        )  # fmt: skip

    async def _refresh_limits(self, every_s: float = 5.0) -> None:
        """Lane limits and sender pools are data: re-read them every few seconds."""
        if self.now_s() - self._limits_read_at < every_s:
            return
        async with self._limits_lock:  # concurrent batches wait for the first read
            if self.now_s() - self._limits_read_at < every_s:
                return
            limits, pools = await lane_store.load_limits(self.pool)
            self._limits, self._sender_pools = limits, pools
            self._resolved = {}
            self._routes = {
                (brand_id, channel): names
                for channel in ("sms", "email")
                for brand_id, names in (await lane_store.load_routes(self.pool, channel)).items()
            }
            self._limits_read_at = self.now_s()
