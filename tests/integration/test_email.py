"""Email against real peers: an SMTP server (aiosmtpd) for `SmtpProvider`, and the
simulator's SendGrid-compatible API, whose signed Event Webhook posts reach a real HTTP
receiver, for `SendGridProvider`."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, message_from_string, policy
from typing import Any

import dkim
import httpx
import pytest
import uvicorn
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from clarion.bus.embedded import free_port
from clarion.domain.records import Receipt
from clarion.email import DkimKey, OutboundEmail, generate_dkim_key
from clarion.errors import ForgedWebhook
from clarion.providers.sendgrid import SendGridProvider
from clarion.providers.smtp import SmtpProvider
from clarion.sim.process import SimProcess
from tests.conftest import SIM_SECRET

# --- SMTP ---------------------------------------------------------------------------------


@dataclass
class RecordingHandler:
    """Accepts mail, except RCPT TO hard@… (550 5.1.1) and soft@… (451 4.3.0)."""

    received: list[tuple[tuple[str, int], str, list[str], bytes]] = field(default_factory=list)

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        local = address.partition("@")[0]
        if local == "hard":
            return "550 5.1.1 <hard@example.net>: Recipient address rejected: User unknown"
        if local == "soft":
            return "451 4.3.0 Temporary lookup failure, try again later"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        assert isinstance(envelope.content, bytes)
        peer = session.peer
        assert isinstance(peer, tuple)
        self.received.append(
            (peer, envelope.mail_from or "", list(envelope.rcpt_tos), envelope.content)
        )
        return "250 2.0.0 OK queued"


@dataclass
class SmtpServer:
    handler: RecordingHandler
    port: int
    controller: Controller | None = None

    def start(self) -> None:
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    server = SmtpServer(RecordingHandler(), free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def dkim_key() -> DkimKey:
    return generate_dkim_key("mail2026", "brand.example", randbits=random.Random(11).getrandbits)


def dns(key: DkimKey) -> Callable[..., bytes | None]:
    record = key.txt_record().encode()
    return lambda name, timeout=5: record if name == f"{key.dns_name}.".encode() else None


def email_to(i: int, to: str) -> OutboundEmail:
    return OutboundEmail(
        message_id=f"00000000-0000-4000-8000-{i:012d}",
        to=to,
        from_addr="Brand <news@brand.example>",
        subject=f"Your offer #{i}",
        text=f"Hello {i}, this week only.",
        html=f"<p>Hello {i}, this week only.</p>",
        unsubscribe_url=f"https://clarion.example.com/u/token{i}",
        unsubscribe_mailto="mailto:unsubscribe@brand.example",
    )


def provider_for(server: SmtpServer, key: DkimKey) -> SmtpProvider:
    return SmtpProvider(
        host="127.0.0.1", port=server.port, tls="off", dkim=key, pool_size=2,
        local_hostname="clarion.test", timeout_s=5,
    )  # fmt: skip


async def test_smtp_sends_signed_one_click_mail_over_a_pool_of_two(
    smtp_server: SmtpServer, dkim_key: DkimKey
) -> None:
    emails = [
        email_to(i, "hard@example.net" if i % 10 == 3 else
                 "soft@example.net" if i % 10 == 7 else f"user{i}@example.net")
        for i in range(30)
    ]  # fmt: skip
    provider = provider_for(smtp_server, dkim_key)
    try:
        results = await provider.send_emails(emails)
    finally:
        await provider.aclose()

    assert [r.message_id for r in results] == [e.message_id for e in emails]
    for email, result in zip(emails, results, strict=True):
        if email.to.startswith("hard@"):
            assert (result.accepted, result.retry, result.error_code) == (False, False, "smtp:550")
            assert "5.1.1" in (result.error_detail or "")
        elif email.to.startswith("soft@"):
            assert (result.accepted, result.retry, result.error_code) == (False, True, "smtp:451")
        else:
            assert result.accepted
            assert result.provider_message_id == f"{email.message_id}@brand.example"

    received = smtp_server.handler.received
    assert len(received) == 24
    by_rcpt = {rcpts[0]: raw for _, _, rcpts, raw in received}
    assert set(by_rcpt) == {e.to for e in emails if e.to.startswith("user")}
    assert {sender for _, sender, _, _ in received} == {"news@brand.example"}
    for email in emails:
        if email.to not in by_rcpt:
            continue
        raw = by_rcpt[email.to]
        assert dkim.verify(raw, dnsfunc=dns(dkim_key)), email.to
        msg = message_from_bytes(raw, policy=policy.default)
        assert msg["List-Unsubscribe"] == (
            f"<{email.unsubscribe_url}>, <mailto:unsubscribe@brand.example>"
        )
        assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert msg["Message-ID"] == f"<{email.message_id}@brand.example>"
        assert msg["Subject"] == email.subject
    # Two persistent sessions carried all 24 transactions.
    assert len({peer for peer, _, _, _ in received}) == 2


async def test_smtp_pool_reconnects_after_the_server_restarts(
    smtp_server: SmtpServer, dkim_key: DkimKey
) -> None:
    provider = provider_for(smtp_server, dkim_key)
    try:
        first = await provider.send_emails([email_to(i, f"a{i}@example.net") for i in range(4)])
        smtp_server.stop()  # drops both pooled sessions
        smtp_server.start()
        second = await provider.send_emails([email_to(i, f"b{i}@example.net") for i in range(4)])
    finally:
        await provider.aclose()
    assert all(r.accepted for r in first + second)
    assert len(smtp_server.handler.received) == 8


async def test_smtp_down_turns_into_retries_not_failures(dkim_key: DkimKey) -> None:
    nobody = SmtpServer(RecordingHandler(), free_port())  # never started
    provider = provider_for(nobody, dkim_key)
    results = await provider.send_emails([email_to(i, f"c{i}@example.net") for i in range(5)])
    await provider.aclose()
    assert [(r.accepted, r.retry, r.error_code) for r in results] == [
        (False, True, "smtp:connect")
    ] * 5


# --- SendGrid (the simulator's API) -------------------------------------------------------


@dataclass
class Receiver:
    """A tiny HTTP server that keeps every Event Webhook post (headers, body)."""

    url: str
    posts: list[tuple[dict[str, str], bytes]]


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    posts: list[tuple[dict[str, str], bytes]] = []

    async def events(request: Request) -> Response:
        posts.append((dict(request.headers), await request.body()))
        return Response(status_code=200)

    port = free_port()
    app = Starlette(routes=[Route("/webhooks/sendgrid", events, methods=["POST"])])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    yield Receiver(f"http://127.0.0.1:{port}/webhooks/sendgrid", posts)
    server.should_exit = True
    await task


def recipient(i: int) -> str:
    if i % 100 == 11:
        return f"gone{i}@bounce.invalid"
    if i % 100 == 22:
        return f"angry{i}@complain.invalid"
    return f"user{i}@example.com"


async def test_sendgrid_sends_2500_and_hears_back_through_signed_events(
    sim: SimProcess, receiver: Receiver
) -> None:
    auth = {"authorization": f"Bearer {SIM_SECRET}"}
    async with httpx.AsyncClient(base_url=sim.url, headers=auth, timeout=10) as api:
        settings = await api.patch(
            "/v3/user/webhooks/event/settings", json={"enabled": True, "url": receiver.url}
        )
        assert settings.status_code == 200
        public_key = (await api.get("/v3/user/webhooks/event/settings/signed")).json()["public_key"]
        requests_before = (await api.get("/stats")).json()["email_requests"]

        emails = [
            OutboundEmail(
                message_id=f"00000000-0000-4000-9000-{i:012d}",
                to=recipient(i),
                from_addr="Brand <news@brand.example>",
                subject=f"Hello {i}",
                text=f"Dear customer {i}, here is your code SAVE{i}.",
                unsubscribe_url=f"https://clarion.example.com/u/t{i}",
            )
            for i in range(2500)
        ]
        provider = SendGridProvider(SIM_SECRET, webhook_public_key=public_key, base_url=sim.url)
        try:
            results = await provider.send_emails(emails)
        finally:
            await provider.aclose()
        assert all(r.accepted and r.provider_message_id for r in results)
        stats = (await api.get("/stats")).json()
        assert stats["email_requests"] - requests_before == 3

        counts = (await api.get("/mailboxes")).json()
        delivered = [e for e in emails if not e.to.endswith("@bounce.invalid")]
        assert {a: counts.get(a) for a in (e.to for e in delivered)} == {e.to: 1 for e in delivered}
        assert not any(a.endswith("@bounce.invalid") for a in counts)
        box = (await api.get(f"/mailboxes/{emails[1234].to}")).json()["messages"]
        assert box[0]["custom_args"] == {"clarion_id": emails[1234].message_id}
        raw = message_from_string(box[0]["raw"], policy=policy.default)
        assert raw["Subject"] == "Hello 1234"
        assert raw["List-Unsubscribe"] == "<https://clarion.example.com/u/t1234>"
        assert raw["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert "SAVE1234" in raw.get_body(("plain",)).get_content()

    bounced = {e.message_id for e in emails if e.to.endswith("@bounce.invalid")}
    complained = {e.message_id for e in emails if e.to.endswith("@complain.invalid")}
    # processed for all; then delivered or bounce; a spamreport after delivery
    expected = len(emails) + len(emails) + len(complained)
    receipts: list[Receipt] = []
    deadline = time.monotonic() + 15
    parsed = 0
    while len(receipts) < expected:
        assert time.monotonic() < deadline, f"{len(receipts)} of {expected} events arrived"
        await asyncio.sleep(0.05)
        for headers, body in receiver.posts[parsed:]:
            receipts += provider.parse_events(headers, body)
            parsed += 1
    await asyncio.sleep(0.2)  # nothing more should come
    assert len(receiver.posts) == parsed
    assert len(receipts) == expected

    ours = {e.message_id for e in emails}
    by_status: dict[str, set[str]] = {}
    for r in receipts:
        assert r.message_id in ours
        by_status.setdefault(f"{r.status}/{r.error_code}", set()).add(r.message_id)
    assert by_status == {
        "accepted/None": ours,
        "delivered/None": ours - bounced,
        "undelivered/bounce:hard": bounced,
        "delivered/spamreport": complained,
    }
    assert len(bounced) == len(complained) == 25

    headers, body = receiver.posts[0]
    with pytest.raises(ForgedWebhook):
        provider.parse_events(headers, body.replace(b"processed", b"delivered", 1))


async def test_the_simulators_mail_send_refuses_what_sendgrid_refuses(sim: SimProcess) -> None:
    async with httpx.AsyncClient(base_url=sim.url, timeout=10) as api:
        body: dict[str, Any] = {
            "personalizations": [{"to": [{"email": "ok@example.com"}]},
                                 {"to": [{"email": "not-an-address"}]}],
            "from": {"email": "news@brand.example"},
            "subject": "Hi",
            "content": [{"type": "text/plain", "value": "Hi"}],
        }  # fmt: skip
        unauthorized = await api.post("/v3/mail/send", json=body)
        assert unauthorized.status_code == 401
        auth = {"authorization": f"Bearer {SIM_SECRET}"}
        invalid = await api.post("/v3/mail/send", json=body, headers=auth)
        assert invalid.status_code == 400
        assert invalid.json()["errors"][0]["field"] == "personalizations.1.to.0.email"
        body["personalizations"] = [{"to": [{"email": "ok@example.com"}]}] * 1001
        too_many = await api.post("/v3/mail/send", json=body, headers=auth)
        assert too_many.status_code == 400
