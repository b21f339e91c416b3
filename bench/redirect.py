"""How many short-link clicks a second does `clarion run` redirect, and how fast?

Seeds (in Postgres) a brand, a campaign and one tracked link, makes the short codes of N
recipients, starts `clarion run` on the same servers, and drives `GET /l/{code}` with `wrk`
(Debian's: one thread, C, so the load generator takes little of the two cores), each
request a random recipient's code with a phone's User-Agent, for `--seconds`. Then waits for
the clicks to be written and checks that every redirect was recorded (unique and total).
Prints one JSON line: requests a second, latency percentiles (ms, wrk's), the non-302
answers, and the clicks Postgres holds.

    .venv/bin/python bench/redirect.py --recipients 100000 --seconds 30 --connections 32

Needs `wrk`: run as root it is installed with apt-get, else install Debian's `wrk` first.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from clarion import bootstrap
from clarion.bus.embedded import free_port
from clarion.harness.serving import run_server, server_env, server_settings
from clarion.pipeline import links
from clarion.store import brands, campaigns
from clarion.store import links as store_links
from clarion.store.db import Pool

URL = "https://northwind.example/black-friday?utm_source=sms"
IPHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 Mobile"
LUA = """
local paths = {}
for line in io.lines("%(codes)s") do paths[#paths + 1] = "/l/" .. line end
math.randomseed(%(seed)d)
wrk.headers["User-Agent"] = "%(ua)s"
request = function()
  return wrk.format("GET", paths[math.random(#paths)])
end
done = function(summary, latency, requests)
  io.write(string.format("JSON {\\"requests\\": %%d, \\"non_2xx_3xx\\": %%d, \\"errors\\": %%d,"
    .. " \\"p50_ms\\": %%.3f, \\"p90_ms\\": %%.3f, \\"p99_ms\\": %%.3f, \\"max_ms\\": %%.3f,"
    .. " \\"duration_s\\": %%.3f}\\n",
    summary.requests, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000, summary.duration / 1e6))
end
"""


def _wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], check=True,
                       stdout=subprocess.DEVNULL)  # fmt: skip
        if found := shutil.which("wrk"):
            return found
    raise SystemExit("bench/redirect.py needs wrk: install Debian's package `wrk`")


async def main(recipients: int, seconds: int, connections: int) -> dict[str, object]:
    wrk = _wrk()
    root = Path(tempfile.mkdtemp(prefix="clarion-redirect-"))
    port = free_port()
    settings = server_settings(root, port, "red")
    try:
        async with bootstrap.infrastructure(settings) as infra:
            pool = infra.pool
            brand_id = await brands.create_brand(
                pool, slug="links", name="Northwind", sender="+15125550100"
            )
            campaign_id = await campaigns.create_campaign(
                pool, brand_id=brand_id, name="Black Friday", body=f"40% off: {URL}"
            )
            ids = await store_links.register(pool, brand_id, campaign_id, "a", [URL])
            secret = infra.settings.unsubscribe_secret
            assert secret is not None
            codes = links.make_codes(secret, [(ids[URL], s) for s in range(1, recipients + 1)])
            (root / "codes.txt").write_text("\n".join(codes) + "\n")
            (root / "bench.lua").write_text(
                LUA % {"codes": root / "codes.txt", "seed": 7, "ua": IPHONE}
            )
            proc = await asyncio.to_thread(
                run_server, server_env(infra, port), port, root / "clarion.log"
            )
            try:
                url = f"http://127.0.0.1:{port}"
                warm = [wrk, "-t1", f"-c{connections}", "-d3s", "-s", str(root / "bench.lua"), url]
                await asyncio.to_thread(subprocess.run, warm, capture_output=True, check=True)
                await asyncio.sleep(1)
                before = await _clicks(pool, campaign_id)
                cmd = [wrk, "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "5s",
                       "-s", str(root / "bench.lua"), url]  # fmt: skip
                out = await asyncio.to_thread(
                    subprocess.run, cmd, capture_output=True, text=True, check=True
                )
                found = re.search(r"^JSON (.*)$", out.stdout, re.MULTILINE)
                assert found, out.stdout + out.stderr
                result = json.loads(found.group(1))
                deadline = time.monotonic() + 10
                while True:  # the clicks are written within FLUSH_S; wait for the last
                    total, unique = await _clicks(pool, campaign_id)
                    if total - before[0] >= result["requests"] or time.monotonic() > deadline:
                        break
                    await asyncio.sleep(0.2)
            finally:
                proc.terminate()
                proc.wait(30)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return {
        "recipients": recipients, "connections": connections,
        "clicks_per_s": round(result["requests"] / result["duration_s"]),
        **{k: result[k] for k in ("requests", "non_2xx_3xx", "errors", "p50_ms", "p90_ms",
                                  "p99_ms", "max_ms", "duration_s")},
        "clicks_recorded": total - before[0], "unique_recipients": unique,
        "cpus": os.cpu_count(),
    }  # fmt: skip


async def _clicks(pool: Pool, campaign_id: int) -> tuple[int, int]:
    row = await pool.fetchrow(
        "SELECT coalesce(sum(clicks), 0)::bigint, count(*) FROM clicks"
        " WHERE campaign_id = $1 AND kind = 'human'",
        campaign_id,
    )
    assert row is not None
    return int(row[0]), int(row[1])


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipients", type=int, default=100_000)
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main(args.recipients, args.seconds, args.connections))))
