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
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import httpx
import msgspec
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from clarion.sim import network
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
RECEIPTS_PER_POST = 2000
_decode_request = msgspec.json.Decoder(SendRequest).decode
_decode_reply = msgspec.json.Decoder(ReplyRequest).decode
_encode = msgspec.json.Encoder().encode


@dataclass(slots=True)
class SimConfig:
    secret: str = "clarion-sim-secret"
    failure_rate: float = 0.02
    latency_scale: float = 1.0
    seed: int | None = None
    # The account's throughput: a request that would go beyond it is refused whole with
    # HTTP 429 and Retry-After, as an aggregator does (None: unlimited).
    max_mps: float | None = None


@dataclass(slots=True)
class _Due:
    due: float
    seq: int
    callback_url: str
    receipt: SimReceipt
    handset: tuple[str, str, str] | None  # (to, sender, body) to put in the inbox when due

    def __lt__(self, other: _Due) -> bool:
        return (self.due, self.seq) < (other.due, other.seq)


@dataclass
class SimState:
    config: SimConfig
    rng: random.Random
    answers: dict[str, SimResult] = field(default_factory=dict)
    inbox: dict[str, list[tuple[str, str, str, str]]] = field(default_factory=dict)
    heap: list[_Due] = field(default_factory=list)
    seq: itertools.count[int] = field(default_factory=itertools.count)
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
    inbound_urls: dict[str, str] = field(default_factory=dict)  # our number → its webhook

    def schedule(
        self,
        delay_s: float,
        url: str,
        receipt: SimReceipt,
        handset: tuple[str, str, str] | None = None,
    ) -> None:
        heapq.heappush(
            self.heap, _Due(time.monotonic() + delay_s, next(self.seq), url, receipt, handset)
        )

    def accept(self, req: SendRequest) -> list[SimResult]:
        now = datetime.now(UTC)
        if req.inbound_url:
            for sender in {m.sender for m in req.messages}:
                self.inbound_urls[sender] = req.inbound_url
        results = []
        for m in req.messages:
            known = self.answers.get(m.id)
            if known is not None:
                self.counts["duplicates"] += 1
                results.append(known)
                continue
            if network.is_invalid(m.to):
                code, message = network.INVALID_NUMBER
                answer = SimResult(m.id, "rejected", None, code, message)
                self.counts["rejected"] += 1
            else:
                answer = SimResult(m.id, "accepted", "SM" + uuid.uuid4().hex)
                self.counts["accepted"] += 1
                self._plan_delivery(
                    req.callback_url, m.id, answer.provider_id or "", m.to, m.sender, m.body, now
                )
            self.answers[m.id] = answer
            results.append(answer)
        return results

    def _plan_delivery(
        self,
        url: str,
        message_id: str,
        provider_id: str,
        to: str,
        sender: str,
        body: str,
        now: datetime,
    ) -> None:
        outcome = network.decide(
            to,
            self.rng,
            failure_rate=self.config.failure_rate,
            latency_scale=self.config.latency_scale,
        )
        carrier = network.carrier_for(to).name
        sent_after = outcome.latency_s * 0.3
        self.schedule(
            sent_after,
            url,
            SimReceipt(
                message_id, provider_id, "sent", now + timedelta(seconds=sent_after), None, carrier
            ),
        )
        final = SimReceipt(
            message_id,
            provider_id,
            "delivered" if outcome.delivered else "undelivered",
            now + timedelta(seconds=outcome.latency_s),
            outcome.error_code,
            carrier,
        )
        self.schedule(
            outcome.latency_s, url, final, (to, sender, body) if outcome.delivered else None
        )

    def pop_due(self, limit: int) -> list[_Due]:
        now = time.monotonic()
        out: list[_Due] = []
        while self.heap and self.heap[0].due <= now and len(out) < limit:
            item = heapq.heappop(self.heap)
            if item.handset is not None:
                to, sender, body = item.handset
                self.inbox.setdefault(to, []).append(
                    (item.receipt.message_id, sender, body, item.receipt.occurred_at.isoformat())
                )
                self.counts["handset_messages"] += 1
                item.handset = None  # a retried post must not deliver twice
            out.append(item)
        return out


async def _dispatch_receipts(state: SimState, stop: asyncio.Event) -> None:
    """Post due receipts in signed batches; a failed post is retried with backoff, never lost."""
    async with httpx.AsyncClient(timeout=30) as client:
        while not stop.is_set():
            due = state.pop_due(RECEIPTS_PER_POST * 8)
            if not due:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 0.02)
                continue
            by_url: dict[str, list[_Due]] = {}
            for item in due:
                by_url.setdefault(item.callback_url, []).append(item)
            posts = [
                items[i : i + RECEIPTS_PER_POST]
                for items in by_url.values()
                for i in range(0, len(items), RECEIPTS_PER_POST)
            ]
            state.posting += len(due)
            try:
                await asyncio.gather(*(_post(client, state, chunk) for chunk in posts))
            finally:
                state.posting -= len(due)


async def _post(client: httpx.AsyncClient, state: SimState, chunk: list[_Due]) -> None:
    post = ReceiptPost(batch_id=uuid.uuid4().hex, receipts=[d.receipt for d in chunk])
    body = _encode(post)
    try:
        resp = await client.post(
            chunk[0].callback_url,
            content=body,
            headers={
                "content-type": "application/json",
                SIGNATURE_HEADER: sign(state.config.secret, body),
            },
        )
        ok = resp.status_code < 300
    except httpx.HTTPError:
        ok = False
    if ok:
        state.counts["receipts_posted"] += len(chunk)
        return
    state.counts["receipt_post_failures"] += 1
    for item in chunk:
        item.due = time.monotonic() + 1.0 + state.rng.random()
        heapq.heappush(state.heap, item)


def create_app(config: SimConfig) -> Starlette:
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
            req = _decode_request(await request.body())
        except msgspec.DecodeError as exc:
            return JSONResponse({"error": f"malformed request: {exc}"}, status_code=400)
        if len(req.messages) > MAX_BATCH:
            return JSONResponse(
                {"error": f"at most {MAX_BATCH} messages a request"}, status_code=413
            )
        wait_s = over_limit(len(req.messages))
        if wait_s is not None:
            state.counts["throttled"] = state.counts.get("throttled", 0) + 1
            return JSONResponse(
                {"error": "too many requests", "code": "20429"},
                status_code=429,
                headers={"Retry-After": f"{max(wait_s, 0.05):.2f}"},
            )
        results = state.accept(req)
        return Response(_encode(SendResponse(results)), media_type="application/json")

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
            {"message_id": m, "from": s, "body": b, "received_at": t}
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
        url = state.inbound_urls.get(req.to)
        if url is None:
            return JSONResponse({"error": f"{req.to} has no inbound webhook"}, status_code=404)
        inbound = SimInbound("MO" + uuid.uuid4().hex, number, req.to, req.body, datetime.now(UTC))
        body = _encode(InboundPost(batch_id=inbound.id, messages=[inbound]))
        headers = {"content-type": "application/json", SIGNATURE_HEADER: sign(config.secret, body)}
        async with httpx.AsyncClient(timeout=30) as client:
            resp = await client.post(url, content=body, headers=headers)
        state.counts["inbound"] = state.counts.get("inbound", 0) + 1
        return JSONResponse({"id": inbound.id, "webhook_status": resp.status_code})

    async def stats(request: Request) -> Response:
        return JSONResponse(
            {
                **state.counts,
                "handsets": len(state.inbox),
                "receipts_pending": len(state.heap) + state.posting,
            }
        )

    async def handsets(request: Request) -> Response:
        return JSONResponse({n: len(v) for n, v in state.inbox.items()})

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        stop = asyncio.Event()
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
        ],
        lifespan=lifespan,
    )
    app.state.sim = state
    return app
