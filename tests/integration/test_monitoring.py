"""Carrier monitoring: a carrier whose delivery rate for a brand drops below the threshold
raises an alert an operator can see (and a metric); the others do not."""

from __future__ import annotations

import asyncio
import dataclasses

from prometheus_client import REGISTRY

from clarion import bootstrap
from clarion.sim.process import SimProcess
from clarion.store import monitoring
from tests.conftest import DAYTIME, wait_for_campaign
from tests.integration.helpers import brand_with_subscribers, campaign, daytime


async def test_a_carrier_delivering_badly_raises_one_alert_for_that_carrier_only(
    infra: bootstrap.Infra,
) -> None:
    audience = await brand_with_subscribers(infra.pool, 1500, seed=1001)
    campaign_id = await campaign(infra.pool, audience.brand_id)
    watched = dataclasses.replace(
        infra, settings=dataclasses.replace(infra.settings, carrier_alert_min_volume=100)
    )
    with SimProcess(
        secret=infra.settings.sim_secret, failure_rate=0.0, carrier_failure={"AT&T": 0.6}
    ) as sim:
        provider = bootstrap.build_provider(infra.settings, url=sim.url)
        async with bootstrap.running(watched, provider, clock=daytime):
            await bootstrap.launch(watched, campaign_id, at=DAYTIME)
            await wait_for_campaign(infra.pool, campaign_id, sim, timeout_s=60)

    alerts = await monitoring.list_alerts(infra.pool, brand_id=audience.brand_id)
    assert [(a["kind"], a["subject"]) for a in alerts] == [("carrier_delivery_rate", "AT&T")]
    assert alerts[0]["value"] < 0.85
    assert "AT&T delivered" in alerts[0]["message"]
    report = {
        r["carrier"]: r
        for r in await monitoring.carrier_report(
            infra.pool, audience.brand_id, DAYTIME.replace(year=2000)
        )
    }
    assert report["AT&T"]["delivery_rate"] < 0.6
    assert report["Verizon"]["delivery_rate"] == 1.0
    assert report["Verizon"]["mean_latency_s"] is not None
    assert sum(report["AT&T"]["errors"].values()) == report["AT&T"]["failed"]
    rate = REGISTRY.get_sample_value(
        "clarion_carrier_delivery_rate", {"brand": str(audience.brand_id), "carrier": "AT&T"}
    )
    assert rate is not None
    assert rate < 0.85


async def test_the_sweeper_prunes_counted_status_batches_older_than_a_day(
    infra: bootstrap.Infra,
) -> None:
    """The carrier stage records every status batch it counted (a redelivery is then
    counted once); the record would grow by every batch for ever. The elected sweeper
    keeps a day of it: a redelivery comes back within minutes."""
    await infra.pool.execute(
        "INSERT INTO processed_batches (hop, batch_id, processed_at) VALUES"
        " ('status', 'prune-old', now() - interval '25 hours'),"
        " ('status', 'prune-recent', now() - interval '23 hours'),"
        " ('status', 'prune-new', now())"
    )
    with SimProcess(secret=infra.settings.sim_secret) as sim:
        provider = bootstrap.build_provider(infra.settings, url=sim.url)
        async with bootstrap.running(infra, provider, stages=("send",), http=False):
            for _ in range(100):  # the first sweep prunes (0.25 s apart)
                left = await infra.pool.fetchval(
                    "SELECT count(*) FROM processed_batches WHERE batch_id = 'prune-old'"
                )
                if not left:
                    break
                await asyncio.sleep(0.05)
    kept = await infra.pool.fetch(
        "SELECT batch_id FROM processed_batches WHERE batch_id LIKE 'prune-%' ORDER BY 1"
    )
    assert [r["batch_id"] for r in kept] == ["prune-new", "prune-recent"]
    assert await monitoring.prune_processed(infra.pool, 60.0) == 1  # 'prune-recent'
