"""The `clarion` command. Thin: parse, call, map errors to a message and an exit code."""

from __future__ import annotations

import asyncio
import gc
import itertools
import logging
import signal
import sys
from collections.abc import Coroutine, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from clarion import bootstrap
from clarion.config import Settings
from clarion.errors import ClarionError, InvalidInput

app = typer.Typer(help="Clarion: self-hosted SMS and email marketing.", no_args_is_help=True)
brand_app = typer.Typer(help="Brands.", no_args_is_help=True)
subscribers_app = typer.Typer(help="Subscribers and their consent.", no_args_is_help=True)
campaign_app = typer.Typer(help="Campaigns.", no_args_is_help=True)
app.add_typer(brand_app, name="brand")
app.add_typer(subscribers_app, name="subscribers")
app.add_typer(campaign_app, name="campaign")
err = Console(stderr=True)
T = TypeVar("T")


def _run(coro: Coroutine[Any, Any, T]) -> T:
    try:
        import uvloop

        return uvloop.run(coro)
    except ClarionError as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}")  # it may quote a user's input
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        err.print("interrupted; servers stopped")
        raise typer.Exit(130) from None


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
    _run(
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
        err.print("[red]error:[/red] --workers and --recipients must be at least 1")
        raise typer.Exit(64)
    groups = [[s.strip() for s in g.split(",") if s.strip()] for g in (roles or "").split(";")]
    groups = [g for g in groups if g]
    from clarion.runtime.stages import STAGES

    missing = set(STAGES) - {s for g in groups for s in g}
    unknown = {s for g in groups for s in g} - set(STAGES)
    if groups and (missing or unknown):
        err.print(
            f"[red]error:[/red] --roles must name every stage once: missing {sorted(missing)},"
            f" unknown {sorted(unknown)}; stages: {list(STAGES)}"
        )
        raise typer.Exit(64)
    opts = BenchOptions(
        roles=groups, recipients=recipients, workers=workers, every_stage=every_stage,
        lane_rate=lane_rate, optouts=optouts,
        failure_rate=failure_rate, at=when, known_carriers=not first_campaign,
        sql_top=sql_top, data_dir=keep, send_side_nice=send_side_nice,
    )  # fmt: skip
    print_report(_run(run_bench(opts)), json_out)


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
            from clarion.store.db import migrate as apply

            applied = await apply(database_url)
            print(f"applied: {', '.join(applied) if applied else 'nothing (up to date)'}")

    _run(go())


def _serve(
    stages: list[str], http: bool, verbose: bool, *, port: int = 8080, clock_offset_s: float = 0.0
) -> None:
    _logging(verbose)
    _server_gc()

    async def go() -> None:
        settings = Settings.from_env(http_port=port)
        clock = None
        if clock_offset_s:
            from clarion.runtime.stages import now

            ahead = timedelta(seconds=clock_offset_s)
            clock = lambda: now() + ahead  # noqa: E731
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

    _run(go())


@app.command()
def run(
    port: Annotated[
        int, typer.Option(envvar="CLARION_HTTP_PORT", help="HTTP port (API and webhooks).")
    ] = 8080,
    verbose: bool = False,
) -> None:
    """Run the HTTP API and every stage in this process until Ctrl-C."""
    from clarion.runtime.stages import STAGES

    _serve(list(STAGES), True, verbose, port=port)


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
    from clarion.runtime.stages import STAGES

    chosen = list(STAGES) if stages == "all" else [s.strip() for s in stages.split(",")]
    unknown = [s for s in chosen if s not in STAGES]
    if unknown:
        err.print(f"[red]error:[/red] unknown stage(s) {unknown}; choose from {list(STAGES)}")
        raise typer.Exit(64)
    _serve(chosen, http, verbose, port=port, clock_offset_s=clock_offset)


@brand_app.command("create")
def brand_create(
    slug: str,
    name: str,
    sender: Annotated[str, typer.Argument(help="A phone number or a short code.")],
    help_text: str = "",
    max_segments: Annotated[
        int, typer.Option(help="The most parts one of its SMS may have.", min=1, max=10)
    ] = 10,
) -> None:
    """Create a brand; prints its id."""
    from clarion.store import brands

    async def go() -> None:
        async with bootstrap.infrastructure(Settings.from_env()) as infra:
            print(
                await brands.create_brand(
                    infra.pool, slug=slug, name=name, sender=sender, help_text=help_text,
                    max_segments=max_segments,
                )
            )  # fmt: skip

    _run(go())


provider_app = typer.Typer(help="Provider accounts (secrets as env:VAR references).")
app.add_typer(provider_app, name="provider")


@provider_app.command("add")
def provider_add(
    name: str,
    kind: str,
    setting: Annotated[
        list[str] | None,
        typer.Option("--set", help="key=value; secrets as env:VARIABLE (repeatable)."),
    ] = None,
) -> None:
    """Add (or replace) a provider account. Its webhooks are /webhooks/NAME/status|inbound."""
    from clarion.store import accounts

    settings = dict(item.partition("=")[::2] for item in setting or [])

    async def go() -> None:
        async with bootstrap.infrastructure(Settings.from_env()) as infra:
            await accounts.add_account(infra.pool, name, kind, settings)
            print(f"provider account {name} ({kind}) saved")

    _run(go())


@provider_app.command("list")
def provider_list() -> None:
    """Provider accounts and their settings (references, never secret values)."""
    from clarion.store import accounts

    async def go() -> list[dict[str, Any]]:
        async with bootstrap.infrastructure(Settings.from_env()) as infra:
            return await accounts.list_accounts(infra.pool)

    for a in _run(go()):
        settings = " ".join(f"{k}={v}" for k, v in sorted(a["settings"].items()))
        print(f"{a['name']:<16} {a['kind']:<8} {settings}")


@brand_app.command("route")
def brand_route(brand_id: int, channel: str, providers: str) -> None:
    """Route a brand's channel (sms) over provider accounts, most preferred first
    ("primary,backup"): traffic moves to the next when one's circuit opens."""
    from clarion.store import lanes

    names = [n.strip() for n in providers.split(",") if n.strip()]

    async def go() -> None:
        async with bootstrap.infrastructure(Settings.from_env()) as infra:
            await lanes.set_route(infra.pool, brand_id, channel, names)
            print(f"brand {brand_id} {channel}: {' → '.join(names)}")

    _run(go())


@brand_app.command("api-key")
def brand_api_key(
    brand_id: int, name: Annotated[str, typer.Option(help="What the key is for.")] = "default"
) -> None:
    """Create an API key for a brand (`Authorization: Bearer <key>` on /v1); printed once."""
    from clarion.store import api_keys, brands

    async def go() -> None:
        async with bootstrap.infrastructure(Settings.from_env()) as infra:
            await brands.get_brand(infra.pool, brand_id)
            print(await api_keys.create_key(infra.pool, brand_id, name))

    _run(go())


_IMPORT_BATCH = 10_000  # subscribers per COPY: memory stays flat in the file's size


def _file_chunks(path: Path, size: int = 64 * 1024) -> Iterator[bytes]:
    """The file's bytes; a file that cannot be read is a `ClarionError`, not a traceback."""
    try:
        with path.open("rb") as f:
            while chunk := f.read(size):
                yield chunk
    except OSError as exc:
        raise ClarionError(f"cannot read {path}: {exc.strerror or exc}") from None


@subscribers_app.command("import")
def subscribers_import(
    brand_id: int,
    csv_path: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    source: Annotated[str, typer.Option(help="Where consent was collected.")] = "csv-import",
    encoding: Annotated[
        str,
        typer.Option(
            help="The file's encoding (cp1252, latin-1, utf-16…). auto: what a BOM says"
            " (UTF-8, UTF-16), else UTF-8, or cp1252 when the file does not start as UTF-8."
        ),
    ] = "auto",
) -> None:
    """Import subscribers from a CSV (phone, email, first_name, last_name, timezone,
    sms_consent, and any other column as an attribute). Bad rows are reported by number
    (the header is row 1) and skipped; a phone or email seen in an earlier row is one."""
    from clarion.domain.csv_import import read_subscribers
    from clarion.store import brands

    def fell_back(name: str) -> None:
        err.print(
            f"[yellow]note:[/yellow] the file does not start as UTF-8; reading it as {name}"
            " (state its encoding with --encoding)",
            soft_wrap=True,
        )

    async def go() -> tuple[int, int]:
        outcomes = read_subscribers(
            _file_chunks(csv_path), encoding=encoding, on_fallback=fell_back
        )
        # reads the header: a file that cannot be imported fails before any server starts
        first = list(itertools.islice(outcomes, 1))
        added = rejected = 0
        batch = []
        async with bootstrap.infrastructure(Settings.from_env()) as infra:
            # the file is read in this loop, between COPYs: nothing else runs meanwhile
            for outcome in itertools.chain(first, outcomes):
                if isinstance(outcome, InvalidInput):
                    rejected += 1
                    print(f"skipped {outcome}", file=sys.stderr)  # plain: no markup in it
                    continue
                batch.append(outcome)
                if len(batch) == _IMPORT_BATCH:
                    added += await brands.import_subscribers(
                        infra.pool, brand_id, batch, source=source, analyze=False
                    )
                    batch = []
            if batch:
                added += await brands.import_subscribers(
                    infra.pool, brand_id, batch, source=source, analyze=False
                )
            await brands.analyze_subscribers(infra.pool)
        return added, rejected

    added, rejected = _run(go())
    print(f"imported {added} new subscribers; {rejected} rows rejected")


@campaign_app.command("create")
def campaign_create(
    brand_id: int,
    name: str,
    body: str,
    channel: Annotated[str, typer.Option(help="sms, email or both.")] = "sms",
    subject: Annotated[str | None, typer.Option(help="Email subject (a template).")] = None,
    email_body: Annotated[
        str | None, typer.Option(help="Email text (a template; default: BODY).")
    ] = None,
) -> None:
    """Create a draft campaign (texts are Jinja2 templates); prints its id. By SMS, email or
    both: each subscriber gets it on each channel they consented to."""
    from clarion.pipeline.personalize import check_template
    from clarion.store import campaigns

    async def go() -> None:
        for template in (body, subject, email_body):
            if template is not None:
                check_template(template)
        async with bootstrap.infrastructure(Settings.from_env()) as infra:
            print(
                await campaigns.create_campaign(
                    infra.pool,
                    brand_id=brand_id,
                    name=name,
                    body=body,
                    channel=channel,
                    subject=subject,
                    email_body=email_body,
                )
            )

    _run(go())


@campaign_app.command("launch")
def campaign_launch(campaign_id: int, relaunch: bool = False) -> None:
    """Launch a campaign (the workers of `clarion run` send it)."""

    async def go() -> None:
        async with bootstrap.infrastructure(Settings.from_env()) as infra:
            cmd = await bootstrap.launch(infra, campaign_id, relaunch=relaunch)
            print(f"launched campaign {campaign_id} (attempt {cmd.attempt})")

    _run(go())


def _campaign_command(verb: str, campaign_id: int) -> None:
    async def go() -> None:
        async with bootstrap.infrastructure(Settings.from_env()) as infra:
            result = await getattr(bootstrap, verb)(infra, campaign_id)
            extra = f" ({result} waiting messages cancelled)" if verb == "cancel" else ""
            print(f"campaign {campaign_id}: {verb} done{extra}")

    _run(go())


@campaign_app.command("pause")
def campaign_pause(campaign_id: int) -> None:
    """Pause a sending campaign: no new provider calls from the next batch on."""
    _campaign_command("pause", campaign_id)


@campaign_app.command("resume")
def campaign_resume(campaign_id: int) -> None:
    """Resume a paused campaign where it stopped."""
    _campaign_command("resume", campaign_id)


@campaign_app.command("cancel")
def campaign_cancel(campaign_id: int) -> None:
    """Cancel a campaign; every recipient not yet sent to is recorded as cancelled."""
    _campaign_command("cancel", campaign_id)


@campaign_app.command("validate")
def campaign_validate(campaign_id: int) -> None:
    """Check a campaign before launch: brand name, opt-out instructions, encoding, segments."""

    async def go() -> None:
        async with bootstrap.infrastructure(Settings.from_env()) as infra:
            check = await bootstrap.check_campaign(infra, campaign_id)
            print(f"sample: {check.sample}")
            print(check.describe())
            for problem in check.errors:
                err.print(f"[red]problem:[/red] {problem}")
            if check.errors:
                raise typer.Exit(65)

    _run(go())


@app.command("alerts")
def alerts(
    brand: Annotated[int | None, typer.Option(help="Only this brand's alerts.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Cleared alerts too.")] = False,
) -> None:
    """Alerts an operator should see (a carrier's delivery rate below the threshold, …)."""
    from clarion.store import monitoring

    async def go() -> list[dict[str, Any]]:
        async with bootstrap.infrastructure(Settings.from_env()) as infra:
            return await monitoring.list_alerts(infra.pool, brand_id=brand, open_only=not all_)

    rows = _run(go())
    for a in rows:
        state = f"cleared {a['cleared_at']:%Y-%m-%d %H:%M}" if a["cleared_at"] else "OPEN"
        when = f"{a['raised_at']:%Y-%m-%d %H:%M}"
        print(f"{when} brand {a['brand_id']} {a['kind']} {state}: {a['message']}")
    if not rows:
        print("no alerts")


@app.command("carriers")
def carriers(
    brand_id: int,
    minutes: Annotated[
        int, typer.Option(help="Over the last N minutes (at most 31 days).", min=1, max=44_640)
    ] = 60,
) -> None:
    """Delivery per carrier for a brand: outcomes, delivery rate, latency, error codes."""
    from datetime import timedelta

    from clarion.store import monitoring

    async def go() -> list[dict[str, Any]]:
        async with bootstrap.infrastructure(Settings.from_env()) as infra:
            since = datetime.now(UTC) - timedelta(minutes=minutes)
            return await monitoring.carrier_report(infra.pool, brand_id, since)

    for r in _run(go()):
        rate = "-" if r["delivery_rate"] is None else f"{r['delivery_rate']:.1%}"
        latency = "-" if r["mean_latency_s"] is None else f"{r['mean_latency_s']:.2f} s"
        top = ", ".join(f"{code}×{n}" for code, n in list(r["errors"].items())[:3]) or "-"
        print(f"{r['carrier']:<12} delivered {r['delivered']:>8} failed {r['failed']:>6} "
              f"rate {rate:>6} latency {latency:>8} errors {top}")  # fmt: skip


@app.command("consent-export")
def consent_export(
    brand_id: int,
    subscriber: Annotated[int | None, typer.Option(help="Only this subscriber.")] = None,
    fmt: Annotated[str, typer.Option("--format", help="csv or json")] = "csv",
) -> None:
    """Export the consent ledger (every opt-in and opt-out, with source and time) for audits."""
    from clarion.compliance.ledger import ledger_csv, ledger_json
    from clarion.store.compliance import consent_ledger

    if fmt not in ("csv", "json"):
        err.print("[red]error:[/red] --format must be csv or json")
        raise typer.Exit(64)

    async def go() -> list[dict[str, Any]]:
        async with bootstrap.infrastructure(Settings.from_env()) as infra:
            return await consent_ledger(infra.pool, brand_id, subscriber)

    rows = _run(go())
    sys.stdout.write(ledger_csv(rows) if fmt == "csv" else ledger_json(rows) + "\n")


@campaign_app.command("status")
def campaign_status(campaign_id: int) -> None:
    """Show a campaign's progress per stage, its counts by status, and its plan versus what
    happened (when a plan was computed)."""
    from clarion.pipeline.plan import plan_vs_actual
    from clarion.report import campaign_progress, plan_vs_actual_table
    from clarion.runtime import planning

    async def go() -> None:
        async with bootstrap.infrastructure(Settings.from_env()) as infra:
            p = await campaign_progress(infra.pool, campaign_id)
            print(
                f"audience {p.eligible} ({'done' if p.audience_done else 'resolving'}), "
                f"persisted {p.persisted}, handed over {p.handed_over}, final {p.final}"
            )
            for status, n in sorted(p.by_status.items()):
                print(f"  {status:<12} {n}")
            plan = await planning.stored_plan(infra.pool, campaign_id)
            if plan is not None:
                rows = plan_vs_actual(plan, await planning.actual(infra.pool, campaign_id))
                Console().print(plan_vs_actual_table(rows))

    _run(go())


@campaign_app.command("plan")
def campaign_plan(
    campaign_id: int,
    at: Annotated[
        datetime | None, typer.Option(help="Plan a launch at this UTC time (default: now).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the plan as JSON.")] = False,
) -> None:
    """Before launch: recipients per lane and carrier, quiet hours and when they go, daily
    caps that will be hit, cost in segments, and the estimated finish time."""
    import msgspec

    from clarion.report import plan_tables

    when = at.replace(tzinfo=UTC) if at is not None and at.tzinfo is None else at

    async def go() -> Any:
        async with bootstrap.infrastructure(Settings.from_env()) as infra:
            return await bootstrap.plan(infra, campaign_id, at=when)

    plan = _run(go())
    if as_json:
        sys.stdout.write(msgspec.json.encode(plan).decode() + "\n")
        return
    console = Console()
    for table in plan_tables(plan):
        console.print(table)


def main() -> None:
    try:
        app()
    except BrokenPipeError:  # pragma: no cover - `clarion … | head`
        sys.exit(0)
