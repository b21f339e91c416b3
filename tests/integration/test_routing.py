"""Carrier lanes, lanes shared across processes, per-subscriber order, and the send plan, on
the real pipeline (Postgres, JetStream, the simulator process)."""

from __future__ import annotations

import asyncio
import dataclasses
import random

import httpx

from clarion import bootstrap, service
from clarion.domain.lanes import LaneLimit
from clarion.pipeline.lanes import next_pacific_midnight, pacific_day
from clarion.pipeline.plan import plan_vs_actual
from clarion.runtime import planning
from clarion.service.progress import campaign_progress
from clarion.sim.network import carrier_for
from clarion.sim.process import SimProcess
from clarion.store import campaigns
from clarion.store import lanes as lane_store
from tests.conftest import DAYTIME, wait_for_campaign
from tests.integration.helpers import brand_with_subscribers, campaign, daytime

T_MOBILE_PER_DAY = 10


async def test_leases_from_many_connections_never_exceed_a_lane_limit(
    infra: bootstrap.Infra,
) -> None:
    """Send processes lease tokens from one shared row: together they never get more than
    the burst plus the rate times the time passed, nor more than a daily quota."""
    rate, burst, per_day = 50.0, 20.0, 300
    rate_lane, day_lane = ("sender", "+15125550999"), ("brand_carrier_day", "99:T-Mobile")
    limits = {
        rate_lane: LaneLimit(rate_per_s=rate, burst=burst),
        day_lane: LaneLimit(per_day=per_day),
    }
    granted = {rate_lane: 0.0, day_lane: 0.0}
    t0 = 1_000_000.0
    rng = random.Random(5)

    async def worker(offsets: list[float]) -> None:
        async with infra.pool.acquire() as conn:
            for dt in offsets:
                got = await lane_store.lease(
                    conn, {rate_lane: 7.0, day_lane: 7.0}, limits.get,
                    now_s=t0 + dt, today="2026-11-25",
                )  # fmt: skip
                for lane, g in got.items():
                    granted[lane] += g.tokens

    # four "processes" asking 40 times each over 2 simulated seconds, interleaved
    await asyncio.gather(
        *(worker(sorted(rng.uniform(0, 2.0) for _ in range(40))) for _ in range(4))
    )
    assert granted[rate_lane] <= burst + rate * 2.0 + 1e-6
    assert granted[rate_lane] >= burst + rate * 1.5  # and they did get the lane's capacity
    assert granted[day_lane] <= per_day
    # a new Pacific day gives the quota again
    async with infra.pool.acquire() as conn:
        got = await lane_store.lease(
            conn, {day_lane: 5.0}, limits.get, now_s=t0 + 90_000, today="2026-11-26"
        )
    assert got[day_lane].tokens == 5.0
    assert not got[day_lane].daily_spent


async def test_carrier_lanes_look_up_carriers_and_hold_a_spent_daily_cap(
    infra: bootstrap.Infra, sim: SimProcess
) -> None:
    audience = await brand_with_subscribers(infra.pool, 300, seed=611)
    brand = audience.brand_id
    # T-Mobile lets this brand send 10 a day; AT&T takes 40/s per campaign (wildcard rows)
    await lane_store.set_lane_limit(
        infra.pool, "brand_carrier_day", f"{brand}:T-Mobile", per_day=T_MOBILE_PER_DAY
    )
    await lane_store.set_lane_limit(
        infra.pool, "carrier_minute", "*:*:AT&T", rate_per_s=40.0, burst=10.0
    )
    campaign_id = await campaign(infra.pool, brand)
    provider = bootstrap.build_provider(infra.settings)
    try:
        plan = await planning.plan_campaign(
            infra.pool, provider, campaign_id, at=DAYTIME, platform_rate_mps=3000
        )
    finally:
        await provider.aclose()
    by_carrier: dict[str, list[str]] = {}
    for phone in audience.consented:
        by_carrier.setdefault(carrier_for(phone).name, []).append(phone)
    t_mobile, att = by_carrier["T-Mobile"], by_carrier["AT&T"]

    # the plan: carriers looked up, the cap hit (its left-overs expire before the next
    # Pacific midnight), AT&T's lane the bottleneck
    # (eligible per carrier: T-Mobile's beyond the cap never go)
    assert plan.carriers == {
        name: T_MOBILE_PER_DAY if name == "T-Mobile" else len(p) for name, p in by_carrier.items()
    }
    (cap,) = plan.caps
    assert (cap.key, cap.left_over, cap.expire) == (
        f"{brand}:T-Mobile", 0, len(t_mobile) - T_MOBILE_PER_DAY,
    )  # fmt: skip
    assert cap.resumes_at == next_pacific_midnight(DAYTIME)
    assert plan.eligible == len(audience.consented) - cap.expire
    assert plan.bottleneck == f"carrier_minute:{brand}:{campaign_id}:AT&T"
    assert plan.duration_s is not None
    assert plan.duration_s >= (len(att) - 10) / 40.0
    stored = await campaigns.stored_plan(infra.pool, campaign_id)
    assert stored is not None
    assert stored.eligible == plan.eligible

    async with bootstrap.running(infra, bootstrap.build_provider(infra.settings), clock=daytime):
        await service.campaigns.launch(infra, campaign_id, at=DAYTIME)
        progress = await wait_for_campaign(infra.pool, campaign_id, sim, timeout_s=60)

    # every subscriber's carrier is remembered from the lookup
    stored_carriers = dict(
        await infra.pool.fetch("SELECT phone, carrier FROM subscribers WHERE brand_id = $1", brand)
    )
    assert all(stored_carriers[p] == carrier_for(p).name for p in audience.consented)
    # exactly the cap's worth of T-Mobile messages reached handsets; the rest expired,
    # recorded with the cap as the reason
    async with httpx.AsyncClient(base_url=sim.url) as client:
        received = [len((await client.get(f"/handsets/{p}")).json()["messages"]) for p in t_mobile]
    assert sum(received) == T_MOBILE_PER_DAY
    assert (
        progress.suppressed_by_reason.get("carrier_daily_cap") == len(t_mobile) - T_MOBILE_PER_DAY
    )
    assert progress.delivered + progress.failed == len(audience.consented) - cap.expire
    used = await infra.pool.fetchval(
        "SELECT used FROM lane_state WHERE kind = 'brand_carrier_day' AND key = $1 AND day = $2",
        f"{brand}:T-Mobile",
        pacific_day(DAYTIME),
    )
    assert used == T_MOBILE_PER_DAY
    # AT&T kept its rate: its messages went no faster than burst + 40/s
    span = await infra.pool.fetchval(
        "SELECT extract(epoch FROM max(m.sent_at) - min(m.sent_at)) FROM messages m"
        " WHERE m.campaign_id = $1 AND m.carrier = 'AT&T'",
        campaign_id,
    )
    assert float(span) >= (len(att) - 10) / 40.0 - 0.5

    # plan versus actual: the counts the plan promised happened
    rows = {
        r.metric: (r.planned, r.actual)
        for r in plan_vs_actual(plan, await planning.actual(infra.pool, campaign_id))
    }
    assert rows["eligible"][0] == rows["eligible"][1]
    assert rows["expired"] == (cap.expire, cap.expire)
    assert rows["carrier AT&T"] == (len(att), len(att))


async def test_a_subscribers_messages_leave_in_the_order_they_were_created(
    infra: bootstrap.Infra, sim: SimProcess
) -> None:
    """Two campaigns to the same people, the first held back by a slow sender lane: the
    second's messages wait behind the first's for each subscriber (sequence kept by the
    database, one worker per subscriber by partition), so every handset gets A then B."""
    audience = await brand_with_subscribers(infra.pool, 80, seed=612)
    brand = audience.brand_id
    await infra.pool.execute("UPDATE brands SET smart_sending_h = 0 WHERE id = $1", brand)
    await lane_store.add_sender(infra.pool, brand, "+15125550100", rate_per_s=25.0)
    first = await campaign(
        infra.pool, brand, body="{{ brand.name }}: A first. Reply STOP to opt out."
    )
    second = await campaign(
        infra.pool, brand, body="{{ brand.name }}: B second. Reply STOP to opt out."
    )
    async with bootstrap.running(infra, bootstrap.build_provider(infra.settings), clock=daytime):
        await service.campaigns.launch(infra, first, at=DAYTIME)
        # B is created after A: A's messages all exist (and mostly wait for the lane)
        while (p := await campaign_progress(infra.pool, first)).persisted < 80 or not (
            p.audience_done
        ):
            await asyncio.sleep(0.05)
        await service.campaigns.launch(infra, second, at=DAYTIME)
        await wait_for_campaign(infra.pool, first, sim, timeout_s=60)
        await wait_for_campaign(infra.pool, second, sim, timeout_s=60)

    # the order they left in (handed to the provider; the network may deliver two messages
    # sent a moment apart in either order, as real carriers do)
    rows = await infra.pool.fetch(
        "SELECT m.to_address, array_agg(m.campaign_id ORDER BY m.sent_at) AS campaigns"
        " FROM messages m WHERE m.campaign_id = ANY($1::bigint[]) AND m.sent_at IS NOT NULL"
        " GROUP BY m.to_address",
        [first, second],
    )
    left = {r["to_address"]: list(r["campaigns"]) for r in rows}
    assert left == {phone: [first, second] for phone in audience.consented}
    async with httpx.AsyncClient(base_url=sim.url) as client:
        for phone in audience.consented:
            inbox = (await client.get(f"/handsets/{phone}")).json()["messages"]
            assert len(inbox) == 2, (phone, inbox)
    waited = await infra.pool.fetchval(
        "SELECT count(*) FROM messages WHERE campaign_id = $1 AND waited = 'sequence_wait'",
        second,
    )
    assert waited > 0  # the order was kept by the sequence check, not by luck


async def test_a_paused_campaign_does_not_hold_up_another_campaign(
    infra: bootstrap.Infra, sim: SimProcess
) -> None:
    """A paused campaign's messages wait in Postgres, not on the bus, so the partitions they
    share with other campaigns keep moving; resume sends them on."""
    paused = await brand_with_subscribers(infra.pool, 400, seed=613)
    other = await brand_with_subscribers(infra.pool, 400, seed=614)
    await lane_store.add_sender(infra.pool, paused.brand_id, "+15125550100", rate_per_s=50.0)
    held = await campaign(infra.pool, paused.brand_id)
    moving = await campaign(infra.pool, other.brand_id)
    async with bootstrap.running(infra, bootstrap.build_provider(infra.settings), clock=daytime):
        await service.campaigns.launch(infra, held, at=DAYTIME)
        await asyncio.sleep(0.5)
        await campaigns.set_paused(infra.pool, held, True)
        await service.campaigns.launch(infra, moving, at=DAYTIME)
        done = await wait_for_campaign(infra.pool, moving, sim, timeout_s=30)
        during = await campaign_progress(infra.pool, held)
        await campaigns.set_paused(infra.pool, held, False, now=daytime.now())
        resumed = await wait_for_campaign(infra.pool, held, sim, timeout_s=60)

    assert done.delivered + done.failed == len(other.consented)
    assert during.deferred_by_reason.get("paused", 0) > 0
    assert resumed.delivered + resumed.failed == len(paused.consented)


async def test_a_provider_that_answers_429_slows_its_lane_and_every_message_still_goes_once(
    infra: bootstrap.Infra,
) -> None:
    """The simulator takes 300 messages a second on this account and answers 429 beyond it;
    the provider lane is set far higher (3,000/s). Each 429 halves the lane's shared rate
    (AIMD) and the refused messages wait and go again: all of them arrive, once."""
    audience = await brand_with_subscribers(infra.pool, 3000, seed=615)
    await lane_store.set_lane_limit(infra.pool, "provider", "sim", rate_per_s=3000.0, burst=1000.0)
    campaign_id = await campaign(infra.pool, audience.brand_id)
    with SimProcess(secret=infra.settings.sim_secret, failure_rate=0.0, max_mps=300.0) as slow:
        settings = dataclasses.replace(infra.settings, sim_url=slow.url)
        lowest = 3000.0
        async with bootstrap.running(infra, bootstrap.build_provider(settings), clock=daytime):
            await service.campaigns.launch(infra, campaign_id, at=DAYTIME)
            deadline = asyncio.get_running_loop().time() + 90
            while not (p := await campaign_progress(infra.pool, campaign_id)).complete:
                rate = await infra.pool.fetchval(
                    "SELECT rate FROM lane_state WHERE kind = 'provider' AND key = 'sim'"
                )
                lowest = min(lowest, rate if rate is not None else lowest)
                assert asyncio.get_running_loop().time() < deadline, p
                await asyncio.sleep(0.05)
            await wait_for_campaign(infra.pool, campaign_id, slow, timeout_s=30)
        stats = await asyncio.to_thread(slow.stats)
        inboxes = await asyncio.to_thread(slow.handsets)

    assert stats["throttled"] > 0
    assert lowest <= 1500.0  # halved at least once
    assert stats["accepted"] == len(audience.consented)
    assert sorted(inboxes) == sorted(audience.consented)
    assert set(inboxes.values()) == {1}
