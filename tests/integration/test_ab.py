"""A/B tests end to end: a split sends each subscriber their variant by the weights; a test
then winner sends a sample, waits, picks the variant the simulator's people prefer by click
rate, and sends it to everyone else — with no action from the marketer."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

from clarion import bootstrap, service
from clarion.domain.variants import assign, in_sample
from clarion.sim.process import SimProcess
from clarion.store import api_keys
from tests.conftest import DAYTIME, wait_for_campaign
from tests.integration.helpers import brand_with_subscribers, daytime

LINK = "https://northwind.example/sale"
A = "{{ brand.name }}: 20% off today: " + LINK + " Reply STOP to opt out."
B = "{{ brand.name }}: BOOST 40% off, today only: " + LINK + " Reply STOP to opt out."


async def _sent(infra: bootstrap.Infra, campaign_id: int) -> dict[int, str]:
    return {
        r["subscriber_id"]: r["body"]
        for r in await infra.pool.fetch(
            "SELECT subscriber_id, body FROM messages WHERE campaign_id = $1", campaign_id
        )
    }


async def test_a_split_sends_each_subscriber_their_variant(
    infra: bootstrap.Infra, sim: SimProcess
) -> None:
    audience = await brand_with_subscribers(infra.pool, 60, seed=401)
    campaign_id = await service.campaigns.create(
        infra, brand_id=audience.brand_id, name="Split", body="",
        variants=[{"body": A, "weight": 70}, {"body": B, "weight": 30}],
        ab={"mode": "split"},
    )  # fmt: skip
    async with bootstrap.running(infra, bootstrap.build_provider(infra.settings), clock=daytime):
        await service.campaigns.launch(infra, campaign_id, at=DAYTIME)
        await wait_for_campaign(infra.pool, campaign_id, sim)
    c = await service.campaigns.get(infra, campaign_id)
    sent = await _sent(infra, campaign_id)
    assert len(sent) > 20
    for sid, body in sent.items():
        want = assign(str(c.uid), sid, c.variant_list()).key
        assert ("BOOST" in body) == (want == "b"), (sid, body)
    assert {"BOOST" in b for b in sent.values()} == {True, False}


async def test_a_test_sends_the_winner_the_people_prefer_to_the_rest(
    infra: bootstrap.Infra, sim: SimProcess
) -> None:
    audience = await brand_with_subscribers(infra.pool, 240, seed=402)
    brand_id = audience.brand_id
    key = await api_keys.create_key(infra.pool, brand_id)
    await asyncio.to_thread(
        sim.shoppers,
        {
            "events_url": f"{infra.settings.public_url}/v1/events", "api_key": key,
            "click_rate": 0.12, "boosts": {"BOOST": 5.0}, "order_rate": 0.3,
            "click_delay_s": [0.01, 0.1], "order_delay_s": [0.01, 0.1], "seed": 11,
            "clock_offset_s": (daytime.now() - datetime.now(UTC)).total_seconds(),
        },
    )  # fmt: skip
    campaign_id = await service.campaigns.create(
        infra, brand_id=brand_id, name="Test", body="",
        variants=[{"body": A, "name": "20%"}, {"body": B, "name": "40%"}],
        ab={"mode": "test", "sample": 0.5, "wait_minutes": 30, "metric": "click_rate"},
    )  # fmt: skip
    async with bootstrap.running(infra, bootstrap.build_provider(infra.settings), clock=daytime):
        await service.campaigns.launch(infra, campaign_id, at=DAYTIME)
        first = await wait_for_campaign(infra.pool, campaign_id, sim)
        c = await service.campaigns.get(infra, campaign_id)
        uid, ab = str(c.uid), c.ab_test()
        sample = await _sent(infra, campaign_id)
        assert sample
        assert all(in_sample(uid, s, ab) for s in sample)  # nobody else yet
        assert first.audience == len(sample)
        assert c.ab_winner is None
        await _settled(sim)
        # as if the 30 minutes were over: the sweep decides, and sends the winner
        await infra.pool.execute(
            "UPDATE campaigns SET launched_at = launched_at - interval '1 hour' WHERE id = $1",
            campaign_id,
        )
        deadline = time.monotonic() + 30
        while (c := await service.campaigns.get(infra, campaign_id)).ab_winner is None:
            assert time.monotonic() < deadline, "no decision"
            await asyncio.sleep(0.1)
        done = await wait_for_campaign(infra.pool, campaign_id, sim)
    assert c.ab_winner == "b"
    assert c.ab_decision["significant"] is True
    assert c.ab_decision["values"]["b"] > c.ab_decision["values"]["a"]
    everyone = await _sent(infra, campaign_id)
    rest = {s: b for s, b in everyone.items() if s not in sample}
    assert rest
    assert all("BOOST" in b for b in rest.values())  # the winner, to everyone else
    assert all(not in_sample(uid, s, ab) for s in rest)
    assert done.audience == len(everyone)  # each subscriber once, counted once

    report = await service.campaigns.report(infra, campaign_id, brand_id=brand_id)
    a, b = report.variants
    assert (a.name, b.name) == ("20%", "40%")
    assert a.figures["recipients"] + b.figures["recipients"] == len(everyone)
    assert b.figures["recipients"] > a.figures["recipients"]  # the rest got b
    assert report.totals["unique_clicks"] == await infra.pool.fetchval(
        "SELECT count(DISTINCT subscriber_id) FROM clicks WHERE campaign_id = $1"
        " AND kind = 'human'",
        campaign_id,
    )
    assert report.ab is not None
    assert report.ab["winner"] == "b"
    assert sum(m["sent"] for m in report.per_minute) == report.totals["sent"]


async def _settled(sim: SimProcess) -> None:
    """Until the people's clicks stop coming."""
    last, quiet = -1, 0
    while quiet < 5:
        n = (await asyncio.to_thread(sim.shoppers))["clicks"]
        quiet = quiet + 1 if n == last else 0
        last = n
        await asyncio.sleep(0.1)
