"""A campaign through an SMPP account (the simulator's SMSC): receipts over the binds, named
by the SMSC's id only, matched to our messages; a STOP texted back arrives as an MO
deliver_sm and opts the subscriber out, and its confirmation goes back over SMPP."""

from __future__ import annotations

import asyncio
from collections import Counter

import httpx
import pytest

from clarion import bootstrap, service
from clarion.providers import accounts
from clarion.sim.network import carrier_for
from clarion.sim.process import SimProcess
from clarion.store import compliance
from tests.conftest import DAYTIME, wait_for_campaign
from tests.integration.helpers import brand_with_subscribers, campaign, daytime


async def test_a_campaign_over_smpp_with_receipts_by_smsc_id_and_a_stop_as_mo(
    infra: bootstrap.Infra, monkeypatch: pytest.MonkeyPatch
) -> None:
    audience = await brand_with_subscribers(infra.pool, 300, seed=1401)
    campaign_id = await campaign(infra.pool, audience.brand_id)
    monkeypatch.setenv("TEST_SMPP_PASSWORD", "clarion")
    with SimProcess(
        secret=infra.settings.sim_secret,
        failure_rate=0.0,
        carrier_failure={"AT&T": 0.3},
        smpp_port=0,
    ) as sim:
        assert sim.smpp_port is not None
        smpp = accounts.build(
            "acme-smpp", "smpp",
            {"host": "127.0.0.1", "port": str(sim.smpp_port), "system_id": "clarion",
             "password": "env:TEST_SMPP_PASSWORD", "binds": "2", "submit_id_base": "16",
             "receipt_id_base": "10"},
            infra.settings, bus=infra.bus,
        )  # fmt: skip
        await smpp.start(wait_s=10)  # type: ignore[attr-defined]
        try:
            async with bootstrap.running(infra, smpp, clock=daytime):
                await service.campaigns.launch(infra, campaign_id, at=DAYTIME)
                done = await wait_for_campaign(infra.pool, campaign_id, sim, timeout_s=60)
                # failures only at AT&T, so the opt-out confirmation surely arrives
                stopper = next(p for p in audience.consented if carrier_for(p).name != "AT&T")
                async with httpx.AsyncClient(base_url=sim.url, timeout=10) as client:
                    reply = await client.post(
                        f"/handsets/{stopper}/reply", json={"to": "+15125550100", "body": "STOP"}
                    )
                assert reply.status_code == 200, reply.text
                consent = None
                for _ in range(100):
                    async with infra.pool.acquire() as conn:
                        _, consent = await compliance.subscriber_consent(
                            conn, audience.brand_id, stopper
                        )
                    if consent == "opted_out":
                        break
                    await asyncio.sleep(0.05)
                inbox: list[dict[str, str]] = []
                for _ in range(100):
                    inbox = await asyncio.to_thread(sim.handset, stopper)
                    if any("unsubscribed" in m["body"].lower() for m in inbox):
                        break
                    await asyncio.sleep(0.05)
        finally:
            await smpp.aclose()

    assert done.delivered + done.failed == len(audience.consented)
    assert done.failed > 0
    providers = Counter(
        r["provider"]
        for r in await infra.pool.fetch(
            "SELECT provider FROM messages WHERE campaign_id = $1 AND status = 'delivered'",
            campaign_id,
        )
    )
    assert providers == {"acme-smpp": done.delivered}
    # every receipt was matched through the SMSC id: none left waiting
    assert await infra.pool.fetchval("SELECT count(*) FROM early_receipts") == 0
    assert consent == "opted_out"
    assert any("unsubscribed" in m["body"].lower() for m in inbox), inbox
