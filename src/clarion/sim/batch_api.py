"""The simulator's own HTTP batch API (`clarion.sim.wire` is its wire format): up to 1,000
messages a request, carrier lookup, message status, and receipts and inbound messages posted
back as JSON batches signed as Standard Webhooks."""

from __future__ import annotations

import time
import uuid

import httpx
import msgspec
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from clarion.sim import network
from clarion.sim.state import Channel, OverLimit, SimState
from clarion.sim.wire import (
    InboundPost,
    ReceiptPost,
    SendRequest,
    SendResponse,
    SimInbound,
    SimReceipt,
    signed_headers,
)

MAX_BATCH = 1000
RECEIPTS_PER_POST = 2000
decode_request = msgspec.json.Decoder(SendRequest).decode
encode = msgspec.json.Encoder().encode


def routes(state: SimState, *, over_limit: OverLimit | None = None) -> list[Route]:
    """The batch API's endpoints; `over_limit` is the account's throughput bucket (shared
    with the Twilio-compatible API), answered with 429 and Retry-After."""

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
        wait_s = over_limit(len(req.messages)) if over_limit is not None else None
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

    async def message_status(request: Request) -> Response:
        """The current status of messages by our ids (what a provider's message resource
        says): for reconciling messages whose receipts never came."""
        try:
            ids = msgspec.json.decode(await request.body(), type=dict[str, list[str]])["ids"]
        except (msgspec.DecodeError, KeyError) as exc:
            return JSONResponse({"error": f"malformed request: {exc}"}, status_code=400)
        found = [r for i in ids[:MAX_BATCH] if (r := state.status_of(i)) is not None]
        return Response(encode({"receipts": found}), media_type="application/json")

    return [
        Route("/v1/messages", send, methods=["POST"]),
        Route("/v1/lookup", lookup, methods=["POST"]),
        Route("/v1/messages/status", message_status, methods=["POST"]),
    ]


def channel(state: SimState, client: httpx.AsyncClient) -> Channel:
    """The batch API's way back: signed JSON batches of receipts and inbound messages."""

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
