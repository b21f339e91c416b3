"""The pages links in email lead to: `/u/{token}`, one-click unsubscribe (RFC 8058) a mail
client POSTs to, and `/confirm/{token}`, a sign-up's double opt-in confirmation.

GET never acts (link scanners and previewers follow links): it shows a page whose button
POSTs. Only a POST does: for unsubscribing, with the RFC 8058 body `List-Unsubscribe=One-Click`
(a mail client) or the page's own form field; for confirming, with the page's field.
"""

from __future__ import annotations

import html
from collections.abc import Awaitable, Callable
from email import policy
from email.parser import BytesParser
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route

from clarion.errors import InvalidInput, NotFound, Refused
from clarion.service.signups import read_confirm_token
from clarion.service.subscribers import read_unsubscribe_token

_MAX_BODY_BYTES = 16_384

# The source passed to `on_unsubscribe`: a mail client's one-click POST, or a person who
# pressed the button on the confirmation page.
SOURCE_ONE_CLICK = "one-click"
SOURCE_PAGE = "page"

OnUnsubscribe = Callable[[int, int, str], Awaitable[None]]
# (brand id, the pending entry's id, the visitor's IP, user agent) → "confirmed" | "already";
# raises NotFound or Refused
OnConfirm = Callable[[int, int, str | None, str | None], Awaitable[str]]


async def _form_fields(request: Request) -> dict[str, str] | None:
    """The POSTed fields, urlencoded or multipart (RFC 8058 allows both); None for a body
    too large to be an unsubscribe request. Parsed here because Starlette's form parser needs
    python-multipart, which Clarion does not depend on."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > _MAX_BODY_BYTES:
            return None
    content_type = request.headers.get("content-type", "")
    if content_type.lower().startswith("multipart/form-data"):
        head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1")
        parsed = BytesParser(policy=policy.HTTP).parsebytes(head + body)
        fields: dict[str, str] = {}
        if parsed.is_multipart():
            for part in parsed.iter_parts():
                name = part.get_param("name", header="content-disposition")
                payload = part.get_payload(decode=True)
                if isinstance(name, str) and isinstance(payload, bytes):
                    fields[name] = payload.decode("utf-8", "replace").strip()
        return fields
    text = body.decode("utf-8", "replace")
    return {k: v.strip() for k, v in parse_qsl(text, keep_blank_values=True)}


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="robots" content="noindex">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title></head>
<body style="font-family: sans-serif; max-width: 32em; margin: 3em auto">
<h1>{title}</h1>
{body}
</body></html>
"""
_CONFIRM = """<p>Press the button to stop receiving marketing email from this sender.</p>
<form method="post">
<input type="hidden" name="unsubscribe" value="confirm">
<button type="submit">Unsubscribe</button>
</form>"""
# Tokens are in the URL: keep them out of caches, search engines and Referer headers.
_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex",
}


def _page(title: str, body: str, status_code: int = 200) -> HTMLResponse:
    return HTMLResponse(
        _PAGE.format(title=title, body=body), status_code=status_code, headers=_HEADERS
    )


def unsubscribe_routes(secret: str | bytes, on_unsubscribe: OnUnsubscribe) -> list[Route]:
    """Routes for `/u/{token}` (mount them on the public HTTP app).

    - `POST` with `List-Unsubscribe=One-Click` (RFC 8058) → `on_unsubscribe(brand, subscriber,
      "one-click")`, then 200 with an empty body; with the page's field `unsubscribe=confirm`
      → `on_unsubscribe(…, "page")`, then 200 with a short confirmation page. Any other body →
      400, nothing called. Every such POST calls `on_unsubscribe` again: recording an opt-out
      must be idempotent (it is a ledger fact, not a toggle).
    - `GET` → 200, a page with a button that POSTs; never unsubscribes.
    - A token that does not verify → 404, nothing called.
    """

    async def endpoint(request: Request) -> Response:
        try:
            brand_id, subscriber_id = read_unsubscribe_token(secret, request.path_params["token"])
        except InvalidInput:
            return PlainTextResponse("unknown unsubscribe link", status_code=404, headers=_HEADERS)
        if request.method != "POST":
            return _page("Unsubscribe", _CONFIRM)
        fields = await _form_fields(request)
        if fields is None:
            return PlainTextResponse("request too large", status_code=413, headers=_HEADERS)
        if fields.get("List-Unsubscribe") == "One-Click":
            await on_unsubscribe(brand_id, subscriber_id, SOURCE_ONE_CLICK)
            return Response(status_code=200, headers=_HEADERS)
        if fields.get("unsubscribe") == "confirm":
            await on_unsubscribe(brand_id, subscriber_id, SOURCE_PAGE)
            return _page("Unsubscribed", "<p>You will not receive marketing email from us.</p>")
        return PlainTextResponse(
            "expected List-Unsubscribe=One-Click", status_code=400, headers=_HEADERS
        )

    return [Route("/u/{token}", endpoint, methods=["GET", "POST"])]


_CONFIRM_SIGNUP = """<p>Press the button to confirm that you want email from this sender.</p>
<form method="post">
<input type="hidden" name="confirm" value="yes">
<button type="submit">Confirm my subscription</button>
</form>"""


def confirm_routes(secret: str | bytes, on_confirm: OnConfirm) -> list[Route]:
    """Routes for `/confirm/{token}` (on the public HTTP app).

    - `GET` → 200, a page with a button that POSTs; never confirms.
    - `POST` with the page's field `confirm=yes` → `on_confirm(brand, entry, ip, user
      agent)`, then 200 and a page saying so (again: "already", nothing recorded). Any
      other body → 400.
    - A token that does not verify, or names no request → 404; a link a newer request, an
      unsubscribe or time replaced → 410. Nothing recorded.
    """

    async def endpoint(request: Request) -> Response:
        try:
            brand_id, entry_id = read_confirm_token(secret, request.path_params["token"])
        except InvalidInput:
            return PlainTextResponse("unknown confirmation link", status_code=404, headers=_HEADERS)
        if request.method != "POST":
            return _page("Confirm your subscription", _CONFIRM_SIGNUP)
        fields = await _form_fields(request)
        if fields is None:
            return PlainTextResponse("request too large", status_code=413, headers=_HEADERS)
        if fields.get("confirm") != "yes":
            return PlainTextResponse("expected confirm=yes", status_code=400, headers=_HEADERS)
        ip = request.client.host if request.client else None
        try:
            await on_confirm(brand_id, entry_id, ip, request.headers.get("user-agent"))
        except NotFound:
            return PlainTextResponse("unknown confirmation link", status_code=404, headers=_HEADERS)
        except Refused as exc:
            return _page("Link expired", f"<p>{html.escape(str(exc))}.</p>", status_code=410)
        return _page("Subscribed", "<p>Thank you: your subscription is confirmed.</p>")

    return [Route("/confirm/{token}", endpoint, methods=["GET", "POST"])]
