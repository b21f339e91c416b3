"""Request body limits: a body larger than its route allows is refused with 413 before it
is read whole — by its Content-Length at once, or when a chunked body passes the limit."""

from __future__ import annotations

from collections.abc import Mapping

from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyLimit:
    """ASGI middleware. `limits` maps a path prefix to its largest body in bytes; the
    longest prefix that matches a request's path applies ("" matches every path)."""

    def __init__(self, app: ASGIApp, limits: Mapping[str, int]) -> None:
        self.app = app
        self.limits = sorted(limits.items(), key=lambda kv: len(kv[0]), reverse=True)

    def limit_for(self, path: str) -> int:
        return next(limit for prefix, limit in self.limits if path.startswith(prefix))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            await _too_large(limit)(scope, receive, send)
            return
        seen = 0

        async def bounded() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > limit:  # raised inside the endpoint's read: the app answers 413
                raise HTTPException(413, f"request body larger than {limit} bytes")
            return message

        await self.app(scope, bounded, send)


def _too_large(limit: int) -> JSONResponse:
    message = f"request body larger than {limit} bytes"
    return JSONResponse({"code": "too_large", "message": message}, status_code=413)
