"""Flow-control lanes on the real pipeline: a slow sender does not delay a fast one."""

from __future__ import annotations

import asyncio
import time

from clarion import bootstrap, service
from clarion.service.progress import campaign_progress
from clarion.sim.process import SimProcess
from clarion.store import lanes as lane_store
from tests.conftest import DAYTIME, wait_for_campaign
from tests.integration.helpers import brand_with_subscribers, campaign, daytime

SLOW_RATE_PER_S = 20.0


async def test_a_slow_sender_does_not_delay_a_fast_one(
    infra: bootstrap.Infra, sim: SimProcess
) -> None:
    slow = await brand_with_subscribers(infra.pool, 600, seed=501)
    fast = await brand_with_subscribers(infra.pool, 600, seed=502)
    await infra.pool.execute(
        "UPDATE brands SET sender = '+15125550200' WHERE id = $1", fast.brand_id
    )
    await lane_store.add_sender(
        infra.pool, slow.brand_id, "+15125550100", rate_per_s=SLOW_RATE_PER_S
    )
    slow_campaign = await campaign(infra.pool, slow.brand_id)
    fast_campaign = await campaign(infra.pool, fast.brand_id)
    async with bootstrap.running(infra, bootstrap.build_provider(infra.settings), clock=daytime):
        started = time.monotonic()
        await service.campaigns.launch(infra, slow_campaign, at=DAYTIME)
        await service.campaigns.launch(infra, fast_campaign, at=DAYTIME)
        fast_done = await wait_for_campaign(infra.pool, fast_campaign, sim, timeout_s=30)
        elapsed = time.monotonic() - started
        slow_now = await campaign_progress(infra.pool, slow_campaign)
        await service.campaigns.cancel(infra, slow_campaign)
        await asyncio.sleep(0.5)

    assert fast_done.delivered == len(fast.consented)
    # the slow lane kept its pace (its burst plus its rate) while the fast one finished
    assert slow_now.handed_over <= SLOW_RATE_PER_S * (elapsed + 1) + SLOW_RATE_PER_S
    assert slow_now.handed_over < len(slow.consented)
    assert elapsed < 15
