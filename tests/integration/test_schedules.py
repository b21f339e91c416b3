"""Scheduled campaigns: a draft scheduled at a time launches itself on time, once; a
local-time send goes out in waves by zone, each subscriber's message held until the time on
their clock (the compliance window still governs); a time in the past is refused."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest

from clarion import bootstrap, service
from clarion.errors import CampaignStateError, InvalidInput
from clarion.sim.process import SimProcess
from clarion.store import campaigns
from tests.conftest import DAYTIME, wait_for_campaign
from tests.integration.helpers import brand_with_subscribers, campaign, daytime

ZONES = ("America/New_York", "America/Chicago", "America/Los_Angeles")


async def test_a_scheduled_campaign_launches_itself_once(
    infra: bootstrap.Infra, sim: SimProcess
) -> None:
    audience = await brand_with_subscribers(infra.pool, 20, seed=411)
    campaign_id = await campaign(infra.pool, audience.brand_id)
    now = daytime.now()
    with pytest.raises(InvalidInput) as past:
        await service.campaigns.schedule(infra, campaign_id, now=now, at=now - timedelta(minutes=5))
    assert past.value.field == "at"
    done = await service.campaigns.schedule(
        infra, campaign_id, now=now, at=now + timedelta(seconds=1.5)
    )
    due = time.monotonic() + 1.5 - (daytime.now() - now).total_seconds()
    assert done.status == "scheduled"
    c = await service.campaigns.get(infra, campaign_id)
    assert (c.status, c.launch_count) == ("scheduled", 0)
    with pytest.raises(CampaignStateError):
        await service.campaigns.update_draft(infra, campaign_id, {"name": "x"})
    # two workers, each with its elected sweeper: it launches once
    provider = bootstrap.build_provider(infra.settings)
    async with (
        bootstrap.running(infra, provider, clock=daytime),
        bootstrap.running(
            infra, bootstrap.build_provider(infra.settings), clock=daytime, http=False
        ),
    ):
        deadline = time.monotonic() + 10
        while (c := await service.campaigns.get(infra, campaign_id)).status == "scheduled":
            assert time.monotonic() < deadline, "not launched"
            await asyncio.sleep(0.05)
        late = time.monotonic() - due  # seen launched this long after its moment
        await wait_for_campaign(infra.pool, campaign_id, sim)
    assert c.launch_count == 1
    assert -0.05 < late < 1.0  # on time: within a second (the sweeper looks every 0.25 s)
    assert await campaigns.launch_scheduled(infra.pool, campaign_id, daytime.now()) is None
    sent = await infra.pool.fetchval(
        "SELECT count(*) FROM messages WHERE campaign_id = $1 AND sent_at IS NOT NULL",
        campaign_id,
    )
    assert sent == len(audience.consented)


async def test_unscheduled_it_is_a_draft_again(infra: bootstrap.Infra) -> None:
    audience = await brand_with_subscribers(infra.pool, 3, seed=412)
    campaign_id = await campaign(infra.pool, audience.brand_id)
    now = daytime.now()
    await service.campaigns.schedule(infra, campaign_id, now=now, at=now + timedelta(hours=1))
    await service.campaigns.unschedule(infra, campaign_id)
    assert (await service.campaigns.get(infra, campaign_id)).status == "draft"
    with pytest.raises(CampaignStateError):
        await service.campaigns.unschedule(infra, campaign_id)


async def test_a_local_time_send_goes_in_waves_by_zone(
    infra: bootstrap.Infra, sim: SimProcess
) -> None:
    audience = await brand_with_subscribers(infra.pool, 30, seed=413)
    brand_id = audience.brand_id
    await infra.pool.execute(
        "UPDATE subscribers SET timezone = ($2::text[])[1 + id % 3] WHERE brand_id = $1",
        brand_id, list(ZONES),
    )  # fmt: skip
    planned = await campaign(infra.pool, brand_id)
    day = (daytime.now() + timedelta(days=1)).date()
    done = await service.campaigns.schedule(
        infra, planned, now=daytime.now(), local_time="10:00", day=day
    )
    assert [w.timezone for w in done.waves] == list(ZONES)  # east to west
    assert [w.at.astimezone(DAYTIME.tzinfo).hour for w in done.waves] == [15, 16, 18]
    assert done.scheduled_at == done.waves[0].at
    assert sum(w.subscribers for w in done.waves) == 30
    plan = await service.campaigns.plan(infra, planned)
    assert [w.timezone for w in plan.waves] == list(ZONES)
    with pytest.raises(InvalidInput) as past:
        await service.campaigns.schedule(
            infra, await campaign(infra.pool, brand_id), now=daytime.now(),
            local_time="10:00", day=(daytime.now() - timedelta(days=1)).date(),
        )  # fmt: skip
    assert past.value.field == "local_time"

    # a wave at New York's time now: New York's messages go at once, Chicago's and Los
    # Angeles' wait for their hour (one and three hours later)
    now = daytime.now()
    ny = now.astimezone(ZoneInfo("America/New_York"))
    waved = await campaign(infra.pool, brand_id)
    await infra.pool.execute(
        "UPDATE campaigns SET local_day = $2, local_time = $3 WHERE id = $1",
        waved, ny.date(), f"{ny.hour:02d}:{ny.minute:02d}",
    )  # fmt: skip
    async with bootstrap.running(infra, bootstrap.build_provider(infra.settings), clock=daytime):
        await service.campaigns.launch(infra, waved, at=now)
        progress = await wait_for_campaign(infra.pool, waved, sim)
    rows = await infra.pool.fetch(
        "SELECT s.timezone, m.status, m.error_code, m.not_before FROM messages m"
        " JOIN subscribers s ON s.id = m.subscriber_id WHERE m.campaign_id = $1"
        " AND m.status <> 'suppressed'",
        waved,
    )
    by_zone: dict[str, set[str]] = {}
    for r in rows:
        by_zone.setdefault(r["timezone"], set()).add(r["status"])
    assert by_zone["America/New_York"] <= {"delivered", "undelivered"}
    assert by_zone["America/Chicago"] == {"deferred"}
    assert by_zone["America/Los_Angeles"] == {"deferred"}
    waits = {r["timezone"]: r["not_before"] for r in rows if r["status"] == "deferred"}
    assert waits["America/Los_Angeles"] - waits["America/Chicago"] == timedelta(hours=2)
    assert {r["error_code"] for r in rows if r["status"] == "deferred"} == {"local_time"}
    assert progress.deferred_by_reason.get("local_time", 0) > 0
