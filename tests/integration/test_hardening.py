"""Issue 24's probes, each reproduced against the real HTTP app, Postgres and NATS: another
brand's sender, readiness with the database gone, parameters that overflowed, bodies with
no limit, a non-ASCII signature header."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import httpx
import msgspec
import pytest

from clarion import bootstrap, service
from clarion.api import app as api_app
from clarion.api.app import create_app
from clarion.api.v1 import V1
from clarion.config import Settings
from clarion.domain.clock import PinnedClock
from clarion.domain.records import Receipt, ReceiptBatch
from clarion.errors import TooLarge
from clarion.sim.process import SimProcess
from clarion.sim.wire import SIGNATURE_HEADER, signed_headers
from clarion.store import api_keys, lanes
from clarion.store.db import create_pool
from tests.conftest import DAYTIME, SIM_SECRET
from tests.integration.helpers import brand_with_subscribers, campaign, daytime


@pytest.fixture
async def client(infra: bootstrap.Infra) -> AsyncIterator[httpx.AsyncClient]:
    provider = bootstrap.build_provider(infra.settings)
    app = create_app(
        infra.bus,
        {"sim": provider},
        api=V1(infra, clock=PinnedClock(DAYTIME)),
    )
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://clarion"
        ) as c:
            yield c
    finally:
        await provider.aclose()


async def test_a_brand_cannot_send_from_another_brands_number(
    infra: bootstrap.Infra, client: httpx.AsyncClient, sim: SimProcess
) -> None:
    mine = await brand_with_subscribers(infra.pool, 1, seed=2401)
    theirs = await infra.pool.fetchval(
        "INSERT INTO brands (slug, name, sender) VALUES ('other', 'Other', '+15125550111')"
        " RETURNING id"
    )
    await lanes.add_sender(infra.pool, mine.brand_id, "+15125550177")
    auth = {"Authorization": f"Bearer {await api_keys.create_key(infra.pool, mine.brand_id)}"}
    code = {"to": "(917) 555-2199", "body": "Your Northwind code is 1234"}
    stolen = await client.post(
        "/v1/messages", headers=auth, json={**code, "sender": "+15125550111"}
    )
    assert stolen.status_code == 422
    assert "not one of this brand's senders" in stolen.json()["message"]
    assert theirs is not None
    async with bootstrap.running(infra, bootstrap.build_provider(infra.settings), clock=daytime):
        own = await client.post(
            "/v1/messages", headers=auth, json={**code, "sender": "(512) 555-0177"}
        )
        assert own.status_code == 202, own.text
        for _ in range(100):
            inbox = (await asyncio.to_thread(httpx.get, f"{sim.url}/handsets/+19175552199")).json()
            if inbox["messages"]:
                break
            await asyncio.sleep(0.1)
    assert [m["from"] for m in inbox["messages"]] == ["+15125550177"]  # never +15125550111


async def test_readiness_checks_the_database_and_liveness_does_not(
    infra: bootstrap.Infra,
) -> None:
    """/healthz said ok with the database down: it checked only NATS."""
    name = f"gone_{int(time.time() * 1000)}"
    await infra.pool.execute(f"CREATE DATABASE {name}")
    url = infra.database_url.replace(infra.database_url.split("/")[3].split("?")[0], name, 1)
    pool = await create_pool(url, max_size=2)
    app = create_app(infra.bus, {}, pool=pool)
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://clarion") as c:
            ready = await c.get("/readyz")
            assert ready.status_code == 200
            assert ready.json()["checks"] == {"postgres": "ok", "nats": "ok"}
            await infra.pool.execute(f"DROP DATABASE {name} WITH (FORCE)")
            for path in ("/readyz", "/healthz"):
                down = await c.get(path)
                assert down.status_code == 503
                assert down.json()["checks"]["postgres"].startswith("down")
                assert down.json()["checks"]["nats"] == "ok"
            assert (await c.get("/livez")).status_code == 200
    finally:
        await pool.close()


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/carriers?minutes=730779541688577"),
        ("GET", "/v1/carriers?minutes=0"),
        ("POST", "/v1/campaigns/{id}/plan?at=9999-12-31T23:00:00Z"),
        ("POST", "/v1/campaigns/{id}/plan?at=0001-01-01T00:00:00Z"),
        ("GET", "/v1/campaigns/1180591620717411303424"),
        ("GET", "/v1/campaigns/-1"),
    ],
)
async def test_extreme_parameters_are_a_422_naming_them(
    infra: bootstrap.Infra, client: httpx.AsyncClient, method: str, path: str
) -> None:
    audience = await brand_with_subscribers(infra.pool, 2, seed=2402)
    campaign_id = await campaign(infra.pool, audience.brand_id)
    auth = {"Authorization": f"Bearer {await api_keys.create_key(infra.pool, audience.brand_id)}"}
    resp = await client.request(method, path.format(id=campaign_id), headers=auth)
    assert resp.status_code == 422, resp.text
    text = resp.text
    assert any(name in text for name in ("minutes", "at", "campaign_id")), text


async def test_a_body_over_its_routes_limit_is_a_413_before_it_is_read(
    client: httpx.AsyncClient,
) -> None:
    big = b"x" * (api_app.BODY_LIMITS["/v1/"] + 1)
    declared = await client.post("/v1/messages", content=big)
    assert declared.status_code == 413

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it comes
        for _ in range(20):
            yield b"x" * (1 << 20)

    streamed = await client.post("/webhooks/sim/status", content=chunks())
    assert streamed.status_code == 413


async def test_a_non_ascii_signature_header_is_a_403_not_a_500(
    client: httpx.AsyncClient,
) -> None:
    resp = await client.post(
        "/webhooks/sim/status", content=b"{}", headers={SIGNATURE_HEADER: b"sha256=\xe9"}
    )
    assert resp.status_code == 403


def _signed(body: bytes, msg_id: str = "w1") -> dict[str, str]:
    return signed_headers(SIM_SECRET, msg_id, body, time.time())


async def test_a_signed_webhook_with_a_huge_batch_id_is_a_400(client: httpx.AsyncClient) -> None:
    body = msgspec.json.encode({"batch_id": "b" * 100_000, "receipts": []})
    resp = await client.post("/webhooks/sim/status", content=body, headers=_signed(body))
    assert resp.status_code == 400
    assert "batch id" in resp.json()["error"]


def test_a_batch_larger_than_the_bus_carries_is_split_the_same_way_every_time() -> None:
    receipts = [
        Receipt(
            message_id=f"m{i}", provider_message_id=f"p{i}", status="delivered", occurred_at=DAYTIME
        )
        for i in range(1000)
    ]

    def make(key: str, items: list[Receipt]) -> ReceiptBatch:
        return ReceiptBatch(batch_id=key, provider="sim", receipts=items)

    limit = 20_000
    parts = service.webhooks.fitting("sim:b1", receipts, make, limit)
    assert len(parts) > 1
    assert all(len(msgspec.msgpack.encode(p)) <= limit for _, p in parts)
    assert [r for _, p in parts for r in p.receipts] == receipts  # all, in order
    assert service.webhooks.fitting("sim:b1", receipts, make, limit) == parts  # a retry: same keys
    assert len({k for k, _ in parts}) == len(parts)
    with pytest.raises(TooLarge):
        service.webhooks.fitting("sim:b2", receipts[:1], make, 10)


async def test_a_signed_webhook_near_the_bus_limit_is_accepted_whole(
    infra: bootstrap.Infra, client: httpx.AsyncClient
) -> None:
    n = 30_000  # about 5 MB of JSON: more than half the bus's 8 MB, so it is measured
    receipts = [
        {
            "message_id": f"00000000-0000-0000-0000-{i:012d}",
            "provider_message_id": "x" * 64,
            "status": "delivered",
            "occurred_at": "2026-11-25T18:00:00Z",
        }
        for i in range(n)
    ]
    body = msgspec.json.encode({"batch_id": "big-1", "receipts": receipts})
    assert 2 * len(body) > infra.bus.max_payload_bytes
    resp = await client.post("/webhooks/sim/status", content=body, headers=_signed(body))
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"accepted": n}


async def test_an_error_raised_on_purpose_is_json_with_its_status_not_a_500(
    infra: bootstrap.Infra,
) -> None:
    """An error Clarion raises on purpose reaches the caller as JSON with its status."""
    app = create_app(infra.bus, {}, pool=infra.pool)

    @app.get("/boom")
    async def boom() -> None:
        from clarion.errors import InvalidInput

        raise InvalidInput("bad value", field="x")

    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://clarion"
    ) as c:
        resp = await c.get("/boom")
    assert resp.status_code == 422
    assert resp.json() == {"code": "invalid", "message": "x: bad value", "field": "x"}


async def test_a_write_the_schema_refuses_is_a_clear_error_not_a_traceback(
    settings: Settings,
) -> None:
    """`clarion brand create` with a taken slug, `brand route` for no brand: tracebacks."""
    from clarion.errors import InvalidInput, NotFound
    from clarion.store import brands

    async def create_twice() -> None:
        async with bootstrap.infrastructure(settings) as infra:
            for _ in range(2):
                await brands.create_brand(infra.pool, slug="acme", name="A", sender="+15125550100")

    async def route_nobody() -> None:
        async with bootstrap.infrastructure(settings) as infra:
            await lanes.set_route(infra.pool, 999, "sms", ["sim"])

    with pytest.raises(InvalidInput, match="'acme' is taken") as taken:
        await create_twice()
    assert taken.value.field == "slug"
    with pytest.raises(NotFound, match="brand '999' not found"):
        await route_nobody()


async def test_a_nul_character_is_refused_at_the_door_not_at_every_retry(
    infra: bootstrap.Infra, client: httpx.AsyncClient
) -> None:
    """A body with a NUL was accepted (202), then its batch failed at every retry: Postgres
    text cannot hold it. Anything that still reaches Postgres is a clear error too."""
    from clarion.errors import InvalidInput
    from clarion.store import brands

    audience = await brand_with_subscribers(infra.pool, 1, seed=2411)
    auth = {"Authorization": f"Bearer {await api_keys.create_key(infra.pool, audience.brand_id)}"}
    resp = await client.post(
        "/v1/messages", headers=auth, json={"to": "(917) 555-2142", "body": "a\x00b"}
    )
    assert resp.status_code == 422
    assert "NUL" in resp.text

    async def create_with_nul() -> None:
        async with bootstrap.infrastructure(infra.settings) as again:
            await brands.create_brand(again.pool, slug="a\x00b", name="A", sender="+15125550100")

    with pytest.raises(InvalidInput, match="NUL"):
        await create_with_nul()


async def test_a_signed_webhook_carrying_a_nul_is_refused_before_the_bus(
    client: httpx.AsyncClient,
) -> None:
    """It would have failed its fold at every retry, holding back the receipts with it."""
    receipt = {
        "message_id": "00000000-0000-0000-0000-000000000001",
        "provider_message_id": "SM\u0000x",
        "status": "delivered",
        "occurred_at": "2026-11-25T18:00:00Z",
    }
    body = msgspec.json.encode({"batch_id": "nul-1", "receipts": [receipt]})
    assert b"\\u0000" in body
    resp = await client.post("/webhooks/sim/status", content=body, headers=_signed(body))
    assert resp.status_code == 400
    assert "NUL" in resp.json()["error"]
