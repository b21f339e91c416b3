"""The stage workers: each decodes a batch, calls its pure core, commits, publishes the next
batch, and returns (the consume loop acks). Everything they touch is passed in."""

from __future__ import annotations

import asyncio
import logging
import math
import operator
import random
import time
import zlib
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, cast

import asyncpg
import msgspec

from clarion.bus.jetstream import Bus
from clarion.compliance.encoding import sms_segments
from clarion.compliance.keywords import classify_inbound
from clarion.domain.ids import PARTITIONS, batch_id, partition_of, reply_message_id
from clarion.domain.records import (
    InboundBatch,
    LaunchCampaign,
    OutboundMessage,
    Receipt,
    ReceiptBatch,
    RecipientBatch,
    RenderedBatch,
    StatusBatch,
)
from clarion.domain.status import MessageStatus
from clarion.email.message import OutboundEmail
from clarion.email.unsubscribe import make_token
from clarion.errors import Held, ProviderError
from clarion.observability import metrics
from clarion.pipeline import aggregate, audience, carrier, inbound, personalize, send
from clarion.pipeline.breaker import Breaker
from clarion.pipeline.lanes import (
    Admission,
    Lane,
    LaneLimit,
    admit,
    demand,
    next_pacific_midnight,
    pacific_day,
    resolve_limit,
)
from clarion.pipeline.send import ANSWER, NO_ANSWER, GateOutcome, SendResult
from clarion.providers.base import Provider
from clarion.store import brands, campaigns, compliance, messages, monitoring
from clarion.store import lanes as lane_store
from clarion.store.db import Pool

log = logging.getLogger(__name__)

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

# Pages one audience turn publishes before yielding to other campaigns (a continuation
# command carries the rest; the cursor is in Postgres).
_PAGES_PER_TURN = 20


@dataclass(frozen=True)
class _Templates:
    """A campaign's compiled templates and what rendering needs, read once per campaign."""

    channel: str
    sms: personalize.Template
    brand: dict[str, Any]
    sender: str
    uid: str
    email: personalize.Template | None
    subject: personalize.Template | None
    email_from: str


@dataclass(frozen=True)
class Monitor:
    """When a carrier's delivery rate raises an alert: below `threshold` over the last
    `window_min` minutes, with at least `min_volume` outcomes to judge by."""

    threshold: float = 0.85
    min_volume: int = 200
    window_min: int = 10


@dataclass
class Stages:
    pool: Pool
    bus: Bus
    provider: Provider
    page_size: int = 2000
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
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

    _templates: OrderedDict[int, _Templates] = field(default_factory=OrderedDict)
    # Campaigns whose first provider call this process knows is stamped (first_send_at).
    _first_sent: set[int] = field(default_factory=set)
    # Where one-click unsubscribe links point, and the secret that signs them.
    public_url: str = "http://127.0.0.1:8080"
    unsubscribe_secret: str = "clarion-unsubscribe"

    def __post_init__(self) -> None:
        self.providers = {self.provider.name: self.provider, **self.providers}

    def handler(self, stage: str) -> Any:
        return {
            "audience": self.audience,
            "personalize": self.personalize,
            "send": self.send,
            "aggregate": self.aggregate,
            "carrier": self.carrier,
            "inbound": self.inbound,
            "transactional": self.send,
        }[stage]

    async def audience(self, cmd: LaunchCampaign) -> int:
        c = await campaigns.get_campaign(self.pool, cmd.campaign_id, brand_id=cmd.brand_id)
        if c["launch_count"] != cmd.attempt or c["audience_done"]:
            return 0  # superseded by a relaunch, finished earlier, or cancelled
        if c["status"] == "paused":
            raise Held(f"campaign {cmd.campaign_id} is paused", retry_after_s=0.5)
        # Each partition has its own cursor (-1: done); a turn takes the next page of the
        # least advanced partition, so pages alternate across partitions.
        cursors, published = list(c["audience_cursors"]), 0
        for _ in range(_PAGES_PER_TURN):
            status = await self.pool.fetchval(
                "SELECT status FROM campaigns WHERE id = $1", cmd.campaign_id
            )
            if status == "paused":  # redelivered later; the cursors are in Postgres
                raise Held(f"campaign {cmd.campaign_id} is paused", retry_after_s=0.5)
            if status != "sending":  # cancelled since this turn began
                return published
            open_parts = [p for p in range(PARTITIONS) if cursors[p] >= 0]
            if not open_parts:
                await campaigns.finish_audience(self.pool, cmd.campaign_id, cmd.attempt)
                return published
            part = min(open_parts, key=lambda p: (cursors[p], p))
            rows = await self.pool.fetch(
                brands.AUDIENCE_PAGE, cmd.brand_id, part, cursors[part], self.page_size
            )
            batch = audience.recipient_batch(
                brand_id=cmd.brand_id, campaign_id=cmd.campaign_id, attempt=cmd.attempt,
                rows=rows, partition=part, channel=c["channel"],
            )  # fmt: skip
            if batch.recipients:
                await self.bus.publish("audience", batch, msg_id=batch.batch_id)
            cursors[part] = rows[-1]["id"] if len(rows) == self.page_size else -1
            # the audience counts messages: a recipient reached on both channels counts twice
            added = audience.messages_for(batch, c["channel"])
            await campaigns.advance_audience(
                self.pool, cmd.campaign_id, partition=part, cursor=cursors[part],
                added=added, attempt=cmd.attempt,
            )  # fmt: skip
            published += added
            if all(x < 0 for x in cursors):
                await campaigns.finish_audience(self.pool, cmd.campaign_id, cmd.attempt)
                return published
        turn = ":".join(map(str, cursors))
        await self.bus.publish("launch", cmd, msg_id=f"{cmd.command_id}:{turn}")
        return published

    async def _template(self, brand_id: int, campaign_id: int) -> _Templates:
        cached = self._templates.get(campaign_id)
        if cached is None:
            c = await campaigns.get_campaign(self.pool, campaign_id, brand_id=brand_id)
            b = await brands.get_brand(self.pool, brand_id)
            brand_fields = {"name": b["name"], "help_text": b["help_text"], "sender": b["sender"]}
            email = c["channel"] in ("email", "both")
            cached = _Templates(
                channel=c["channel"],
                sms=personalize.compile_template(c["body"]),
                brand=brand_fields,
                sender=b["sender"],
                uid=str(c["uid"]),
                email=personalize.compile_template(c["email_body"] or c["body"]) if email else None,
                subject=personalize.compile_template(c["subject"] or c["name"]) if email else None,
                email_from=b["email_from"] or f"{b['name']} <news@{b['slug']}.example>",
            )
            self._templates[campaign_id] = cached
            while len(self._templates) > 256:
                self._templates.popitem(last=False)
        return cached

    async def personalize(self, batch: RecipientBatch) -> int:
        t = await self._template(batch.brand_id, batch.campaign_id)
        outputs = []
        if t.channel in ("sms", "both"):
            outputs.append(
                personalize.render_batch(
                    t.sms, batch, campaign_uid=t.uid, brand=t.brand, sender=t.sender
                )
            )
        if t.email is not None and t.subject is not None:
            outputs.append(
                personalize.render_email_batch(
                    t.email,
                    t.subject,
                    batch,
                    campaign_uid=t.uid,
                    brand=t.brand,
                    from_addr=t.email_from,
                    unsubscribe_url=partial(self._unsubscribe_url, batch.brand_id),
                )
            )
        for rendered in outputs:
            if rendered.failures:  # one line per batch: each reason is on its message row
                first = rendered.failures[0]
                log.warning(
                    "campaign %s: %d of %d recipients failed to render (first: subscriber %s: %s)",
                    batch.campaign_id, len(rendered.failures), len(batch.recipients),
                    first.subscriber_id, first.error,
                )  # fmt: skip
            await self.bus.publish("rendered", rendered, msg_id=rendered.batch_id)
        return len(batch.recipients)

    def _unsubscribe_url(self, brand_id: int, subscriber_id: int) -> str:
        token = make_token(self.unsubscribe_secret, brand_id, subscriber_id)
        return f"{self.public_url}/u/{token}"

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
        status = await conn.fetchval(
            "SELECT status FROM campaigns WHERE id = $1", batch.campaign_id
        )
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
    ) -> tuple[send.GateOutcome, list[send.Waiting]]:
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
            read = await conn.fetchrow(
                "SELECT status, now() AS claimed_at FROM campaigns WHERE id = $1",
                batch.campaign_id,
            )
            if read is None or read["status"] != "sending":
                return None
            claimed_at: datetime = read["claimed_at"]
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
                await conn.execute(
                    "SELECT pg_advisory_xact_lock_shared($1)",
                    campaigns.control_key(batch.campaign_id),
                )
                status = await conn.fetchval(
                    "SELECT status FROM campaigns WHERE id = $1", batch.campaign_id
                )
                if status != "sending":
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
        await self.pool.execute(
            "UPDATE campaigns SET first_send_at = now() WHERE id = $1 AND first_send_at IS NULL",
            campaign_id,
        )
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

    async def inbound(self, batch: InboundBatch) -> int:
        """Keywords and replies: consent changes at once, replies go on the transactional hop."""
        replies: dict[tuple[int, int], tuple[inbound.BrandInfo, list[OutboundMessage]]] = {}
        async with self.pool.acquire() as conn, conn.transaction():
            for m in batch.messages:
                intent = classify_inbound(m.body)
                brand = await compliance.brand_for_number(conn, m.to)
                sub_id, consent = (None, None)
                if brand is not None:
                    sub_id, consent = await compliance.subscriber_consent(conn, brand.id, m.from_)
                fresh = await compliance.record_inbound(
                    conn, batch.provider, m, brand.id if brand else None, sub_id, intent
                )
                if not fresh or brand is None:
                    continue  # a redelivery, or a number that is no brand's
                r = inbound.respond(
                    intent, m.body, known=sub_id is not None, consent=consent, brand=brand
                )
                if r.create_subscriber:
                    sub_id = await compliance.add_subscriber_by_sms(conn, brand.id, m.from_)
                if r.consent is not None and sub_id is not None:
                    await compliance.append_consent(
                        conn, brand.id, sub_id, r.consent, keyword=m.body.strip()[:64],
                        disclosure=r.reply,
                    )  # fmt: skip
                if r.reply is not None:
                    reply = OutboundMessage(
                        message_id=reply_message_id(batch.provider, m.provider_message_id),
                        subscriber_id=sub_id,
                        to=m.from_,
                        body=r.reply,
                        segments=sms_segments(r.reply).segments,
                    )
                    key = (brand.id, partition_of(sub_id, m.from_))
                    replies.setdefault(key, (brand, []))[1].append(reply)
            # Published before commit: a retry after a failed commit publishes the same ids,
            # which the bus drops; the transactional stage persists before it sends.
            for (_, part), (brand, outgoing) in replies.items():
                out = RenderedBatch(
                    batch_id=f"{batch.batch_id}:{brand.id}:{part}", brand_id=brand.id,
                    campaign_id=None, sender=brand.sender, messages=outgoing,
                    kind="transactional", partition=part,
                )  # fmt: skip
                await self.bus.publish("transactional", out, msg_id=out.batch_id)
        return len(batch.messages)

    async def sweep_deferred(self, limit: int = 5000) -> int:
        """Republish deferred messages whose moment has come (a singleton: the caller holds
        the advisory lock), oldest first, to their subscriber's partition. A batch id is
        derived from its messages and their moments, so a repeat before the send stage has
        taken them is dropped by the bus."""
        async with self.pool.acquire() as conn:
            rows = await compliance.due_deferred(conn, self.clock(), limit)
        groups: dict[tuple[str, int, int | None, str, int], list[Any]] = {}
        for r in rows:
            part = partition_of(r["subscriber_id"], r["to_address"])
            key = (r["kind"], r["brand_id"], r["campaign_id"], r["sender"], part)
            groups.setdefault(key, []).append(r)
        for (kind, brand_id, campaign_id, sender, part), group in groups.items():
            for i in range(0, len(group), 1000):
                chunk = group[i : i + 1000]
                out = RenderedBatch(
                    batch_id=batch_id("deferred", *(f"{r['id']}@{r['not_before']}" for r in chunk)),
                    brand_id=brand_id,
                    campaign_id=campaign_id,
                    sender=sender,
                    messages=[
                        OutboundMessage(
                            message_id=r["id"],
                            subscriber_id=r["subscriber_id"],
                            to=r["to_address"],
                            body=r["body"],
                            segments=r["segments"],
                            timezone=r["timezone"],
                            carrier=r["carrier"],
                        )
                        for r in chunk
                    ],
                    kind=kind,
                    partition=part,
                    stored=True,
                )
                hop = "transactional" if kind == "transactional" else "rendered"
                await self.bus.publish(hop, out, msg_id=out.batch_id)
        return len(rows)

    async def _publish_receipts(self, origin: str, provider: str, receipts: list[Receipt]) -> None:
        """Receipts found other than by a webhook (send answers, early ones now matched,
        reconciliation) onto the receipts hop, marked with their origin; the batch id is
        derived from them, so a repeat is dropped."""
        key = batch_id(origin, provider, *(f"{r.message_id}:{r.status}" for r in receipts))
        out = ReceiptBatch(batch_id=key, provider=provider, receipts=receipts, origin=origin)
        await self.bus.publish("receipts", out, msg_id=key)

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
        self, older_than_s: float, limit: int = 1000, *, max_age_s: float = 3 * 86_400.0
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
        async with self.pool.acquire() as conn, conn.transaction():
            # Receipts that name only the provider's id (SMPP) get ours from the id map;
            # those that came before their send answer are kept until it lands.
            batches = [await self._resolve(conn, b) for b in batches]
            # A send answer moves the status but is not one of the provider's reports.
            events, folded = aggregate.fold_reports(batches, answers=ANSWER)
            # Rows are locked in id order, so concurrent batches cannot deadlock.
            folded.sort(key=_message_id)
            providers = sorted({b.provider for b in batches})
            if len(providers) == 1:  # the common case: nothing to split
                changes = await messages.apply_receipts(conn, providers[0], events, folded)
            else:
                changes = []
                for provider in providers:
                    mine = {
                        r.message_id for b in batches if b.provider == provider for r in b.receipts
                    }
                    changes += await messages.apply_receipts(
                        conn,
                        provider,
                        [e for e in events if e.message_id in mine],
                        [f for f in folded if f.message_id in mine],
                    )
            hard = send.hard_failure_suppressions(changes)
            # A complaint comes after `delivered` (no status change): suppress from events.
            complaints = [
                r.message_id for b in batches for r in b.receipts if r.error_code == "spamreport"
            ]
            if complaints:
                for r in await conn.fetch(
                    "SELECT brand_id, to_address FROM messages WHERE id = ANY($1::uuid[])",
                    complaints,
                ):
                    hard.append((r["brand_id"], r["to_address"], "complaint", "receipt:spamreport"))
            await compliance.suppress(conn, hard)
            # Outcomes per carrier are counted in the same transaction as the status changes
            # they come from: a rolled-back fold counts nothing, a redelivered batch changes
            # nothing (its changes are already applied), so the totals are exact.
            await messages.add_carrier_stats(conn, carrier.stats_rows(changes))
        if outcomes := [c for c in changes if c.status in carrier.OUTCOMES]:
            # After commit: the carrier stage's monitoring sees only what is recorded (final
            # outcomes; it has no use for `accepted` and `sent`).
            # A message reaches a final status once (the fold only moves it up), so its id
            # names its outcome.
            key = batch_id("status", *sorted([c.message_id for c in outcomes]))
            out = StatusBatch(batch_id=key, changes=outcomes)
            await self.bus.publish("status", out, msg_id=key)
        for status, n in Counter(c.status for c in changes).items():
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
        """Delivery monitoring per brand and carrier: outcomes, latency and error codes per
        minute, and an alert when a carrier's delivery rate over the window falls below the
        threshold (cleared when it recovers). Counted once per status batch."""
        for (_, _, name), counts in carrier.tally(batch.changes).items():
            for outcome, n in counts.items():
                metrics.CARRIER_OUTCOMES.labels(name, outcome).inc(n)
        at = self.clock()
        minute = at.replace(second=0, microsecond=0)
        rows = carrier.minute_rows(batch.changes, minute)
        if not rows:
            return len(batch.changes)
        keys = sorted({(r.brand_id, r.carrier) for r in rows})
        async with self.pool.acquire() as conn, conn.transaction():
            fresh = await conn.execute(
                "INSERT INTO processed_batches (hop, batch_id) VALUES ('status', $1)"
                " ON CONFLICT DO NOTHING",
                batch.batch_id,
            )
            if not fresh.endswith(" 1"):
                return len(batch.changes)  # a redelivered batch: counted already
            await monitoring.add_minutes(conn, rows)
            await monitoring.add_errors(conn, carrier.error_rows(batch.changes))
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
        for r in rows:
            if r.latency_n:
                metrics.CARRIER_LATENCY.labels(r.carrier).observe(r.latency_sum_s / r.latency_n)
        return len(batch.changes)


def now() -> datetime:
    return datetime.now(UTC)


_message_id = operator.attrgetter("message_id")
