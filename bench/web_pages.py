"""How long do the web UI's pages take, server-side, for a brand with a million subscribers
and a hundred campaigns, the newest of which sent a million messages? And what does one
poll of a sending campaign's page cost?

Seeds the brand in Postgres (`clarion.harness.web_brand`), signs a user in, and requests
each page through the HTTP app in this process (ASGI: no network, so the time is the
server's) `--runs` times after one warm-up; prints one JSON line: the median and the slowest
time of each page (ms), and what the campaign page's background work costs (counting its
headline figures, counting its report) — which runs at most once per 10 s and once a minute
however many pages are open.

    .venv/bin/python bench/web_pages.py --subscribers 1000000 --messages 1000000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from clarion import bootstrap, service
from clarion.api.app import create_app
from clarion.api.v1 import V1
from clarion.bus.embedded import free_port
from clarion.domain.clock import SystemClock
from clarion.harness import web_brand
from clarion.harness.serving import server_settings

PASSWORD = "correct horse battery"


async def sign_in(client: httpx.AsyncClient, email: str) -> None:
    page = await client.get("/signin")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token is not None
    resp = await client.post(
        "/signin", data={"email": email, "password": PASSWORD, "csrf_token": token.group(1)}
    )
    assert resp.status_code == 303, resp.text


async def timed(client: httpx.AsyncClient, path: str, runs: int) -> dict[str, float]:
    times = []
    for i in range(runs + 1):
        t = time.perf_counter()
        resp = await client.get(path)
        elapsed = (time.perf_counter() - t) * 1000
        assert resp.status_code == 200, (path, resp.status_code)
        if i:  # the first warms the caches
            times.append(elapsed)
    return {"median_ms": round(statistics.median(times), 1), "max_ms": round(max(times), 1)}


async def main(subscribers: int, campaigns: int, messages: int, runs: int) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="clarion-web-"))
    settings = server_settings(root, free_port(), "web")
    try:
        async with bootstrap.infrastructure(settings) as infra:
            t = time.monotonic()
            b = await web_brand.seed(
                infra.pool, subscribers=subscribers, campaigns=campaigns, messages=messages
            )
            seeded_s = time.monotonic() - t
            await service.users.create(infra, b.brand_id, "ada@northwind.example", PASSWORD)
            app = create_app(infra.bus, {}, api=V1(infra, clock=SystemClock()))
            web = app.state.web
            big = b.campaign_ids[-1]
            t = time.perf_counter()
            await web.counter.count_now(b.brand_id, b.campaign_ids)
            count_all_ms = (time.perf_counter() - t) * 1000
            t = time.perf_counter()
            await web.counter.count_now(b.brand_id, [big])
            count_one_ms = (time.perf_counter() - t) * 1000
            import_id = await service.imports.start(infra, b.brand_id, source="bench")
            out: dict[str, Any] = {}
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://clarion", timeout=600
            ) as client:
                await sign_in(client, "ada@northwind.example")
                # the report, counted (what the page's report fragment costs once a minute)
                t = time.perf_counter()
                resp = await client.get(f"/campaigns/{big}/report")
                report_cold_ms = (time.perf_counter() - t) * 1000
                assert resp.status_code == 200
                pages = {
                    "dashboard": "/",
                    "campaigns": "/campaigns",
                    "campaign (report kept)": f"/campaigns/{big}",
                    "campaign (small)": f"/campaigns/{b.campaign_ids[0]}",
                    "live poll": f"/campaigns/{big}/live",
                    "report poll (kept)": f"/campaigns/{big}/report",
                    "subscribers": "/subscribers",
                    "search exact phone": f"/subscribers?q={b.phone}",
                    "search phone prefix": "/subscribers?q=%2B151220001",
                    "search email prefix": "/subscribers?q=user12345",
                    "search exact email": "/subscribers?q=user999999@example.com",
                    "subscriber": f"/subscribers/{b.first_subscriber_id}",
                    "import form": "/imports/new",
                    "import": f"/imports/{import_id}",
                }
                for name, path in pages.items():
                    out[name] = await timed(client, path, runs)
            # the report again, its data in Postgres' cache now (as when a page recounts it)
            warm = []
            for _ in range(2):
                t = time.perf_counter()
                await service.campaigns.report(infra, big, brand_id=b.brand_id)
                await service.campaigns.status(infra, big, brand_id=b.brand_id)
                warm.append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            await web.counter.count_now(b.brand_id, [big])
            count_warm_ms = (time.perf_counter() - t) * 1000
            await web.counter.settle()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return {
        "subscribers": subscribers, "campaigns": campaigns, "messages": messages,
        "seeded_s": round(seeded_s, 1), "pages": out,
        "background": {
            "count_headline_one_campaign_ms": round(count_one_ms, 1),
            "count_headline_all_campaigns_ms": round(count_all_ms, 1),
            "report_counted_ms": round(report_cold_ms, 1),
            "report_counted_again_ms": [round(x, 1) for x in warm],
            "count_headline_again_ms": round(count_warm_ms, 1),
        },
    }  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=1_000_000)
    parser.add_argument("--campaigns", type=int, default=100)
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    a = parser.parse_args()
    print(json.dumps(asyncio.run(main(a.subscribers, a.campaigns, a.messages, a.runs))))
