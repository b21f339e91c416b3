"""How fast does a segment count answer for a brand with a million subscribers and ten
million events?

Seeds (in Postgres, by SQL) a brand with N subscribers — typed attributes: a count of
orders, a VIP flag, a sign-up date, a city — and M events over the last year (views, carts,
checkouts, orders, a custom type; about one in six an order), starts `clarion run` on the
same servers, and counts through `POST /v1/segments/count` a definition that mixes an
attribute condition with "ordered at least twice in 90 days", five times after one warm-up.
Prints one JSON line: the count, the median and each time (ms, measured by the client), and
the seeding times.

    .venv/bin/python bench/segment_count.py --subscribers 1000000 --events 10000000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from clarion import bootstrap
from clarion.bus.embedded import free_port
from clarion.harness.serving import run_server, server_env, server_settings
from clarion.store import api_keys, brands

DEFINITION = {
    "all": [
        {"attribute": "orders", "op": "gte", "value": 3},
        {"event": "ordered", "count": {"gte": 2}, "within_days": 90},
    ]
}

SUBSCRIBERS_SQL = """
INSERT INTO subscribers (brand_id, phone, timezone, first_name, attributes)
SELECT $1, '+1512' || lpad((2000000 + g)::text, 7, '0'), 'America/Chicago', 'Ava',
       jsonb_build_object(
           'orders', (g::bigint * 7919) % 40,
           'vip', g % 7 = 0,
           'signed_up', to_char(date '2024-01-01' + (g % 700), 'YYYY-MM-DD'),
           'city', (ARRAY['Austin','Boston','Denver','Miami','Seattle'])[1 + g % 5])
FROM generate_series(1, $2::int) AS g
"""

EVENTS_SQL = """
INSERT INTO events (brand_id, client_id, subscriber_id, type, occurred_at, value)
SELECT $1, 'e' || g, $3::bigint + (hashint4(g) & 2147483647) % $4::int,
       (ARRAY['viewed_product','viewed_product','added_to_cart','started_checkout','ordered',
              'loyalty.points'])[1 + (hashint4(g + 7) & 2147483647) % 6],
       now() - make_interval(secs => ((hashint4(g + 13) & 2147483647) % 31536000)),
       CASE WHEN g % 6 = 0 THEN 42.0 END
FROM generate_series($2::int, $2::int + $5::int - 1) AS g
"""


async def main(subscribers: int, events: int, runs: int) -> dict[str, object]:
    root = Path(tempfile.mkdtemp(prefix="clarion-segments-"))
    port = free_port()
    settings = server_settings(root, port, "seg")
    try:
        async with bootstrap.infrastructure(settings) as infra:
            pool = infra.pool
            brand_id = await brands.create_brand(
                pool, slug="segments", name="Northwind", sender="+15125550100"
            )
            t = time.monotonic()
            await pool.execute(SUBSCRIBERS_SQL, brand_id, subscribers, timeout=600)
            first_id = await pool.fetchval(
                "SELECT min(id) FROM subscribers WHERE brand_id = $1", brand_id
            )
            seeded_subscribers_s = time.monotonic() - t
            t = time.monotonic()
            step = 1_000_000
            for start in range(1, events + 1, step):
                n = min(step, events - start + 1)
                await pool.execute(
                    EVENTS_SQL, brand_id, start, first_id, subscribers, n, timeout=600
                )
            await pool.execute("VACUUM ANALYZE subscribers", timeout=600)
            await pool.execute("VACUUM ANALYZE events", timeout=600)
            seeded_events_s = time.monotonic() - t
            key = await api_keys.create_key(pool, brand_id, "bench", rate_per_s=1000)
            env = server_env(infra, port)
            proc = await asyncio.to_thread(run_server, env, port, root / "clarion.log")
            try:
                times, count = [], None
                async with httpx.AsyncClient(
                    base_url=f"http://127.0.0.1:{port}",
                    headers={"Authorization": f"Bearer {key}"}, timeout=60,
                ) as client:  # fmt: skip
                    for i in range(runs + 1):
                        t = time.perf_counter()
                        resp = await client.post(
                            "/v1/segments/count", json={"definition": DEFINITION}
                        )
                        elapsed = (time.perf_counter() - t) * 1000
                        resp.raise_for_status()
                        count = resp.json()["count"]
                        if i:  # the first warms the caches
                            times.append(round(elapsed, 1))
            finally:
                proc.terminate()
                proc.wait(30)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return {
        "subscribers": subscribers, "events": events, "definition": DEFINITION,
        "count": count, "median_ms": statistics.median(times), "times_ms": times,
        "seeded_subscribers_s": round(seeded_subscribers_s, 1),
        "seeded_events_s": round(seeded_events_s, 1),
    }  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--runs", type=int, default=5)
    a = parser.parse_args()
    print(json.dumps(asyncio.run(main(a.subscribers, a.events, a.runs))))
