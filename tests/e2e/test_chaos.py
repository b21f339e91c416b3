"""Crash safety across processes: workers as separate OS processes, killed with SIGKILL at
random moments and restarted, while a campaign is sending.

`make test` runs it at 20,000 recipients with 10 kills. A bigger run:
    CLARION_CHAOS_RECIPIENTS=200000 CLARION_CHAOS_KILLS=40 .venv/bin/pytest tests/e2e/test_chaos.py
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx

from clarion import bootstrap, service
from clarion.bus.embedded import free_port
from clarion.config import Settings
from clarion.domain.contacts import new_subscriber
from clarion.service.progress import campaign_progress
from clarion.sim.process import SimProcess
from clarion.store import brands, campaigns
from tests.conftest import SIM_SECRET, fresh_database

RECIPIENTS = int(os.environ.get("CLARION_CHAOS_RECIPIENTS", "20000"))
KILLS = int(os.environ.get("CLARION_CHAOS_KILLS", "10"))
WORKERS = 3


def daytime_zone() -> str:
    """A zone where it is early afternoon now, so the (real-clock) workers' gate lets every
    message through whenever the suite runs."""
    now = datetime.now(UTC)
    for offset in range(-11, 13):
        name = f"Etc/GMT{'+' if offset <= 0 else '-'}{abs(offset)}"  # POSIX signs are inverted
        if 12 <= now.astimezone(ZoneInfo(name)).hour < 16:
            return name
    raise AssertionError("no zone at 12:00-16:00 found")  # pragma: no cover


def rows(n: int, zone: str) -> list[dict[str, str]]:
    """`n` New York numbers (no state-specific rules), all with SMS consent, in `zone`."""
    rng = random.Random(7)
    numbers: set[str] = set()
    while len(numbers) < n:
        exchange = rng.randint(200, 999)
        if exchange % 100 == 11 or exchange == 555:
            continue
        numbers.add(f"+1{rng.choice(('212', '646', '917'))}{exchange}{rng.randint(0, 9999):04d}")
    return [{"phone": p, "sms_consent": "yes", "timezone": zone} for p in sorted(numbers)]


class Worker:
    def __init__(self, env: dict[str, str], http_port: int | None, log: Path) -> None:
        self.args = [sys.executable, "-m", "clarion", "worker", "--stages", "all"]
        if http_port is not None:
            self.args += ["--http", "--port", str(http_port)]
        self.env, self.log, self.proc = env, log, None
        self.http_port = http_port

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(self.args, env=self.env, stdout=out, stderr=out)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()


async def test_killing_workers_at_random_loses_nothing_and_doubles_nothing(
    servers: tuple[str, str], tmp_path: Path
) -> None:
    database_url, nats_url = servers
    port = free_port()
    with SimProcess(secret=SIM_SECRET, failure_rate=0.0, latency_scale=0.3, seed=3) as sim:
        settings = Settings(
            data_dir=tmp_path,
            database_url=await fresh_database(database_url),
            nats_url=nats_url,
            bus_namespace=f"chaos{port}",
            public_url=f"http://127.0.0.1:{port}",
            sim_url=sim.url,
            sim_secret=SIM_SECRET,
        )
        env = {
            **os.environ,
            "CLARION_DATABASE_URL": settings.database_url or "",
            "CLARION_NATS_URL": nats_url,
            "CLARION_BUS_NAMESPACE": settings.bus_namespace,
            "CLARION_PUBLIC_URL": settings.public_url,
            "CLARION_SIM_URL": sim.url,
            "CLARION_SIM_SECRET": SIM_SECRET,
            "CLARION_ACK_WAIT_S": "3",
        }
        workers = [
            Worker(env, port if i == 0 else None, tmp_path / f"worker{i}.log")
            for i in range(WORKERS)
        ]
        async with bootstrap.infrastructure(settings) as infra:
            brand_id = await brands.create_brand(
                infra.pool, slug="chaos", name="Northwind", sender="+15125550100"
            )
            audience = rows(RECIPIENTS, daytime_zone())
            await brands.import_subscribers(
                infra.pool, brand_id, [new_subscriber(r) for r in audience], source="test"
            )
            campaign_id = await campaigns.create_campaign(
                infra.pool, brand_id=brand_id, name="Chaos",
                body="Northwind: Hi {{ first_name | default('there') }}! Reply STOP to opt out.",
            )  # fmt: skip
            for w in workers:
                w.start()
            try:
                await _wait_http(port)
                await service.campaigns.launch(infra, campaign_id)
                rng = random.Random()
                for kill in range(KILLS):
                    await asyncio.sleep(rng.uniform(0.2, 0.8))
                    victim = rng.choice(workers)
                    victim.kill()
                    if kill == 0:  # the kills land while the campaign is sending
                        assert not (await campaign_progress(infra.pool, campaign_id)).complete
                    await asyncio.sleep(rng.uniform(0.0, 0.3))
                    victim.start()
                deadline = time.monotonic() + 240
                while True:
                    p = await campaign_progress(infra.pool, campaign_id)
                    stats = await asyncio.to_thread(sim.stats)
                    if p.complete and stats["receipts_pending"] == 0:
                        break
                    assert time.monotonic() < deadline, f"not finished: {p} {stats}"
                    await asyncio.sleep(0.25)
            finally:
                for w in workers:
                    w.stop()

            inbox = await asyncio.to_thread(sim.handsets)
            numbers = [r["phone"] for r in audience]
            assert {n: inbox.get(n, 0) for n in numbers} == dict.fromkeys(numbers, 1)
            assert sum(inbox.values()) == RECIPIENTS  # nobody else got anything
            assert p.delivered == RECIPIENTS
            events = await infra.pool.fetchval(
                "SELECT count(*) FROM message_events WHERE status = 'delivered'"
            )
            assert events == RECIPIENTS  # every final receipt recorded
            assert sum(c.delivered for c in p.carriers) == RECIPIENTS


async def _wait_http(port: int) -> None:
    deadline = time.monotonic() + 60
    async with httpx.AsyncClient() as client:
        while True:
            try:
                if (await client.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "worker with HTTP did not come up"
            await asyncio.sleep(0.1)
