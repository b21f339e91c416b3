"""The simulator's state, shared by every front end: its configuration, each message's fate
(its answer and its receipts to come, on a timing wheel), the handsets' inboxes, the counters
and the channels by which front ends report back to their clients.

State is in memory (a simulator run is one experiment). Idempotency: a message id seen before
gets its first answer back and reaches no handset again. Nothing here does I/O; the front
ends (`batch_api`, `twilio_api`, `sendgrid_api`, `smsc`) build on it and `app` assembles
them.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from clarion.sim import network
from clarion.sim.shoppers import Shoppers
from clarion.sim.wire import SendRequest, SimInbound, SimReceipt, SimResult

TICK_S = 0.005  # the receipt schedule's resolution


@dataclass(slots=True)
class SimConfig:
    secret: str = "clarion-sim-secret"
    failure_rate: float = 0.02
    latency_scale: float = 1.0
    seed: int | None = None
    # The account's throughput: a request that would go beyond it is refused whole with
    # HTTP 429 and Retry-After, as an aggregator does (None: unlimited).
    max_mps: float | None = None
    # Share of receipts never reported (the status API still knows: reconciliation).
    receipt_loss: float = 0.0
    # A carrier having a bad day: its own failure rate (e.g. {"AT&T": 0.5}).
    carrier_failure: dict[str, float] = field(default_factory=dict)
    # The Twilio-compatible front end's account (sim/twilio_api.py): a fixed, public test
    # SID, and its auth token ("": the secret).
    twilio_account_sid: str = "ACe3d0f959678802896cde8e6464e74217"
    twilio_auth_token: str = ""
    # The SMPP front end (sim/smsc.py): listens when a port is set; its one account. Beyond
    # `max_mps` submit_sm a second it answers ESME_RTHROTTLED (0x58).
    smpp_port: int | None = None
    smpp_host: str = "127.0.0.1"
    smpp_system_id: str = "clarion"
    smpp_password: str = "clarion"


# Where a message's receipts go: (its front end's channel, see `SimState.channels`; the
# target on it: a URL, or the channel's own, such as an SMPP account).
Destination = tuple[str, str]


@dataclass(slots=True)
class Report:
    """Receipts due to one target, reported together (and again, if the report failed)."""

    to: Destination
    receipts: list[SimReceipt]


@dataclass(slots=True)
class _Fate:
    """What happens to one message, decided as it arrives: its answer, and for an accepted
    one when its `sent` and final statuses come (monotonic seconds) and where they are
    reported. One object per message: its receipts are made from it when they are due, and
    the status API reads it (at bench rates the simulator shares the machine with what it
    measures, and a receipt object, a scheduling entry and a status entry per report were
    most of its time)."""

    answer: SimResult
    destination: Destination = ("sim", "")
    to: str = ""
    sender: str = ""
    body: str = ""
    carrier: str = ""
    sent_at: float = math.inf
    final_at: float = math.inf
    delivered: bool = False
    error_code: str | None = None
    reported: int = 0  # how many of its two receipts have been taken from the wheel

    def receipt(self, final: bool, at: datetime) -> SimReceipt:
        a = self.answer
        if not final:
            return SimReceipt(a.id, a.provider_id or "", "sent", at, None, self.carrier)
        status = "delivered" if self.delivered else "undelivered"
        return SimReceipt(a.id, a.provider_id or "", status, at, self.error_code, self.carrier)


# A front end's way to report receipts to its client: (target, receipts) → delivered? A
# failed report is retried later, never lost.
ReceiptSink = Callable[[str, list[SimReceipt]], Awaitable[bool]]
# A front end's way to hand a handset's message to the client that owns a number.
InboundSink = Callable[[str, SimInbound], Awaitable[int]]
# Seconds to wait when `n` more messages would exceed the account's rate, or None (see
# `Throughput.wait_s`).
OverLimit = Callable[[int], float | None]


@dataclass
class Channel:
    """How one front end (the batch HTTP API, the Twilio-compatible API, the SMPP SMSC)
    talks back to its clients: receipts, at most `batch` per call, and inbound messages."""

    receipts: ReceiptSink
    inbound: InboundSink
    batch: int = 1


@dataclass
class SimState:
    config: SimConfig
    rng: random.Random
    # our message id → its fate (with idempotent submits, the first one: a repeat gets the
    # same answer and reaches no handset again)
    fates: dict[str, _Fate] = field(default_factory=dict)
    # Messages delivered to their handsets, in order (a log: an inbox per number would be
    # a dictionary entry and a list per message at bench rates), and the inboxes indexed
    # from it as they are read (`inbox`), up to `_indexed`.
    _delivered: list[tuple[_Fate, datetime]] = field(default_factory=list)
    _inbox: dict[str, list[tuple[str, str, str, datetime]]] = field(default_factory=dict)
    _indexed: int = 0
    # Receipts waiting for their moment, on a timing wheel: a list per tick of `TICK_S`
    # (a receipt goes within one tick of its moment), and a heap of the ticks that have
    # one. Scheduling is an append; a heap entry per receipt was a third of the simulator's
    # time at bench rates. An entry is a message's fate (its next receipt is due: `sent`,
    # then its final status), or a report that failed and is due again.
    wheel: dict[int, list[_Fate | Report]] = field(default_factory=dict)
    ticks: list[int] = field(default_factory=list)
    pending: int = 0
    # Provider ids ("SM" + 32 hex digits, as Twilio's): a random prefix per run and a counter.
    _sids: itertools.count[int] = field(default_factory=itertools.count)
    _sid_format: str = field(default_factory=lambda: f"SM{uuid.uuid4().hex[:8]}%024x")
    # A wall-clock time and the monotonic time it was: a receipt's time is its tick's.
    _epoch: tuple[datetime, float] = field(
        default_factory=lambda: (datetime.now(UTC), time.monotonic())
    )
    counts: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(
            (
                "requests",
                "accepted",
                "rejected",
                "duplicates",
                "handset_messages",
                "receipts_posted",
                "receipt_post_failures",
            ),
            0,
        )
    )
    posting: int = 0
    # our number → (channel, target) that hears what handsets text it
    inbound_urls: dict[str, tuple[str, str]] = field(default_factory=dict)
    channels: dict[str, Channel] = field(default_factory=dict)
    down: bool = False  # an outage: the API refuses new messages (503)
    # the people behind the handsets, once configured: they follow links and buy
    shoppers: Shoppers | None = None

    @property
    def inbox(self) -> dict[str, list[tuple[str, str, str, datetime]]]:
        """Number → (message id, from, body, received at) of every message it received."""
        index = self._inbox
        for fate, at in itertools.islice(self._delivered, self._indexed, None):
            index.setdefault(fate.to, []).append((fate.answer.id, fate.sender, fate.body, at))
        self._indexed = len(self._delivered)
        return index

    def _put(self, item: _Fate | Report, due: float) -> None:
        tick = int(due / TICK_S)
        bucket = self.wheel.get(tick)
        if bucket is None:
            bucket = self.wheel[tick] = []
            heapq.heappush(self.ticks, tick)
        bucket.append(item)

    def submit(
        self,
        message_id: str,
        to: str,
        sender: str,
        body: str,
        *,
        channel: str,
        target: str,
        provider_id: str | None = None,
        idempotent: bool = True,
    ) -> SimResult:
        """One message from any front end: rejected (invalid number) or accepted, with its
        receipts scheduled to `target` on `channel`. With `idempotent`, a message id seen
        before gets the first answer and reaches the handset once."""
        (answer,) = self.submit_many(
            [(message_id, to, sender, body, provider_id)],
            channel=channel, target=target, idempotent=idempotent,
        )  # fmt: skip
        return answer

    def submit_many(
        self,
        messages: Iterable[tuple[str, str, str, str, str | None]],
        *,
        channel: str,
        target: str,
        idempotent: bool = True,
    ) -> list[SimResult]:
        """Messages that arrived together, as (our id, to, sender, body, provider id or
        None), each as `submit` takes it. One pass with the state at hand: at bench rates
        the simulator shares the machine with the pipeline it measures."""
        since = time.monotonic()  # receipts are due this long after arrival
        fates, rng, put = self.fates, self.rng, self._put
        failure_rate, carrier_failure = self.config.failure_rate, self.config.carrier_failure
        latency_scale = self.config.latency_scale
        sids, sid_format = self._sids, self._sid_format
        destination = (channel, target)
        results: list[SimResult] = []
        accepted = rejected = duplicates = 0
        for message_id, to, sender, body, provider_id in messages:
            known = fates.get(message_id) if idempotent else None
            if known is not None:
                duplicates += 1
                results.append(known.answer)
                continue
            if network.is_invalid(to):
                code, text = network.INVALID_NUMBER
                fate = _Fate(SimResult(message_id, "rejected", provider_id, code, text))
                rejected += 1
            else:
                pid = provider_id or sid_format % next(sids)
                accepted += 1
                carrier = network.carrier_for(to)
                outcome = network.decide(
                    to, rng, carrier=carrier, latency_scale=latency_scale,
                    failure_rate=carrier_failure.get(carrier.name, failure_rate)
                    if carrier_failure else failure_rate,
                )  # fmt: skip
                latency_s = outcome.latency_s
                fate = _Fate(
                    SimResult(message_id, "accepted", pid), destination, to, sender, body,
                    carrier.name, since + latency_s * 0.3, since + latency_s,
                    outcome.delivered, outcome.error_code,
                )  # fmt: skip
                put(fate, fate.sent_at)
                put(fate, fate.final_at)
                self.pending += 2
            fates[message_id] = fate
            results.append(fate.answer)
        counts = self.counts
        counts["accepted"] += accepted
        counts["rejected"] += rejected
        counts["duplicates"] += duplicates
        return results

    def status_of(self, message_id: str) -> SimReceipt | None:
        """A message's latest status so far, reported or not (what the provider's message
        resource says); None before its first, and for a message it never accepted."""
        fate = self.fates.get(message_id)
        if fate is None or fate.answer.status != "accepted":
            return None
        now = time.monotonic()
        if now < fate.sent_at:
            return None
        final = now >= fate.final_at
        return fate.receipt(final, self._wall(fate.final_at if final else fate.sent_at))

    def _wall(self, monotonic: float) -> datetime:
        wall, mono = self._epoch
        return wall + timedelta(seconds=monotonic - mono)

    def requeue(self, report: Report, due: float) -> None:
        """A report that failed: made again at `due` (monotonic seconds)."""
        self._put(report, due)
        self.pending += len(report.receipts)

    def accept(self, req: SendRequest) -> list[SimResult]:
        if req.inbound_url:
            for sender in {m.sender for m in req.messages}:
                self.inbound_urls[sender] = ("sim", req.inbound_url)
        return self.submit_many(
            [(m.id, m.to, m.sender, m.body, None) for m in req.messages],
            channel="sim",
            target=req.callback_url,
        )

    def pop_due(self, limit: int) -> list[Report]:
        """The receipts due now, about `limit` (a failed report due again comes whole), by
        target; those of delivered messages put the message in its handset's inbox as they
        are taken. A receipt's time is its tick's."""
        now_tick = int(time.monotonic() / TICK_S)
        wheel, ticks, delivered_log = self.wheel, self.ticks, self._delivered
        lossy = self.config.receipt_loss
        groups: dict[Destination, list[SimReceipt]] = {}
        again: list[Report] = []
        taken = delivered = lost = 0
        while ticks and ticks[0] <= now_tick and taken < limit:
            tick = ticks[0]
            bucket = wheel[tick]
            room = limit - taken
            if len(bucket) <= room:
                entries = bucket
                del wheel[heapq.heappop(ticks)]
            else:
                entries = bucket[:room]
                del bucket[:room]
            at = self._wall(tick * TICK_S)
            for entry in entries:
                if isinstance(entry, Report):  # a report that failed before
                    again.append(entry)
                    taken += len(entry.receipts)
                    continue
                fate = entry
                taken += 1
                final = fate.reported == 1
                fate.reported += 1
                if final and fate.delivered:
                    delivered_log.append((fate, at))
                    delivered += 1
                    if self.shoppers is not None:
                        self.shoppers.delivered(fate.to, fate.body)
                if lossy and self.rng.random() < lossy:
                    lost += 1
                    continue  # the network happened; the report of it is lost
                group = groups.get(fate.destination)
                if group is None:
                    group = groups[fate.destination] = []
                group.append(fate.receipt(final, at))
        self.pending -= taken
        counts = self.counts
        counts["handset_messages"] += delivered
        if lost:
            counts["receipts_lost"] = counts.get("receipts_lost", 0) + lost
        return again + [Report(to, receipts) for to, receipts in groups.items()]


@dataclass(slots=True)
class Throughput:
    """The account's throughput, shared by the front ends that enforce it (the batch HTTP API
    and the Twilio-compatible API): a token bucket holding one second's worth of messages.
    A request that would go beyond it is refused whole, as an aggregator does."""

    rate_per_s: float | None  # None: unlimited
    tokens: float = 0.0
    at: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self.tokens = self.rate_per_s or 0.0

    def wait_s(self, n: int) -> float | None:
        """Seconds to wait when `n` more messages would exceed the account's rate; None
        (and the messages counted) when they may go now."""
        rate = self.rate_per_s
        if rate is None:
            return None
        now = time.monotonic()
        burst = rate  # one second's worth
        self.tokens = min(burst, self.tokens + (now - self.at) * rate)
        self.at = now
        if self.tokens >= n or (n > burst and self.tokens >= burst):
            self.tokens -= n
            return None
        return (min(n, burst) - self.tokens) / rate
