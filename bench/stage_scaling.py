"""Does a stage go faster with more worker processes? One CPU-bound stage, measured alone.

The whole pipeline on the 2-core reference machine is bound by the machine (Postgres, the
simulator and NATS share the cores with Clarion: `clarion bench` reports CPU by process), so
it cannot show what a second worker process adds. This script isolates the personalize stage
(sandboxed Jinja2 rendering, segment counting, message ids: Clarion's own CPU): an audience
worker first pages the whole audience onto the bus and stops; then P personalize-only worker
processes drain it, and the time from their start to an empty backlog gives the stage's
throughput with P processes. Postgres is touched once per process (the template).

    .venv/bin/python bench/stage_scaling.py --recipients 200000 --processes 1,2

Prints one JSON line per process count.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from clarion import bootstrap, service
from clarion.bus.embedded import free_port
from clarion.config import Settings
from clarion.harness.bench import BenchOptions, _ready, _seed, _workers, default_at
from clarion.sim.process import SimProcess


async def drain(recipients: int, processes: int) -> dict[str, object]:
    root = Path(tempfile.mkdtemp(prefix="clarion-stage-"))
    at = default_at(datetime.now(UTC))
    offset_s = (at - datetime.now(UTC)).total_seconds()
    settings = replace(Settings.from_env(), data_dir=root, bus_namespace=f"st{free_port()}")
    sim = SimProcess(secret=settings.sim_secret)  # the carrier lookups while seeding
    settings = replace(settings, sim_url=sim.url)
    try:
        with sim:
            async with bootstrap.infrastructure(settings, pool_size=4) as infra:
                opts = BenchOptions(recipients=recipients, optouts=0)
                _, campaign_id = await _seed(infra, opts)
                pages = replace(opts, roles=[["audience"]])
                with _workers(infra, pages, offset_s, root) as workers:
                    await _ready(infra, workers, root, ["audience"])
                    await service.campaigns.launch(infra, campaign_id, at=at)
                    while not await infra.pool.fetchval(
                        "SELECT audience_done FROM campaigns WHERE id = $1", campaign_id
                    ):
                        await asyncio.sleep(0.2)
                backlog = await infra.bus.js.stream_info(infra.bus.stream)
                render = replace(opts, roles=[["personalize"]] * processes)
                started = time.perf_counter()
                with _workers(infra, render, offset_s, root) as workers:
                    await _ready(infra, workers, root, ["personalize"])
                    while await infra.bus.pending("audience"):
                        await asyncio.sleep(0.05)
                    elapsed = time.perf_counter() - started
                return {
                    "processes": processes,
                    "recipients": recipients,
                    "audience_batches": backlog.state.messages,
                    "drain_s": round(elapsed, 2),
                    "rendered_per_s": round(recipients / elapsed),
                    "includes": "process start-up (about 1 s)",
                }
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--recipients", type=int, default=200_000)
    parser.add_argument("--processes", default="1,2")
    args = parser.parse_args()
    for p in (int(x) for x in args.processes.split(",")):
        print(json.dumps(asyncio.run(drain(args.recipients, p))), flush=True)
