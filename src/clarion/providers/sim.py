"""Adapter for Clarion's simulator's HTTP batch API (`clarion sim`).

Sends up to 1,000 messages a request; receipts come back as JSON batches to
`/webhooks/sim/status`, signed as Standard Webhooks are (HMAC-SHA256 of id, timestamp and
body with the shared secret).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime

import httpx
import msgspec

from clarion.domain.messages import SendResult
from clarion.domain.records import InboundMessage, OutboundMessage, Receipt
from clarion.errors import ForgedWebhook, InvalidInput, ProviderError
from clarion.httpclient import AsyncClient
from clarion.sim.wire import (
    ID_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    InboundPost,
    SendRequest,
    SendResponse,
    SimMessage,
)

_encode = msgspec.json.Encoder().encode
_decode_response = msgspec.json.Decoder(SendResponse).decode
_decode_inbound = msgspec.json.Decoder(InboundPost).decode


# The simulator's receipts (`sim.wire.SimReceipt`) have the fields of Clarion's, so its
# bodies are read straight into receipts (at bench rates, making each receipt again was a
# twentieth of the receipts side). Its statuses are Twilio's; those Clarion names otherwise
# are renamed, the rest pass as they are (a status Clarion does not know moves nothing).
_STATUS = {"queued": "accepted", "sending": "accepted"}
_RENAMED = frozenset(_STATUS)
# How far a webhook's signed timestamp may be from now (Standard Webhooks' default).
WEBHOOK_TOLERANCE_S = 300


class _ReceiptPost(msgspec.Struct, frozen=True):
    batch_id: str
    receipts: list[Receipt]


class _StatusPost(msgspec.Struct, frozen=True):
    receipts: list[Receipt]


_decode_receipts = msgspec.json.Decoder(_ReceiptPost).decode
_decode_status = msgspec.json.Decoder(_StatusPost).decode


class SimProvider:
    max_batch = 1000
    idempotent = True

    def __init__(
        self,
        base_url: str,
        secret: str,
        callback_url: str,
        inbound_url: str | None = None,
        timeout_s: float = 30,
        name: str = "sim",
        clock_s: Callable[[], float] = time.time,
    ) -> None:
        self.name = name  # the account's name: its webhooks are /webhooks/{name}/…
        self._client = AsyncClient(
            base_url=base_url,
            timeout=timeout_s,
            limits=httpx.Limits(max_connections=16, max_keepalive_connections=16),
        )
        self._secret = secret
        self._clock_s = clock_s
        self._callback_url = callback_url
        self._inbound_url = inbound_url

    async def send(self, sender: str, messages: Sequence[OutboundMessage]) -> list[SendResult]:
        if len(messages) > self.max_batch:
            raise ValueError(f"at most {self.max_batch} messages a request")
        body = _encode(
            SendRequest(
                inbound_url=self._inbound_url,
                callback_url=self._callback_url,
                messages=[SimMessage(m.message_id, m.to, sender, m.body) for m in messages],
            )
        )
        try:
            resp = await self._client.post(
                "/v1/messages", content=body, headers={"content-type": "application/json"}
            )
        except httpx.HTTPError as exc:
            raise ProviderError(self.name, f"request failed: {exc!r}") from exc
        if resp.status_code == 429 or resp.status_code >= 500:
            retry = resp.headers.get("retry-after")
            raise ProviderError(
                self.name,
                f"HTTP {resp.status_code}",
                retry_after_s=float(retry) if retry else None,
                throttled=resp.status_code == 429,
            )
        if resp.status_code != 200:
            raise ProviderError(self.name, f"HTTP {resp.status_code}: {resp.text[:200]}")
        return [
            SendResult(
                message_id=r.id,
                accepted=r.status == "accepted",
                provider_message_id=r.provider_id,
                error_code=r.error_code,
                error_detail=r.error_message,
            )
            for r in _decode_response(resp.content).results
        ]

    async def lookup_carriers(self, numbers: Sequence[str]) -> dict[str, str]:
        """The carrier of each number the network knows (invalid numbers are left out)."""
        found: dict[str, str] = {}
        for i in range(0, len(numbers), self.max_batch):
            chunk = list(numbers[i : i + self.max_batch])
            try:
                resp = await self._client.post("/v1/lookup", content=_encode({"numbers": chunk}))
            except httpx.HTTPError as exc:
                raise ProviderError(self.name, f"lookup failed: {exc!r}") from exc
            if resp.status_code != 200:
                raise ProviderError(self.name, f"lookup: HTTP {resp.status_code}")
            carriers: dict[str, str | None] = resp.json()["carriers"]
            found.update({n: c for n, c in carriers.items() if c})
        return found

    async def fetch_status(self, refs: Sequence[tuple[str, str | None]]) -> list[Receipt]:
        """What the network says now about messages (our id, its id) whose final receipt
        never came: the reconciliation job's question."""
        receipts: list[Receipt] = []
        for i in range(0, len(refs), self.max_batch):
            ids = [mid for mid, _ in refs[i : i + self.max_batch]]
            try:
                resp = await self._client.post("/v1/messages/status", content=_encode({"ids": ids}))
            except httpx.HTTPError as exc:
                raise ProviderError(self.name, f"status: {exc!r}") from exc
            if resp.status_code != 200:
                raise ProviderError(self.name, f"status: HTTP {resp.status_code}")
            receipts += _renamed(_decode_status(resp.content).receipts)
        return receipts

    def _verify(self, headers: Mapping[str, str], body: bytes, what: str) -> None:
        """Standard Webhooks' check: a `v1` HMAC-SHA256 of "id.timestamp.body" with the
        shared secret, and a timestamp within `WEBHOOK_TOLERANCE_S` of now (a replay of a
        captured request fails once it is older). Compared as bytes: a header is anything."""
        msg_id = headers.get(ID_HEADER, "")
        timestamp = headers.get(TIMESTAMP_HEADER, "")
        given = headers.get(SIGNATURE_HEADER, "")
        if not (msg_id and given and timestamp.isascii() and timestamp.isdigit()):
            raise ForgedWebhook(f"sim: {what} webhook is not signed")
        if len(timestamp) > 12 or abs(self._clock_s() - int(timestamp)) > WEBHOOK_TOLERANCE_S:
            raise ForgedWebhook(f"sim: {what} webhook timestamp is not within 5 minutes of now")
        signed = f"{msg_id}.{timestamp}.".encode("utf-8", "surrogateescape") + body
        mac = hmac.new(self._secret.encode(), signed, hashlib.sha256).digest()
        expected = b"v1," + base64.b64encode(mac)
        if not any(
            hmac.compare_digest(expected, s.encode("utf-8", "surrogateescape"))
            for s in given.split(" ")
        ):
            raise ForgedWebhook(f"sim: {what} webhook signature does not verify")

    def parse_inbound_webhook(
        self, url: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[str, list[InboundMessage]]:
        self._verify(headers, body, "inbound")
        try:
            post = _decode_inbound(body)
        except msgspec.DecodeError as exc:
            raise InvalidInput(f"sim: malformed inbound webhook: {exc}") from exc
        return post.batch_id, [
            InboundMessage(
                provider_message_id=m.id,
                from_=m.from_,
                to=m.to,
                body=m.body,
                received_at=m.received_at or datetime.now(UTC),
            )
            for m in post.messages
        ]

    def parse_status_webhook(
        self, url: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[str, list[Receipt]]:
        self._verify(headers, body, "status")
        try:
            post = _decode_receipts(body)
        except msgspec.DecodeError as exc:  # also ValidationError (a subclass)
            raise InvalidInput(f"sim: malformed status webhook: {exc}") from exc
        return post.batch_id, _renamed(post.receipts)

    async def aclose(self) -> None:
        await self._client.aclose()


def _renamed(receipts: list[Receipt]) -> list[Receipt]:
    """The receipts with Clarion's names for their statuses."""
    if _RENAMED.isdisjoint({r.status for r in receipts}):
        return receipts  # the simulator's own reports: sent, delivered, undelivered
    return [
        msgspec.structs.replace(r, status=_STATUS[r.status]) if r.status in _RENAMED else r
        for r in receipts
    ]
