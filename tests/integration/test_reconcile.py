"""Reconciliation: messages whose receipts never came are asked about, and the provider's
answer becomes their final status."""

from __future__ import annotations

import asyncio
import dataclasses

from clarion import bootstrap
from clarion.sim.process import SimProcess
from tests.conftest import DAYTIME, wait_for_campaign
from tests.integration.helpers import brand_with_subscribers, campaign, daytime


async def test_messages_whose_receipts_were_lost_are_reconciled_from_the_provider(
    infra: bootstrap.Infra,
) -> None:
    audience = await brand_with_subscribers(infra.pool, 600, seed=1101)
    campaign_id = await campaign(infra.pool, audience.brand_id)
    quick = dataclasses.replace(
        infra,
        settings=dataclasses.replace(infra.settings, reconcile_after_s=1.0, reconcile_every_s=0.5),
    )
    with SimProcess(secret=infra.settings.sim_secret, failure_rate=0.0, receipt_loss=0.4) as sim:
        provider = bootstrap.build_provider(infra.settings, url=sim.url)
        async with bootstrap.running(quick, provider, clock=daytime):
            await bootstrap.launch(quick, campaign_id, at=DAYTIME)
            done = await wait_for_campaign(infra.pool, campaign_id, sim, timeout_s=60)
        lost = (await asyncio.to_thread(sim.stats))["receipts_lost"]

    assert lost > 100  # a good share of the receipts never came
    assert done.delivered == len(audience.consented)  # yet every message is final
