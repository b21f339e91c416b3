"""The composition root: starts (or connects to) Postgres and NATS, builds providers, stages
and the HTTP app, and tears everything down in reverse order, also on Ctrl-C."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field

import uvicorn

from clarion.api.app import create_app
from clarion.bus.embedded import EmbeddedNats
from clarion.bus.jetstream import Bus
from clarion.config import Settings
from clarion.domain.records import LaunchCampaign
from clarion.pipeline.campaign import launch_command, validate_launch
from clarion.providers.base import Provider
from clarion.providers.sim import SimProvider
from clarion.runtime.consumer import consume
from clarion.runtime.stages import MERGE, SERIAL_STAGES, STAGE_HOPS, Stages, now
from clarion.store import campaigns
from clarion.store.db import Pool, create_pool, migrate
from clarion.store.embedded import EmbeddedPostgres

log = logging.getLogger(__name__)


@dataclass
class Infra:
    settings: Settings
    database_url: str
    nats_url: str
    pool: Pool
    bus: Bus


@contextlib.asynccontextmanager
async def servers(settings: Settings) -> AsyncIterator[tuple[str, str]]:
    """(database URL, NATS URL): the configured ones, or embedded servers started here."""
    started: list[EmbeddedPostgres | EmbeddedNats] = []
    try:
        database_url = settings.database_url
        if database_url is None:
            pg = EmbeddedPostgres(settings.data_dir)
            started.append(pg)
            database_url = await asyncio.to_thread(pg.start)
        nats_url = settings.nats_url
        if nats_url is None:
            nats_server = EmbeddedNats(settings.data_dir)
            started.append(nats_server)
            nats_url = await asyncio.to_thread(nats_server.start)
        yield database_url, nats_url
    finally:
        for server in reversed(started):
            await asyncio.to_thread(server.stop)


@contextlib.asynccontextmanager
async def infrastructure(settings: Settings, *, pool_size: int = 20) -> AsyncIterator[Infra]:
    async with servers(settings) as (database_url, nats_url):
        await migrate(database_url)
        pool = await create_pool(database_url, max_size=pool_size)
        try:
            bus = await Bus.connect(nats_url, settings.bus_namespace)
            try:
                yield Infra(settings, database_url, nats_url, pool, bus)
            finally:
                await bus.close()
        finally:
            await pool.close()


def build_provider(settings: Settings) -> Provider:
    return SimProvider(
        settings.sim_url,
        settings.sim_secret,
        callback_url=f"{settings.public_url}/webhooks/sim/status",
    )


@dataclass
class Workers:
    """Stage consumers and the HTTP server running as tasks until `stop` is set."""

    stop: asyncio.Event = field(default_factory=asyncio.Event)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def aclose(self) -> None:
        self.stop.set()
        await asyncio.gather(*self.tasks, return_exceptions=True)


@contextlib.asynccontextmanager
async def running(
    infra: Infra,
    provider: Provider,
    *,
    stages: Iterable[str] = tuple(STAGE_HOPS),
    http: bool = True,
) -> AsyncIterator[Workers]:
    """Run the given stages (and the webhook server) in this process."""
    settings = infra.settings
    workers = Workers()
    core = Stages(infra.pool, infra.bus, provider, page_size=settings.audience_page_size)
    if http:
        app = create_app(infra.bus, {provider.name: provider})
        config = uvicorn.Config(
            app,
            host=settings.http_host,
            port=settings.http_port,
            log_level="warning",
            lifespan="off",
            loop="none",
        )
        server = uvicorn.Server(config)
        workers.tasks.append(asyncio.create_task(_serve(server, workers.stop)))
    for stage in stages:
        workers.tasks.append(
            asyncio.create_task(
                consume(
                    infra.bus,
                    STAGE_HOPS[stage],
                    core.handler(stage),
                    stop=workers.stop,
                    max_inflight=1 if stage in SERIAL_STAGES else settings.max_inflight_batches,
                    ack_wait_s=settings.ack_wait_s,
                    merge=MERGE.get(stage, 1),
                )
            )
        )
    try:
        yield workers
    finally:
        await workers.aclose()


async def _serve(server: uvicorn.Server, stop: asyncio.Event) -> None:
    task = asyncio.create_task(server.serve())
    await stop.wait()
    server.should_exit = True
    await task


async def launch(infra: Infra, campaign_id: int, *, relaunch: bool = False) -> LaunchCampaign:
    """The campaign stage's entry point: validate, count the launch, publish the command."""
    c = await campaigns.get_campaign(infra.pool, campaign_id)
    validate_launch(campaign_id=campaign_id, body=c["body"], status=c["status"], relaunch=relaunch)
    attempt = await campaigns.begin_launch(infra.pool, campaign_id)
    cmd = launch_command(
        brand_id=c["brand_id"], campaign_id=campaign_id, attempt=attempt, now=now()
    )
    await infra.bus.publish("launch", cmd, msg_id=cmd.command_id)
    return cmd
