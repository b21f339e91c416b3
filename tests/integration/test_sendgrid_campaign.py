"""An email campaign over a SendGrid account (the simulator's SendGrid-compatible API): one
request per 1,000 recipients, signed Event Webhook posts to /webhooks/{account}/status folded
into one record per message; a bounce fails and suppresses the address everywhere, a
complaint suppresses it for the brand."""

from __future__ import annotations

import dataclasses
from collections import Counter

import httpx
import pytest

from clarion import bootstrap, service
from clarion.domain.contacts import new_subscriber
from clarion.providers import accounts
from clarion.sim.process import SimProcess
from clarion.store import brands, campaigns, lanes
from tests.conftest import DAYTIME, wait_for_campaign
from tests.integration.helpers import daytime


async def test_an_email_campaign_over_sendgrid_with_signed_events(
    infra: bootstrap.Infra, sim: SimProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    brand = await brands.create_brand(
        infra.pool, slug="grid", name="Northwind", sender="+15125550100"
    )
    rows = [
        {"email": f"reader{i}@example.net", "first_name": f"R{i}", "email_consent": "yes"}
        for i in range(1200)
    ]
    rows += [
        {"email": "gone@bounce.invalid", "email_consent": "yes"},
        {"email": "angry@complain.invalid", "email_consent": "yes"},
    ]
    await brands.import_subscribers(
        infra.pool, brand, [new_subscriber(r) for r in rows], source="test"
    )
    campaign_id = await campaigns.create_campaign(
        infra.pool, brand_id=brand, name="Letter", channel="email", body="unused",
        subject="News for {{ first_name | default('you') }}",
        email_body="Hi {{ first_name | default('there') }}, this week's news.",
    )  # fmt: skip
    monkeypatch.setenv("TEST_SENDGRID_KEY", infra.settings.sim_secret)
    auth = {"authorization": f"Bearer {infra.settings.sim_secret}"}
    async with httpx.AsyncClient(base_url=sim.url, headers=auth, timeout=10) as api:
        await api.patch(
            "/v3/user/webhooks/event/settings",
            json={"enabled": True, "url": f"{infra.settings.public_url}/webhooks/grid/status"},
        )
        public_key = (await api.get("/v3/user/webhooks/event/settings/signed")).json()["public_key"]
    grid = accounts.build(
        "grid", "sendgrid",
        {"api_key": "env:TEST_SENDGRID_KEY", "webhook_public_key": public_key,
         "base_url": sim.url},
        infra.settings,
    )  # fmt: skip
    await lanes.set_route(infra.pool, brand, "email", ["grid"])
    linked = dataclasses.replace(
        infra, settings=dataclasses.replace(infra.settings, links_url="https://clarion.example")
    )
    async with bootstrap.running(
        linked, bootstrap.build_provider(infra.settings), clock=daytime, more_providers=[grid]
    ):
        await service.campaigns.launch(infra, campaign_id, at=DAYTIME)
        done = await wait_for_campaign(infra.pool, campaign_id, sim, timeout_s=60)
    await grid.aclose()

    statuses = Counter(
        (r["status"], r["error_code"])
        for r in await infra.pool.fetch(
            "SELECT status, error_code FROM messages WHERE campaign_id = $1", campaign_id
        )
    )
    assert statuses[("delivered", None)] == 1201  # the complainer's was delivered too
    assert statuses[("undelivered", "bounce:hard")] == 1
    # (the complaint comes after `delivered`: it is recorded as a suppression, below)
    assert done.audience == len(rows)
    suppressed = {
        (r["brand_id"], r["address"], r["reason"])
        for r in await infra.pool.fetch(
            "SELECT brand_id, address, reason FROM suppressions WHERE channel = 'email'"
        )
    }
    assert suppressed == {
        (None, "gone@bounce.invalid", "hard_bounce"),
        (brand, "angry@complain.invalid", "complaint"),
    }
    async with httpx.AsyncClient(base_url=sim.url, timeout=10) as client:
        boxes = (await client.get("/mailboxes")).json()
    assert boxes["reader7@example.net"] == 1
