"""Adapter for Twilio's Programmable Messaging API (and Lookup v2 for carriers).

One form-encoded request per message (Twilio has no batch send and no idempotency key), over
one kept-alive client with bounded concurrency. Status callbacks come back one per status to
`{public_url}/webhooks/{name}/status?mid=<our message id>`, signed with `X-Twilio-Signature`.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import parse_qs, parse_qsl, quote, urlsplit, urlunsplit

import httpx
import msgspec

from clarion.domain.messages import SendResult
from clarion.domain.records import InboundMessage, OutboundMessage, Receipt
from clarion.errors import ConfigurationError, ForgedWebhook, InvalidInput, ProviderError
from clarion.httpclient import AsyncClient

log = logging.getLogger(__name__)

API_BASE = "https://api.twilio.com"
LOOKUP_BASE = "https://lookups.twilio.com"
SIGNATURE_HEADER = "X-Twilio-Signature"
# Present when a webhook is signed with a SharedKey: "key=<sharedKeyId>,algorithm=<algorithm>";
# absent means the account's auth token and HMAC-SHA1 (twilio.request_validator).
SIGNATURE_SETTINGS_HEADER = "X-Twilio-Webhooks-Signature-Settings"
_HASHES = {"HMAC_SHA1": hashlib.sha1, "HMAC_SHA256": hashlib.sha256}

# Twilio's MessageStatus values → Clarion's statuses.
STATUS = {
    "queued": "accepted",
    "accepted": "accepted",
    "scheduled": "accepted",
    "sending": "accepted",
    "sent": "sent",
    "delivered": "delivered",
    "read": "delivered",
    "undelivered": "undelivered",
    "failed": "failed",
    "canceled": "failed",
}
_UNAUTHORIZED = (401, 403, 404)  # bad credentials or account: nothing can be sent


class _Resource(msgspec.Struct):
    """The fields of Twilio's answers this adapter reads (a message, an error)."""

    sid: str | None = None
    code: int | None = None
    message: str | None = None


class _LineType(msgspec.Struct):
    carrier_name: str | None = None


class _Lookup(msgspec.Struct):
    line_type_intelligence: _LineType | None = None


_decode_resource = msgspec.json.Decoder(_Resource).decode
_decode_lookup = msgspec.json.Decoder(_Lookup).decode


class TwilioProvider:
    """A Twilio account. `auth_token` signs both our API calls and Twilio's webhooks;
    `shared_keys` (SharedKey id → secret) verifies webhooks signed with a SharedKey."""

    max_batch = 100
    # Twilio has no idempotency key for messages: a call cut short is never repeated.
    idempotent = False

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        *,
        public_url: str,
        api_base: str = API_BASE,
        lookup_base: str = LOOKUP_BASE,
        shared_keys: Mapping[str, str] | None = None,
        name: str = "twilio",
        concurrency: int = 16,
        timeout_s: float = 30,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.name = name
        self.account_sid = account_sid
        self._token = auth_token
        self._shared_keys = dict(shared_keys or {})
        self._public_url = public_url.rstrip("/")
        self._api_base = api_base.rstrip("/")
        self._lookup_base = lookup_base.rstrip("/")
        self._clock = clock
        self._slots = asyncio.Semaphore(concurrency)
        self._client = AsyncClient(
            auth=httpx.BasicAuth(account_sid, auth_token),
            timeout=timeout_s,
            limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
            transport=transport,
        )

    @classmethod
    def from_env(cls, public_url: str, env: Mapping[str, str] = os.environ) -> TwilioProvider:
        """From `CLARION_TWILIO_ACCOUNT_SID` and `CLARION_TWILIO_AUTH_TOKEN` (required),
        `CLARION_TWILIO_API_BASE`, `CLARION_TWILIO_LOOKUP_BASE` and
        `CLARION_TWILIO_SHARED_KEYS` ("id=secret,id=secret") (optional)."""
        missing = [
            var
            for var in ("CLARION_TWILIO_ACCOUNT_SID", "CLARION_TWILIO_AUTH_TOKEN")
            if not env.get(var)
        ]
        if missing:
            raise ConfigurationError(f"twilio: set {' and '.join(missing)}")
        keys = (kv.partition("=") for kv in env.get("CLARION_TWILIO_SHARED_KEYS", "").split(","))
        return cls(
            env["CLARION_TWILIO_ACCOUNT_SID"],
            env["CLARION_TWILIO_AUTH_TOKEN"],
            public_url=public_url,
            api_base=env.get("CLARION_TWILIO_API_BASE") or API_BASE,
            lookup_base=env.get("CLARION_TWILIO_LOOKUP_BASE") or LOOKUP_BASE,
            shared_keys={k.strip(): v.strip() for k, _, v in keys if k.strip() and v.strip()},
        )

    def __repr__(self) -> str:  # never the token
        return (
            f"TwilioProvider(name={self.name!r}, account_sid={self.account_sid!r}, "
            f"api_base={self._api_base!r}, public_url={self._public_url!r})"
        )

    __str__ = __repr__

    # -- sending ---------------------------------------------------------------------------

    async def send(self, sender: str, messages: Sequence[OutboundMessage]) -> list[SendResult]:
        """One API call per message, at most `concurrency` at a time. Per-message problems
        are results; `ProviderError` only when the account's credentials are refused for
        every message (nothing was handed over) or the client is closed."""
        if len(messages) > self.max_batch:
            raise ValueError(f"at most {self.max_batch} messages a call")
        if self._client.is_closed:
            raise ProviderError(self.name, "the client is closed")
        url = f"{self._api_base}/2010-04-01/Accounts/{self.account_sid}/Messages.json"
        results = await asyncio.gather(*(self._send_one(url, sender, m) for m in messages))
        if results and all(r.error_code == "unauthorized" for r in results):
            raise ProviderError(self.name, f"credentials refused: {results[0].error_detail}")
        return results

    async def _send_one(self, url: str, sender: str, m: OutboundMessage) -> SendResult:
        callback = f"{self._public_url}/webhooks/{self.name}/status?mid={quote(m.message_id)}"
        form = {"To": m.to, "From": sender, "Body": m.body, "StatusCallback": callback}
        try:
            async with self._slots:
                resp = await self._client.post(url, data=form)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            return _again(m.message_id, "network", repr(exc))  # never left this host
        except httpx.HTTPError as exc:
            # The request may have reached Twilio, so sending again may text the handset
            # twice; the distinct code lets the send stage treat it as of unknown fate.
            return _again(m.message_id, "no_answer", repr(exc))
        return self._result(m.message_id, resp)

    def _result(self, message_id: str, resp: httpx.Response) -> SendResult:
        status = resp.status_code
        try:
            answer = _decode_resource(resp.content)
        except msgspec.DecodeError:
            answer = _Resource(message=resp.text[:200])
        if 200 <= status < 300:
            # Accepted even if the body is unreadable: the callbacks name our message id.
            return SendResult(message_id=message_id, accepted=True, provider_message_id=answer.sid)
        code, detail = str(answer.code or status), answer.message or f"HTTP {status}"
        if status == 429 or status >= 500:
            return _again(message_id, code, detail, status == 429, self._retry_after_s(resp))
        if status in _UNAUTHORIZED:
            return _again(message_id, "unauthorized", f"HTTP {status}: {detail}")
        # 400 and other 4xx: Twilio refused this message for good (21211, 21610, 21614 …).
        return SendResult(
            message_id=message_id, accepted=False, error_code=code, error_detail=detail
        )

    def _retry_after_s(self, resp: httpx.Response) -> float | None:
        value = resp.headers.get("retry-after")
        if not value:
            return None
        try:
            return max(0.0, float(value))
        except ValueError:
            pass
        try:  # an HTTP date
            return max(0.0, (parsedate_to_datetime(value) - self._clock()).total_seconds())
        except (TypeError, ValueError):
            return None

    # -- reconciliation --------------------------------------------------------------------

    async def fetch_status(self, refs: Sequence[tuple[str, str | None]]) -> list[Receipt]:
        """The current status of messages (our id, Twilio's sid) whose final callback never
        came: one `GET …/Messages/{sid}.json` each, bounded concurrency. Messages without a
        sid (no answer was recorded) cannot be asked about."""
        asked = [(mid, sid) for mid, sid in refs if sid]
        answers = await asyncio.gather(*(self._fetch_one(mid, sid) for mid, sid in asked))
        return [r for r in answers if r is not None]

    async def _fetch_one(self, message_id: str, sid: str) -> Receipt | None:
        url = f"{self._api_base}/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}.json"
        try:
            async with self._slots:
                resp = await self._client.get(url)
        except httpx.HTTPError as exc:
            log.warning("twilio: status of %s: %r", sid, exc)
            return None
        if resp.status_code != 200:
            return None
        body = resp.json()
        status = STATUS.get(str(body.get("status")))
        if status is None:
            return None
        code = body.get("error_code")
        return Receipt(
            message_id=message_id, status=status, occurred_at=self._clock(),
            provider_message_id=sid, error_code=str(code) if code else None,
        )  # fmt: skip

    # -- carriers --------------------------------------------------------------------------

    async def lookup_carriers(self, numbers: Sequence[str]) -> dict[str, str]:
        """Lookup v2 line type intelligence, one request per number, bounded concurrency.
        Numbers Twilio cannot place are left out; so are failed lookups, unless every one
        failed for a passing reason (then `ProviderError`, and the caller looks again)."""
        if self._client.is_closed:
            raise ProviderError(self.name, "the client is closed")
        answers = await asyncio.gather(*(self._lookup_one(n) for n in numbers))
        found = {n: carrier for n, (carrier, _) in zip(numbers, answers, strict=True) if carrier}
        failures = [error for _, error in answers if error]
        if failures and not found and len(failures) == len(numbers):
            raise ProviderError(self.name, f"lookup failed: {failures[0]}")
        if failures:
            log.warning(
                "twilio lookup: %d of %d failed: %s", len(failures), len(numbers), failures[0]
            )
        return found

    async def _lookup_one(self, number: str) -> tuple[str | None, str | None]:
        """(carrier, None), (None, None) when Twilio does not know it, (None, error)."""
        url = f"{self._lookup_base}/v2/PhoneNumbers/{quote(number, safe='')}"
        try:
            async with self._slots:
                resp = await self._client.get(url, params={"Fields": "line_type_intelligence"})
        except httpx.HTTPError as exc:
            return None, repr(exc)
        if resp.status_code in (400, 404):
            return None, None
        if resp.status_code != 200:
            return None, f"HTTP {resp.status_code}"
        try:
            line = _decode_lookup(resp.content).line_type_intelligence
        except msgspec.DecodeError as exc:
            return None, f"malformed answer: {exc}"
        return (line.carrier_name if line else None) or None, None

    # -- webhooks --------------------------------------------------------------------------

    def parse_status_webhook(
        self, url: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[str, list[Receipt]]:
        """One status callback → (MessageSid:MessageStatus, [receipt]). The receipt's
        message id is the `mid` of the callback URL ("" if absent: matched by the sid)."""
        fields = self._verified_fields(url, headers, body, "status")
        sid, twilio_status = _required(fields, "MessageSid"), _required(fields, "MessageStatus")
        status = STATUS.get(twilio_status.lower())
        if status is None:
            raise InvalidInput(
                f"twilio: unknown MessageStatus {twilio_status!r}", field="MessageStatus"
            )
        mid = parse_qs(urlsplit(url).query).get("mid", [""])[0]
        error = fields.get("ErrorCode") or None
        receipt = Receipt(
            message_id=mid,
            status=status,
            occurred_at=self._clock(),  # Twilio's callbacks carry no time of their own
            provider_message_id=sid,
            error_code=error if error != "0" else None,
        )
        return f"{sid}:{twilio_status}", [receipt]

    def parse_inbound_webhook(
        self, url: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[str, list[InboundMessage]]:
        """One incoming message → (MessageSid, [message])."""
        fields = self._verified_fields(url, headers, body, "inbound")
        sid = _required(fields, "MessageSid")
        message = InboundMessage(
            provider_message_id=sid,
            from_=_required(fields, "From"),
            to=_required(fields, "To"),
            body=fields.get("Body", ""),
            received_at=self._clock(),
        )
        return sid, [message]

    def _verified_fields(
        self, url: str, headers: Mapping[str, str], body: bytes, what: str
    ) -> dict[str, str]:
        """The webhook's parameters, once its signature verifies (as Twilio's
        RequestValidator does: the URL with and without its port, SHA-1 or SHA-256, and a
        `bodySHA256` query parameter for a JSON body)."""
        signature = _header(headers, SIGNATURE_HEADER)
        if not signature:
            raise ForgedWebhook(f"{self.name}: {what} webhook without {SIGNATURE_HEADER}")
        algorithm, key_id = _settings(_header(headers, SIGNATURE_SETTINGS_HEADER))
        if algorithm.upper() not in _HASHES:
            raise ForgedWebhook(f"{self.name}: unsupported signature algorithm {algorithm!r}")
        secret = self._shared_keys.get(key_id) if key_id else self._token
        if secret is None:
            raise ForgedWebhook(f"{self.name}: {what} webhook signed with unknown key {key_id!r}")
        try:
            text = body.decode()
        except UnicodeDecodeError as exc:
            raise InvalidInput(f"{self.name}: {what} webhook is not UTF-8") from exc
        body_hash = parse_qs(urlsplit(url).query).get("bodySHA256")
        if body_hash:  # a JSON body: its hash is in the signed URL, no params are signed
            given = hashlib.sha256(body).hexdigest()
            if not hmac.compare_digest(given.encode(), body_hash[0].encode()):
                raise ForgedWebhook(f"{self.name}: {what} webhook body does not match its hash")
            pairs: list[tuple[str, str]] = []
        else:
            pairs = parse_qsl(text, keep_blank_values=True)
        expected = [
            signature_of(secret, candidate, pairs, algorithm)
            for candidate in _signed_urls(url, self._public_url)
        ]
        # Every candidate is compared, so the time taken does not say which one matched.
        matches = [hmac.compare_digest(e.encode(), signature.encode()) for e in expected]
        if not any(matches):
            raise ForgedWebhook(f"{self.name}: {what} webhook signature does not verify")
        return _json_fields(text, self.name, what) if body_hash else dict(pairs)

    async def aclose(self) -> None:
        await self._client.aclose()


def _again(
    message_id: str,
    code: str,
    detail: str,
    throttled: bool = False,
    retry_after_s: float | None = None,
) -> SendResult:
    """A message not handed over for a passing reason: it waits and goes again."""
    return SendResult(
        message_id=message_id,
        accepted=False,
        retry=True,
        throttled=throttled,
        error_code=code,
        error_detail=detail,
        retry_after_s=retry_after_s,
    )


def signature_of(
    secret: str, url: str, params: Iterable[tuple[str, str]], algorithm: str = "HMAC_SHA1"
) -> str:
    """Twilio's signature: Base64(HMAC(secret, url + each param name followed by its
    values, names sorted, each name's distinct values sorted)), HMAC_SHA1 or HMAC_SHA256."""
    values: dict[str, set[str]] = {}
    for name, value in params:
        values.setdefault(name, set()).add(value)
    text = url + "".join(n + v for n in sorted(values) for v in sorted(values[n]))
    mac = hmac.new(secret.encode(), text.encode(), _HASHES[algorithm.upper()])
    return base64.b64encode(mac.digest()).decode()


def _signed_urls(url: str, public_url: str) -> list[str]:
    """The URLs Twilio may have signed: the one we were called at, and the same path and
    query under our public URL (behind a proxy the app sees an internal address), each
    with and without its port (Twilio is inconsistent about the default port)."""
    parts = urlsplit(url)
    urls = {url}
    if public_url:
        public = urlsplit(public_url)
        urls.add(
            urlunsplit(
                (
                    public.scheme,
                    public.netloc,
                    public.path + parts.path,
                    parts.query,
                    parts.fragment,
                )
            )
        )
    out: set[str] = set()
    for u in urls:
        p = urlsplit(u)
        host = p.netloc.rsplit("@", 1)[-1]
        userinfo = p.netloc[: len(p.netloc) - len(host)]
        bare = host.rsplit(":", 1)[0] if p.port else host
        port = p.port or (443 if p.scheme == "https" else 80)
        out.add(u)
        out.add(urlunsplit(p._replace(netloc=userinfo + bare)))
        out.add(urlunsplit(p._replace(netloc=f"{userinfo}{bare}:{port}")))
    return sorted(out)


def _settings(header: str | None) -> tuple[str, str | None]:
    """(algorithm, SharedKey id) of the signature settings header; SHA-1 and the auth token
    when it is absent."""
    algorithm, key_id = "HMAC_SHA1", None
    for part in (header or "").split(","):
        name, sep, value = part.partition("=")
        if sep and value.strip():
            if name.strip() == "algorithm":
                algorithm = value.strip()
            elif name.strip() == "key":
                key_id = value.strip()
    return algorithm, key_id


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:  # a plain dict is case-sensitive, Starlette's headers are not
        lower = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == lower), None)
    return value


def _required(fields: Mapping[str, str], name: str) -> str:
    value = fields.get(name)
    if not value:
        raise InvalidInput(f"twilio: webhook without {name}", field=name)
    return value


def _json_fields(text: str, provider: str, what: str) -> dict[str, str]:
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:  # RecursionError: nested thousands deep
        raise InvalidInput(f"{provider}: malformed {what} webhook: {exc}") from exc
    if not isinstance(data, dict):
        raise InvalidInput(f"{provider}: malformed {what} webhook: not an object")
    return {str(k): str(v) for k, v in data.items() if v is not None}
