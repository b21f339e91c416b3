"""The Twilio adapter against the simulator's Twilio-compatible API, in its own process:
sends, signed status callbacks (checked by Twilio's own validator at a real HTTP receiver),
handset deliveries, inbound messages, Lookup, and throttling."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from twilio.request_validator import RequestValidator

from clarion.bus.embedded import free_port
from clarion.domain.records import OutboundMessage
from clarion.errors import ProviderError
from clarion.providers.twilio import TwilioProvider
from clarion.sim import network
from clarion.sim.process import SimProcess
from tests.conftest import SIM_SECRET

SID = "AC" + "5" * 32
TOKEN = "integration-auth-token"
SENDER = "+15125550100"
INVALID = "+12125550123"  # the fictional 555-01XX range: Twilio error 21211


@dataclass
class Callback:
    path: str
    url: str
    headers: dict[str, str]
    body: bytes
    valid: bool  # by twilio.request_validator, as a customer's server would check it


@dataclass
class Receiver:
    """A customer's webhook server: records every request and validates its signature."""

    url: str
    calls: list[Callback] = field(default_factory=list)

    def on(self, path: str) -> list[Callback]:
        return [c for c in self.calls if c.path == path]


@contextlib.asynccontextmanager
async def receiver() -> AsyncIterator[Receiver]:
    port = free_port()
    rec = Receiver(f"http://127.0.0.1:{port}")
    validator = RequestValidator(TOKEN)

    async def record(request: Request) -> Response:
        body = await request.body()
        params = dict(parse_qsl(body.decode(), keep_blank_values=True))
        signature = request.headers.get("x-twilio-signature", "")
        url = str(request.url)
        valid = validator.validate(url, params, signature)
        rec.calls.append(Callback(request.url.path, url, dict(request.headers), body, valid))
        return Response(status_code=200)

    app = Starlette(routes=[Route("/webhooks/{provider}/{kind}", record, methods=["POST"])])
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", lifespan="off", loop="none"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield rec
    finally:
        server.should_exit = True
        await task


def twilio_sim(**kwargs: object) -> SimProcess:
    return SimProcess(
        secret=SIM_SECRET,
        latency_scale=0.1,
        twilio_account_sid=SID,
        twilio_auth_token=TOKEN,
        **kwargs,  # type: ignore[arg-type]
    )


@pytest.fixture(scope="module")
def sim() -> Iterator[SimProcess]:
    """A simulator where about a quarter of messages fail at the carrier."""
    with twilio_sim(failure_rate=0.25, seed=11) as process:
        yield process


def numbers(n: int, start: int = 0) -> list[str]:
    out, i = [], start
    while len(out) < n:
        number = f"+1646{200 + i // 10_000:03d}{i % 10_000:04d}"
        if not network.is_invalid(number):
            out.append(number)
        i += 1
    return out


def outbound(mid: str, to: str) -> OutboundMessage:
    return OutboundMessage(message_id=mid, subscriber_id=None, to=to, body=f"hi {mid}", segments=1)


def provider_for(sim: SimProcess, rec: Receiver, token: str = TOKEN) -> TwilioProvider:
    return TwilioProvider(
        SID, token, api_base=sim.url, lookup_base=sim.url, public_url=rec.url, concurrency=8
    )


async def wait_until(done: Callable[[], bool], timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while not done():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_sent_messages_get_signed_callbacks_and_reach_each_handset_once(
    sim: SimProcess,
) -> None:
    to = numbers(49)
    messages = [outbound(f"tw-{i}", n) for i, n in enumerate(to)]
    messages.insert(17, outbound("tw-invalid", INVALID))
    async with receiver() as rec:
        provider = provider_for(sim, rec)
        try:
            results = await provider.send(SENDER, messages)
        finally:
            await provider.aclose()
        by_id = {r.message_id: r for r in results}
        assert len(by_id) == 50
        rejected = by_id.pop("tw-invalid")
        assert (rejected.accepted, rejected.retry, rejected.error_code) == (False, False, "21211")
        assert all(r.accepted and r.provider_message_id for r in by_id.values())
        assert all(r.provider_message_id.startswith("SM") for r in by_id.values())  # type: ignore[union-attr]

        # Each accepted message: a `sent` and one final callback, every one signed.
        await wait_until(lambda: len(rec.on("/webhooks/twilio/status")) >= 2 * 49)
        await asyncio.sleep(0.3)  # anything beyond two per message would show up now
        callbacks = rec.on("/webhooks/twilio/status")
        assert len(callbacks) == 2 * 49
        assert all(c.valid for c in callbacks)

        verifier = provider_for(sim, rec)
        try:
            receipts = [
                r
                for c in callbacks
                for r in verifier.parse_status_webhook(c.url, c.headers, c.body)[1]
            ]
        finally:
            await verifier.aclose()

    statuses: dict[str, list[str]] = {}
    for r in receipts:
        assert r.provider_message_id == by_id[r.message_id].provider_message_id
        statuses.setdefault(r.message_id, []).append(r.status)
    assert set(statuses) == set(by_id)  # our ids; none for the rejected message
    # One `sent` and one final status each (callbacks may arrive in either order).
    assert all(
        sorted(s) in (["delivered", "sent"], ["sent", "undelivered"]) for s in statuses.values()
    )
    undelivered = {mid for mid, s in statuses.items() if "undelivered" in s}
    assert 0 < len(undelivered) < 49  # the failure rate shows, and most get through
    assert all(
        r.error_code in {code for code, _, _ in network.FAILURES}
        for r in receipts
        if r.status == "undelivered"
    )

    # Delivered messages reached their handset exactly once; undelivered ones never.
    for m in messages:
        inbox = await asyncio.to_thread(sim.handset, m.to)
        expected = [] if m.message_id in undelivered or m.to == INVALID else [m.message_id]
        assert [x["message_id"] for x in inbox] == expected
        assert all(x["from"] == SENDER and x["body"] == m.body for x in inbox)


async def test_a_handsets_reply_reaches_the_numbers_sms_url_signed(sim: SimProcess) -> None:
    handset = numbers(1, start=5000)[0]
    async with receiver() as rec, httpx.AsyncClient(base_url=sim.url, timeout=10) as client:
        sms_url = f"{rec.url}/webhooks/twilio/inbound"
        resp = await client.post(
            f"/2010-04-01/Accounts/{SID}/IncomingPhoneNumbers.json",
            data={"PhoneNumber": SENDER, "SmsUrl": sms_url},
            auth=(SID, TOKEN),
        )
        assert resp.status_code == 201
        reply = await client.post(
            f"/handsets/{handset}/reply", json={"to": SENDER, "body": "Stop please"}
        )
        assert reply.json()["webhook_status"] == 200
        (call,) = rec.on("/webhooks/twilio/inbound")
        assert call.valid
        provider = provider_for(sim, rec)
        try:
            batch_id, (message,) = provider.parse_inbound_webhook(call.url, call.headers, call.body)
        finally:
            await provider.aclose()
    assert batch_id == reply.json()["id"] == message.provider_message_id
    assert (message.from_, message.to, message.body) == (handset, SENDER, "Stop please")


async def test_the_number_configuration_needs_the_accounts_credentials(sim: SimProcess) -> None:
    async with httpx.AsyncClient(base_url=sim.url, timeout=10) as client:
        resp = await client.post(
            f"/2010-04-01/Accounts/{SID}/IncomingPhoneNumbers.json",
            data={"PhoneNumber": SENDER, "SmsUrl": "http://elsewhere.invalid/"},
            auth=(SID, "wrong"),
        )
    assert resp.status_code == 401
    assert resp.json()["code"] == 20003


async def test_lookup_returns_the_networks_carriers(sim: SimProcess) -> None:
    wanted = numbers(12, start=7000)
    async with receiver() as rec:
        provider = provider_for(sim, rec)
        try:
            found = await provider.lookup_carriers([*wanted, INVALID])
        finally:
            await provider.aclose()
    assert found == {n: network.carrier_for(n).name for n in wanted}
    assert len(set(found.values())) > 1


async def test_wrong_credentials_send_nothing_and_raise(sim: SimProcess) -> None:
    before = (await asyncio.to_thread(sim.stats))["accepted"]
    async with receiver() as rec:
        provider = provider_for(sim, rec, token="not-the-token")
        try:
            with pytest.raises(ProviderError):
                await provider.send(SENDER, [outbound("tw-auth", numbers(1, start=9000)[0])])
        finally:
            await provider.aclose()
    assert (await asyncio.to_thread(sim.stats))["accepted"] == before


async def test_over_the_accounts_rate_messages_come_back_throttled_and_unsent() -> None:
    with twilio_sim(failure_rate=0.0, seed=2, max_mps=4) as slow:
        async with receiver() as rec:
            provider = provider_for(slow, rec)
            try:
                results = await provider.send(
                    SENDER, [outbound(f"th-{i}", n) for i, n in enumerate(numbers(30))]
                )
            finally:
                await provider.aclose()
        throttled = [r for r in results if r.throttled]
        accepted = [r for r in results if r.accepted]
        assert throttled
        assert accepted
        assert len(throttled) + len(accepted) == 30
        assert all(r.retry and not r.accepted and r.error_code == "20429" for r in throttled)
        assert all(r.retry_after_s is not None and r.retry_after_s > 0 for r in throttled)
        # Throttled messages were not handed over: the network holds only the accepted.
        stats = await asyncio.to_thread(slow.stats)
        assert stats["accepted"] == len(accepted)
        assert stats["throttled"] == len(throttled)
