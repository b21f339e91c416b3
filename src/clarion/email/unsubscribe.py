"""One-click unsubscribe (RFC 8058): signed tokens naming a brand's subscriber, and the
`/u/{token}` endpoint a mail client POSTs to.

A token is base64url(version 2 ‖ AES-SIV(brand id ‖ subscriber id)), with a key derived
from the secret: the endpoint needs no database to know whom it is about, a token cannot be
made up or pointed at someone else without the secret (SIV authenticates), and it does not
show the ids (sequential ids would tell a reader how big a list is, and invite guessing).
Version 1 tokens (ids in the clear, HMAC-SHA256 truncated to 128 bits), made before, are still
read. Tokens do not expire: CAN-SPAM wants the opt-out to work for at least 30 days after the
send, and an old email's link should still work.

GET never unsubscribes (link scanners and previewers follow links): it shows a page whose
button POSTs. Only a POST does, with the RFC 8058 body `List-Unsubscribe=One-Click` (a mail
client) or the page's own form field.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import struct
from collections.abc import Awaitable, Callable
from email import policy
from email.parser import BytesParser
from urllib.parse import parse_qsl

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESSIV
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route

from clarion.errors import InvalidInput

_V1, _V2 = 1, 2
_IDS = struct.Struct(">QQ")  # brand id, subscriber id
_V1_IDS = struct.Struct(">BQQ")  # version, brand id, subscriber id
_MAC_BYTES = 16
_TOKEN_BYTES = 1 + _IDS.size + 16  # version, the sealed ids, SIV's tag (v1: ids and a MAC)
_CONTEXT = b"clarion/unsubscribe/v1\x00"  # keeps these MACs apart from other uses of a secret
_V2_CONTEXT = b"clarion/unsubscribe/v2"
_MAX_BODY_BYTES = 16_384

# The source passed to `on_unsubscribe`: a mail client's one-click POST, or a person who
# pressed the button on the confirmation page.
SOURCE_ONE_CLICK = "one-click"
SOURCE_PAGE = "page"

OnUnsubscribe = Callable[[int, int, str], Awaitable[None]]


def _key(secret: str | bytes) -> bytes:
    return secret.encode() if isinstance(secret, str) else secret


def _mac(secret: str | bytes, ids: bytes) -> bytes:
    return hmac.new(_key(secret), _CONTEXT + ids, hashlib.sha256).digest()[:_MAC_BYTES]


@functools.lru_cache(maxsize=8)
def _siv(secret: str | bytes) -> AESSIV:
    """AES-256-SIV keyed by the secret (a 512-bit key derived with HMAC-SHA512)."""
    return AESSIV(hmac.new(_key(secret), _V2_CONTEXT, hashlib.sha512).digest())


def make_token(secret: str | bytes, brand_id: int, subscriber_id: int) -> str:
    """A URL-safe token (44 characters, no padding) naming `subscriber_id` of `brand_id`
    without showing either."""
    if not secret:
        raise InvalidInput("an unsubscribe secret is required", field="secret")
    if not (0 <= brand_id < 2**64 and 0 <= subscriber_id < 2**64):
        raise InvalidInput("ids must fit in 64 bits", field="subscriber_id")
    version = bytes([_V2])
    sealed = _siv(secret).encrypt(_IDS.pack(brand_id, subscriber_id), [version])
    return base64.urlsafe_b64encode(version + sealed).rstrip(b"=").decode()


def read_token(secret: str | bytes, token: str) -> tuple[int, int]:
    """(brand id, subscriber id) of a token `make_token` made with `secret`. Raises
    `InvalidInput` (field "token") for anything else: malformed, tampered, another secret."""
    try:
        raw = base64.urlsafe_b64decode(token.encode("ascii") + b"=" * (-len(token) % 4))
    except (binascii.Error, UnicodeEncodeError, ValueError) as exc:
        raise InvalidInput("malformed unsubscribe token", field="token") from exc
    if len(raw) != _TOKEN_BYTES or not secret:
        raise InvalidInput("malformed unsubscribe token", field="token")
    if raw[0] == _V2:
        try:
            brand_id, subscriber_id = _IDS.unpack(_siv(secret).decrypt(raw[1:], [raw[:1]]))
        except InvalidTag:
            raise InvalidInput("unsubscribe token does not verify", field="token") from None
        return brand_id, subscriber_id
    ids, mac = raw[: _V1_IDS.size], raw[_V1_IDS.size :]
    if not hmac.compare_digest(mac, _mac(secret, ids)):
        raise InvalidInput("unsubscribe token does not verify", field="token")
    version, brand_id, subscriber_id = _V1_IDS.unpack(ids)
    if version != _V1:
        raise InvalidInput(f"unknown token version {version}", field="token")
    return brand_id, subscriber_id


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
            brand_id, subscriber_id = read_token(secret, request.path_params["token"])
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
