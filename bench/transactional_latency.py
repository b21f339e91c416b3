"""How fast does a HELP reply reach the provider while a big campaign is sending?

Starts the simulator and the pipeline, launches a campaign of N recipients, and while it
sends, texts HELP from fresh handsets every 0.25 s. Prints one JSON line: the latency from
the inbound message (as the simulator stamped it) to the reply's provider call (p50, p99,
max), and how far the campaign had gone.

    .venv/bin/python bench/transactional_latency.py --recipients 100000
    .venv/bin/python bench/transactional_latency.py --recipients 100000 --reply-worker

With `--reply-worker`, the inbound and transactional stages run in their own worker process
(`clarion worker --stages inbound,transactional`), as a deployment that keeps replies off the
campaign's event loop would run them; the campaign's stages stay in this process.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import httpx

from clarion import bootstrap, service
from clarion.bus.embedded import free_port
from clarion.config import Settings
from clarion.domain.clock import PinnedClock
from clarion.harness.seed import synthetic_subscribers
from clarion.runtime.stages import STAGES
from clarion.service.progress import campaign_progress
from clarion.sim.process import SimProcess
from clarion.store import brands, campaigns

AT = datetime(2026, 11, 25, 18, 0, tzinfo=UTC)  # inside every US window
SENDER = "+15125550100"


REPLY_STAGES = ("inbound", "transactional")


async def main(recipients: int, reply_worker: bool) -> dict[str, object]:
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
                stages = [s for s in STAGES if not (reply_worker and s in REPLY_STAGES)]
                worker = _reply_worker(infra) if reply_worker else None
                try:
                    async with bootstrap.running(
                        infra, provider, stages=stages, clock=PinnedClock(AT)
                    ):
                        result = await measure(infra, sim, recipients)
                        return {**result, "reply_worker": reply_worker}
                finally:
                    if worker is not None:
                        worker.terminate()
                        worker.wait(timeout=30)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _reply_worker(infra: bootstrap.Infra) -> subprocess.Popen[bytes]:
    s = infra.settings
    env = {
        **os.environ,
        "CLARION_DATABASE_URL": infra.database_url,
        "CLARION_NATS_URL": infra.nats_url,
        "CLARION_BUS_NAMESPACE": s.bus_namespace,
        "CLARION_SIM_URL": s.sim_url,
        "CLARION_SIM_SECRET": s.sim_secret,
        "CLARION_PUBLIC_URL": s.public_url,
    }
    stages = ",".join(REPLY_STAGES)
    return subprocess.Popen(
        [sys.executable, "-m", "clarion", "worker", "--stages", stages], env=env
    )


async def measure(infra: bootstrap.Infra, sim: SimProcess, recipients: int) -> dict[str, object]:
    pool = infra.pool
    brand_id = await brands.create_brand(pool, slug="txlat", name="Northwind", sender=SENDER)
    subs = await asyncio.to_thread(synthetic_subscribers, recipients)
    await brands.import_subscribers(pool, brand_id, subs, source="bench")
    campaign_id = await campaigns.create_campaign(
        pool, brand_id=brand_id, name="Blast", body="Northwind: 40% off. Reply STOP to opt out."
    )
    await service.campaigns.launch(infra, campaign_id, at=AT)
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
    q = (
        statistics.quantiles(latencies, n=100, method="inclusive")
        if len(latencies) > 1
        else latencies * 99
    )
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
    parser.add_argument("--reply-worker", action="store_true")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main(args.recipients, args.reply_worker))))
