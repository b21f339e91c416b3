"""How fast does a HELP reply reach the provider while a big campaign is sending?

Starts the simulator and the pipeline, launches a campaign of N recipients, and while it
sends, texts HELP from fresh handsets every 0.25 s. Prints one JSON line: the latency from
the inbound message (as the simulator stamped it) to the reply's provider call (p50, p99,
max), and how far the campaign had gone.

    .venv/bin/python bench/transactional_latency.py --recipients 100000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import tempfile
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import httpx

from clarion import bootstrap
from clarion.bus.embedded import free_port
from clarion.config import Settings
from clarion.report import campaign_progress
from clarion.seed import synthetic_subscribers
from clarion.sim.process import SimProcess
from clarion.store import brands, campaigns

AT = datetime(2026, 11, 25, 18, 0, tzinfo=UTC)  # inside every US window
SENDER = "+15125550100"


async def main(recipients: int) -> dict[str, object]:
    root = Path(tempfile.mkdtemp(prefix="clarion-txlat-"))
    port = free_port()
    settings = replace(
        Settings.from_env(), data_dir=root, http_port=port,
        public_url=f"http://127.0.0.1:{port}", bus_namespace=f"txlat{port}",
    )  # fmt: skip
    sim = SimProcess(secret=settings.sim_secret, failure_rate=0.0)
    settings = replace(settings, sim_url=sim.url)
    try:
        with sim:
            async with bootstrap.infrastructure(settings) as infra:
                provider = bootstrap.build_provider(settings)
                async with bootstrap.running(infra, provider, clock=lambda: AT):
                    return await measure(infra, sim, recipients)
    finally:
        shutil.rmtree(root, ignore_errors=True)


async def measure(infra: bootstrap.Infra, sim: SimProcess, recipients: int) -> dict[str, object]:
    pool = infra.pool
    brand_id = await brands.create_brand(pool, slug="txlat", name="Northwind", sender=SENDER)
    subs = await asyncio.to_thread(synthetic_subscribers, recipients)
    await brands.import_subscribers(pool, brand_id, subs, source="bench")
    campaign_id = await campaigns.create_campaign(
        pool, brand_id=brand_id, name="Blast", body="Northwind: 40% off. Reply STOP to opt out."
    )
    await bootstrap.launch(infra, campaign_id, at=AT)
    async with httpx.AsyncClient() as client:
        while not (await campaign_progress(pool, campaign_id)).handed_over:
            await asyncio.sleep(0.05)  # the simulator learns the number's webhook
        sent = 0
        while True:
            p = await campaign_progress(pool, campaign_id)
            if p.handed_over >= p.eligible * 0.9 and p.audience_done:
                break
            handset = f"+1917555{1000 + sent:04d}"
            await client.post(
                f"{sim.url}/handsets/{handset}/reply", json={"to": SENDER, "body": "HELP"}
            )
            sent += 1
            await asyncio.sleep(0.25)
    await asyncio.sleep(2)
    rows = await pool.fetch(
        """
        SELECT extract(epoch FROM m.sent_at - i.received_at) AS latency_s
        FROM inbound_messages i JOIN messages m
          ON m.kind = 'transactional' AND m.to_address = i.from_address
        WHERE m.sent_at IS NOT NULL
        """
    )
    latencies = sorted(float(r["latency_s"]) for r in rows)
    q = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else latencies * 99
    return {
        "recipients": recipients,
        "help_messages": sent,
        "replies_sent": len(latencies),
        "latency_p50_s": round(statistics.median(latencies), 3),
        "latency_p99_s": round(q[98], 3),
        "latency_max_s": round(latencies[-1], 3),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--recipients", type=int, default=100_000)
    print(json.dumps(asyncio.run(main(parser.parse_args().recipients))))
