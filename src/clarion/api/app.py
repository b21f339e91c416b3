"""The HTTP app: the `/v1` API (bearer keys per brand, OpenAPI at `/openapi.json`), the web
UI at `/` (`clarion.web`), and provider webhooks, which go straight onto the bus in the
batch they came in."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Literal

import asyncpg
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from clarion import web
from clarion.api import errors
from clarion.api.calls import api_error
from clarion.api.limits import BodyLimit
from clarion.api.unsubscribe import confirm_routes, unsubscribe_routes
from clarion.api.v1 import V1
from clarion.errors import (
    ClarionError,
    ForgedWebhook,
    InvalidInput,
    TooLarge,
)
from clarion.observability import metrics
from clarion.service import Bus, Provider, admin, links, signups, subscribers, webhooks

# Request bodies, by path prefix (the longest matching prefix wins): webhooks carry batches
# of receipts (the simulator's 2,000 are about 400 kB); the API's bodies are small, but for
# a CSV import (a million subscribers are about 60 MB), which is stored as it streams in.
# A redirect is not cached (each click counts) and its code is not passed on as a Referer.
_NO_STORE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
BODY_LIMITS = {
    "": 64 << 10, "/v1/": 1 << 20, "/v1/imports": 1 << 30, "/webhooks/": 8 << 20,
    "/imports": 1 << 30,  # the web UI's CSV upload
}  # fmt: skip


async def _clarion_error(request: Request, exc: Exception) -> Response:
    """An error Clarion raises on purpose, outside a use case's call: JSON with its status,
    the same body as every other `/v1` error; nothing of it is a 500."""
    assert isinstance(exc, ClarionError)
    return await errors.http_error(request, api_error(exc))


def create_app(
    bus: Bus,
    providers: Mapping[str, Provider],
    *,
    api: V1 | None = None,
    pool: asyncpg.Pool | None = None,
    unsubscribe_secret: str | None = None,
    redirects: links.Redirects | None = None,
) -> Starlette:
    """The HTTP app. `pool` (default: the API's) is what `/readyz` checks besides the bus."""
    pool = pool if pool is not None or api is None else api.svc.pool

    def webhook(kind: Literal["status", "inbound"]) -> Callable[[Request], Awaitable[Response]]:
        """A provider webhook (`service.webhooks.accept`): answered once its batch is stored
        on the bus; a provider that sees an error retries, and the retry is a no-op."""

        async def endpoint(request: Request) -> Response:
            name = request.path_params["provider"]
            provider = providers.get(name)
            if provider is None:
                return JSONResponse({"error": f"unknown provider {name!r}"}, status_code=404)
            body = await request.body()
            try:
                accepted = await webhooks.accept(
                    bus, provider, kind, str(request.url), request.headers, body
                )
            except ForgedWebhook as exc:
                metrics.WEBHOOKS.labels(name, "forged").inc()
                return JSONResponse({"error": str(exc)}, status_code=403)
            except InvalidInput as exc:
                metrics.WEBHOOKS.labels(name, "invalid").inc()
                status = 413 if isinstance(exc, TooLarge) else 400
                return JSONResponse({"error": str(exc)}, status_code=status)
            metrics.WEBHOOKS.labels(name, "ok").inc()
            return JSONResponse({"accepted": accepted})

        return endpoint

    async def live(request: Request) -> Response:
        """Liveness: the process answers and its bus client is not closed for good."""
        up = webhooks.alive(bus)
        return JSONResponse({"status": "ok" if up else "bus closed"}, 200 if up else 503)

    async def ready(request: Request) -> Response:
        """Readiness: every dependency answers now; 503 names the ones that do not."""
        checks = await webhooks.readiness(pool, bus)
        ok = all(v == "ok" for v in checks.values())
        body = {"status": "ready" if ok else "not ready", "checks": checks}
        return JSONResponse(body, 200 if ok else 503)

    async def follow(request: Request) -> Response:
        """A tracked short link: 302 to its URL, the click recorded (HEAD requests and
        bots as such); 404 for a code that names nothing here."""
        assert redirects is not None
        url = await redirects.follow(
            request.path_params["code"], request.headers.get("host", ""), request.method,
            request.headers.get("user-agent"),
        )  # fmt: skip
        if url is None:
            return PlainTextResponse("unknown link", status_code=404, headers=_NO_STORE)
        return Response(status_code=302, headers={"Location": url, **_NO_STORE})

    async def prometheus(request: Request) -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    app = FastAPI(title="Clarion", version="1", docs_url="/docs", redoc_url=None)
    app.add_exception_handler(HTTPException, errors.http_error)
    app.add_exception_handler(RequestValidationError, errors.validation_error)
    app.add_middleware(BodyLimit, limits=BODY_LIMITS)
    app.add_exception_handler(ClarionError, _clarion_error)

    async def refused(request: Request, exc: Exception) -> Response:
        return await _clarion_error(request, admin.explain_refusal(exc))

    for refusal in admin.REFUSALS:
        app.add_exception_handler(refusal, refused)
    for path, endpoint, methods in (
        ("/webhooks/{provider}/status", webhook("status"), ["POST"]),
        ("/webhooks/{provider}/inbound", webhook("inbound"), ["POST"]),
        ("/livez", live, ["GET"]),
        ("/readyz", ready, ["GET"]),
        ("/healthz", ready, ["GET"]),  # before /readyz existed; checks as much
        ("/metrics", prometheus, ["GET"]),
    ):
        app.router.routes.append(Route(path, endpoint, methods=methods))
    if redirects is not None:
        app.router.routes.append(Route("/l/{code}", follow, methods=["GET", "HEAD"]))
    if api is not None:
        app.include_router(api.router())
        # the marketer's web UI at `/`, over the same use cases and clock as the API
        app.state.web, pages = web.routes(api.svc, api.clock)
        app.router.routes.extend(pages)
        if unsubscribe_secret:  # one-click unsubscribe links (RFC 8058) at /u/{token}
            svc = api.svc

            async def unsubscribe(brand_id: int, subscriber_id: int, how: str) -> None:
                await subscribers.unsubscribe_email(svc, brand_id, subscriber_id, how)

            async def confirm(brand_id: int, entry: int, ip: str | None, ua: str | None) -> str:
                return await signups.confirm_email(svc, brand_id, entry, ip=ip, user_agent=ua)

            app.router.routes.extend(unsubscribe_routes(unsubscribe_secret, unsubscribe))
            app.router.routes.extend(confirm_routes(unsubscribe_secret, confirm))
    return app
