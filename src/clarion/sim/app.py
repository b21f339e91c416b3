"""The simulator's HTTP side: batch send API, handset inboxes, signed receipt webhooks.

State is in memory (a simulator run is one experiment). Idempotency: a message id seen before
gets its first answer back and reaches no handset again.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import math
import random
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import httpx
import msgspec
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from clarion.httpclient import AsyncClient
from clarion.sim import network, sendgrid_api
from clarion.sim.wire import (
    InboundPost,
    ReceiptPost,
    ReplyRequest,
    SendRequest,
    SendResponse,
    SimInbound,
    SimReceipt,
    SimResult,
    signed_headers,
)

log = logging.getLogger(__name__)

MAX_BATCH = 1000
TICK_S = 0.005  # the receipt schedule's resolution
RECEIPTS_PER_POST = 2000
REPORT_EVERY_S = 0.05
decode_request = msgspec.json.Decoder(SendRequest).decode
_decode_reply = msgspec.json.Decoder(ReplyRequest).decode
encode = msgspec.json.Encoder().encode


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


async def _dispatch_receipts(state: SimState, stop: asyncio.Event) -> None:
    """Report due receipts through their channel, in batches the channel takes; a failed
    report is retried with backoff, never lost."""
    while not stop.is_set():
        # Due receipts are gathered for a moment and reported together: one webhook per
        # 50 ms and target instead of one per poll (an HTTP request costs both sides about
        # a millisecond of CPU, whatever its size).
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), REPORT_EVERY_S)
        due = state.pop_due(RECEIPTS_PER_POST * 8)
        if not due:
            continue
        reports = []
        for report in due:
            size = state.channels[report.to[0]].batch
            receipts = report.receipts
            if len(receipts) <= size:
                reports.append(report)
            else:
                reports += [
                    Report(report.to, receipts[i : i + size]) for i in range(0, len(receipts), size)
                ]
        n = sum(len(r.receipts) for r in due)
        state.posting += n
        try:
            await asyncio.gather(*(_report(state, report) for report in reports))
        finally:
            state.posting -= n


async def _report(state: SimState, report: Report) -> None:
    channel, target = report.to
    try:
        ok = await state.channels[channel].receipts(target, report.receipts)
    except Exception:  # a client gone away: retried later
        ok = False
    if ok:
        state.counts["receipts_posted"] += len(report.receipts)
        return
    state.counts["receipt_post_failures"] += 1
    state.requeue(report, time.monotonic() + 1.0 + state.rng.random())


def _sim_channel(state: SimState, client: httpx.AsyncClient) -> Channel:
    """The batch HTTP API's channel: signed JSON batches of receipts and inbound messages."""

    async def receipts(url: str, batch: list[SimReceipt]) -> bool:
        batch_id = uuid.uuid4().hex
        body = encode(ReceiptPost(batch_id=batch_id, receipts=batch))
        headers = {
            "content-type": "application/json",
            **signed_headers(state.config.secret, batch_id, body, time.time()),
        }
        try:
            resp = await client.post(url, content=body, headers=headers)
        except httpx.HTTPError:
            return False
        return resp.status_code < 300

    async def inbound(url: str, message: SimInbound) -> int:
        body = encode(InboundPost(batch_id=message.id, messages=[message]))
        headers = {
            "content-type": "application/json",
            **signed_headers(state.config.secret, message.id, body, time.time()),
        }
        resp = await client.post(url, content=body, headers=headers)
        return resp.status_code

    return Channel(receipts, inbound, batch=RECEIPTS_PER_POST)


def create_app(config: SimConfig) -> Starlette:
    from clarion.sim import twilio_api  # here: it builds on this module's Channel and SimState

    state = SimState(config=config, rng=random.Random(config.seed))

    bucket = {"tokens": config.max_mps or 0.0, "at": time.monotonic()}

    def over_limit(n: int) -> float | None:
        """Seconds to wait when `n` more messages would exceed the account's rate."""
        if config.max_mps is None:
            return None
        now = time.monotonic()
        burst = config.max_mps  # one second's worth
        bucket["tokens"] = min(burst, bucket["tokens"] + (now - bucket["at"]) * config.max_mps)
        bucket["at"] = now
        if bucket["tokens"] >= n or (n > burst and bucket["tokens"] >= burst):
            bucket["tokens"] -= n
            return None
        return (min(n, burst) - bucket["tokens"]) / config.max_mps

    async def send(request: Request) -> Response:
        state.counts["requests"] += 1
        try:
            req = decode_request(await request.body())
        except msgspec.DecodeError as exc:
            return JSONResponse({"error": f"malformed request: {exc}"}, status_code=400)
        if len(req.messages) > MAX_BATCH:
            return JSONResponse(
                {"error": f"at most {MAX_BATCH} messages a request"}, status_code=413
            )
        if state.down:
            return JSONResponse({"error": "service unavailable (outage)"}, status_code=503)
        wait_s = over_limit(len(req.messages))
        if wait_s is not None:
            state.counts["throttled"] = state.counts.get("throttled", 0) + 1
            return JSONResponse(
                {"error": "too many requests", "code": "20429"},
                status_code=429,
                headers={"Retry-After": f"{max(wait_s, 0.05):.2f}"},
            )
        results = state.accept(req)
        return Response(encode(SendResponse(results)), media_type="application/json")

    async def lookup(request: Request) -> Response:
        """Carrier lookup (as Twilio Lookup's line type intelligence): which network owns
        each number, up to 1,000 numbers a request."""
        try:
            body = msgspec.json.decode(await request.body(), type=dict[str, list[str]])
            numbers = body["numbers"]
        except (msgspec.DecodeError, KeyError) as exc:
            return JSONResponse({"error": f"malformed request: {exc}"}, status_code=400)
        if len(numbers) > MAX_BATCH:
            return JSONResponse(
                {"error": f"at most {MAX_BATCH} numbers a request"}, status_code=413
            )
        state.counts["lookups"] = state.counts.get("lookups", 0) + len(numbers)
        carriers = {
            n: None if network.is_invalid(n) else network.carrier_for(n).name for n in numbers
        }
        return JSONResponse({"carriers": carriers})

    async def handset(request: Request) -> Response:
        number = request.path_params["e164"]
        messages = [
            {"message_id": m, "from": s, "body": b, "received_at": t.isoformat()}
            for m, s, b, t in state.inbox.get(number, [])
        ]
        return JSONResponse({"number": number, "messages": messages})

    async def reply(request: Request) -> Response:
        """A handset texts a number; the number's inbound webhook hears it (signed)."""
        number = request.path_params["e164"]
        try:
            req = _decode_reply(await request.body())
        except msgspec.DecodeError as exc:
            return JSONResponse({"error": f"malformed request: {exc}"}, status_code=400)
        route = state.inbound_urls.get(req.to)
        if route is None:
            return JSONResponse({"error": f"{req.to} has no inbound webhook"}, status_code=404)
        channel, target = route
        inbound = SimInbound("MO" + uuid.uuid4().hex, number, req.to, req.body, datetime.now(UTC))
        status = await state.channels[channel].inbound(target, inbound)
        state.counts["inbound"] = state.counts.get("inbound", 0) + 1
        return JSONResponse({"id": inbound.id, "webhook_status": status})

    async def message_status(request: Request) -> Response:
        """The current status of messages by our ids (what a provider's message resource
        says): for reconciling messages whose receipts never came."""
        try:
            ids = msgspec.json.decode(await request.body(), type=dict[str, list[str]])["ids"]
        except (msgspec.DecodeError, KeyError) as exc:
            return JSONResponse({"error": f"malformed request: {exc}"}, status_code=400)
        found = [r for i in ids[:MAX_BATCH] if (r := state.status_of(i)) is not None]
        return Response(encode({"receipts": found}), media_type="application/json")

    async def outage(request: Request) -> Response:
        """Take the API down (new messages get 503) or bring it back; messages already
        accepted are still delivered and reported."""
        state.down = bool(msgspec.json.decode(await request.body(), type=dict[str, bool])["down"])
        return JSONResponse({"down": state.down})

    async def stats(request: Request) -> Response:
        return JSONResponse(
            {
                **state.counts,
                "handsets": len(state.inbox),
                "receipts_pending": state.pending + state.posting,
            }
        )

    async def backlog(request: Request) -> Response:
        # What a benchmark samples while it runs: no inbox to index (`stats` indexes every
        # message delivered since it was last asked, work a sampler would do in the run)
        return JSONResponse({"receipts_pending": state.pending + state.posting})

    async def handsets(request: Request) -> Response:
        return JSONResponse({n: len(v) for n, v in state.inbox.items()})

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        from clarion.sim.smsc import serve_smsc  # it imports this module

        stop = asyncio.Event()
        async with AsyncClient(timeout=30) as client, serve_smsc(state):
            state.channels["sim"] = _sim_channel(state, client)
            state.channels["twilio"] = twilio_api.channel(state, client)
            task = asyncio.create_task(_dispatch_receipts(state, stop))
            yield
            stop.set()
            await task

    app = Starlette(
        routes=[
            Route("/v1/messages", send, methods=["POST"]),
            Route("/v1/lookup", lookup, methods=["POST"]),
            Route("/handsets", handsets),
            Route("/handsets/{e164}", handset),
            Route("/handsets/{e164}/reply", reply, methods=["POST"]),
            Route("/stats", stats),
            Route("/stats/backlog", backlog),
            *sendgrid_api.routes(state, config),  # SendGrid v3 email front end
            *twilio_api.routes(state, over_limit=over_limit),
            Route("/admin/outage", outage, methods=["POST"]),
            Route("/v1/messages/status", message_status, methods=["POST"]),
        ],
        lifespan=lifespan,
    )
    app.state.sim = state
    return app
