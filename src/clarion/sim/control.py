"""The simulator's own endpoints, beside the protocols it plays: what each handset received,
a handset texting a number back, counters, and an outage switch. Tests and benchmarks use
them; a real provider has nothing like them."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime

import msgspec
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from clarion.sim.shoppers import ShopConfig, Shoppers
from clarion.sim.state import SimState
from clarion.sim.wire import ReplyRequest, SimInbound

_decode_reply = msgspec.json.Decoder(ReplyRequest).decode


def routes(state: SimState) -> list[Route]:
    """The handset, statistics and outage endpoints."""

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

    async def shoppers(request: Request) -> Response:
        """POST: the people start following links and buying, as configured (a
        `ShopConfig`; posted again, replaced: their counts start over). GET: what they did."""
        if request.method == "POST":
            try:
                config = msgspec.json.decode(await request.body(), type=ShopConfig)
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                return JSONResponse({"error": f"malformed request: {exc}"}, status_code=400)
            state.shoppers = Shoppers(config, random.Random(config.seed))
        if state.shoppers is None:
            return JSONResponse({"enabled": False})
        return JSONResponse({"enabled": True, **state.shoppers.counts})

    async def handsets(request: Request) -> Response:
        return JSONResponse({n: len(v) for n, v in state.inbox.items()})

    return [
        Route("/handsets", handsets),
        Route("/handsets/{e164}", handset),
        Route("/handsets/{e164}/reply", reply, methods=["POST"]),
        Route("/stats", stats),
        Route("/stats/backlog", backlog),
        Route("/admin/outage", outage, methods=["POST"]),
        Route("/admin/shoppers", shoppers, methods=["GET", "POST"]),
    ]
