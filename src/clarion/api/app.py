"""The HTTP app: the `/v1` API (bearer keys per brand, OpenAPI at `/openapi.json`), and
provider webhooks, which go straight onto the bus in the batch they came in."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import msgspec
from fastapi import FastAPI
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from clarion.api.v1 import V1
from clarion.bus.jetstream import Bus
from clarion.domain.records import InboundBatch, ReceiptBatch
from clarion.email.unsubscribe import unsubscribe_routes
from clarion.errors import ForgedWebhook, InvalidInput
from clarion.observability import metrics
from clarion.providers.base import Provider
from clarion.store import compliance


def create_app(
    bus: Bus,
    providers: Mapping[str, Provider],
    *,
    api: V1 | None = None,
    unsubscribe_secret: str | None = None,
) -> Starlette:
    def webhook(
        hop: str,
        parse: Callable[[Provider, str, Mapping[str, str], bytes], tuple[str, list[Any]]],
        batch: Callable[[str, str, list[Any]], msgspec.Struct],
    ) -> Callable[[Request], Awaitable[Response]]:
        """A provider webhook: verify and parse, then put the batch on `hop`. Answered only
        once the batch is stored on the bus: a provider that sees an error retries, and the
        batch id makes the retry a no-op."""

        async def endpoint(request: Request) -> Response:
            name = request.path_params["provider"]
            provider = providers.get(name)
            if provider is None:
                return JSONResponse({"error": f"unknown provider {name!r}"}, status_code=404)
            try:
                batch_id, items = parse(
                    provider, str(request.url), request.headers, await request.body()
                )
            except ForgedWebhook as exc:
                metrics.WEBHOOKS.labels(name, "forged").inc()
                return JSONResponse({"error": str(exc)}, status_code=403)
            except InvalidInput as exc:
                metrics.WEBHOOKS.labels(name, "invalid").inc()
                return JSONResponse({"error": str(exc)}, status_code=400)
            key = f"{name}:{batch_id}"
            await bus.publish(hop, batch(key, name, items), msg_id=key)
            metrics.WEBHOOKS.labels(name, "ok").inc()
            return JSONResponse({"accepted": len(items)})

        return endpoint

    status_webhook = webhook(
        "receipts",
        lambda p, url, headers, body: p.parse_status_webhook(url, headers, body),
        lambda key, name, items: ReceiptBatch(batch_id=key, provider=name, receipts=items),
    )
    inbound_webhook = webhook(
        "inbound",
        lambda p, url, headers, body: p.parse_inbound_webhook(url, headers, body),
        lambda key, name, items: InboundBatch(batch_id=key, provider=name, messages=items),
    )

    async def health(request: Request) -> Response:
        # a process that lost NATS cannot move work: say so, so a probe restarts or drains it
        up = bus.nc.is_connected
        return JSONResponse({"status": "ok" if up else "bus down", "bus": up}, 200 if up else 503)

    async def prometheus(request: Request) -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    app = FastAPI(title="Clarion", version="1", docs_url="/docs", redoc_url=None)
    for path, endpoint, methods in (
        ("/webhooks/{provider}/status", status_webhook, ["POST"]),
        ("/webhooks/{provider}/inbound", inbound_webhook, ["POST"]),
        ("/healthz", health, ["GET"]),
        ("/metrics", prometheus, ["GET"]),
    ):
        app.router.routes.append(Route(path, endpoint, methods=methods))
    if api is not None:
        app.include_router(api.router())
        if unsubscribe_secret:  # one-click unsubscribe links (RFC 8058) at /u/{token}
            pool = api.pool

            async def unsubscribe(brand_id: int, subscriber_id: int, how: str) -> None:
                await compliance.unsubscribe_email(pool, brand_id, subscriber_id, how)

            app.router.routes.extend(unsubscribe_routes(unsubscribe_secret, unsubscribe))
    return app
