"""The composition root: starts (or connects to) Postgres and NATS, builds providers, stages
and the HTTP app, and tears everything down in reverse order, also on Ctrl-C."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta

import uvicorn

from clarion import service
from clarion.api.app import create_app
from clarion.api.imports import cancel_all as cancel_imports
from clarion.api.v1 import V1
from clarion.bus.embedded import EmbeddedNats
from clarion.bus.jetstream import Bus
from clarion.config import Settings, file_secret
from clarion.domain.clock import SystemClock
from clarion.domain.ids import PARTITIONS
from clarion.domain.ports import Clock, Provider
from clarion.errors import ConfigurationError
from clarion.httpclient import AsyncClient
from clarion.pipeline.breaker import Breaker
from clarion.providers import accounts
from clarion.providers.sim import SimProvider
from clarion.runtime.consumer import consume, consume_holding
from clarion.runtime.hooks_worker import HooksWorker
from clarion.runtime.stages import (
    RECEIPTS_PER_FETCH,
    SERIAL_STAGES,
    STAGE_HOPS,
    Monitor,
    Stages,
)
from clarion.runtime.stages import STAGES as STAGES  # the stages a process may run
from clarion.store import accounts as store_accounts
from clarion.store import install, monitoring, users
from clarion.store.db import (
    Pool,
    Refused,
    constraint_error,
    create_pool,
    migrate,
    release_session_lock,
    try_session_lock,
)
from clarion.store.embedded import EmbeddedPostgres

# What a process may run: the pipeline's stages, and the models' training (elected).
INTELLIGENCE = "intelligence"
ROLES = (*STAGES, INTELLIGENCE)

log = logging.getLogger(__name__)


@dataclass
class Infra:
    """The servers a process reaches; what the use cases (`clarion.service`) run on."""

    settings: Settings
    database_url: str
    nats_url: str
    pool: Pool
    bus: Bus

    def lookup_provider(self) -> Provider:
        """The simulator adapter, to look carriers up with (plans); the caller closes it."""
        return build_provider(self.settings)


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
            settings = await with_secrets(settings, pool)
            bus = await Bus.connect(
                nats_url, settings.bus_namespace, replicas=settings.bus_replicas
            )
            try:
                yield Infra(settings, database_url, nats_url, pool, bus)
            except Refused as exc:
                # a command's write the schema refused: a message, not a traceback
                raise constraint_error(exc) from exc
            finally:
                await bus.close()
        finally:
            await pool.close()


def _resolved(secret: str | None) -> str:
    if not secret:  # `infrastructure()` sets every secret; a caller that made its own did not
        raise ConfigurationError("a secret is missing: use the settings of `infrastructure()`")
    return secret


async def with_secrets(settings: Settings, pool: Pool) -> Settings:
    """The settings with every secret set: those not configured are the install's own,
    generated once (never a published default). The unsubscribe links' key is kept in
    Postgres, which every process of the install shares; the simulator's in the data
    directory, which `clarion sim` run beside it shares."""
    return replace(
        settings,
        unsubscribe_secret=settings.unsubscribe_secret
        or await install.install_secret(pool, "unsubscribe"),
        sim_secret=settings.sim_secret or file_secret(settings.data_dir / "secrets" / "sim"),
    )


def build_provider(settings: Settings, *, name: str = "sim", url: str | None = None) -> Provider:
    """The simulator adapter as provider account `name` (at `url`, default the settings')."""
    if not settings.sim_secret:
        raise ConfigurationError("the simulator provider needs a secret (CLARION_SIM_SECRET)")
    return SimProvider(
        url or settings.sim_url,
        settings.sim_secret,
        callback_url=f"{settings.public_url}/webhooks/{name}/status",
        inbound_url=f"{settings.public_url}/webhooks/{name}/inbound",
        name=name,
    )


async def build_providers(infra: Infra) -> list[Provider]:
    """Every provider account (`clarion provider add`), in name order; without any, the
    simulator at `CLARION_SIM_URL` as account "sim"."""
    rows = await store_accounts.list_accounts(infra.pool)
    if not rows:
        return [build_provider(infra.settings)]
    providers = [
        accounts.build(r.name, r.kind, r.settings, infra.settings, bus=infra.bus) for r in rows
    ]
    for p in providers:
        start = getattr(p, "start", None)
        if start is not None:  # SMPP: bind now, so receipts and inbound messages arrive
            await start()
    return providers


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
    clock: Clock | None = None,
    more_providers: Sequence[Provider] = (),
) -> AsyncIterator[Workers]:
    """Run the given stages (and the webhook server) in this process. `clock` is the one
    clock its workers and API run on (tests pin its decision time; the default is the real
    clock)."""
    settings = infra.settings
    workers = Workers()
    stages = tuple(stages)
    clock = clock or SystemClock()
    core = Stages(
        infra.pool,
        infra.bus,
        provider,
        clock=clock,
        page_size=settings.audience_page_size,
        max_attempts=settings.send_max_attempts,
        retry_base_s=settings.retry_base_s,
        providers={p.name: p for p in more_providers},
        public_url=settings.links_url or settings.public_url,
        unsubscribe_secret=_resolved(settings.unsubscribe_secret),
        new_breaker=lambda: Breaker(
            min_calls=settings.breaker_min_calls, open_s=settings.breaker_open_s
        ),
        monitor=Monitor(
            threshold=settings.carrier_alert_rate,
            min_volume=settings.carrier_alert_min_volume,
            window_min=settings.carrier_alert_window_min,
        ),
    )
    if "send" in stages:
        workers.tasks.append(
            asyncio.create_task(_sweep_deferred(core, workers.stop, settings=settings))
        )
    if "aggregate" in stages:  # the receipts side posts the brands' webhooks
        workers.tasks.append(asyncio.create_task(_post_webhooks(core, workers.stop)))
    if INTELLIGENCE in stages:
        workers.tasks.append(
            asyncio.create_task(_train_models(infra.pool, workers.stop, clock=clock))
        )
    api = None
    if http:
        api = V1(infra, clock=clock, rate_per_s=settings.api_rate_per_s)
        await service.imports.fail_stale(infra)  # those a stopped process left running
        clicks = service.links.Clicks(infra)
        workers.tasks.append(asyncio.create_task(clicks.run(workers.stop)))
        redirects = service.links.Redirects(
            infra, _resolved(settings.unsubscribe_secret), clicks, clock
        )
        app = create_app(
            infra.bus,
            core.providers,
            api=api,
            pool=infra.pool,
            unsubscribe_secret=settings.unsubscribe_secret,
            redirects=redirects,
        )
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
        if stage == INTELLIGENCE:
            continue  # not a consumer of the bus (above)
        if stage == "aggregate":
            workers.tasks.append(
                asyncio.create_task(
                    consume_holding(
                        infra.bus,
                        STAGE_HOPS[stage],
                        core.handler(stage),
                        stop=workers.stop,
                        hold_s=settings.receipt_hold_s,
                        fetch=RECEIPTS_PER_FETCH,
                        ack_wait_s=settings.ack_wait_s,
                        retry_base_s=settings.retry_base_s,
                    )
                )
            )
            continue
        workers.tasks.append(
            asyncio.create_task(
                consume(
                    infra.bus,
                    STAGE_HOPS[stage],
                    core.handler(stage),
                    stop=workers.stop,
                    max_inflight=_inflight(stage, settings),
                    ack_wait_s=settings.ack_wait_s,
                    retry_base_s=settings.retry_base_s,
                )
            )
        )
    try:
        yield workers
    finally:
        if api is not None:
            await cancel_imports(api.imports_running)
        await workers.aclose()


# Advisory lock key of the deferred-message sweeper: one process sweeps at a time.
_SWEEPER_LOCK = 0x0C1A_0002


def _inflight(stage: str, settings: Settings) -> int:
    """Batches one process handles at once for a stage. Replies are few and urgent: every
    partition of theirs may run at once."""
    if stage in SERIAL_STAGES:
        return 1
    if stage == "transactional":
        return PARTITIONS
    return settings.max_inflight_batches


# The carrier stage's record of counted status batches is pruned hourly to its last day.
_PRUNE_EVERY_S = 3600.0
_PROCESSED_KEEP_S = 86_400.0
# Recent orders are attributed again this often (receipts that came after them).
_REATTRIBUTE_EVERY_S = 60.0


async def _elected(
    pool: Pool,
    lock: int,
    stop: asyncio.Event,
    interval_s: float,
    what: str,
    turn: Callable[[], Awaitable[None]],
) -> None:
    """Every `interval_s` until `stop`, `turn` — in the one process that holds the advisory
    `lock` for it; a failed turn is logged and the next one tries again."""
    while not stop.is_set():
        try:
            async with pool.acquire() as conn:
                if await try_session_lock(conn, lock):
                    try:
                        await turn()
                    finally:
                        await release_session_lock(conn, lock)
        except Exception as exc:  # the next turn tries again
            log.warning("%s failed: %s", what, exc)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval_s)


async def _sweep_deferred(
    core: Stages, stop: asyncio.Event, *, settings: Settings, interval_s: float = 0.25
) -> None:
    """Hand deferred messages back to the send stage when their moment comes, fold early
    receipts whose send answer has landed, launch scheduled campaigns whose moment has come,
    decide A/B tests whose wait is over (and launch their winners), release adaptive tests'
    next rounds, now and then reconcile messages whose final receipt never came, every
    minute attribute recent orders again, and once an hour prune the record of counted
    status batches and the web UI's ended sessions. Elected: only the process holding the
    advisory lock sweeps."""
    clock = core.ctx.clock
    last = {"reconciled": clock.monotonic(), "pruned": -math.inf, "attributed": clock.monotonic()}

    def due(what: str, every_s: float) -> bool:
        if clock.monotonic() - last[what] < every_s:
            return False
        last[what] = clock.monotonic()
        return True

    async def turn() -> None:
        await core.sweeps.deferred()
        await core.sweeps.early_receipts()
        await core.sweeps.launch_scheduled()
        await core.sweeps.decide_tests()
        await core.sweeps.adapt_tests()
        if due("reconciled", settings.reconcile_every_s):
            await core.sweeps.reconcile(
                settings.reconcile_after_s, max_age_s=settings.reconcile_max_age_s
            )
        if due("attributed", _REATTRIBUTE_EVERY_S):
            await core.sweeps.reattribute()
        if due("pruned", _PRUNE_EVERY_S):
            await monitoring.prune_processed(core.ctx.pool, _PROCESSED_KEEP_S)
            # the web UI's sessions a day after they ended (signed out ones end at once)
            await users.forget_expired(core.ctx.pool, clock.now() - timedelta(days=1))

    await _elected(core.ctx.pool, _SWEEPER_LOCK, stop, interval_s, "deferred sweep", turn)


_HOOKS_LOCK = 0x0C1A_0003


async def _post_webhooks(core: Stages, stop: asyncio.Event, interval_s: float = 0.5) -> None:
    """Post the brands' outbound webhooks as they come due. Elected: one process posts."""
    worker = HooksWorker(core.ctx)
    async with AsyncClient(timeout=10) as client:

        async def turn() -> None:
            while await worker.dispatch(client) and not stop.is_set():
                pass  # more may be due at once

        await _elected(core.ctx.pool, _HOOKS_LOCK, stop, interval_s, "posting webhooks", turn)


_MODELS_LOCK = 0x0C1A_0004


async def _train_models(
    pool: Pool, stop: asyncio.Event, *, clock: Clock, interval_s: float = 60.0
) -> None:
    """Fit new versions of the brands' models when they have learnt from something new and
    the last is older than `service.intelligence.RETRAIN_AFTER`. Elected: one process
    trains (a fit is CPU work: run this role on a worker of its own at scale)."""

    async def turn() -> None:
        await service.intelligence.train_due(pool, now=clock.now(), stop=stop)

    await _elected(pool, _MODELS_LOCK, stop, interval_s, "training models", turn)


async def _serve(server: uvicorn.Server, stop: asyncio.Event) -> None:
    task = asyncio.create_task(server.serve())
    await stop.wait()
    server.should_exit = True
    await task
