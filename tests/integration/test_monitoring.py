"""Carrier monitoring: a carrier whose delivery rate for a brand drops below the threshold
raises an alert an operator can see (and a metric); the others do not."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from datetime import timedelta

import pytest
from prometheus_client import REGISTRY

from clarion import bootstrap, service
from clarion.domain.clock import PinnedClock
from clarion.domain.records import Receipt, ReceiptBatch, StatusBatch, StatusChange
from clarion.domain.status import rank
from clarion.runtime.stages import Stages
from clarion.sim.process import SimProcess
from clarion.store import monitoring
from tests.conftest import DAYTIME, wait_for_campaign
from tests.integration.helpers import brand_with_subscribers, campaign, daytime, stored_batch


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
            await service.campaigns.launch(watched, campaign_id, at=DAYTIME)
            await wait_for_campaign(infra.pool, campaign_id, sim, timeout_s=60)

    alerts = await monitoring.list_alerts(infra.pool, brand_id=audience.brand_id)
    assert [(a.kind, a.subject) for a in alerts] == [("carrier_delivery_rate", "AT&T")]
    assert alerts[0].value is not None
    assert alerts[0].value < 0.85
    assert "AT&T delivered" in alerts[0].message
    report = {
        r.carrier: r
        for r in await monitoring.carrier_report(
            infra.pool, audience.brand_id, DAYTIME.replace(year=2000)
        )
    }
    assert report["AT&T"].delivery_rate is not None
    assert report["AT&T"].delivery_rate < 0.6
    assert report["Verizon"].delivery_rate == 1.0
    assert report["Verizon"].mean_latency_s is not None
    assert sum(report["AT&T"].errors.values()) == report["AT&T"].failed
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


async def _minutes(infra: bootstrap.Infra, brand_id: int) -> dict[str, tuple[int, int, int]]:
    rows = await infra.pool.fetch(
        "SELECT carrier, delivered, failed, latency_n FROM carrier_minutes WHERE brand_id = $1",
        brand_id,
    )
    return {r["carrier"]: (r["delivered"], r["failed"], r["latency_n"]) for r in rows}


async def test_a_fold_counts_its_outcomes_per_carrier_and_minute_in_its_own_transaction(
    infra: bootstrap.Infra,
) -> None:
    """The outcomes a fold records are counted for delivery monitoring by the fold itself,
    with no carrier stage running; a redelivered receipts batch changes no status, so it
    counts nothing again."""
    batch = await stored_batch(infra, 4, seed=1201, key="fold-minutes")
    ids = [m.message_id for m in batch.messages]
    await infra.pool.execute(
        "UPDATE messages SET status = 'sent', status_rank = $2, provider = 'sim',"
        " sent_at = now() - interval '3 seconds' WHERE id = ANY($1::uuid[])",
        ids, rank("sent"),
    )  # fmt: skip
    core = Stages(
        infra.pool, infra.bus, bootstrap.build_provider(infra.settings), clock=PinnedClock(DAYTIME)
    )
    receipts = [
        Receipt(message_id=mid, status="delivered", occurred_at=DAYTIME, carrier="Verizon")
        for mid in ids[:3]
    ] + [
        Receipt(
            message_id=ids[3], status="undelivered", occurred_at=DAYTIME, error_code="30003",
            carrier="AT&T",
        )
    ]  # fmt: skip
    report = ReceiptBatch(batch_id="fold-minutes", provider="sim", receipts=receipts)

    await core.aggregate([report])
    await core.aggregate([report])  # redelivered

    assert await _minutes(infra, batch.brand_id) == {"Verizon": (3, 0, 3), "AT&T": (0, 1, 0)}
    errors = await infra.pool.fetch(
        "SELECT carrier, error_code, n FROM carrier_errors WHERE brand_id = $1", batch.brand_id
    )
    assert [(r["carrier"], r["error_code"], r["n"]) for r in errors] == [("AT&T", "30003", 1)]
    minute = await infra.pool.fetchval(
        "SELECT DISTINCT minute FROM carrier_minutes WHERE brand_id = $1", batch.brand_id
    )
    assert minute == DAYTIME  # the fold's clock, to the minute


async def test_the_carrier_stage_judges_the_carriers_a_fold_counted(
    infra: bootstrap.Infra,
) -> None:
    audience = await brand_with_subscribers(infra.pool, 1, seed=1202)
    brand_id = audience.brand_id
    await infra.pool.execute(
        "INSERT INTO carrier_minutes (brand_id, carrier, minute, delivered, failed,"
        " latency_sum_s, latency_n) VALUES ($1, 'AT&T', $2, 100, 200, 0, 0),"
        " ($1, 'Verizon', $2, 300, 0, 0, 0)",
        brand_id, DAYTIME - timedelta(minutes=1),
    )  # fmt: skip
    core = Stages(
        infra.pool, infra.bus, bootstrap.build_provider(infra.settings), clock=PinnedClock(DAYTIME)
    )

    await core.carrier(
        StatusBatch(
            batch_id="judge", checks=[(brand_id, "AT&T"), (brand_id, "Verizon")], minute=DAYTIME
        )
    )

    alerts = await monitoring.list_alerts(infra.pool, brand_id=brand_id)
    assert [(a.subject, round(a.value or 0, 3)) for a in alerts] == [("AT&T", 0.333)]


async def test_outcomes_a_status_batch_carries_are_counted_once(infra: bootstrap.Infra) -> None:
    """Status batches published before the fold counted its own outcomes carry them; one
    still on the bus after an upgrade is counted by the carrier stage, once."""
    audience = await brand_with_subscribers(infra.pool, 1, seed=1203)
    core = Stages(
        infra.pool, infra.bus, bootstrap.build_provider(infra.settings), clock=PinnedClock(DAYTIME)
    )
    carried = StatusBatch(
        batch_id="carried-1203",
        changes=[
            StatusChange(
                message_id=f"00000000-0000-4000-8000-{i:012d}", brand_id=audience.brand_id,
                campaign_id=None, status="delivered", carrier="T-Mobile", error_code=None,
                latency_s=2.0,
            )
            for i in range(5)
        ],
    )  # fmt: skip

    await core.carrier(carried)
    await core.carrier(carried)  # redelivered

    assert await _minutes(infra, audience.brand_id) == {"T-Mobile": (5, 0, 5)}


async def test_a_receipt_naming_a_malformed_message_id_is_dropped_and_the_rest_fold(
    infra: bootstrap.Infra, caplog: pytest.LogCaptureFixture
) -> None:
    """A signed report whose message id is not one of ours in form (a provider's bug, or
    ours) cannot be folded; it is logged and left out, and the rest of its batch, and of
    the batches folded with it, go through (they would otherwise fail together, for ever)."""
    batch = await stored_batch(infra, 2, seed=1203, key="fold-malformed")
    ids = [m.message_id for m in batch.messages]
    core = Stages(
        infra.pool, infra.bus, bootstrap.build_provider(infra.settings), clock=PinnedClock(DAYTIME)
    )

    def report(key: str, *mids: str) -> ReceiptBatch:
        receipts = [
            Receipt(message_id=mid, status="delivered", occurred_at=DAYTIME, carrier="Verizon")
            for mid in mids
        ]
        return ReceiptBatch(batch_id=key, provider="sim", receipts=receipts)

    bad = "not-a-message-id"
    caplog.set_level(logging.WARNING)
    folded = await core.aggregate([report("one", ids[0], bad), report("two", ids[1])])

    assert folded == 3  # every receipt handled: two folded, one dropped
    rows = await infra.pool.fetch("SELECT status FROM messages WHERE id = ANY($1::uuid[])", ids)
    assert [r["status"] for r in rows] == ["delivered", "delivered"]
    assert await infra.pool.fetchval(
        "SELECT count(*) FROM message_events WHERE message_id = ANY($1::uuid[])", ids
    ) == 2  # fmt: skip
    assert any(
        bad in r.getMessage() and "not a message id" in r.getMessage() for r in caplog.records
    )
    dropped = REGISTRY.get_sample_value(
        "clarion_receipts_dropped_total", {"reason": "malformed_id"}
    )
    assert dropped is not None
    assert dropped >= 1
