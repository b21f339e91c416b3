"""Outbound webhooks: a brand's endpoint gets the events it asked for, in signed batches
that Standard Webhooks' own verifier accepts, each event once with a stable id; a failing
endpoint is tried again with backoff, and one failing for a day is disabled with an alert."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import uvicorn
from standardwebhooks import Webhook
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from clarion import bootstrap, service
from clarion.bus.embedded import free_port
from clarion.errors import InvalidInput, NotFound
from clarion.httpclient import AsyncClient
from clarion.runtime.context import WorkerContext
from clarion.runtime.hooks_worker import HooksWorker
from clarion.sim.process import SimProcess
from clarion.store import brands
from tests.conftest import DAYTIME, wait_for_campaign
from tests.integration.helpers import brand_with_subscribers, campaign, daytime


class Receiver:
    """An HTTP endpoint that records what it is sent; it fails the first `fail` requests."""

    def __init__(self, fail: int = 0) -> None:
        self.fail = fail
        self.requests: list[tuple[dict[str, str], bytes]] = []  # every request, in order
        self.accepted: list[tuple[dict[str, str], bytes]] = []  # those answered 2xx
        self.port = free_port()

    async def endpoint(self, request: Request) -> Response:
        body = await request.body()
        self.requests.append((dict(request.headers), body))
        if self.fail > 0:
            self.fail -= 1
            return Response(status_code=503)
        self.accepted.append((dict(request.headers), body))
        return Response(status_code=204)

    @contextlib.asynccontextmanager
    async def serving(self) -> AsyncIterator[str]:
        app = Starlette(routes=[Route("/hook", self.endpoint, methods=["POST"])])
        server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        )
        task = asyncio.create_task(server.serve())
        while not server.started:
            await asyncio.sleep(0.01)
        try:
            yield f"http://127.0.0.1:{self.port}/hook"
        finally:
            server.should_exit = True
            await task


def _events(r: Receiver, secret: str) -> list[dict[str, Any]]:
    """The events of the requests the receiver accepted, each request verified."""
    out = []
    for headers, body in r.accepted:
        payload = Webhook(secret).verify(body, headers)  # raises if the signature is wrong
        assert payload["type"] == "batch"
        out += payload["data"]
    return out


async def test_an_endpoint_gets_the_events_it_asked_for_signed_once_each(
    infra: bootstrap.Infra, sim: SimProcess
) -> None:
    audience = await brand_with_subscribers(infra.pool, 20, seed=421)
    brand_id = audience.brand_id
    receiver = Receiver(fail=2)  # the first two requests fail: retried, nothing lost
    async with receiver.serving() as url:
        endpoint, secret = await service.hooks.create(
            infra, brand_id, url, ["message.delivered", "subscriber.opted_out"]
        )
        assert secret.startswith("whsec_")
        campaign_id = await campaign(infra.pool, brand_id)
        async with bootstrap.running(
            infra, bootstrap.build_provider(infra.settings), clock=daytime
        ):
            await service.campaigns.launch(infra, campaign_id, at=DAYTIME)
            await wait_for_campaign(infra.pool, campaign_id, sim)
            stopped = audience.consented[0]
            answer = await asyncio.to_thread(
                httpx.post, f"{sim.url}/handsets/{stopped}/reply",
                json={"to": "+15125550100", "body": "STOP"},
            )  # fmt: skip
            assert answer.status_code == 200, answer.text
            delivered = await infra.pool.fetchval(
                "SELECT count(*) FROM messages WHERE campaign_id = $1 AND status = 'delivered'",
                campaign_id,
            )
            deadline = time.monotonic() + 60
            while True:  # the campaign's deliveries, the STOP's answer, the opt-out
                got = {ev["id"]: ev["type"] for ev in _events(receiver, secret)}
                kinds = list(got.values())
                if (
                    kinds.count("message.delivered") >= delivered + 1
                    and "subscriber.opted_out" in kinds
                ):
                    break
                assert time.monotonic() < deadline, (len(got), delivered, receiver.fail)
                await asyncio.sleep(0.2)
    # Standard Webhooks' verifier accepts every request (the retries too)
    events = _events(receiver, secret)
    by_id: dict[str, dict[str, Any]] = {}
    for ev in events:
        by_id.setdefault(ev["id"], ev)
        assert by_id[ev["id"]] == ev  # a retry repeats the event as it was
    types = [ev["type"] for ev in by_id.values()]
    ours = [ev for ev in by_id.values() if ev["data"].get("campaign_id") == campaign_id]
    assert len(ours) == delivered  # the campaign's deliveries, once each
    assert types.count("message.delivered") == delivered + 1  # and the STOP's answer
    assert types.count("subscriber.opted_out") == 1
    assert "message.failed" not in types  # not asked for
    stop = next(ev for ev in by_id.values() if ev["type"] == "subscriber.opted_out")
    assert stop["data"]["channel"] == "sms"
    assert ours[0]["data"]["status"] == "delivered"
    assert ours[0]["id"] == f"evt_msg_{ours[0]['data']['message_id']}_delivered"
    # what the two failed requests carried came again in the ones that succeeded
    failed = {ev["id"] for _, body in receiver.requests[:2] for ev in json.loads(body)["data"]}
    later = {ev["id"] for _, body in receiver.accepted for ev in json.loads(body)["data"]}
    assert failed
    assert failed <= later
    recent = await service.hooks.recent(infra, brand_id, endpoint.id)
    assert [a.type for a in recent] == ["subscriber.opted_out"]  # the outbox's
    assert all(a.status == "delivered" for a in recent)
    # another brand (one sender number is one brand's: made after the STOP) sees nothing
    other = await brand_with_subscribers(infra.pool, 2, seed=422)
    with pytest.raises(NotFound):
        await service.hooks.get(infra, other.brand_id, endpoint.id)


async def test_an_endpoint_failing_for_a_day_is_disabled_with_an_alert(
    infra: bootstrap.Infra,
) -> None:
    audience = await brand_with_subscribers(infra.pool, 2, seed=423)
    brand_id = audience.brand_id
    receiver = Receiver(fail=10**6)
    async with receiver.serving() as url:
        endpoint, _ = await service.hooks.create(infra, brand_id, url, ["subscriber.opted_in"])
        subscriber_id = await infra.pool.fetchval(
            "SELECT min(id) FROM subscribers WHERE brand_id = $1", brand_id
        )
        await brands.record_consent(
            infra.pool, brand_id=brand_id, subscriber_id=subscriber_id,
            channel="sms", status="opted_in", source="test",
        )  # fmt: skip
        await infra.pool.execute(
            "UPDATE webhook_endpoints SET failing_since = now() - interval '25 hours'"
            " WHERE id = $1",
            endpoint.id,
        )
        provider = bootstrap.build_provider(infra.settings)
        worker = HooksWorker(WorkerContext(infra.pool, infra.bus, provider, clock=daytime))
        async with AsyncClient() as client:
            assert await worker.dispatch(client) == 0
        await provider.aclose()
    e = await service.hooks.get(infra, brand_id, endpoint.id)
    assert not e.enabled
    assert e.disabled_reason is not None
    assert e.pending == 1  # kept for when it is enabled again
    alerts = await infra.pool.fetch(
        "SELECT kind, message FROM alerts WHERE brand_id = $1 AND cleared_at IS NULL", brand_id
    )
    assert [a["kind"] for a in alerts] == ["webhook_endpoint_disabled"]
    assert (await service.hooks.enable(infra, brand_id, endpoint.id)).enabled


@pytest.mark.parametrize(
    ("url", "types", "field"),
    [
        ("ftp://x.example/h", ["message.delivered"], "url"),
        ("http://hooks.example/h", ["message.delivered"], "url"),
        ("https://hooks.example/h", [], "event_types"),
        ("https://hooks.example/h", ["message.opened"], "event_types[0]"),
    ],
)
async def test_a_bad_endpoint_is_refused_naming_the_field(
    infra: bootstrap.Infra, url: str, types: list[str], field: str
) -> None:
    audience = await brand_with_subscribers(infra.pool, 1, seed=424)
    with pytest.raises(InvalidInput) as caught:
        await service.hooks.create(infra, audience.brand_id, url, types)
    assert caught.value.field == field


def test_the_json_body_is_one_batch() -> None:
    from datetime import UTC, datetime

    from clarion.pipeline.hooks import Event, request_of

    at = datetime(2026, 12, 7, tzinfo=UTC)
    msg_id, body = request_of([Event("evt_7", "message.clicked", at, {"url": "https://x"})])
    again, _ = request_of([Event("evt_7", "message.clicked", at, {"url": "https://x"})])
    assert msg_id == again
    assert json.loads(body)["data"][0]["id"] == "evt_7"
