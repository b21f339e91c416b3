"""Pause, resume and cancel a campaign while it is sending."""

from __future__ import annotations

import asyncio
import time

from clarion import bootstrap, service
from clarion.service.progress import campaign_progress
from clarion.sim.process import SimProcess
from clarion.store.lanes import set_lane_limit
from tests.conftest import DAYTIME, wait_for_campaign
from tests.integration.helpers import brand_with_subscribers, campaign, daytime


async def _slow_provider(infra: bootstrap.Infra) -> None:
    """The provider lane at 2,000/s: ten thousand recipients take seconds, however fast the
    pipeline gets, so the pause or cancel lands while the campaign sends."""
    await set_lane_limit(infra.pool, "provider", "sim", rate_per_s=2000, burst=500)


async def _until_handed_over(infra: bootstrap.Infra, campaign_id: int) -> None:
    deadline = time.monotonic() + 30
    while not (await campaign_progress(infra.pool, campaign_id)).handed_over:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.01)


async def test_pause_stops_provider_calls_within_a_second_and_resume_finishes_exactly_once(
    infra: bootstrap.Infra, sim: SimProcess
) -> None:
    await _slow_provider(infra)
    audience = await brand_with_subscribers(infra.pool, 10_000, seed=401)
    campaign_id = await campaign(infra.pool, audience.brand_id)
    async with bootstrap.running(infra, bootstrap.build_provider(infra.settings), clock=daytime):
        await service.campaigns.launch(infra, campaign_id, at=DAYTIME)
        await _until_handed_over(infra, campaign_id)
        await service.campaigns.pause(infra, campaign_id)
        await asyncio.sleep(1.0)
        accepted_after_1s = (await asyncio.to_thread(sim.stats))["accepted"]
        await asyncio.sleep(1.5)
        assert (await asyncio.to_thread(sim.stats))["accepted"] == accepted_after_1s
        paused = await campaign_progress(infra.pool, campaign_id)
        assert paused.handed_over < len(audience.consented)  # the pause held something back

        await service.campaigns.resume(infra, campaign_id, at=daytime.now())
        progress = await wait_for_campaign(infra.pool, campaign_id, sim, timeout_s=120)

    inbox = await asyncio.to_thread(sim.handsets)
    assert {n: inbox.get(n, 0) for n in audience.consented} == dict.fromkeys(audience.consented, 1)
    assert progress.delivered == len(audience.consented)


async def test_cancel_ends_a_campaign_with_every_unsent_recipient_accounted_for(
    infra: bootstrap.Infra, sim: SimProcess
) -> None:
    await _slow_provider(infra)
    audience = await brand_with_subscribers(infra.pool, 10_000, seed=402)
    campaign_id = await campaign(infra.pool, audience.brand_id)
    async with bootstrap.running(infra, bootstrap.build_provider(infra.settings), clock=daytime):
        await service.campaigns.launch(infra, campaign_id, at=DAYTIME)
        await _until_handed_over(infra, campaign_id)
        await service.campaigns.cancel(infra, campaign_id)
        progress = await wait_for_campaign(infra.pool, campaign_id, sim, timeout_s=60)
        await asyncio.sleep(1.0)  # batches already on the bus drain as cancelled
        progress = await wait_for_campaign(infra.pool, campaign_id, sim, timeout_s=60)

    cancelled = progress.suppressed_by_reason.get("cancelled", 0)
    assert cancelled > 0
    assert progress.delivered + cancelled + progress.suppressed_by_reason["no_consent"] == (
        progress.audience
    )
    inbox = await asyncio.to_thread(sim.handsets)
    sent_to = {n for n in audience.consented if inbox.get(n)}
    assert len(sent_to) == progress.delivered
    assert all(inbox[n] == 1 for n in sent_to)
    reached = await infra.pool.fetchval(
        "SELECT count(*) FROM messages WHERE campaign_id = $1", campaign_id
    )
    assert reached == progress.audience  # every paged recipient has an outcome
    assert (
        await infra.pool.fetchval("SELECT status FROM campaigns WHERE id = $1", campaign_id)
    ) == "cancelled"
