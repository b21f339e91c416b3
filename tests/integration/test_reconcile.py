"""Reconciliation: messages whose receipts never came are asked about, and the provider's
answer becomes their final status."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from clarion import bootstrap
from clarion.providers import accounts
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


async def test_a_twilio_account_is_asked_for_the_status_of_its_messages(
    infra: bootstrap.Infra, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reconciliation through Twilio's message resource (GET …/Messages/{sid}.json)."""
    audience = await brand_with_subscribers(infra.pool, 300, seed=1102)
    campaign_id = await campaign(infra.pool, audience.brand_id)
    quick = dataclasses.replace(
        infra,
        settings=dataclasses.replace(infra.settings, reconcile_after_s=1.0, reconcile_every_s=0.5),
    )
    sid, token = "AC" + "5" * 32, "reconcile-token"
    monkeypatch.setenv("TEST_RECONCILE_TOKEN", token)
    with SimProcess(
        secret=infra.settings.sim_secret, failure_rate=0.0, receipt_loss=0.4,
        twilio_account_sid=sid, twilio_auth_token=token,
    ) as sim:  # fmt: skip
        twilio = accounts.build(
            "twilio", "twilio",
            {"account_sid": sid, "auth_token": "env:TEST_RECONCILE_TOKEN", "api_base": sim.url,
             "lookup_base": sim.url},
            infra.settings,
        )  # fmt: skip
        async with bootstrap.running(quick, twilio, clock=daytime):
            await bootstrap.launch(quick, campaign_id, at=DAYTIME)
            done = await wait_for_campaign(infra.pool, campaign_id, sim, timeout_s=60)
        lost = (await asyncio.to_thread(sim.stats))["receipts_lost"]

    assert lost > 50
    assert done.delivered == len(audience.consented)
