"""Routing and failover: a brand routes SMS over an ordered list of providers; when the first
goes down mid-campaign its circuit opens and traffic moves to the next within seconds, and
back when it recovers. Every eligible recipient still gets exactly one message."""

from __future__ import annotations

import asyncio
from collections import Counter

import httpx

from clarion import bootstrap, service
from clarion.service.progress import campaign_progress
from clarion.sim.process import SimProcess
from clarion.store import lanes as lane_store
from tests.conftest import DAYTIME, wait_for_campaign
from tests.integration.helpers import brand_with_subscribers, campaign, daytime


async def test_a_provider_outage_moves_traffic_to_the_next_and_back(
    infra: bootstrap.Infra,
) -> None:
    audience = await brand_with_subscribers(infra.pool, 4000, seed=801)
    brand = audience.brand_id
    await lane_store.set_route(infra.pool, brand, "sms", ["sim-a", "sim-b"])
    # the primary at 1,000/s, so the outage lands mid-campaign
    await lane_store.set_lane_limit(infra.pool, "provider", "sim-a", rate_per_s=1000.0)
    first = await campaign(infra.pool, brand)
    with (
        SimProcess(secret=infra.settings.sim_secret, failure_rate=0.0) as a,
        SimProcess(secret=infra.settings.sim_secret, failure_rate=0.0) as b,
    ):
        primary = bootstrap.build_provider(infra.settings, name="sim-a", url=a.url)
        backup = bootstrap.build_provider(infra.settings, name="sim-b", url=b.url)
        async with (
            bootstrap.running(infra, primary, clock=daytime, more_providers=[backup]),
            httpx.AsyncClient() as client,
        ):
            await service.campaigns.launch(infra, first, at=DAYTIME)
            while (await campaign_progress(infra.pool, first)).handed_over < 1000:
                await asyncio.sleep(0.05)
            await client.post(f"{a.url}/admin/outage", json={"down": True})
            done = await wait_for_campaign(infra.pool, first, b, timeout_s=60)
            await wait_for_campaign(infra.pool, first, a, timeout_s=10)  # a's last receipts
            by_provider = Counter(
                r["provider"]
                for r in await infra.pool.fetch(
                    "SELECT provider FROM messages WHERE campaign_id = $1 AND status = 'delivered'",
                    first,
                )
            )
            # the primary recovers: after its circuit's open time a trial call closes it again
            await client.post(f"{a.url}/admin/outage", json={"down": False})
            await asyncio.sleep(infra.settings.breaker_open_s + 0.5)
            second = await campaign(
                infra.pool, brand, body="Northwind: back again. Reply STOP to opt out."
            )
            await infra.pool.execute("UPDATE brands SET smart_sending_h = 0 WHERE id = $1", brand)
            await service.campaigns.launch(infra, second, at=DAYTIME)
            await wait_for_campaign(infra.pool, second, a, timeout_s=60)
            after = Counter(
                r["provider"]
                for r in await infra.pool.fetch(
                    "SELECT provider FROM messages WHERE campaign_id = $1 AND status = 'delivered'",
                    second,
                )
            )
        on_a = await asyncio.to_thread(a.handsets)
        on_b = await asyncio.to_thread(b.handsets)

    assert done.delivered == len(audience.consented)
    assert by_provider["sim-a"] >= 1000
    assert by_provider["sim-b"] > 0  # the rest went through the backup
    # one delivery record per message, whichever provider carried it
    assert sum(by_provider.values()) == len(audience.consented)
    # after recovery, the primary carries the traffic again
    assert after["sim-a"] > after["sim-b"]
    # every eligible recipient got exactly one message of each campaign, across both
    # networks, and nobody else got any
    assert Counter(on_a) + Counter(on_b) == dict.fromkeys(audience.consented, 2)
