"""The simulator's people follow links and buy: each click reaches Clarion's redirect and is
recorded as a person's; each order is posted to `/v1/events` as the shop would, and
attributed to the message clicked. A variant the simulator is told to prefer gets more."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import pytest

from clarion import bootstrap, service
from clarion.sim.process import SimProcess
from clarion.store import api_keys, attribution
from tests.conftest import DAYTIME, wait_for_campaign
from tests.integration.helpers import brand_with_subscribers, campaign, daytime

BODY = "{{ brand.name }}: 40% off today: https://northwind.example/sale Reply STOP to opt out."


async def test_people_click_and_buy_and_clarion_attributes_what_they_bought(
    infra: bootstrap.Infra, sim: SimProcess
) -> None:
    audience = await brand_with_subscribers(infra.pool, 60, seed=391)
    brand_id = audience.brand_id
    key = await api_keys.create_key(infra.pool, brand_id)
    public = infra.settings.public_url
    config = {
        "events_url": f"{public}/v1/events", "api_key": key, "click_rate": 100.0,
        "clock_offset_s": (daytime.now() - datetime.now(UTC)).total_seconds(),
        "order_rate": 0.5, "click_delay_s": [0.01, 0.1], "order_delay_s": [1.0, 1.5],
        "seed": 5,
    }  # fmt: skip
    await asyncio.to_thread(sim.shoppers, config)
    campaign_id = await campaign(infra.pool, brand_id, body=BODY)
    async with bootstrap.running(infra, bootstrap.build_provider(infra.settings), clock=daytime):
        await service.campaigns.launch(infra, campaign_id, at=DAYTIME)
        await wait_for_campaign(infra.pool, campaign_id, sim)
        delivered = await infra.pool.fetchval(
            "SELECT count(*) FROM messages WHERE campaign_id = $1 AND status = 'delivered'",
            campaign_id,
        )
        assert delivered > 10
        deadline = time.monotonic() + 30
        stable_since, last = time.monotonic(), None
        while True:  # every click made, and the orders settled (2.5 s without a new one)
            seen = await asyncio.to_thread(sim.shoppers)
            recorded = await infra.pool.fetchval(
                "SELECT count(*) FROM attributions WHERE campaign_id = $1", campaign_id
            )
            now = (seen["clicks"], seen["orders"], recorded)
            if now != last:
                stable_since, last = time.monotonic(), now
            if (
                seen["clicks"] >= delivered
                and recorded == seen["orders"] > 0
                and time.monotonic() - stable_since > 2.5
            ):
                break
            assert time.monotonic() < deadline, (seen, recorded, delivered)
            await asyncio.sleep(0.2)
    assert seen["click_failures"] == seen["order_post_failures"] == 0
    clicks = await infra.pool.fetch(
        "SELECT kind, count(*) AS n FROM clicks WHERE campaign_id = $1 GROUP BY kind",
        campaign_id,
    )
    assert {r["kind"]: r["n"] for r in clicks} == {"human": delivered}
    # on a loaded machine a click may be written after the order it led to was attributed
    # (to the delivery): the sweeper's next look (`reattribute`) puts each on its click
    orders = [r["id"] for r in await infra.pool.fetch(
        "SELECT id FROM events WHERE brand_id = $1 AND type = 'ordered'", brand_id)]  # fmt: skip
    await attribution.attribute(infra.pool, orders)
    row = await infra.pool.fetchrow(
        "SELECT count(*) AS n, sum(value) AS revenue, count(*) FILTER (WHERE how = 'click') AS c"
        " FROM attributions WHERE campaign_id = $1",
        campaign_id,
    )
    assert row["n"] == row["c"] == seen["orders"]
    assert float(row["revenue"]) == pytest.approx(seen["revenue"])

    report = await service.campaigns.report(infra, campaign_id)
    assert report.totals["orders"] == seen["orders"]
    assert report.totals["revenue"] == pytest.approx(seen["revenue"])
    assert report.totals["unique_clicks"] == delivered
    assert report.totals["click_rate"] == 1.0
