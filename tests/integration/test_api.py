"""The /v1 API: bearer keys per brand, the send plan behind `clarion campaign plan`, and the
campaign report with plan versus actual."""

from __future__ import annotations

import asyncio

import httpx

from clarion import bootstrap
from clarion.api.app import create_app
from clarion.api.v1 import V1
from clarion.domain.clock import PinnedClock
from clarion.sim.network import carrier_for
from clarion.sim.process import SimProcess
from clarion.store import api_keys, compliance
from tests.conftest import DAYTIME
from tests.integration.helpers import brand_with_subscribers, campaign, daytime, send_campaign


async def test_the_plan_api_is_scoped_to_the_keys_brand_and_matches_what_happened(
    infra: bootstrap.Infra, sim: SimProcess
) -> None:
    audience = await brand_with_subscribers(infra.pool, 120, seed=701)
    stranger = await brand_with_subscribers(infra.pool, 5, seed=702)
    campaign_id = await campaign(infra.pool, audience.brand_id)
    key = await api_keys.create_key(infra.pool, audience.brand_id)
    other_key = await api_keys.create_key(infra.pool, stranger.brand_id)
    provider = bootstrap.build_provider(infra.settings)
    app = create_app(infra.bus, {}, api=V1(infra, clock=PinnedClock(DAYTIME)))
    auth = {"Authorization": f"Bearer {key}"}
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://clarion"
        ) as client:
            # no key, a made-up key, another brand's key
            assert (await client.post(f"/v1/campaigns/{campaign_id}/plan")).status_code == 401
            forged = {"Authorization": "Bearer clk_not-a-key"}
            assert (
                await client.post(f"/v1/campaigns/{campaign_id}/plan", headers=forged)
            ).status_code == 401
            foreign = {"Authorization": f"Bearer {other_key}"}
            assert (
                await client.post(f"/v1/campaigns/{campaign_id}/plan", headers=foreign)
            ).status_code == 404
            assert (
                await client.get(f"/v1/campaigns/{campaign_id}/plan", headers=auth)
            ).status_code == 404  # not planned yet

            resp = await client.post(f"/v1/campaigns/{campaign_id}/plan", headers=auth)
            assert resp.status_code == 200
            plan = resp.json()
            assert plan["audience"] == 120
            assert plan["eligible"] == len(audience.consented)
            assert plan["excluded"] == {"no_consent": len(audience.not_consented)}
            expected: dict[str, int] = {}
            for phone in audience.consented:
                name = carrier_for(phone).name
                expected[name] = expected.get(name, 0) + 1
            assert plan["carriers"] == expected
            assert plan["segments"] >= len(audience.consented)
            assert plan["finish_at"] is not None
            assert (
                await client.get(f"/v1/campaigns/{campaign_id}/plan", headers=auth)
            ).json() == plan

            await send_campaign(infra, sim, campaign_id)
            report = (await client.get(f"/v1/campaigns/{campaign_id}", headers=auth)).json()
            assert report["complete"] is True
            rows = {r["metric"]: (r["planned"], r["actual"]) for r in report["plan_vs_actual"]}
            assert rows["eligible"] == (len(audience.consented), len(audience.consented))
            assert rows["sent now"] == (len(audience.consented), len(audience.consented))
            for name, n in expected.items():
                assert rows[f"carrier {name}"] == (n, n)

            schema = (await client.get("/openapi.json")).json()
            assert "/v1/campaigns/{campaign_id}/plan" in schema["paths"]
    finally:
        await provider.aclose()


async def test_transactional_messages_through_the_api_are_sent_once_per_key_and_refused_after_stop(
    infra: bootstrap.Infra, sim: SimProcess
) -> None:
    audience = await brand_with_subscribers(infra.pool, 10, seed=703)
    key = await api_keys.create_key(infra.pool, audience.brand_id)
    stopped = audience.consented[0]
    async with infra.pool.acquire() as conn:
        sub_id, _ = await compliance.subscriber_consent(conn, audience.brand_id, stopped)
        assert sub_id is not None
        await compliance.append_consent(
            conn, audience.brand_id, sub_id, "opted_out", keyword="STOP", disclosure=None
        )
    provider = bootstrap.build_provider(infra.settings)
    app = create_app(infra.bus, {}, api=V1(infra))
    auth = {"Authorization": f"Bearer {key}"}
    code = {"to": "(917) 555-2142", "body": "Your Northwind code is 482913"}
    try:
        async with (
            bootstrap.running(infra, bootstrap.build_provider(infra.settings), clock=daytime),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://clarion"
            ) as client,
        ):
            bad = await client.post("/v1/messages", headers=auth, json={**code, "to": "12"})
            assert bad.status_code == 422
            assert "to:" in bad.json()["message"]
            refused = await client.post("/v1/messages", headers=auth, json={**code, "to": stopped})
            assert refused.status_code == 409
            assert "opted out" in refused.json()["message"]
            once = {**auth, "Idempotency-Key": "login-7731"}
            first = await client.post("/v1/messages", headers=once, json=code)
            again = await client.post("/v1/messages", headers=once, json=code)
            assert first.status_code == again.status_code == 202
            assert first.json()["id"] == again.json()["id"]
            message_id = first.json()["id"]
            status = None
            for _ in range(100):
                got = await client.get(f"/v1/messages/{message_id}", headers=auth)
                status = got.json()["status"] if got.status_code == 200 else None
                if status == "delivered":
                    break
                await asyncio.sleep(0.1)
            assert status == "delivered"
            stranger = await brand_with_subscribers(infra.pool, 1, seed=704)
            other_key = await api_keys.create_key(infra.pool, stranger.brand_id)
            other = {"Authorization": f"Bearer {other_key}"}
            foreign = await client.get(f"/v1/messages/{message_id}", headers=other)
            assert foreign.status_code == 404
        inbox = (await asyncio.to_thread(httpx.get, f"{sim.url}/handsets/+19175552142")).json()
        assert [m["body"] for m in inbox["messages"]] == [code["body"]]  # once, for two calls
        assert (await asyncio.to_thread(httpx.get, f"{sim.url}/handsets/{stopped}")).json()[
            "messages"
        ] == []
    finally:
        await provider.aclose()
