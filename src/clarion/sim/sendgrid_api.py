"""A SendGrid-v3-compatible email front end for the simulator.

- `POST /v3/mail/send` (Bearer = the simulator's secret): the v3 body (`personalizations`
  ≤ 1,000, `from`, `subject`, `content`, `headers`, `custom_args`, `substitutions`), answered
  202 with `X-Message-Id`; 400 with SendGrid's `{"errors": [{"message", "field"}]}` for a
  malformed body or an invalid address (the field names the personalization); 401 without
  the right key.
- Mailboxes: every delivered recipient's message is kept, fully rendered (substitutions
  applied). `GET /mailboxes` → `{address: count}`; `GET /mailboxes/{address}` →
  `{"address", "messages": [{"sg_message_id", "custom_args", "from", "to", "subject",
  "headers", "text", "html", "raw"}]}` where `raw` is the RFC 5322 message as text.
- Event Webhook: `PATCH` (SendGrid's verb) or `POST /v3/user/webhooks/event/settings` with
  `{"url": …, "enabled": true}` sets where events go; `GET …/settings/signed` gives the
  verification key. Events are posted as JSON arrays (≤ 1,000 events, CRLF-terminated like
  SendGrid's) signed with ECDSA P-256 exactly as SendGrid signs them (`sendgrid_signing`),
  with a key derived from the simulator's secret; a failed post is retried. While no URL is
  set, events are dropped, as SendGrid does.
- Outcomes by domain: `…@bounce.invalid` → processed, bounce (550 5.1.1, no mailbox entry);
  `…@complain.invalid` → processed, delivered, spamreport; anything else → processed,
  delivered. Delivery takes 50 ms × the latency scale.

Events go out from a task of its own, started by the send that queues them and ended when
none are left, so mounting `routes()` is all the app has to do; `SendGridSim.aclose()`
stops it early.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import re
import time
import uuid
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from typing import Any

import httpx
import msgspec
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from clarion.httpclient import AsyncClient
from clarion.sim.sendgrid_signing import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    sign,
    verification_key,
    webhook_private_key,
)
from clarion.sim.state import SimConfig, SimState

MAX_PERSONALIZATIONS = 1000  # SendGrid's limit per request
EVENTS_PER_POST = 1000
DELIVERY_DELAY_S = 0.05  # × the simulator's latency scale
_VALID_EMAIL = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")
_RESERVED_HEADERS = {"from", "to", "subject", "content-type", "dkim-signature", "received"}
_POLICY = policy.SMTP.clone(max_line_length=998)


class _Address(msgspec.Struct, frozen=True):
    email: str
    name: str | None = None


class _Personalization(msgspec.Struct, frozen=True):
    to: list[_Address]
    subject: str | None = None
    headers: dict[str, str] = {}
    substitutions: dict[str, str] = {}
    custom_args: dict[str, str] = {}


class _Content(msgspec.Struct, frozen=True):
    type: str
    value: str


class _MailSend(msgspec.Struct, frozen=True):
    personalizations: list[_Personalization]
    from_: _Address = msgspec.field(name="from")
    content: list[_Content] = []
    subject: str | None = None
    headers: dict[str, str] = {}
    custom_args: dict[str, str] = {}


_decode_mail = msgspec.json.Decoder(_MailSend).decode


def _error(status: int, message: str, field_: str | None = None) -> JSONResponse:
    return JSONResponse({"errors": [{"message": message, "field": field_}]}, status_code=status)


def _render(value: str, substitutions: dict[str, str]) -> str:
    for tag, replacement in substitutions.items():
        value = value.replace(tag, replacement)
    return value


def _raw(kept: dict[str, Any]) -> str:
    """The RFC 5322 text of a kept message."""
    msg = EmailMessage(policy=_POLICY)
    msg["From"] = kept["from"]
    msg["To"] = kept["to"]
    msg["Subject"] = kept["subject"]
    msg["Message-ID"] = f"<{kept['sg_message_id']}@sim.sendgrid.invalid>"
    for name, value in kept["headers"].items():
        msg[name] = value
    msg.set_content(kept["text"] or "")
    if kept["html"] is not None:
        msg.add_alternative(kept["html"], subtype="html")
    return msg.as_string()


@dataclass
class SendGridSim:
    state: SimState
    config: SimConfig
    event_url: str | None = None
    mailboxes: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    # (due on the monotonic clock, sequence, event): a heap, so a late event never holds up
    # an earlier one behind it
    pending: list[tuple[float, int, dict[str, Any]]] = field(default_factory=list)
    _seq: itertools.count[int] = field(default_factory=itertools.count)
    _task: asyncio.Task[None] | None = None

    def __post_init__(self) -> None:
        self._key = webhook_private_key(self.config.secret)
        for name in ("email_requests", "emails_accepted", "email_events_posted"):
            self.state.counts.setdefault(name, 0)

    def routes(self) -> list[Route]:
        return [
            Route("/v3/mail/send", self.mail_send, methods=["POST"]),
            Route(
                "/v3/user/webhooks/event/settings",
                self.event_settings,
                methods=["GET", "PATCH", "POST"],
            ),
            Route("/v3/user/webhooks/event/settings/signed", self.signed_settings),
            Route("/mailboxes", self.mailbox_counts),
            Route("/mailboxes/{address}", self.mailbox),
        ]

    def _authorized(self, request: Request) -> bool:
        return request.headers.get("authorization", "") == f"Bearer {self.config.secret}"

    async def mail_send(self, request: Request) -> Response:
        if not self._authorized(request):
            return _error(401, "The provided authorization grant is invalid, expired, or revoked")
        self.state.counts["email_requests"] += 1
        try:
            mail = _decode_mail(await request.body())
        except msgspec.DecodeError as exc:
            return _error(400, f"Bad Request: {exc}")
        if not 1 <= len(mail.personalizations) <= MAX_PERSONALIZATIONS:
            return _error(
                400,
                "The personalizations field must have at least 1 and no more than 1000 items.",
                "personalizations",
            )
        if not mail.content:
            return _error(400, "The content must have at least one part.", "content")
        for i, p in enumerate(mail.personalizations):
            if not p.to:
                return _error(400, "The to array is required.", f"personalizations.{i}.to")
            for j, to in enumerate(p.to):
                if not _VALID_EMAIL.match(to.email):
                    where = f"personalizations.{i}.to.{j}.email"
                    return _error(400, "Does not contain a valid address.", where)
            if (p.subject or mail.subject) is None:
                return _error(400, "The subject is required.", f"personalizations.{i}.subject")
            if {h.lower() for h in p.headers} & _RESERVED_HEADERS:
                return _error(400, "Reserved header.", f"personalizations.{i}.headers")
            rendered = [_render(v, p.substitutions) for v in (mail.headers | p.headers).values()]
            rendered.append(_render(p.subject or mail.subject or "", p.substitutions))
            if any("\r" in v or "\n" in v for v in rendered):
                where = f"personalizations.{i}.headers"
                return _error(400, "Header values may not contain line breaks.", where)
        x_message_id = uuid.uuid4().hex[:22]
        now = time.time()
        for i, p in enumerate(mail.personalizations):
            for j, to in enumerate(p.to):
                self._accept(mail, p, to, f"{x_message_id}.sim{i}.{j}", now)
        self._ensure_dispatcher()
        return Response(status_code=202, headers={"X-Message-Id": x_message_id})

    def _accept(
        self, mail: _MailSend, p: _Personalization, to: _Address, sg_id: str, now: float
    ) -> None:
        self.state.counts["emails_accepted"] += 1
        args = mail.custom_args | p.custom_args
        base = {"email": to.email, "sg_message_id": sg_id, "smtp-id": f"<{sg_id}@sim>", **args}
        delay = DELIVERY_DELAY_S * self.config.latency_scale
        domain = to.email.rpartition("@")[2].lower()
        self._event(now, "processed", base)
        if domain == "bounce.invalid":
            self._event(
                now + delay, "bounce", base, type="bounce", status="5.1.1",
                reason="550 5.1.1 The email account that you tried to reach does not exist.",
                bounce_classification="Invalid Address",
            )  # fmt: skip
            return
        self._deliver(mail, p, to, sg_id, args)
        self._event(now + delay, "delivered", base, response="250 2.0.0 OK")
        if domain == "complain.invalid":
            self._event(now + 2 * delay, "spamreport", base)

    def _event(self, at: float, kind: str, base: dict[str, Any], **more: Any) -> None:
        if self.event_url is None:
            return  # SendGrid posts events only to a configured webhook
        event = {**base, **more, "event": kind, "timestamp": int(at)}
        event["sg_event_id"] = uuid.uuid4().hex
        due = time.monotonic() + max(0.0, at - time.time())
        heapq.heappush(self.pending, (due, next(self._seq), event))

    def _deliver(
        self, mail: _MailSend, p: _Personalization, to: _Address, sg_id: str, args: dict[str, str]
    ) -> None:
        subs = p.substitutions
        sender = mail.from_
        parts = {c.type: _render(c.value, subs) for c in mail.content}
        # Kept as parts; `raw` is rendered when a mailbox is read (the email package is slow,
        # and most simulated mail is never looked at).
        self.mailboxes.setdefault(to.email.lower(), []).append(
            {
                "sg_message_id": sg_id,
                "custom_args": args,
                "from": f"{sender.name} <{sender.email}>" if sender.name else sender.email,
                "to": f"{to.name} <{to.email}>" if to.name else to.email,
                "subject": _render(p.subject or mail.subject or "", subs),
                "headers": {k: _render(v, subs) for k, v in (mail.headers | p.headers).items()},
                "text": parts.get("text/plain"),
                "html": parts.get("text/html"),
            }
        )

    async def event_settings(self, request: Request) -> Response:
        if not self._authorized(request):
            return _error(401, "The provided authorization grant is invalid, expired, or revoked")
        if request.method != "GET":
            try:
                settings = msgspec.json.decode(await request.body(), type=dict[str, Any])
            except msgspec.DecodeError as exc:
                return _error(400, f"Bad Request: {exc}")
            url = settings.get("url")
            if not isinstance(url, str) or not url.startswith(("http://", "https://")):
                return _error(400, "url must be an http(s) URL", "url")
            self.event_url = url if settings.get("enabled", True) else None
        return JSONResponse({"enabled": self.event_url is not None, "url": self.event_url or ""})

    async def signed_settings(self, request: Request) -> Response:
        if not self._authorized(request):
            return _error(401, "The provided authorization grant is invalid, expired, or revoked")
        return JSONResponse({"enabled": True, "public_key": verification_key(self._key)})

    async def mailbox_counts(self, request: Request) -> Response:
        return JSONResponse({a: len(m) for a, m in self.mailboxes.items()})

    async def mailbox(self, request: Request) -> Response:
        address = request.path_params["address"].lower()
        messages = [m | {"raw": _raw(m)} for m in self.mailboxes.get(address, [])]
        return JSONResponse({"address": address, "messages": messages})

    # --- the event dispatcher -------------------------------------------------------------

    def _ensure_dispatcher(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._dispatch())

    async def _dispatch(self) -> None:
        """Post due events, oldest first, to the configured URL; a failed post's events are
        tried again after a second. Ends once nothing is left (the next send starts it)."""
        async with AsyncClient(timeout=30) as client:
            while self.pending:
                now = time.monotonic()
                batch: list[dict[str, Any]] = []
                while self.pending and self.pending[0][0] <= now and len(batch) < EVENTS_PER_POST:
                    batch.append(heapq.heappop(self.pending)[2])
                if not batch:
                    await asyncio.sleep(min(0.02, max(0.0, self.pending[0][0] - now)))
                    continue
                if await self._post(client, batch):
                    self.state.counts["email_events_posted"] += len(batch)
                    continue
                retry_at = time.monotonic() + 1.0
                for event in batch:
                    heapq.heappush(self.pending, (retry_at, next(self._seq), event))
            # Decided with nothing pending and no await since: a send that queues events
            # after this line sees no dispatcher and starts a new one.
            self._task = None

    async def _post(self, client: httpx.AsyncClient, events: list[dict[str, Any]]) -> bool:
        url = self.event_url
        if url is None:
            return True  # the webhook was switched off: SendGrid drops what it has not posted
        body = msgspec.json.encode(events) + b"\r\n"
        timestamp = str(int(time.time()))
        headers = {
            "content-type": "application/json",
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: sign(self._key, timestamp, body),
        }
        try:
            resp = await client.post(url, content=body, headers=headers)
        except httpx.HTTPError:
            return False
        return resp.status_code < 300

    async def aclose(self) -> None:
        """Stop the dispatcher (events not yet posted are dropped)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def routes(state: SimState, config: SimConfig) -> list[Route]:
    """The SendGrid-compatible routes, for `create_app` to mount."""
    return SendGridSim(state, config).routes()
