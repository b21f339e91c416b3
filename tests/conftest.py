"""Shared fixtures: real PostgreSQL and NATS JetStream, started once per test session from the
same embedded code path Clarion uses; a fresh database and bus namespace per test."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest

from clarion import bootstrap
from clarion.bus.embedded import EmbeddedNats, free_port
from clarion.config import Settings
from clarion.service.progress import Progress, campaign_progress
from clarion.sim.process import SimProcess
from clarion.store.db import Pool
from clarion.store.embedded import EmbeddedPostgres

SIM_SECRET = "test-sim-secret-0123456789"
# The time the compliance gate sees in pipeline tests: a Wednesday, 13:00 in New York,
# 08:00 in Honolulu — inside every US sending window, so counts do not depend on when the
# suite runs. Tests about quiet hours pass their own clock.
DAYTIME = datetime(2026, 11, 25, 18, 0, tzinfo=UTC)


@pytest.fixture(scope="session")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(database URL, NATS URL) of embedded servers shared by the whole session."""
    root = tmp_path_factory.mktemp("servers")
    pg, nats = EmbeddedPostgres(root), EmbeddedNats(root)
    try:
        database_url = pg.start()
        nats_url = nats.start()
    except Exception as exc:  # a clear failure, never a skip
        pg.stop()
        nats.stop()
        pytest.fail(f"embedded PostgreSQL/NATS could not start: {exc}")
    yield database_url, nats_url
    nats.stop()
    pg.stop()


@pytest.fixture(scope="module")
def sim() -> Iterator[SimProcess]:
    """The simulator as its own process, with no random delivery failures (so counts are exact)."""
    with SimProcess(secret=SIM_SECRET, failure_rate=0.0, latency_scale=0.2, seed=1) as process:
        yield process


async def fresh_database(database_url: str) -> str:
    name = f"t_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(f"CREATE DATABASE {name}")
    finally:
        await conn.close()
    return re.sub(r"/postgres\?", f"/{name}?", database_url, count=1)


@pytest.fixture
async def settings(servers: tuple[str, str], sim: SimProcess, tmp_path: Path) -> Settings:
    database_url, nats_url = servers
    port = free_port()
    return Settings(
        data_dir=tmp_path,
        database_url=await fresh_database(database_url),
        nats_url=nats_url,
        bus_namespace=f"t{uuid.uuid4().hex[:10]}",
        http_port=port,
        public_url=f"http://127.0.0.1:{port}",
        sim_url=sim.url,
        sim_secret=SIM_SECRET,
        ack_wait_s=2.0,
        audience_page_size=250,
    )


@pytest.fixture
async def infra(settings: Settings) -> AsyncIterator[bootstrap.Infra]:
    async with bootstrap.infrastructure(settings) as infra:
        yield infra


async def wait_for_campaign(
    pool: Pool, campaign_id: int, sim: SimProcess, *, timeout_s: float = 60
) -> Progress:
    """Poll until every recipient is final, counted by the carrier stage, and the simulator
    has no receipt left to post."""
    deadline = time.monotonic() + timeout_s
    while True:
        p = await campaign_progress(pool, campaign_id)
        if p.complete and (await asyncio.to_thread(sim.stats))["receipts_pending"] == 0:
            return p
        if time.monotonic() > deadline:
            stats = await asyncio.to_thread(sim.stats)
            raise AssertionError(f"campaign {campaign_id} not done in {timeout_s} s: {p} {stats}")
        await asyncio.sleep(0.1)
