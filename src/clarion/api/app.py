"""The HTTP app: provider status webhooks go straight onto the bus, in the batch they came in."""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from clarion.bus.jetstream import Bus
from clarion.domain.records import InboundBatch, ReceiptBatch
from clarion.errors import ForgedWebhook, InvalidInput
from clarion.observability import metrics
from clarion.providers.base import Provider


def create_app(bus: Bus, providers: Mapping[str, Provider]) -> Starlette:
    async def status_webhook(request: Request) -> Response:
        name = request.path_params["provider"]
        provider = providers.get(name)
        if provider is None:
            return JSONResponse({"error": f"unknown provider {name!r}"}, status_code=404)
        body = await request.body()
        try:
            batch_id, receipts = provider.parse_status_webhook(
                str(request.url), request.headers, body
            )
        except ForgedWebhook as exc:
            metrics.WEBHOOKS.labels(name, "forged").inc()
            return JSONResponse({"error": str(exc)}, status_code=403)
        except InvalidInput as exc:
            metrics.WEBHOOKS.labels(name, "invalid").inc()
            return JSONResponse({"error": str(exc)}, status_code=400)
        batch = ReceiptBatch(batch_id=f"{name}:{batch_id}", provider=name, receipts=receipts)
        # Answered only once the batch is stored on the bus: a provider that sees an error
        # retries, and the batch id makes the retry a no-op.
        await bus.publish("receipts", batch, msg_id=batch.batch_id)
        metrics.WEBHOOKS.labels(name, "ok").inc()
        return JSONResponse({"accepted": len(receipts)})

    async def inbound_webhook(request: Request) -> Response:
        name = request.path_params["provider"]
        provider = providers.get(name)
        if provider is None:
            return JSONResponse({"error": f"unknown provider {name!r}"}, status_code=404)
        try:
            batch_id, inbound = provider.parse_inbound_webhook(
                str(request.url), request.headers, await request.body()
            )
        except ForgedWebhook as exc:
            metrics.WEBHOOKS.labels(name, "forged").inc()
            return JSONResponse({"error": str(exc)}, status_code=403)
        except InvalidInput as exc:
            metrics.WEBHOOKS.labels(name, "invalid").inc()
            return JSONResponse({"error": str(exc)}, status_code=400)
        batch = InboundBatch(batch_id=f"{name}:{batch_id}", provider=name, messages=inbound)
        await bus.publish("inbound", batch, msg_id=batch.batch_id)
        metrics.WEBHOOKS.labels(name, "ok").inc()
        return JSONResponse({"accepted": len(inbound)})

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok", "bus": bus.nc.is_connected})

    async def prometheus(request: Request) -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return Starlette(
        routes=[
            Route("/webhooks/{provider}/status", status_webhook, methods=["POST"]),
            Route("/webhooks/{provider}/inbound", inbound_webhook, methods=["POST"]),
            Route("/healthz", health),
            Route("/metrics", prometheus),
        ]
    )
