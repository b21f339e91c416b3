"""A campaign through a Twilio account (the simulator's Twilio-compatible API): one form
request per message, signed status callbacks folded into one record per message, and a STOP
texted through Twilio's inbound webhook opting the subscriber out."""

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

SID = "AC" + "7" * 32
TOKEN = "twilio-pipeline-token"


async def test_a_campaign_over_a_twilio_account_and_a_stop_through_its_inbound_webhook(
    infra: bootstrap.Infra, monkeypatch: pytest.MonkeyPatch
) -> None:
    audience = await brand_with_subscribers(infra.pool, 200, seed=1201)
    campaign_id = await campaign(infra.pool, audience.brand_id)
    monkeypatch.setenv("TEST_TWILIO_TOKEN", TOKEN)
    with SimProcess(
        secret=infra.settings.sim_secret, failure_rate=0.0, carrier_failure={"AT&T": 0.3},
        twilio_account_sid=SID, twilio_auth_token=TOKEN,
    ) as sim:  # fmt: skip
        twilio = accounts.build(
            "acme-twilio", "twilio",
            {"account_sid": SID, "auth_token": "env:TEST_TWILIO_TOKEN", "api_base": sim.url,
             "lookup_base": sim.url},
            infra.settings,
        )  # fmt: skip
        async with (
            bootstrap.running(infra, twilio, clock=daytime),
            httpx.AsyncClient(base_url=sim.url, timeout=10) as client,
        ):
            await client.post(
                f"/2010-04-01/Accounts/{SID}/IncomingPhoneNumbers.json",
                data={
                    "PhoneNumber": "+15125550100",
                    "SmsUrl": f"{infra.settings.public_url}/webhooks/acme-twilio/inbound",
                },
                auth=(SID, TOKEN),
            )
            await service.campaigns.launch(infra, campaign_id, at=DAYTIME)
            done = await wait_for_campaign(infra.pool, campaign_id, sim, timeout_s=60)
            # failures only at AT&T, so the opt-out confirmation surely arrives
            stopper = next(p for p in audience.consented if carrier_for(p).name != "AT&T")
            reply = await client.post(
                f"/handsets/{stopper}/reply", json={"to": "+15125550100", "body": "STOP"}
            )
            assert reply.json()["webhook_status"] == 200
            for _ in range(100):
                async with infra.pool.acquire() as conn:
                    _, consent = await compliance.subscriber_consent(
                        conn, audience.brand_id, stopper
                    )
                if consent == "opted_out":
                    break
                await asyncio.sleep(0.05)
            before = len(await asyncio.to_thread(sim.handset, stopper))
            for _ in range(100):  # the opt-out confirmation goes out through Twilio too
                inbox = await asyncio.to_thread(sim.handset, stopper)
                if any("unsubscribed" in m["body"].lower() for m in inbox):
                    break
                await asyncio.sleep(0.05)
            handsets = await asyncio.to_thread(sim.handsets)

    assert consent == "opted_out"
    assert done.delivered + done.failed == len(audience.consented)
    assert done.failed > 0  # the carrier failures came back as callbacks too
    providers = Counter(
        r["provider"]
        for r in await infra.pool.fetch(
            "SELECT provider FROM messages WHERE campaign_id = $1 AND status = 'delivered'",
            campaign_id,
        )
    )
    assert providers == {"acme-twilio": done.delivered}
    events = await infra.pool.fetchval(
        "SELECT count(*) FROM message_events e JOIN messages m ON m.id = e.message_id"
        " WHERE m.campaign_id = $1",
        campaign_id,
    )
    assert events == 2 * len(audience.consented)  # sent + final, once each
    # the opt-out confirmation reached the handset, through the same account
    assert any("unsubscribed" in m["body"].lower() for m in inbox), inbox
    assert len(inbox) == before + 1
    # one campaign message per delivered recipient, plus that confirmation
    assert sum(handsets.values()) == done.delivered + 1
