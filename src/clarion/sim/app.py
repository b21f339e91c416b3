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
    SIGNATURE_HEADER,
    InboundPost,
    ReceiptPost,
    ReplyRequest,
    SendRequest,
    SendResponse,
    SimInbound,
    SimReceipt,
    SimResult,
    sign,
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


@dataclass(slots=True)
class _Due:
    due: float
    callback_url: str  # where the receipt goes: a URL, or a channel's own target (a session)
    receipt: SimReceipt
    handset: tuple[str, str, str] | None  # (to, sender, body) to put in the inbox when due
    channel: str = "sim"  # the front end that reports it (see `SimState.channels`)


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
    answers: dict[str, SimResult] = field(default_factory=dict)
    # number → (message id, from, body, received at) of every message it received
    inbox: dict[str, list[tuple[str, str, str, datetime]]] = field(default_factory=dict)
    # Receipts waiting for their moment, on a timing wheel: a list per tick of `TICK_S`
    # (a receipt goes within one tick of its moment), and a heap of the ticks that have
    # one. Scheduling is an append; a heap entry per receipt was a third of the simulator's
    # time at bench rates.
    wheel: dict[int, list[_Due]] = field(default_factory=dict)
    ticks: list[int] = field(default_factory=list)
    pending: int = 0
    # Provider ids ("SM" + 32 hex digits, as Twilio's): a random prefix per run and a counter.
    _sids: itertools.count[int] = field(default_factory=itertools.count)
    _sid_prefix: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
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
    latest: dict[str, SimReceipt] = field(default_factory=dict)  # message → its last status
    by_provider_id: dict[str, str] = field(default_factory=dict)  # provider id → message id

    def _put(self, item: _Due) -> None:
        tick = int(item.due / TICK_S)
        bucket = self.wheel.get(tick)
        if bucket is None:
            bucket = self.wheel[tick] = []
            heapq.heappush(self.ticks, tick)
        bucket.append(item)
        self.pending += 1

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
        now: datetime | None = None,
    ) -> SimResult:
        """One message from any front end: rejected (invalid number) or accepted, with its
        receipts scheduled to `target` on `channel`. With `idempotent`, a message id seen
        before gets the first answer and reaches the handset once."""
        (answer,) = self.submit_many(
            [(message_id, to, sender, body, provider_id)],
            channel=channel, target=target, idempotent=idempotent, now=now,
        )  # fmt: skip
        return answer

    def submit_many(
        self,
        messages: Iterable[tuple[str, str, str, str, str | None]],
        *,
        channel: str,
        target: str,
        idempotent: bool = True,
        now: datetime | None = None,
    ) -> list[SimResult]:
        """Messages that arrived together, as (our id, to, sender, body, provider id or
        None), each as `submit` takes it. One pass with the state at hand: at bench rates
        the simulator shares the machine with the pipeline it measures."""
        now = now or datetime.now(UTC)
        since = time.monotonic()  # receipts are due this long after arrival
        answers, by_provider_id, rng, put = self.answers, self.by_provider_id, self.rng, self._put
        failure_rate, carrier_failure = self.config.failure_rate, self.config.carrier_failure
        latency_scale = self.config.latency_scale
        results: list[SimResult] = []
        accepted = rejected = duplicates = 0
        for message_id, to, sender, body, provider_id in messages:
            known = answers.get(message_id) if idempotent else None
            if known is not None:
                duplicates += 1
                results.append(known)
                continue
            if network.is_invalid(to):
                code, text = network.INVALID_NUMBER
                answer = SimResult(message_id, "rejected", provider_id, code, text)
                rejected += 1
            else:
                pid = provider_id or self.new_sid()
                answer = SimResult(message_id, "accepted", pid)
                by_provider_id[pid] = message_id
                accepted += 1
                carrier = network.carrier_for(to)
                outcome = network.decide(
                    to, rng, carrier=carrier, latency_scale=latency_scale,
                    failure_rate=carrier_failure.get(carrier.name, failure_rate)
                    if carrier_failure else failure_rate,
                )  # fmt: skip
                latency_s, sent_after = outcome.latency_s, outcome.latency_s * 0.3
                sent = SimReceipt(
                    message_id, pid, "sent", now + timedelta(seconds=sent_after), None,
                    carrier.name,
                )  # fmt: skip
                final = SimReceipt(
                    message_id, pid, "delivered" if outcome.delivered else "undelivered",
                    now + timedelta(seconds=latency_s), outcome.error_code, carrier.name,
                )  # fmt: skip
                put(_Due(since + sent_after, target, sent, None, channel))
                handset = (to, sender, body) if outcome.delivered else None
                put(_Due(since + latency_s, target, final, handset, channel))
            if idempotent:
                answers[message_id] = answer
            results.append(answer)
        counts = self.counts
        counts["accepted"] += accepted
        counts["rejected"] += rejected
        counts["duplicates"] += duplicates
        return results

    def requeue(self, item: _Due, due: float) -> None:
        """A receipt whose report failed: reported again at `due` (monotonic seconds)."""
        item.due = due
        self._put(item)

    def new_sid(self) -> str:
        """A provider id no other message of this run has."""
        return f"SM{self._sid_prefix}{next(self._sids):024x}"

    def accept(self, req: SendRequest) -> list[SimResult]:
        if req.inbound_url:
            for sender in {m.sender for m in req.messages}:
                self.inbound_urls[sender] = ("sim", req.inbound_url)
        return self.submit_many(
            [(m.id, m.to, m.sender, m.body, None) for m in req.messages],
            channel="sim",
            target=req.callback_url,
        )

    def pop_due(self, limit: int) -> list[_Due]:
        now_tick = int(time.monotonic() / TICK_S)
        taken: list[_Due] = []
        while self.ticks and self.ticks[0] <= now_tick and len(taken) < limit:
            bucket = self.wheel[self.ticks[0]]
            room = limit - len(taken)
            if len(bucket) <= room:
                taken += bucket
                del self.wheel[heapq.heappop(self.ticks)]
            else:
                taken += bucket[:room]
                del bucket[:room]
        self.pending -= len(taken)
        latest, inbox, out = self.latest, self.inbox, []
        lossy = self.config.receipt_loss
        for item in taken:
            receipt = item.receipt
            latest[receipt.message_id] = receipt
            if item.handset is not None:
                to, sender, body = item.handset
                entry = (receipt.message_id, sender, body, receipt.occurred_at)
                if (box := inbox.get(to)) is None:
                    inbox[to] = [entry]
                else:
                    box.append(entry)
                self.counts["handset_messages"] += 1
                item.handset = None  # a retried post must not deliver twice
            if lossy and self.rng.random() < lossy:
                self.counts["receipts_lost"] = self.counts.get("receipts_lost", 0) + 1
                continue  # the network happened; the report of it is lost
            out.append(item)
        return out


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
        by_target: dict[tuple[str, str], list[_Due]] = {}
        for item in due:
            by_target.setdefault((item.channel, item.callback_url), []).append(item)
        reports = []
        for (channel, _), items in by_target.items():
            size = state.channels[channel].batch
            reports += [items[i : i + size] for i in range(0, len(items), size)]
        state.posting += len(due)
        try:
            await asyncio.gather(*(_report(state, chunk) for chunk in reports))
        finally:
            state.posting -= len(due)


async def _report(state: SimState, chunk: list[_Due]) -> None:
    channel = state.channels[chunk[0].channel]
    try:
        ok = await channel.receipts(chunk[0].callback_url, [d.receipt for d in chunk])
    except Exception:  # a client gone away: retried later
        ok = False
    if ok:
        state.counts["receipts_posted"] += len(chunk)
        return
    state.counts["receipt_post_failures"] += 1
    for item in chunk:
        state.requeue(item, time.monotonic() + 1.0 + state.rng.random())


def _sim_channel(state: SimState, client: httpx.AsyncClient) -> Channel:
    """The batch HTTP API's channel: signed JSON batches of receipts and inbound messages."""

    async def receipts(url: str, batch: list[SimReceipt]) -> bool:
        body = encode(ReceiptPost(batch_id=uuid.uuid4().hex, receipts=batch))
        headers = {
            "content-type": "application/json",
            SIGNATURE_HEADER: sign(state.config.secret, body),
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
            SIGNATURE_HEADER: sign(state.config.secret, body),
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
        found = [state.latest[i] for i in ids[:MAX_BATCH] if i in state.latest]
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
            *sendgrid_api.routes(state, config),  # SendGrid v3 email front end
            *twilio_api.routes(state, over_limit=over_limit),
            Route("/admin/outage", outage, methods=["POST"]),
            Route("/v1/messages/status", message_status, methods=["POST"]),
        ],
        lifespan=lifespan,
    )
    app.state.sim = state
    return app
