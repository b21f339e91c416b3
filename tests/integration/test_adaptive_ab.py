"""An adaptive A/B test end to end: the campaign goes out in rounds; after each wait the
sweep splits the next round by what the simulator's people clicked so far, shifting traffic
to the variant they prefer, until it is the winner; each subscriber gets one message, and
the report shows the allocation over time."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

from clarion import bootstrap, service
from clarion.domain.variants import assign_by, round_of
from clarion.sim.process import SimProcess
from clarion.store import ab_rounds, api_keys
from tests.conftest import DAYTIME, wait_for_campaign
from tests.integration.helpers import brand_with_subscribers, daytime
from tests.integration.test_ab import A, B, _sent, _settled


async def _next_release(infra: bootstrap.Infra, campaign_id: int, seen: int) -> None:
    """As if the wait were over: move the latest release back an hour, until the sweep has
    made the next one."""
    await infra.pool.execute(
        "UPDATE ab_rounds SET decided_at = decided_at - interval '1 hour'"
        " WHERE campaign_id = $1 AND round = (SELECT max(round) FROM ab_rounds"
        " WHERE campaign_id = $1)",
        campaign_id,
    )
    deadline = time.monotonic() + 30
    while len(await ab_rounds.releases(infra.pool, campaign_id)) == seen:
        assert time.monotonic() < deadline, "no release"
        await asyncio.sleep(0.1)


async def test_an_adaptive_test_shifts_traffic_to_the_variant_the_people_prefer(
    infra: bootstrap.Infra, sim: SimProcess
) -> None:
    audience = await brand_with_subscribers(infra.pool, 500, seed=403)
    brand_id = audience.brand_id
    key = await api_keys.create_key(infra.pool, brand_id)
    await asyncio.to_thread(
        sim.shoppers,
        {
            "events_url": f"{infra.settings.public_url}/v1/events", "api_key": key,
            "click_rate": 0.12, "boosts": {"BOOST": 4.0}, "order_rate": 0.0,
            "click_delay_s": [0.01, 0.1], "seed": 12,
            "clock_offset_s": (daytime.now() - datetime.now(UTC)).total_seconds(),
        },
    )  # fmt: skip
    campaign_id = await service.campaigns.create(
        infra, brand_id=brand_id, name="Adaptive", body="",
        variants=[{"body": A, "name": "20%"}, {"body": B, "name": "40%"}],
        ab={"mode": "adaptive", "rounds": 3, "round_share": 0.3, "wait_minutes": 30,
            "floor": 0.05, "confidence": 0.999, "click_delay_minutes": 0},
    )  # fmt: skip
    async with bootstrap.running(infra, bootstrap.build_provider(infra.settings), clock=daytime):
        await service.campaigns.launch(infra, campaign_id, at=DAYTIME)
        first = await wait_for_campaign(infra.pool, campaign_id, sim)
        c = await service.campaigns.get(infra, campaign_id)
        uid, ab = str(c.uid), c.ab_test()
        assert ab is not None
        round0 = await _sent(infra, campaign_id)
        assert round0
        assert all(round_of(uid, s, ab) == 0 for s in round0)  # nobody else yet
        assert first.audience == len(round0)
        await _settled(sim)
        released = 1
        while (c := await service.campaigns.get(infra, campaign_id)).ab_winner is None:
            await _next_release(infra, campaign_id, released)
            released += 1
            await wait_for_campaign(infra.pool, campaign_id, sim)
            await _settled(sim)
        done = await wait_for_campaign(infra.pool, campaign_id, sim)

    rounds = await ab_rounds.releases(infra.pool, campaign_id)
    assert rounds[0].weights == {"a": 0.5, "b": 0.5}
    assert rounds[1].weights["b"] > 0.6 > rounds[1].weights["a"]  # toward the preferred
    assert rounds[1].p_best["b"] > 0.8
    assert rounds[1].clicks["b"] > rounds[1].clicks["a"]
    assert rounds[-1].last_round == 2  # every round released
    assert c.ab_winner == "b"
    assert c.ab_decision["winner"] == "b"
    assert c.ab_decision["final"] is True

    everyone = await _sent(infra, campaign_id)
    assert done.audience == len(everyone)  # each subscriber once, counted once
    assert {round_of(uid, s, ab) for s in everyone} == {0, 1, 2}
    for sid, body in everyone.items():  # each by the weights of their round's release
        n = round_of(uid, sid, ab)
        weights = next(r.weights for r in rounds if r.round <= n <= r.last_round)
        assert ("BOOST" in body) == (assign_by(uid, sid, weights) == "b"), (sid, body)
    later = [b for s, b in everyone.items() if s not in round0]
    assert sum("BOOST" in b for b in later) > 0.6 * len(later)

    report = await service.campaigns.report(infra, campaign_id, brand_id=brand_id)
    assert report.ab is not None
    assert report.ab["winner"] == "b"
    shown = report.ab["rounds"]
    assert [r["round"] for r in shown] == [r.round for r in rounds]
    assert shown[1]["weights"] == rounds[1].weights
    assert shown[1]["p_best"]["b"] == rounds[1].p_best["b"]
    assert shown[0]["audience_share"] == 0.3
    assert "traffic to b" in shown[-1]["reason"]
    a, b = report.variants
    assert b.figures["recipients"] > a.figures["recipients"]
