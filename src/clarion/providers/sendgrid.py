"""Adapter for SendGrid's v3 Mail Send API and its signed Event Webhook.

Sending: `POST /v3/mail/send`, at most 1,000 personalizations (one per recipient) a request.
Each personalization carries its own subject, `List-Unsubscribe` headers and our message id
as the custom arg `clarion_id`, which SendGrid echoes in every event about that recipient.
Personalised bodies ride in `substitutions` (SendGrid caps them at 10,000 bytes per
personalization; a larger one goes in a request of its own).

Events: SendGrid signs each Event Webhook POST with ECDSA P-256 / SHA-256 over
`timestamp ‖ body`, base64 DER signature in `X-Twilio-Email-Event-Webhook-Signature`, the
timestamp in `X-Twilio-Email-Event-Webhook-Timestamp`, verified with the account's public key
(base64 DER SubjectPublicKeyInfo, "Verification Key" in the dashboard). The curve arithmetic
is here, in pure Python, though `cryptography` is a dependency: this verifier and the
simulator's `cryptography`-based signer check each other (verification uses only public
data, so its timing leaks nothing; signing here is for tests).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import os
import re
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from email.utils import parseaddr
from typing import Any

import httpx
import msgspec

from clarion.domain.messages import SendResult
from clarion.domain.records import Receipt
from clarion.email.message import (
    CLARION_ID_ARG,
    ONE_CLICK,
    OutboundEmail,
    receipt_from_sendgrid_event,
)
from clarion.errors import ConfigurationError, ForgedWebhook, InvalidInput
from clarion.httpclient import AsyncClient

SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"
MAX_PERSONALIZATIONS = 1000  # SendGrid's limit per request
SUBSTITUTIONS_MAX_BYTES = 10_000  # SendGrid's limit per personalization
TEXT_TAG, HTML_TAG = "-clarion_text-", "-clarion_html-"
_FIELD_INDEX = re.compile(r"^personalizations\.(\d+)\.")
_encode = msgspec.json.Encoder().encode

# --- ECDSA over P-256 (FIPS 186-4, SEC 2 secp256r1) ---------------------------------------

_P = 0xFFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF
_A = _P - 3
_B = 0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B
_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
_G = (
    0x6B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296,
    0x4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5,
)
Point = tuple[int, int] | None  # None is the point at infinity
# SubjectPublicKeyInfo for id-ecPublicKey / prime256v1 with an uncompressed point follows.
_SPKI_PREFIX = bytes.fromhex("3059301306072a8648ce3d020106082a8648ce3d030107034200")


def _add(p: Point, q: Point) -> Point:
    if p is None:
        return q
    if q is None:
        return p
    (x1, y1), (x2, y2) = p, q
    if x1 == x2:
        if (y1 + y2) % _P == 0:
            return None
        slope = (3 * x1 * x1 + _A) * pow(2 * y1, -1, _P) % _P
    else:
        slope = (y2 - y1) * pow(x2 - x1, -1, _P) % _P
    x3 = (slope * slope - x1 - x2) % _P
    return x3, (slope * (x1 - x3) - y1) % _P


def _mul(k: int, p: Point) -> Point:
    result: Point = None
    while k:
        if k & 1:
            result = _add(result, p)
        p = _add(p, p)
        k >>= 1
    return result


def _on_curve(x: int, y: int) -> bool:
    return 0 <= x < _P and 0 <= y < _P and (y * y - x * x * x - _A * x - _B) % _P == 0


def ec_public_key(private_key: int) -> str:
    """Base64 DER SubjectPublicKeyInfo of a P-256 private scalar (SendGrid's key format)."""
    point = _mul(private_key, _G)
    assert point is not None
    x, y = point
    der = _SPKI_PREFIX + b"\x04" + x.to_bytes(32, "big") + y.to_bytes(32, "big")
    return base64.b64encode(der).decode()


def _parse_public_key(public_key: str) -> tuple[int, int]:
    try:
        der = base64.b64decode(public_key.strip(), validate=True)
    except ValueError as exc:
        raise ConfigurationError(f"SendGrid verification key is not base64: {exc}") from exc
    if len(der) != len(_SPKI_PREFIX) + 65 or not der.startswith(_SPKI_PREFIX + b"\x04"):
        raise ConfigurationError("SendGrid verification key is not a P-256 public key")
    x = int.from_bytes(der[-64:-32], "big")
    y = int.from_bytes(der[-32:], "big")
    if not _on_curve(x, y):
        raise ConfigurationError("SendGrid verification key is not a point on P-256")
    return x, y


def _der_signature(r: int, s: int) -> bytes:
    def integer(v: int) -> bytes:
        body = v.to_bytes(v.bit_length() // 8 + 1, "big")
        return bytes([0x02, len(body)]) + body

    body = integer(r) + integer(s)
    return bytes([0x30, len(body)]) + body


def _read_der_signature(der: bytes) -> tuple[int, int] | None:
    """(r, s) of a DER ECDSA-Sig-Value, or None if it is not exactly one."""
    if len(der) < 8 or der[0] != 0x30 or der[1] != len(der) - 2:
        return None
    values, i = [], 2
    for _ in range(2):
        if i + 2 > len(der) or der[i] != 0x02:
            return None
        n = der[i + 1]
        if n == 0 or n > 33 or i + 2 + n > len(der):
            return None
        values.append(int.from_bytes(der[i + 2 : i + 2 + n], "big"))
        i += 2 + n
    return (values[0], values[1]) if i == len(der) else None


def _rfc6979_k(private_key: int, digest: bytes) -> int:
    """The deterministic nonce of RFC 6979 §3.2 (HMAC-SHA256): no RNG, no reuse."""
    x = private_key.to_bytes(32, "big")
    h = (int.from_bytes(digest, "big") % _N).to_bytes(32, "big")
    v, k = b"\x01" * 32, b"\x00" * 32
    k = hmac.digest(k, v + b"\x00" + x + h, "sha256")
    v = hmac.digest(k, v, "sha256")
    k = hmac.digest(k, v + b"\x01" + x + h, "sha256")
    v = hmac.digest(k, v, "sha256")
    while True:
        v = hmac.digest(k, v, "sha256")
        candidate = int.from_bytes(v, "big")
        if 1 <= candidate < _N:
            return candidate
        k = hmac.digest(k, v + b"\x00", "sha256")
        v = hmac.digest(k, v, "sha256")


def ecdsa_sign(private_key: int, data: bytes) -> tuple[int, int]:
    """(r, s) of an ECDSA P-256 / SHA-256 signature of `data`."""
    digest = hashlib.sha256(data).digest()
    z = int.from_bytes(digest, "big")
    k = _rfc6979_k(private_key, digest)
    point = _mul(k, _G)
    assert point is not None
    r = point[0] % _N
    s = pow(k, -1, _N) * (z + r * private_key) % _N
    return r, s


def _ecdsa_verify(public: tuple[int, int], data: bytes, r: int, s: int) -> bool:
    if not (1 <= r < _N and 1 <= s < _N):
        return False
    z = int.from_bytes(hashlib.sha256(data).digest(), "big")
    w = pow(s, -1, _N)
    point = _add(_mul(z * w % _N, _G), _mul(r * w % _N, public))
    return point is not None and point[0] % _N == r


def sign_event_webhook(private_key: int, timestamp: str, body: bytes) -> str:
    """The `X-Twilio-Email-Event-Webhook-Signature` value for a body sent at `timestamp`."""
    r, s = ecdsa_sign(private_key, timestamp.encode() + body)
    return base64.b64encode(_der_signature(r, s)).decode()


def verify_event_webhook(public_key: str, timestamp: str, body: bytes, signature: str) -> bool:
    """Whether `signature` is SendGrid's (the holder of `public_key`'s) over timestamp ‖ body."""
    try:
        der = base64.b64decode(signature, validate=True)
    except ValueError:
        return False
    rs = _read_der_signature(der)
    return rs is not None and _ecdsa_verify(
        _parse_public_key(public_key), timestamp.encode() + body, *rs
    )


# --- the Mail Send request ----------------------------------------------------------------


def _address(text: str) -> dict[str, str]:
    name, addr = parseaddr(text)
    return {"email": addr, "name": name} if name else {"email": addr}


def _personalization(e: OutboundEmail, substitute: bool) -> dict[str, Any]:
    targets = [e.unsubscribe_url] + ([e.unsubscribe_mailto] if e.unsubscribe_mailto else [])
    p: dict[str, Any] = {
        "to": [_address(e.to)],
        "subject": e.subject,
        "headers": {
            "List-Unsubscribe": ", ".join(f"<{t}>" for t in targets),
            "List-Unsubscribe-Post": ONE_CLICK,
        },
        "custom_args": {CLARION_ID_ARG: e.message_id},
    }
    if substitute:
        p["substitutions"] = {TEXT_TAG: e.text} | ({HTML_TAG: e.html} if e.html else {})
    return p


def _substitutions_size(e: OutboundEmail) -> int:
    return len(e.text.encode()) + len((e.html or "").encode()) + len(TEXT_TAG) + len(HTML_TAG)


def mail_send_bodies(emails: Sequence[OutboundEmail]) -> list[tuple[list[int], bytes]]:
    """The Mail Send requests for `emails`: (indexes into `emails`, JSON body) each. Emails
    share a request when they share a sender and an HTML-or-not shape; identical bodies go as
    plain content, differing ones as substitutions."""
    groups: dict[tuple[str, bool], list[int]] = {}
    alone: list[int] = []
    for i, e in enumerate(emails):
        if _substitutions_size(e) > SUBSTITUTIONS_MAX_BYTES:
            alone.append(i)
        else:
            groups.setdefault((e.from_addr, e.html is not None), []).append(i)
    chunks = [
        idx[i : i + MAX_PERSONALIZATIONS]
        for idx in groups.values()
        for i in range(0, len(idx), MAX_PERSONALIZATIONS)
    ] + [[i] for i in alone]
    requests = []
    for chunk in chunks:
        first = emails[chunk[0]]
        same = all((emails[i].text, emails[i].html) == (first.text, first.html) for i in chunk)
        text, html = (first.text, first.html) if same else (TEXT_TAG, HTML_TAG)
        content = [{"type": "text/plain", "value": text}]
        if first.html is not None:
            content.append({"type": "text/html", "value": html or ""})
        body = {
            "personalizations": [_personalization(emails[i], not same) for i in chunk],
            "from": _address(first.from_addr),
            "content": content,
        }
        requests.append((chunk, _encode(body)))
    return requests


class SendGridProvider:
    """SendGrid v3. `webhook_public_key` is the Event Webhook's verification key (base64
    DER); `max_event_age_s`, when set, refuses webhooks whose signed timestamp is older (a
    replayed capture) — off by default, because receipts are idempotent and SendGrid retries
    a failed post for up to 24 h."""

    name = "sendgrid"
    max_batch = MAX_PERSONALIZATIONS  # per request; `send_emails` takes any number
    idempotent = False  # Mail Send takes no idempotency key

    def __init__(
        self,
        api_key: str,
        *,
        webhook_public_key: str | None,
        base_url: str = "https://api.sendgrid.com",
        timeout_s: float = 30.0,
        max_concurrent_requests: int = 4,
        max_event_age_s: float | None = None,
        clock: Callable[[], float] = time.time,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._client = AsyncClient(
            base_url=base_url,
            timeout=timeout_s,
            headers={"authorization": f"Bearer {api_key}", "content-type": "application/json"},
            transport=transport,
        )
        self._base_url = base_url
        self._public_key = webhook_public_key
        if webhook_public_key is not None:
            _parse_public_key(webhook_public_key)  # a bad key fails now, not at the first post
        self._requests = asyncio.Semaphore(max_concurrent_requests)
        self._max_event_age_s = max_event_age_s
        self._clock = clock

    def __repr__(self) -> str:
        return f"SendGridProvider(base_url={self._base_url!r})"  # never the API key

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> SendGridProvider:
        """From `CLARION_SENDGRID_API_KEY`, `CLARION_SENDGRID_WEBHOOK_PUBLIC_KEY` (both
        required) and `CLARION_SENDGRID_BASE_URL` (default the public API)."""
        env = os.environ if env is None else env
        for var in ("CLARION_SENDGRID_API_KEY", "CLARION_SENDGRID_WEBHOOK_PUBLIC_KEY"):
            if not env.get(var):
                raise ConfigurationError(f"{var} is not set")
        return cls(
            env["CLARION_SENDGRID_API_KEY"],
            webhook_public_key=env["CLARION_SENDGRID_WEBHOOK_PUBLIC_KEY"],
            base_url=env.get("CLARION_SENDGRID_BASE_URL") or "https://api.sendgrid.com",
        )

    async def send_emails(self, emails: Sequence[OutboundEmail]) -> list[SendResult]:
        """One result per email, in order. 202 → accepted (provider id: `X-Message-Id`);
        429 → retry, throttled; 5xx, 401/403, transport errors → retry; 400 naming
        personalizations → those fail permanently and the rest are sent again at once; any
        other 4xx → every email of the request fails permanently."""
        results: list[SendResult | None] = [None] * len(emails)

        async def run(indexes: list[int], body: bytes) -> None:
            for i, result in zip(indexes, await self._post(emails, indexes, body), strict=True):
                results[i] = result

        await asyncio.gather(*(run(idx, body) for idx, body in mail_send_bodies(emails)))
        return _complete(results)

    async def _post(
        self, emails: Sequence[OutboundEmail], indexes: list[int], body: bytes
    ) -> list[SendResult]:
        async with self._requests:
            try:
                resp = await self._client.post("/v3/mail/send", content=body)
            except httpx.HTTPError as exc:
                return [self._retry(emails[i], "sendgrid:transport", repr(exc)) for i in indexes]
        code = f"sendgrid:{resp.status_code}"
        if resp.status_code in (200, 202):
            sg_id = resp.headers.get("x-message-id")
            return [
                SendResult(
                    message_id=emails[i].message_id, accepted=True, provider_message_id=sg_id
                )
                for i in indexes
            ]
        detail, bad = _errors(resp)
        if resp.status_code == 429:
            wait_s = self._retry_after_s(resp)
            return [
                self._retry(emails[i], code, detail, throttled=True, after_s=wait_s)
                for i in indexes
            ]
        if resp.status_code >= 500 or resp.status_code in (401, 403):
            return [self._retry(emails[i], code, detail) for i in indexes]
        failed = {indexes[n]: msg for n, msg in bad.items() if n < len(indexes)}
        if resp.status_code == 400 and 0 < len(failed) < len(indexes):
            # One bad address refuses the whole request: fail those, send the others again
            # (each round drops at least one, so this ends).
            rest = [i for i in indexes if i not in failed]
            again = dict(zip(rest, await self._resend(emails, rest), strict=True))
            return [
                again[i]
                if i in again
                else SendResult(
                    message_id=emails[i].message_id,
                    accepted=False,
                    error_code=code,
                    error_detail=failed[i][:500],
                )
                for i in indexes
            ]
        return [
            SendResult(
                message_id=emails[i].message_id,
                accepted=False,
                error_code=code,
                error_detail=detail[:500],
            )
            for i in indexes
        ]

    async def _resend(
        self, emails: Sequence[OutboundEmail], indexes: list[int]
    ) -> list[SendResult]:
        subset = [emails[i] for i in indexes]
        (sub_idx, body), *more = mail_send_bodies(subset)
        if more or len(sub_idx) != len(indexes):  # cannot happen: a chunk stays one request
            raise AssertionError("a resent chunk split")
        return await self._post(subset, sub_idx, body)

    def _retry(
        self,
        email: OutboundEmail,
        code: str,
        detail: str,
        *,
        throttled: bool = False,
        after_s: float | None = None,
    ) -> SendResult:
        return SendResult(
            message_id=email.message_id,
            accepted=False,
            error_code=code,
            error_detail=detail[:500],
            retry=True,
            throttled=throttled,
            retry_after_s=after_s,
        )

    def _retry_after_s(self, resp: httpx.Response) -> float | None:
        if "retry-after" in resp.headers:
            try:
                return max(0.0, float(resp.headers["retry-after"]))
            except ValueError:
                return None
        reset = resp.headers.get("x-ratelimit-reset")  # Unix seconds when the window reopens
        try:
            return max(0.0, float(reset) - self._clock()) if reset else None
        except ValueError:
            return None

    def parse_events(self, headers: Mapping[str, str], body: bytes) -> list[Receipt]:
        """The receipts of a verified Event Webhook post (events not about our messages, and
        engagement events, are left out). Raises `ForgedWebhook` when the signature does not
        verify (or no verification key is configured), `InvalidInput` for a body that is not
        a JSON array of events."""
        lower = {k.lower(): v for k, v in headers.items()}
        signature = lower.get(SIGNATURE_HEADER.lower(), "")
        timestamp = lower.get(TIMESTAMP_HEADER.lower(), "")
        if self._public_key is None:
            raise ForgedWebhook("sendgrid: no event webhook verification key is configured")
        if not signature or not (timestamp.isascii() and timestamp.isdigit()):
            raise ForgedWebhook("sendgrid: event webhook without signature headers")
        if not verify_event_webhook(self._public_key, timestamp, body, signature):
            raise ForgedWebhook("sendgrid: event webhook signature does not verify")
        now = self._clock()
        if self._max_event_age_s is not None and now - int(timestamp) > self._max_event_age_s:
            raise ForgedWebhook("sendgrid: event webhook timestamp too old (replayed?)")
        try:
            events = msgspec.json.decode(body)
        except msgspec.DecodeError as exc:
            raise InvalidInput(f"sendgrid: malformed event webhook: {exc}") from exc
        if not isinstance(events, list):
            raise InvalidInput("sendgrid: event webhook body is not a JSON array")
        received_at = datetime.fromtimestamp(now, UTC)
        return [
            r
            for e in events
            if isinstance(e, dict)
            and (r := receipt_from_sendgrid_event(e, received_at=received_at)) is not None
        ]

    def parse_status_webhook(
        self, url: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[str, list[Receipt]]:
        """(batch id, receipts), as the `Provider` protocol's webhook door expects; the batch
        id is derived from the body, so SendGrid's retry of the same post is recognisable."""
        receipts = self.parse_events(headers, body)
        return hashlib.blake2b(body, digest_size=12).hexdigest(), receipts

    async def aclose(self) -> None:
        await self._client.aclose()


def _complete(results: list[SendResult | None]) -> list[SendResult]:
    done = [r for r in results if r is not None]
    if len(done) != len(results):
        raise AssertionError("an email was left without a result")
    return done


def _errors(resp: httpx.Response) -> tuple[str, dict[int, str]]:
    """(all error messages joined, message per personalization index named by a `field`)."""
    try:
        errors = resp.json().get("errors") or []
    except (ValueError, AttributeError):
        return f"HTTP {resp.status_code}: {resp.text[:300]}", {}
    messages, bad = [], {}
    for err in errors if isinstance(errors, list) else []:
        if not isinstance(err, dict):
            continue
        message, where = str(err.get("message") or ""), err.get("field")
        messages.append(f"{where}: {message}" if where else message)
        m = _FIELD_INDEX.match(where) if isinstance(where, str) else None
        if m:
            bad[int(m[1])] = f"{where}: {message}"
    return "; ".join(messages) or f"HTTP {resp.status_code}", bad
