"""The HTTP app: the `/v1` API (bearer keys per brand, OpenAPI at `/openapi.json`), and
provider webhooks, which go straight onto the bus in the batch they came in."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import msgspec
from fastapi import FastAPI
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from clarion.api.limits import BodyLimit
from clarion.api.v1 import V1
from clarion.bus.jetstream import Bus, encode
from clarion.domain.ports import Provider
from clarion.domain.records import InboundBatch, ReceiptBatch
from clarion.email.unsubscribe import unsubscribe_routes
from clarion.errors import (
    CampaignStateError,
    ClarionError,
    ForgedWebhook,
    InvalidInput,
    NotFound,
)
from clarion.observability import metrics
from clarion.store import compliance
from clarion.store.db import Pool, Refused, constraint_error

# The longest batch id a webhook may name (it becomes the bus's de-duplication key).
MAX_BATCH_ID_CHARS = 200
# A NUL character as it comes in a body: raw, JSON-escaped, form-encoded.
_NUL_FORMS = (b"\x00", b"\\u0000", b"%00")
# Request bodies, by path prefix (the longest matching prefix wins): webhooks carry batches
# of receipts (the simulator's 2,000 are about 400 kB); the API's bodies are small.
BODY_LIMITS = {"": 64 << 10, "/v1/": 1 << 20, "/webhooks/": 8 << 20}
# Each readiness check must answer within this time.
READY_TIMEOUT_S = 2.0


class _TooLarge(Exception):
    pass


def _fitting(
    key: str,
    items: list[Any],
    make: Callable[[str, list[Any]], msgspec.Struct],
    limit_bytes: int,
) -> list[tuple[str, msgspec.Struct]]:
    """The webhook's items as (key, batch) pairs the bus can carry: one batch when it fits,
    else halves, recursively. The split depends only on the items, so a provider's retry of
    the same webhook makes the same keys and the bus drops the repeat."""
    whole = make(key, items)
    if len(encode(whole)) <= limit_bytes:
        return [(key, whole)]
    if len(items) <= 1:
        raise _TooLarge(f"one item is larger than the bus carries ({limit_bytes} bytes)")
    half = len(items) // 2
    return [
        *_fitting(f"{key}/0", items[:half], make, limit_bytes),
        *_fitting(f"{key}/1", items[half:], make, limit_bytes),
    ]


# Errors Clarion raises on purpose, as HTTP statuses (most specific first): a user reads
# the message; nothing of them is a 500.
_ERROR_STATUS: dict[type[ClarionError], int] = {
    NotFound: 404,
    InvalidInput: 422,
    CampaignStateError: 409,
    ClarionError: 400,
}


def _status_of(error: ClarionError) -> int:
    return next(status for kind, status in _ERROR_STATUS.items() if isinstance(error, kind))


def _error_handler(status: int) -> Callable[[Request, Exception], Awaitable[Response]]:
    async def handle(request: Request, exc: Exception) -> Response:
        body: dict[str, Any] = {"error": str(exc)}
        if isinstance(exc, InvalidInput) and exc.field is not None:
            body["field"] = exc.field
        return JSONResponse(body, status_code=status)

    return handle


async def _check_postgres(pool: Pool | None) -> str:
    if pool is None:
        return "ok"  # this process does not use the database over HTTP
    try:
        async with asyncio.timeout(READY_TIMEOUT_S):
            await pool.fetchval("SELECT 1")
    except Exception as exc:  # any failure is the answer, not an error of the probe
        return f"down: {type(exc).__name__}"
    return "ok"


async def _check_nats(bus: Bus) -> str:
    if not bus.nc.is_connected:
        return "down: not connected"
    try:
        async with asyncio.timeout(READY_TIMEOUT_S):
            await bus.js.account_info()
    except Exception as exc:  # as above
        return f"down: {type(exc).__name__}"
    return "ok"


def create_app(
    bus: Bus,
    providers: Mapping[str, Provider],
    *,
    api: V1 | None = None,
    pool: Pool | None = None,
    unsubscribe_secret: str | None = None,
) -> Starlette:
    """The HTTP app. `pool` (default: the API's) is what `/readyz` checks besides the bus."""
    pool = pool if pool is not None or api is None else api.pool

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
            body = await request.body()
            try:
                batch_id, items = parse(provider, str(request.url), request.headers, body)
            except ForgedWebhook as exc:
                metrics.WEBHOOKS.labels(name, "forged").inc()
                return JSONResponse({"error": str(exc)}, status_code=403)
            except InvalidInput as exc:
                metrics.WEBHOOKS.labels(name, "invalid").inc()
                return JSONResponse({"error": str(exc)}, status_code=400)
            if any(nul in body for nul in _NUL_FORMS):
                # Postgres text cannot hold NUL: such a batch would fail at every retry (and
                # hold back every receipt folded with it)
                metrics.WEBHOOKS.labels(name, "invalid").inc()
                return JSONResponse({"error": "a NUL character in the webhook"}, status_code=400)
            if not 0 < len(batch_id) <= MAX_BATCH_ID_CHARS:
                metrics.WEBHOOKS.labels(name, "invalid").inc()
                return JSONResponse(
                    {"error": f"batch id must have 1 to {MAX_BATCH_ID_CHARS} characters"},
                    status_code=400,
                )
            key = f"{name}:{batch_id}"
            limit = bus.max_payload_bytes
            try:
                # A batch encodes smaller than the JSON or form it came in: only a body near
                # the bus's limit is measured (an encoding more per webhook otherwise).
                parts = (
                    [(key, batch(key, name, items))]
                    if 2 * len(body) <= limit
                    else _fitting(key, items, lambda k, i: batch(k, name, i), limit)
                )
            except _TooLarge as exc:
                metrics.WEBHOOKS.labels(name, "invalid").inc()
                return JSONResponse({"error": str(exc)}, status_code=413)
            for part_key, part in parts:
                await bus.publish(hop, part, msg_id=part_key)
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

    async def live(request: Request) -> Response:
        """Liveness: the process answers and its bus connection is not closed for good
        (nats-py reconnects by itself; a closed client never comes back: restart)."""
        up = not bus.nc.is_closed
        return JSONResponse({"status": "ok" if up else "bus closed"}, 200 if up else 503)

    async def ready(request: Request) -> Response:
        """Readiness: every dependency answers now — Postgres a query, NATS a JetStream
        round trip — each within `READY_TIMEOUT_S`; 503 names the ones that do not."""
        checks = dict(
            zip(
                ("postgres", "nats"),
                await asyncio.gather(_check_postgres(pool), _check_nats(bus)),
                strict=True,
            )
        )
        ok = all(v == "ok" for v in checks.values())
        body = {"status": "ready" if ok else "not ready", "checks": checks}
        return JSONResponse(body, 200 if ok else 503)

    async def prometheus(request: Request) -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    app = FastAPI(title="Clarion", version="1", docs_url="/docs", redoc_url=None)
    app.add_middleware(BodyLimit, limits=BODY_LIMITS)
    for kind, status in _ERROR_STATUS.items():
        app.add_exception_handler(kind, _error_handler(status))

    async def refused(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Refused)
        error = constraint_error(exc)
        return await _error_handler(_status_of(error))(request, error)

    for refusal in Refused:
        app.add_exception_handler(refusal, refused)
    for path, endpoint, methods in (
        ("/webhooks/{provider}/status", status_webhook, ["POST"]),
        ("/webhooks/{provider}/inbound", inbound_webhook, ["POST"]),
        ("/livez", live, ["GET"]),
        ("/readyz", ready, ["GET"]),
        ("/healthz", ready, ["GET"]),  # before /readyz existed; checks as much
        ("/metrics", prometheus, ["GET"]),
    ):
        app.router.routes.append(Route(path, endpoint, methods=methods))
    if api is not None:
        app.include_router(api.router())
        if unsubscribe_secret:  # one-click unsubscribe links (RFC 8058) at /u/{token}
            api_pool = api.pool

            async def unsubscribe(brand_id: int, subscriber_id: int, how: str) -> None:
                await compliance.unsubscribe_email(api_pool, brand_id, subscriber_id, how)

            app.router.routes.extend(unsubscribe_routes(unsubscribe_secret, unsubscribe))
    return app
