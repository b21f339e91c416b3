"""Commands that run Clarion's processes: `run`, `worker`, `sim`, `migrate`, and the
harness's `demo` and `bench`."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from clarion import bootstrap, service
from clarion.cli._app import app, err, fail, run_async
from clarion.config import Settings
from clarion.domain.clock import SystemClock
from clarion.errors import ClarionError


def _server_gc() -> None:
    """Garbage collection for a long-running process that moves batches: what start-up
    imported is frozen (never scanned again), and collections run after 50,000 new objects
    instead of 700. Every batch allocates thousands of short-lived records that hold no
    cycles, so with the defaults the collector ran several times per batch and rescanned
    the whole heap often (about 6 % of a worker's time, seen as msgspec's decode). The price:
    what only the collector frees (a reference cycle) waits long, so the hot paths must not
    make cycles (`clarion.httpclient` cuts httpx's)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


def _logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


async def _until_signalled() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


@app.command()
def demo(
    recipients: Annotated[int, typer.Option(help="Synthetic subscribers to seed.")] = 10_000,
    json_out: Annotated[
        bool, typer.Option("--json", help="Print one JSON line at the end.")
    ] = False,
    data_dir: Annotated[
        Path | None, typer.Option(help="Keep the demo's data here (default: a throwaway dir).")
    ] = None,
    failure_rate: Annotated[float, typer.Option(help="Simulated delivery failure rate.")] = 0.02,
    at: Annotated[
        datetime | None,
        typer.Option(help="Send as if it were this UTC time (quiet hours); default: now."),
    ] = None,
) -> None:
    """Seed a demo brand, send it a campaign through every stage, and report."""
    from clarion.harness.demo import run_demo

    _logging(False)
    when = at.replace(tzinfo=UTC) if at is not None and at.tzinfo is None else at
    run_async(
        run_demo(
            recipients, as_json=json_out, data_dir=data_dir, failure_rate=failure_rate, at=when
        )
    )


@app.command()
def bench(
    recipients: Annotated[int, typer.Option(help="Subscribers to seed and send to.")] = 100_000,
    workers: Annotated[
        int,
        typer.Option(
            help="Worker processes: one runs every stage; more are split between the send "
            "side (audience, personalize, send) and the receipts side (aggregate, carrier, "
            "inbound, transactional), as deploy/ runs them."
        ),
    ] = 1,
    every_stage: Annotated[
        bool, typer.Option(help="Each of the --workers processes runs every stage instead.")
    ] = False,
    roles: Annotated[
        str | None,
        typer.Option(
            help="One worker process per ';'-separated group of stages, e.g. "
            "'audience,personalize;send;aggregate,carrier,inbound,transactional' "
            "(instead of --workers)."
        ),
    ] = None,
    lane_rate: Annotated[
        float, typer.Option(help="Limit of every lane (provider, sender, carrier), msg/s.")
    ] = 100_000.0,
    optouts: Annotated[int, typer.Option(help="Subscribers who text STOP mid-campaign.")] = 20,
    sql_top: Annotated[
        int,
        typer.Option(
            help="Print the N statements Postgres spent most time on, with their WAL (stderr)."
        ),
    ] = 0,
    first_campaign: Annotated[
        bool,
        typer.Option(help="Carriers not yet known: the send stage looks each number up."),
    ] = False,
    failure_rate: Annotated[float, typer.Option(help="Simulated delivery failure rate.")] = 0.02,
    at: Annotated[
        datetime | None,
        typer.Option(
            help="The UTC time the compliance gate sees (default: the next 18:00 UTC on a"
            " weekday that is no US federal holiday)."
        ),
    ] = None,
    send_side_nice: Annotated[
        int,
        typer.Option(
            help="CPU priority (nice) of the processes that do not fold receipts, when others "
            "do: the receipts side finishes what was handed over first. 0: equal priority."
        ),
    ] = 10,
    segment: Annotated[
        bool,
        typer.Option(
            help="Send to a segment that takes every subscriber (resolved at the launch, in"
            " the measured time) instead of the whole list: what targeting costs."
        ),
    ] = False,
    links: Annotated[
        str,
        typer.Option(
            help="none: the body has no link; on: it has one, tracked (a short link per"
            " recipient); off: it has one, sent as it is. What link tracking costs."
        ),
    ] = "none",
    dead_webhook: Annotated[
        bool,
        typer.Option(
            help="The brand has a webhook endpoint for every event that never answers:"
            " what a dead endpoint costs."
        ),
    ] = False,
    watch: Annotated[
        bool,
        typer.Option(
            help="A marketer watches the campaign's page in the web UI while it sends (live"
            " figures every 5 s, the report every minute): what watching costs."
        ),
    ] = False,
    recs: Annotated[
        bool,
        typer.Option(
            help="The subscribers have shop histories and a trained recommendations model, and"
            " the body shows each one's first recommended product and its link (tracked unless"
            " --links off): what recommendations cost."
        ),
    ] = False,
    json_out: Annotated[
        bool, typer.Option("--json", help="Print the report as one JSON line (last line).")
    ] = False,
    keep: Annotated[
        Path | None,
        typer.Option(
            help="Keep the run's data (Postgres, worker and simulator logs) in this directory "
            "instead of a temporary one that is removed."
        ),
    ] = None,
) -> None:
    """Send one SMS campaign through every stage with the simulator in the loop, and
    measure it: throughput, first call, per-stage batch latency, memory, CPU, opt-outs."""
    from clarion.harness.bench import BenchOptions, print_report, run_bench

    _logging(False)
    when = at.replace(tzinfo=UTC) if at is not None and at.tzinfo is None else at
    if workers < 1 or recipients < 1:
        raise fail("--workers and --recipients must be at least 1")
    if links not in ("none", "on", "off"):
        raise fail("--links is none, on or off")
    groups = [[s.strip() for s in g.split(",") if s.strip()] for g in (roles or "").split(";")]
    groups = [g for g in groups if g]
    missing = set(bootstrap.STAGES) - {s for g in groups for s in g}
    unknown = {s for g in groups for s in g} - set(bootstrap.STAGES)
    if groups and (missing or unknown):
        err.print(
            f"[red]error:[/red] --roles must name every stage once: missing {sorted(missing)},"
            f" unknown {sorted(unknown)}; stages: {list(bootstrap.STAGES)}"
        )
        raise typer.Exit(64)
    opts = BenchOptions(
        roles=groups, recipients=recipients, workers=workers, every_stage=every_stage,
        lane_rate=lane_rate, optouts=optouts,
        failure_rate=failure_rate, at=when, known_carriers=not first_campaign,
        sql_top=sql_top, data_dir=keep, send_side_nice=send_side_nice, segment=segment,
        links=links, dead_webhook=dead_webhook, recs=recs, watch=watch,
    )  # fmt: skip
    print_report(run_async(run_bench(opts)), json_out)


@app.command()
def sim(
    host: str = "127.0.0.1",
    port: int = 9090,
    secret: Annotated[
        str | None,
        typer.Option(
            envvar="CLARION_SIM_SECRET",
            help="Signs the webhooks (default: the install's own, in CLARION_DATA_DIR/secrets).",
        ),
    ] = None,
    failure_rate: float = 0.02,
    latency_scale: Annotated[float, typer.Option(help="Multiply carrier latencies.")] = 1.0,
    seed: int | None = None,
    max_mps: Annotated[
        float | None, typer.Option(help="Account throughput; beyond it, HTTP 429.")
    ] = None,
    receipt_loss: Annotated[
        float, typer.Option(help="Share of receipts never reported (for reconciliation).")
    ] = 0.0,
    carrier_failure: Annotated[
        list[str] | None,
        typer.Option(help="A carrier's own failure rate, e.g. 'AT&T=0.5' (repeatable)."),
    ] = None,
    twilio_account_sid: Annotated[
        str | None,
        typer.Option(
            envvar="CLARION_SIM_TWILIO_ACCOUNT_SID",
            help="The Twilio-compatible API's account SID (default: a fixed test SID).",
        ),
    ] = None,
    twilio_auth_token: Annotated[
        str | None,
        typer.Option(
            envvar="CLARION_SIM_TWILIO_AUTH_TOKEN",
            help="The Twilio-compatible API's auth token (default: the secret).",
        ),
    ] = None,
    smpp_port: Annotated[
        int | None, typer.Option(help="Also serve SMPP 3.4 (an SMSC) on this port.")
    ] = None,
    smpp_system_id: Annotated[
        str, typer.Option(envvar="CLARION_SIM_SMPP_SYSTEM_ID", help="The SMSC's account.")
    ] = "clarion",
    smpp_password: Annotated[
        str, typer.Option(envvar="CLARION_SIM_SMPP_PASSWORD", help="Its password (≤ 8 chars).")
    ] = "clarion",
) -> None:
    """Run the carrier-network simulator as its own process."""
    import uvicorn

    from clarion.config import checked_secret, file_secret
    from clarion.sim.app import SimConfig, create_app

    try:
        secret = (
            checked_secret("CLARION_SIM_SECRET", secret)
            if secret is not None
            else file_secret(Settings.from_env().data_dir / "secrets" / "sim")
        )
    except ClarionError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(exc.exit_code) from None
    config = SimConfig(
        secret=secret, failure_rate=failure_rate, latency_scale=latency_scale, seed=seed,
        max_mps=max_mps, twilio_auth_token=twilio_auth_token or "",
        receipt_loss=receipt_loss,
        carrier_failure={
            name: float(rate)
            for name, _, rate in (item.rpartition("=") for item in carrier_failure or [])
        },
    )  # fmt: skip
    if twilio_account_sid:
        config.twilio_account_sid = twilio_account_sid
    config.smpp_port, config.smpp_host = smpp_port, host
    config.smpp_system_id, config.smpp_password = smpp_system_id, smpp_password
    _server_gc()
    uvicorn.run(
        create_app(config), host=host, port=port, log_level="warning", loop="uvloop",
        http="httptools",
    )  # fmt: skip


@app.command()
def migrate() -> None:
    """Apply database migrations (also done at every start)."""

    async def go() -> None:
        async with bootstrap.servers(Settings.from_env()) as (database_url, _):
            applied = await service.admin.migrate(database_url)
            print(f"applied: {', '.join(applied) if applied else 'nothing (up to date)'}")

    run_async(go())


def _serve(
    stages: list[str], http: bool, verbose: bool, *, port: int = 8080, clock_offset_s: float = 0.0
) -> None:
    _logging(verbose)
    _server_gc()

    async def go() -> None:
        settings = Settings.from_env(http_port=port)
        clock = SystemClock(offset_s=clock_offset_s)
        async with bootstrap.infrastructure(settings) as infra:
            first, *others = await bootstrap.build_providers(infra)
            try:
                async with bootstrap.running(
                    infra, first, stages=stages, http=http, more_providers=others, clock=clock
                ):
                    names = ", ".join(p.name for p in (first, *others))
                    err.print(
                        f"clarion: running {', '.join(stages)}" + (" + HTTP" if http else "")
                        + f"; providers: {names}"
                    )  # fmt: skip
                    await _until_signalled()
            finally:
                for p in (first, *others):
                    await p.aclose()

    run_async(go())


@app.command()
def run(
    port: Annotated[
        int, typer.Option(envvar="CLARION_HTTP_PORT", help="HTTP port (API and webhooks).")
    ] = 8080,
    verbose: bool = False,
) -> None:
    """Run the HTTP API and every stage in this process until Ctrl-C."""

    _serve(list(bootstrap.ROLES), True, verbose, port=port)


@app.command()
def worker(
    stages: Annotated[str, typer.Option(help="Comma-separated stages to run.")] = "all",
    http: Annotated[bool, typer.Option(help="Also serve the webhooks.")] = False,
    port: Annotated[
        int, typer.Option(envvar="CLARION_HTTP_PORT", help="HTTP port when --http.")
    ] = 8080,
    clock_offset: Annotated[
        float,
        typer.Option(
            help="Run the compliance clock this many seconds ahead of real time, as if it "
            "were later (benchmarks and rehearsals at any hour; never in production)."
        ),
    ] = 0.0,
    verbose: bool = False,
) -> None:
    """Run some stages as a worker process (several processes share the work)."""

    chosen = list(bootstrap.ROLES) if stages == "all" else [s.strip() for s in stages.split(",")]
    unknown = [s for s in chosen if s not in bootstrap.ROLES]
    if unknown:
        raise fail(f"unknown stage(s) {unknown}; choose from {list(bootstrap.ROLES)}")
    _serve(chosen, http, verbose, port=port, clock_offset_s=clock_offset)
