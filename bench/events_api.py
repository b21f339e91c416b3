"""How many events a second does `POST /v1/events` store, through the real HTTP server?

Seeds a brand with N subscribers, starts `clarion run` (one process: uvicorn and every
stage, as an install runs it) on the same embedded servers, and for `--seconds` posts
batches of 1,000 events (a mix of the standard types and a custom one, each naming its
subscriber by E.164 phone, a third of them with items and a value) from `--connections`
concurrent clients. The request bodies are encoded before the clock starts, so the client
costs only the sending. Prints one JSON line: events stored a second, requests a second,
request latency p50/p99, and that every event was stored (none rejected, none twice).

    .venv/bin/python bench/events_api.py --subscribers 100000 --seconds 20
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from clarion import bootstrap
from clarion.bus.embedded import free_port
from clarion.harness.seed import synthetic_subscribers
from clarion.harness.serving import run_server, server_env, server_settings
from clarion.store import api_keys, brands

TYPES = ("viewed_product", "viewed_product", "added_to_cart", "started_checkout", "ordered",
         "loyalty.points_earned")  # fmt: skip


def bodies(phones: list[str], n_requests: int, per_request: int, seed: int = 1) -> list[bytes]:
    rnd = random.Random(seed)
    out = []
    for r in range(n_requests):
        events = []
        for i in range(per_request):
            kind = rnd.choice(TYPES)
            e: dict[str, object] = {
                "id": f"evt-{r}-{i}",
                "type": kind,
                "occurred_at": f"2026-11-{rnd.randint(1, 28):02d}T{rnd.randint(0, 23):02d}:00:00Z",
                "subscriber": {"phone": rnd.choice(phones)},
                "properties": {"source": "web", "page": f"/p/{rnd.randint(1, 500)}"},
            }
            if kind in ("added_to_cart", "ordered"):
                price = round(rnd.uniform(5, 120), 2)
                e["items"] = [{"product_id": f"sku-{rnd.randint(1, 2000)}", "quantity": 1,
                               "price": price}]  # fmt: skip
                e["value"] = price
            events.append(e)
        out.append(json.dumps({"events": events}).encode())
    return out


async def load(
    url: str, key: str, payloads: list[bytes], seconds: float, connections: int
) -> tuple[int, list[float], float, dict[str, int]]:
    latencies: list[float] = []
    totals = {"stored": 0, "duplicates": 0, "rejected": 0}
    queue = list(reversed(payloads))
    started = time.monotonic()
    deadline = started + seconds
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60) as client:

        async def worker() -> None:
            while queue and time.monotonic() < deadline:
                body = queue.pop()
                t = time.perf_counter()
                resp = await client.post("/v1/events", content=body)
                latencies.append(time.perf_counter() - t)
                resp.raise_for_status()
                got = resp.json()
                totals["stored"] += got["stored"]
                totals["duplicates"] += got["duplicates"]
                totals["rejected"] += len(got["rejected"])

        await asyncio.gather(*(worker() for _ in range(connections)))
    return len(latencies), latencies, time.monotonic() - started, totals


async def main(
    subscribers: int, seconds: float, connections: int, rate: float
) -> dict[str, object]:
    root = Path(tempfile.mkdtemp(prefix="clarion-events-"))
    port = free_port()
    settings = server_settings(root, port, "ev")
    url = f"http://127.0.0.1:{port}"
    try:
        async with bootstrap.infrastructure(settings) as infra:
            brand_id = await brands.create_brand(
                infra.pool, slug="events", name="Northwind", sender="+15125550100"
            )
            subs = await asyncio.to_thread(synthetic_subscribers, subscribers)
            await brands.import_subscribers(infra.pool, brand_id, subs, source="bench")
            phones = [s.phone for s in subs if s.phone]
            key = await api_keys.create_key(infra.pool, brand_id, "bench", rate_per_s=rate)
            n_requests = int(seconds * 60) + connections  # more than can be sent
            payloads = await asyncio.to_thread(bodies, phones, n_requests, 1000)
            env = server_env(infra, port)
            proc = await asyncio.to_thread(run_server, env, port, root / "clarion.log")
            try:
                await load(url, key, payloads[:connections], 5, connections)  # warm up
                requests, latencies, elapsed, totals = await load(
                    url, key, payloads[connections:], seconds, connections
                )
            finally:
                proc.terminate()
                proc.wait(30)
            stored = await infra.pool.fetchval("SELECT count(*) FROM events")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    q = statistics.quantiles(latencies, n=100, method="inclusive")
    return {
        "subscribers": subscribers,
        "connections": connections,
        "requests": requests,
        "events_per_s": round(totals["stored"] / elapsed),
        "requests_per_s": round(requests / elapsed, 1),
        "latency_p50_ms": round(statistics.median(latencies) * 1000, 1),
        "latency_p99_ms": round(q[98] * 1000, 1),
        "stored": totals["stored"],
        "rejected": totals["rejected"],
        "duplicates": totals["duplicates"],
        "events_in_table": stored,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--rate", type=float, default=1000.0, help="the bench key's requests/s")
    args = parser.parse_args()
    print(
        json.dumps(asyncio.run(main(args.subscribers, args.seconds, args.connections, args.rate)))
    )
