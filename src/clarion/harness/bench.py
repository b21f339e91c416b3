"""`clarion bench`: one SMS campaign through every stage, measured end to end.

The harness (this process) starts PostgreSQL and NATS, the simulator as its own process,
and `workers` worker processes (`clarion worker --stages … --http`): one runs every stage;
more are split between the send side and the receipts side as `deploy/` runs them (see
`layout`), and the webhooks go to the receipts side. It seeds a brand, sets its lanes
(provider, sender, carrier) to `lane_rate` a second, launches one campaign and waits for
every eligible recipient's receipt to be recorded and counted. While the campaign sends,
a few subscribers still waiting for their message text STOP; the report says how soon the
ledger blocked them and whether any of them was sent to more than a second later.

Figures are taken from the record of truth (Postgres timestamps), from the workers' own
Prometheus histograms, and from the operating system (psutil), never from the harness's
guesses. The harness itself, the simulator, Postgres and NATS are reported apart from the
Clarion worker processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import platform
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from itertools import islice
from pathlib import Path
from typing import Any

import httpx

from clarion import bootstrap, service
from clarion.bus.embedded import free_port
from clarion.compliance.windows import us_federal_holidays
from clarion.config import Settings
from clarion.domain.contacts import NewSubscriber, new_subscriber
from clarion.harness import shop
from clarion.harness.measure import (
    Backlog,
    Processes,
    Sampler,
    cpu_times,
    cpu_used,
    stage_latencies,
)
from clarion.harness.seed import synthetic_rows
from clarion.pipeline.hooks import EVENT_TYPES, new_secret
from clarion.runtime.stages import STAGE_HOPS, STAGES
from clarion.service import recs as service_recs
from clarion.service.progress import campaign_progress
from clarion.sim.process import SimProcess
from clarion.sim.world import World, WorldConfig
from clarion.store import brands, campaigns, hooks, measure, messages, segments
from clarion.store.db import Pool
from clarion.store.lanes import add_sender, set_lane_limit

SENDER = "+15125550100"
BODY = (
    "{{ brand.name }}: Hi {{ first_name | default('there') }}, Black Friday starts now - "
    "40% off everything in {{ city | default('your city') }}. Reply STOP to opt out."
)
LINK = "https://northwind.example/bf"
RECS_BODY = (
    "{{ brand.name }}: Hi {{ first_name | default('there') }}, picked for you: "
    "{{ recommendations[0].name }} {{ recommendations[0].url }} Reply STOP to opt out."
)
CARRIERS = ("AT&T", "T-Mobile", "Verizon", "US Cellular", "unknown")
_SEED_CHUNK = 50_000


@dataclass(frozen=True)
class BenchOptions:
    recipients: int
    workers: int = 1
    lane_rate: float = 100_000.0  # messages a second per lane: high enough not to bind
    failure_rate: float = 0.02
    at: datetime | None = None  # the time the compliance gate sees; default next 18:00 UTC
    optouts: int = 20  # subscribers who text STOP while the campaign sends
    # Subscribers' carriers known before the launch, as for a brand that has sent before;
    # False: a first campaign, whose send stage looks each number up.
    known_carriers: bool = True
    sql_top: int = 0  # print the N statements Postgres spent most time on (stderr)
    timeout_s: float = 1800.0
    # The stages each worker process runs: `roles`, one process per group; else `workers`
    # processes laid out as `deploy/` splits them (see `layout`); with `every_stage`, each
    # of them runs every stage.
    roles: Sequence[Sequence[str]] = ()
    every_stage: bool = False
    # CPU priority (nice) of the processes that do not fold receipts, when others do: on
    # shared cores the receipts side then finishes what was handed over before the send
    # side takes more (see `_workers`). 0: equal priority.
    send_side_nice: int = 10
    data_dir: Path | None = None
    # The campaign's audience is a segment that takes every subscriber (resolved at the
    # launch, inside the measured time) instead of the brand's whole list: what targeting
    # costs, at the same number of messages.
    segment: bool = False
    # The body carries a link: "on" tracked (a short link per recipient), "off" sent as it
    # is; "none": no link (the body of the figures before links).
    links: str = "none"
    # An outbound webhook endpoint of the brand for every event type that never answers
    # (a closed port): what a dead endpoint costs the pipeline.
    dead_webhook: bool = False
    # a marketer watching the campaign's page in the web UI while it sends (its live
    # figures and report polled as the page's htmx does): what watching costs the pipeline
    watch: bool = False
    # The subscribers have the simulator's world's shop histories as events and a trained
    # recommendations model (before the clock starts); the body is `RECS_BODY`: each
    # recipient's first recommended product and its link, tracked unless `links` is "off".
    recs: bool = False

    def groups(self) -> list[list[str]]:
        if self.roles:
            return [list(g) for g in self.roles]
        if self.every_stage:
            return [list(STAGES) for _ in range(self.workers)]
        return layout(self.workers)


# The two sides of the pipeline, as `deploy/` runs them: the send side pages, renders, gates
# and hands over; the receipts side takes the webhooks, folds the reports, monitors the
# carriers and answers handsets.
SEND_SIDE = ("audience", "personalize", "send")
RECEIPTS_SIDE = ("aggregate", "carrier", "inbound", "transactional")
# The receipts side's share of the workers' CPU: 0.40-0.46 in the sixth pass's runs with
# one process a side (BENCHMARKS.md's history).
_RECEIPTS_SHARE = 0.4


def layout(workers: int) -> list[list[str]]:
    """`workers` processes: one runs every stage; more are split between the send side and
    the receipts side by their share of the work (at least one each). Two processes that
    each ran every stage folded the same messages' receipts from two transactions, whose
    row updates then waited on each other: 14.7 s of the fold's statement time against
    4.0 s in a 400k pair (BENCHMARKS.md's history, sixth pass)."""
    if workers == 1:
        return [list(STAGES)]
    receipts = min(workers - 1, max(1, round(workers * _RECEIPTS_SHARE)))
    return [list(SEND_SIDE)] * (workers - receipts) + [list(RECEIPTS_SIDE)] * receipts


def default_at(now: datetime) -> datetime:
    """The next 18:00 UTC on a weekday that is no US federal holiday: inside every US
    sending window (08:00-14:00 local, the same date in every US zone), whatever the hour
    or day of the run. On a weekend or a holiday the states that close those days (weekends
    in some, Sundays and holidays in others) would hold back their subscribers, and a run
    would send fewer messages than one on a weekday."""
    at = now.replace(hour=18, minute=0, second=0, microsecond=0)
    if at <= now:
        at += timedelta(days=1)
    while at.weekday() >= 5 or at.date() in us_federal_holidays(at.year):
        at += timedelta(days=1)
    return at


async def run_bench(opts: BenchOptions) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="clarion-bench-")) if opts.data_dir is None else None
    root = root or opts.data_dir
    assert root is not None
    root.mkdir(parents=True, exist_ok=True)
    at = opts.at or default_at(datetime.now(UTC))
    sim_secret = secrets.token_urlsafe(24)  # the run's own simulator: a secret of its own
    settings = replace(
        Settings.from_env(),
        data_dir=root,
        bus_namespace=f"bench{free_port()}",
        sim_secret=sim_secret,
    )
    sim = SimProcess(secret=sim_secret, failure_rate=opts.failure_rate, log_path=root / "sim.log")
    settings = replace(settings, sim_url=sim.url)
    try:
        with sim:
            async with bootstrap.infrastructure(settings, pool_size=4) as infra:
                return await _bench(infra, sim, opts, at, root)
    finally:
        if opts.data_dir is None:
            shutil.rmtree(root, ignore_errors=True)


async def _seed(infra: bootstrap.Infra, opts: BenchOptions) -> tuple[int, int]:
    pool = infra.pool
    brand_id = await brands.create_brand(
        pool, slug=f"bench-{int(time.time() * 1000)}", name="Northwind", sender=SENDER,
        help_text="Northwind: help at northwind.example/help. Msg&data rates may apply.",
    )  # fmt: skip
    rows = synthetic_rows(opts.recipients)
    while chunk := list(islice(rows, _SEED_CHUNK)):  # flat memory in N
        subs = await asyncio.to_thread(_normalise, chunk)
        await brands.import_subscribers(pool, brand_id, subs, source="bench-import")
    if opts.known_carriers:
        await _look_up_carriers(infra, brand_id)
    # A brand's subscribers are imported, and their carriers learnt, long before a campaign
    # goes out, and autovacuum has long since cleared what that left behind (the look-up
    # replaces every subscriber's row version). Cleared here, before the clock starts:
    # otherwise that vacuum ran in the middle of the measured campaign, taking a core from
    # it for seconds at 1M (BENCHMARKS.md's history, fourteenth pass). What the campaign
    # itself leaves for autovacuum (its messages, their updates) is still paid within it.
    await measure.vacuum_subscribers(pool)
    rate = opts.lane_rate
    await add_sender(pool, brand_id, SENDER, rate_per_s=rate)
    await set_lane_limit(pool, "provider", "sim", rate_per_s=rate, burst=rate)
    for carrier in CARRIERS:
        await set_lane_limit(pool, "carrier_minute", f"*:*:{carrier}", rate_per_s=rate, burst=rate)
    segment_id = None
    if opts.segment:  # every synthetic subscriber has a city
        every = {"attribute": "city", "op": "exists"}
        segment_id = (await segments.create(pool, brand_id, "Everyone", every)).id
    if opts.dead_webhook:
        await hooks.create(
            pool, brand_id, "http://127.0.0.1:9/dead", list(EVENT_TYPES), new_secret()
        )
    body = BODY if opts.links == "none" else BODY.replace(" Reply STOP", f" {LINK} Reply STOP")
    if opts.recs:
        await _shop(pool, brand_id)
        body = RECS_BODY
    campaign_id = await campaigns.create_campaign(
        pool, brand_id=brand_id, name="Black Friday", body=body, segment_id=segment_id,
        track_links=opts.links == "on" or (opts.recs and opts.links != "off"),
    )  # fmt: skip
    return brand_id, campaign_id


async def _shop(pool: Pool, brand_id: int) -> None:
    """The world's catalog, every subscriber's shop history as events, and a recommendations
    model trained on them: what a brand that sells has before its campaign. Three sessions
    a person (the world's default is a year's fifteen) keep the seeding of a million short;
    95 % of them still have a list of their own, the rest the popularity list."""
    world = World(WorldConfig(sessions=3.0))
    await shop.write_catalog(pool, brand_id, world)
    after = 0
    while rows := await measure.phones_after(pool, brand_id, after):
        after = rows[-1].id
        await shop.write_histories(
            pool, brand_id, world, {r.id: r.phone for r in rows}, holdout=None
        )
    await pool.execute("ANALYZE events")
    await service_recs.train(pool, brand_id, now=shop.START + timedelta(days=shop.DAYS + 1))


async def _look_up_carriers(infra: bootstrap.Infra, brand_id: int) -> None:
    """Every subscriber's carrier, as the provider's lookup says and as a brand that has sent
    before already knows (a first campaign looks them up as it sends: `known_carriers`
    False)."""
    provider = bootstrap.build_provider(infra.settings)
    after = 0
    try:
        while rows := await measure.phones_after(infra.pool, brand_id, after):
            after = rows[-1].id
            found = await provider.lookup_carriers([r.phone for r in rows])
            async with infra.pool.acquire() as conn:
                await messages.set_carriers(
                    conn, [(r.id, found[r.phone]) for r in rows if r.phone in found]
                )
    finally:
        await provider.aclose()


def _normalise(rows: list[dict[str, str]]) -> list[NewSubscriber]:
    return [new_subscriber(r) for r in rows]


def _worker_env(infra: bootstrap.Infra, port: int) -> dict[str, str]:
    s = infra.settings
    return {
        **os.environ,
        "CLARION_DATABASE_URL": infra.database_url,
        "CLARION_NATS_URL": infra.nats_url,
        "CLARION_BUS_NAMESPACE": s.bus_namespace,
        "CLARION_SIM_URL": s.sim_url,
        "CLARION_SIM_SECRET": s.sim_secret or "",  # set by `infrastructure()`
        "CLARION_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "CLARION_DATA_DIR": str(s.data_dir),
    }


@contextlib.contextmanager
def _workers(
    infra: bootstrap.Infra, opts: BenchOptions, offset_s: float, root: Path
) -> Iterator[list[tuple[subprocess.Popen[bytes], int]]]:
    started: list[tuple[subprocess.Popen[bytes], int]] = []
    groups = opts.groups()
    ports = [free_port() for _ in groups]
    # Providers post webhooks to the public URL the send stage gives them: the first
    # process with the aggregate, as `deploy/` sends them to the receipts side's front end
    # (with every stage everywhere, each process its own).
    folding = [port for g, port in zip(groups, ports, strict=True) if "aggregate" in g]
    try:
        for i, (stages, port) in enumerate(zip(groups, ports, strict=True)):
            public = port if "aggregate" in stages or not folding else folding[0]
            log = (root / f"worker{i}.log").open("ab")
            cmd = [
                sys.executable, "-m", "clarion", "worker", "--stages", ",".join(stages),
                "--http", "--port", str(port), "--clock-offset", f"{offset_s:.3f}",
            ]  # fmt: skip
            env = _worker_env(infra, public)
            proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=log)
            if (nice := _nice(opts, stages)) > 0:
                os.setpriority(os.PRIO_PROCESS, proc.pid, nice)
            started.append((proc, port))
        yield started
    finally:
        for proc, _ in started:
            proc.terminate()
        for proc, _ in started:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


def _nice(opts: BenchOptions, stages: Sequence[str]) -> int:
    """The nice value of a worker process running `stages`. The processes share two cores:
    at equal priority the send side ran ahead of the receipts side, whose backlog then
    took the last 15-17 s of a 1M run, 18 % of it, on one core with the other partly idle.
    The send side at a lower priority gets what the receipts side leaves: the tail is about
    a second and no stage does more work (BENCHMARKS.md's history, ninth pass). On machines
    of their own (`deploy/`) the sides do not compete and this changes nothing."""
    groups = opts.groups()
    if "aggregate" in stages or not any("aggregate" in g for g in groups):
        return 0
    return max(0, opts.send_side_nice)


async def _ready(
    infra: bootstrap.Infra,
    workers: Sequence[tuple[subprocess.Popen[bytes], int]],
    root: Path,
    stages: Sequence[str] = STAGES,
) -> None:
    """Every worker serves /healthz and the consumers of every stage they run exist."""
    deadline = time.monotonic() + 60
    async with httpx.AsyncClient() as client:
        for i, (proc, port) in enumerate(workers):
            while True:
                if proc.poll() is not None:
                    log = (root / f"worker{i}.log").read_text(errors="replace")[-2000:]
                    raise RuntimeError(f"worker {i} exited with {proc.returncode}:\n{log}")
                with contextlib.suppress(httpx.HTTPError):
                    r = await client.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                    if r.status_code == 200:
                        break
                if time.monotonic() > deadline:
                    raise TimeoutError(f"worker {i} not ready in 60 s")
                await asyncio.sleep(0.1)
    bus = infra.bus
    for stage in stages:
        hop = STAGE_HOPS[stage]
        for p in bus.partitions(hop):
            while True:
                try:
                    await bus.js.consumer_info(bus.stream, bus.durable(hop, p))
                    break
                except Exception:
                    if time.monotonic() > deadline:
                        raise
                    await asyncio.sleep(0.1)


async def _bench(
    infra: bootstrap.Infra, sim: SimProcess, opts: BenchOptions, at: datetime, root: Path
) -> dict[str, Any]:
    if opts.sql_top:
        await measure.enable_statement_stats(infra.pool)
    seed_started = time.perf_counter()
    brand_id, campaign_id = await _seed(infra, opts)
    seed_s = time.perf_counter() - seed_started
    offset_s = (at - datetime.now(UTC)).total_seconds()
    with _workers(infra, opts, offset_s, root) as workers:
        await _ready(infra, workers, root)
        assert sim.proc is not None
        procs = Processes.find([w.pid for w, _ in workers], sim.proc.pid, root)
        cpu_before = cpu_times(procs.everyone())
        sampler = Sampler(procs)
        backlog = Backlog(infra.bus, sim.url)
        stop = asyncio.Event()
        sampling = asyncio.gather(sampler.run(stop), backlog.run(stop))
        if opts.sql_top:
            await measure.reset_statement_stats(infra.pool)
        watching = (
            asyncio.create_task(_watch(infra, brand_id, campaign_id, workers[-1][1], stop))
            if opts.watch else None
        )  # fmt: skip
        launched_wall = time.time()
        await service.campaigns.launch(
            infra, campaign_id, at=datetime.now(UTC) + timedelta(seconds=offset_s)
        )
        try:
            stops, cpu_after = await _finish(infra, sim, opts, brand_id, campaign_id, procs)
        finally:
            stop.set()
            await sampling
            polls = await watching if watching is not None else None
        sampler.sample()
        optouts = await _optout_report(infra.pool, campaign_id, stops)
        roles = procs.roles()
        nice = [os.getpriority(os.PRIO_PROCESS, w.pid) for w, _ in workers]
        stages = await stage_latencies([port for _, port in workers])
        # The STOP confirmations are not the campaign's: their receipts may still be on
        # their way when it completes. The network's counts are read once it is quiet.
        stats = await _quiet_network(sim)
    pool = infra.pool
    if opts.sql_top:
        await _print_sql_top(pool, opts.sql_top)
    log_errors = _worker_log_errors(root, len(workers))
    p = await campaign_progress(pool, campaign_id)
    times = await measure.campaign_times(pool, campaign_id)
    # read once the campaign completed: it launched, sent and had its receipts recorded
    assert times.last_receipt_at is not None
    assert times.last_sent_at is not None
    assert times.first_persisted_at is not None
    launched = datetime.fromtimestamp(launched_wall, UTC)
    duration_s = (times.last_receipt_at - launched).total_seconds()
    first = times.first_send_at
    first_s = (first - launched).total_seconds() if first is not None else None
    per_1k = 1000 / p.delivered if p.delivered else 0.0
    cpu = {role: cpu_used(cpu_before, cpu_after, pids) * per_1k for role, pids in roles.items()}
    return {
        "recipients": opts.recipients,
        "eligible": p.eligible,
        "delivered": p.delivered,
        "undelivered_or_failed": p.failed,
        "suppressed": p.suppressed,
        "deferred": p.deferred,
        "handset_messages": stats["handset_messages"],
        "duration_s": round(duration_s, 3),
        "throughput_mps": round(p.delivered / duration_s, 1) if duration_s > 0 else 0.0,
        "audience": "segment" if opts.segment else "list",
        "links": opts.links,
        "dead_webhook": opts.dead_webhook,
        "watch": opts.watch,
        "watch_polls": polls,
        "recs": opts.recs,
        "first_message_s": round(first_s, 3) if first_s is not None else None,
        # launch → the first message stored by the send stage (paged and rendered): the rest
        # of first_message_s is the send stage's gate, claim and lease
        "first_persisted_s": round((times.first_persisted_at - launched).total_seconds(), 3),
        # launch → the last provider call: the rest of duration_s is the receipts' tail
        "last_message_s": round((times.last_sent_at - launched).total_seconds(), 3),
        "stage_p50_ms": {s: v[0] for s, v in stages.items()},
        "stage_p99_ms": {s: v[1] for s, v in stages.items()},
        "peak_rss_mb": round(sampler.peak / 2**20, 1),
        # the receipts side's backlog at its peak, in bus messages and the simulator's
        # unposted receipts, sampled every second (`measure.Backlog`)
        "receipts_backlog_max": backlog.report(),
        # this process: seeding, launching, polling (the load generator, not the pipeline)
        "harness_peak_rss_mb": round(sampler.harness_peak / 2**20, 1),
        "cpu_s_per_1k": round(cpu["workers"], 3),
        "cpu_s_per_1k_all": round(sum(cpu.values()), 3),
        "cpu_s_per_1k_by_process": {role: round(v, 3) for role, v in cpu.items()},
        # CPU seconds of every process per second of the run: how many of `cpus` it kept
        # busy. The host's speed moves msg/s and CPU per message together; this stays put,
        # and shows idle cores (a stage waiting on another) where msg/s cannot.
        "cores_busy": round(
            sum(cpu_used(cpu_before, cpu_after, pids) for pids in roles.values()) / duration_s, 2
        )
        if duration_s > 0
        else 0.0,
        "cpu_s_per_1k_by_worker": [
            round(cpu_used(cpu_before, cpu_after, [pid]) * per_1k, 3) for pid in roles["workers"]
        ],
        "processes": len(opts.groups()),
        "stages_per_process": [",".join(g) for g in opts.groups()],
        "lane_rate_per_s": opts.lane_rate,
        # each worker process's nice value, as the system had it at the end (`_nice`)
        "nice_per_process": nice,
        "carriers_known_before": opts.known_carriers,
        "lanes": ["provider:sim", f"sender:{SENDER}", "carrier_minute:*:*:<carrier>"],
        "gate_time": at.isoformat(),
        **optouts,
        "worker_log_errors": log_errors,
        # what the network saw: resent messages it recognised, receipt posts that failed (and
        # were posted again)
        "simulator": {
            k: stats.get(k, 0)
            for k in (
                "requests",
                "accepted",
                "duplicates",
                "receipts_posted",
                "receipt_post_failures",
                "receipts_pending",
            )
        },
        "seed_s": round(seed_s, 1),
        "cpus": os.cpu_count(),
        # every Python process runs this interpreter (workers and simulator alike): its build
        # moves the figures (BENCHMARKS.md's history, eleventh pass)
        "python": {"version": platform.python_version(), "executable": sys.executable},
    }


_WATCHER = "watcher@bench.example"
_WATCHER_PASSWORD = "a watcher's password, long enough"
_LIVE_EVERY_S = 5.0  # as the watch page's htmx polls its live figures
_REPORT_EVERY_S = 60.0  # and its report


async def _watch(
    infra: bootstrap.Infra, brand_id: int, campaign_id: int, port: int, stop: asyncio.Event
) -> dict[str, int]:
    """A marketer with the campaign's page open: signed in, its live figures every 5 s and
    its report every minute, as the page asks for them, until `stop`. Counts the answers."""
    await service.users.create(infra, brand_id, _WATCHER, _WATCHER_PASSWORD)
    polls = {"live": 0, "report": 0, "failed": 0}
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
        page = await client.get("/signin")
        token = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        await client.post(
            "/signin",
            data={"email": _WATCHER, "password": _WATCHER_PASSWORD, "csrf_token": token},
        )
        last_report = -math.inf
        while not stop.is_set():
            paths = [f"/campaigns/{campaign_id}/live"]
            if time.monotonic() - last_report >= _REPORT_EVERY_S:
                last_report = time.monotonic()
                paths.append(f"/campaigns/{campaign_id}/report")
            for path in paths:
                answer = await client.get(path, headers={"HX-Request": "true"})
                key = "report" if path.endswith("report") else "live"
                polls[key if answer.status_code == 200 else "failed"] += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), _LIVE_EVERY_S)
    return polls


async def _finish(
    infra: bootstrap.Infra,
    sim: SimProcess,
    opts: BenchOptions,
    brand_id: int,
    campaign_id: int,
    procs: Processes,
) -> tuple[dict[int, float], dict[int, float]]:
    """Wait for the campaign to complete; meanwhile a few subscribers text STOP. Returns
    the STOPs (subscriber id → when texted) and the processes' CPU times read just before
    the progress read that found the campaign complete."""
    pool = infra.pool
    started = time.monotonic()
    deadline = started + opts.timeout_s
    stops: dict[int, float] = {}
    last, still = -1, 0
    # The full progress read groups every message of the campaign: 0.5-1.3 s of Postgres at
    # 600k-1M, the harness's work, not the pipeline's. It is taken once the carrier stage's
    # count has stood still for two polls (as it does when the campaign is done), at most
    # every 2 s, and the run's CPU is read before it; the duration is read from the
    # database's timestamps, not from when the poll saw it.
    checked_at = 0.0
    while True:
        if not stops and opts.optouts:
            first = await measure.first_send_at(pool, campaign_id)
            if first is not None:
                stops = await _text_stop(infra, sim, brand_id, campaign_id, opts.optouts)
        counted = await measure.outcomes_counted(pool, campaign_id)
        # Before the first outcome the count stands still at 0 (unless nobody is eligible).
        begun = counted or time.monotonic() - started > 10.0
        still = still + 1 if counted == last and begun else 0
        last = counted
        if still >= 2 and time.monotonic() - checked_at >= 2.0:
            checked_at = time.monotonic()
            cpu = cpu_times(procs.everyone())
            p = await campaign_progress(pool, campaign_id)
            if p.complete:
                return stops, cpu
        if time.monotonic() > deadline:
            raise TimeoutError(f"campaign {campaign_id} did not finish in {opts.timeout_s} s")
        await asyncio.sleep(0.5)


async def _text_stop(
    infra: bootstrap.Infra, sim: SimProcess, brand_id: int, campaign_id: int, n: int
) -> dict[int, float]:
    """STOP from `n` consenting subscribers whose message has not gone yet (the highest ids
    go last in every partition). Returns subscriber id → when the STOP was texted."""
    rows = await measure.unsent_subscribers(infra.pool, brand_id, campaign_id, n)
    stops: dict[int, float] = {}
    async with httpx.AsyncClient() as client:
        for r in rows:
            for _ in range(50):
                stops[r.id] = time.time()
                resp = await client.post(
                    f"{sim.url}/handsets/{r.phone}/reply", json={"to": SENDER, "body": "STOP"}
                )
                # The network learns the number's inbound webhook from its first send
                # request, which may still be on its way (the campaign's first call is stamped
                # just before it): until then the handset's STOP has nowhere to go.
                if resp.status_code != 404:
                    break
                await asyncio.sleep(0.05)
            if resp.status_code != 200 or resp.json().get("webhook_status") != 200:
                print(f"bench: STOP from {r.phone} not taken: {resp.text}", file=sys.stderr)
    return stops


async def _quiet_network(sim: SimProcess, within_s: float = 30.0) -> dict[str, Any]:
    """The simulator's counts once no receipt is waiting or being posted (at most
    `within_s` later; a receipt still pending then shows in the counts it is missing from)."""
    deadline = time.monotonic() + within_s
    while True:
        stats = await asyncio.to_thread(sim.stats)
        if stats["receipts_pending"] == 0 or time.monotonic() > deadline:
            return stats
        await asyncio.sleep(0.2)


def _worker_log_errors(root: Path, n: int) -> int:
    """How many ERROR and CRITICAL records the workers logged; the last few to stderr,
    so a run that lost something says what."""
    lines = [
        line
        for i in range(n)
        for line in (root / f"worker{i}.log").read_text(errors="replace").splitlines()
        if " ERROR " in line or " CRITICAL " in line
    ]
    for line in lines[-10:]:
        print(f"bench: worker log: {line[:300]}", file=sys.stderr)
    return len(lines)


async def _print_sql_top(pool: Pool, n: int) -> None:
    """Where Postgres' time went during the campaign (pg_stat_statements)."""
    for r in await measure.top_statements(pool, n):
        print(
            f"{r.total_exec_time:9.0f} ms {r.calls:7d} calls {r.rows:8d} rows"
            f" {float(r.wal_bytes) / 1e6:8.1f} MB WAL {r.wal_fpi:7d} FPI  {r.query}",
            file=sys.stderr,
        )


async def _optout_report(pool: Pool, campaign_id: int, stops: dict[int, float]) -> dict[str, Any]:
    if not stops:
        return {"optouts": 0}
    rows = await measure.optout_timings(pool, list(stops), campaign_id)
    blocked_in: list[float] = []
    sent_late = 0
    for r in rows:
        texted = datetime.fromtimestamp(stops[r.subscriber_id], UTC)
        if r.opted_out_at is not None:
            blocked_in.append((r.opted_out_at - texted).total_seconds())
        if r.sent_at is not None and (r.sent_at - texted).total_seconds() > 1.0:
            sent_late += 1
    return {
        "optouts": len(stops),
        "optouts_recorded": len(blocked_in),
        "optout_block_max_s": round(max(blocked_in), 3) if blocked_in else None,
        "optout_sent_after_1s": sent_late,
    }


def print_report(r: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(r))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"clarion bench — {r['recipients']:,} recipients", show_header=False)
    for k, v in r.items():
        table.add_row(k, json.dumps(v) if isinstance(v, dict | list) else str(v))
    Console().print(table)
