"""`clarion demo`: seed a brand, start the simulator, send a campaign, report what happened."""

from __future__ import annotations

import asyncio
import json
import secrets
import shutil
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from clarion import bootstrap, service
from clarion.bus.embedded import free_port
from clarion.config import Settings
from clarion.domain.clock import SystemClock
from clarion.harness.seed import synthetic_subscribers
from clarion.service.progress import campaign_progress
from clarion.sim.process import SimProcess
from clarion.store import brands, campaigns

DEMO_BODY = (
    "{{ brand.name }}: Hi {{ first_name | default('there') }}, Black Friday starts now - "
    "40% off everything in {{ city | default('your city') }}. Reply STOP to opt out."
)
# The demo's A/B split: two variants with the shop's link; the simulator's people like the
# second's offer twice as much (`SHOPPERS`), and Clarion finds out from their clicks.
SHOP = "https://northwind.example/black-friday"
VARIANTS = [
    {"name": "40% off", "body": DEMO_BODY.replace(" Reply STOP", f" {SHOP} Reply STOP")},
    {"name": "Free gift", "body": (
        "{{ brand.name }}: Hi {{ first_name | default('there') }}, Black Friday: 40% off and a"
        f" free gift with every order today. {SHOP} Reply STOP to opt out.")},
]  # fmt: skip
SHOPPERS = {"click_rate": 0.08, "order_rate": 0.25, "boosts": {"free gift": 2.0}, "seed": 7}


async def run_demo(
    recipients: int,
    *,
    as_json: bool,
    data_dir: Path | None,
    failure_rate: float = 0.02,
    timeout_s: float = 600.0,
    at: datetime | None = None,
) -> dict[str, Any]:
    """Run the demo. `at` pins the time the compliance gate sees (quiet hours, caps); by
    default it is the real time, so a demo at night defers to the morning, as it must."""
    console = Console(stderr=as_json)
    throwaway = data_dir is None
    root = Path(tempfile.mkdtemp(prefix="clarion-demo-")) if data_dir is None else data_dir
    root.mkdir(parents=True, exist_ok=True)
    http_port = free_port()
    sim_secret = secrets.token_urlsafe(24)  # the run's own simulator: a secret of its own
    settings = replace(
        Settings.from_env(),
        data_dir=root,
        http_port=http_port,
        public_url=f"http://127.0.0.1:{http_port}",
        bus_namespace=f"demo{http_port}",
        sim_secret=sim_secret,
    )
    sim = SimProcess(secret=sim_secret, failure_rate=failure_rate, log_path=root / "sim.log")
    settings = replace(settings, sim_url=sim.url)
    try:
        with sim:
            async with bootstrap.infrastructure(settings) as infra:
                provider = bootstrap.build_provider(settings)
                # the pinned moment, running on from there
                clock = SystemClock() if at is None else SystemClock.starting_at(at)
                async with bootstrap.running(infra, provider, clock=clock):
                    return await _campaign(infra, sim, console, recipients, as_json, timeout_s, at)
    finally:
        if throwaway:
            shutil.rmtree(root, ignore_errors=True)


async def _campaign(
    infra: bootstrap.Infra,
    sim: SimProcess,
    console: Console,
    recipients: int,
    as_json: bool,
    timeout_s: float,
    at: datetime | None,
) -> dict[str, Any]:
    pool = infra.pool
    with console.status(f"Seeding {recipients:,} subscribers…"):
        brand_id = await brands.create_brand(
            pool,
            slug=f"demo-{int(time.time() * 1000)}",
            name="Northwind",
            sender="+15125550100",
            help_text="Northwind: help at northwind.example/help. Msg&data rates may apply.",
        )
        subs = await asyncio.to_thread(synthetic_subscribers, recipients)
        await brands.import_subscribers(pool, brand_id, subs, source="demo-import")
        counts = await brands.count_subscribers(pool, brand_id)
        campaign_id = await service.campaigns.create(
            infra, brand_id=brand_id, name="Black Friday", body="", variants=VARIANTS,
            ab={"mode": "split"},
        )  # fmt: skip
        _, key = await service.keys.create(infra, brand_id, "demo shop", ["write"], rate_per_s=1e4)
        public = infra.settings.public_url
        pinned = at if at is None or at.tzinfo else at.replace(tzinfo=UTC)
        offset = 0.0 if pinned is None else (pinned - datetime.now(UTC)).total_seconds()
        await asyncio.to_thread(
            sim.shoppers,
            {**SHOPPERS, "events_url": f"{public}/v1/events", "api_key": key,
             "clock_offset_s": offset},
        )  # fmt: skip
    started = time.perf_counter()
    await service.campaigns.launch(infra, campaign_id, at=at)
    bars = Progress(
        TextColumn("{task.description:<12}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=as_json,
    )
    names = ("audience", "personalize", "send", "aggregate", "carrier")
    tasks = {n: bars.add_task(n, total=counts.total) for n in names}
    peak_rss = 0
    me = psutil.Process()
    with bars:
        while True:
            p = await campaign_progress(pool, campaign_id)
            peak_rss = max(peak_rss, me.memory_info().rss)
            for name, done in zip(
                names,
                (p.eligible, p.persisted, p.handed_over, p.final, p.carrier_counted),
                strict=True,
            ):
                bars.update(tasks[name], completed=done)
            if p.complete:
                break
            if time.perf_counter() - started > timeout_s:
                raise TimeoutError(f"campaign {campaign_id} did not finish in {timeout_s} s")
            await asyncio.sleep(0.25)
    duration_s = time.perf_counter() - started
    with console.status("The simulator's people click and buy…"):
        await _quiet(sim)
    earned = await service.campaigns.report(infra, campaign_id)
    c = await campaigns.get_campaign(pool, campaign_id)
    stats = await asyncio.to_thread(sim.stats)
    report = {
        "recipients": counts.total,
        "eligible": p.eligible,
        "sent": p.handed_over,
        "delivered": p.delivered,
        "failed": p.failed,
        "suppressed": counts.total - p.eligible,
        "suppressed_by_reason": {
            **p.suppressed_by_reason,
            **({"no_phone": counts.total - p.audience} if counts.total > p.audience else {}),
        },
        "deferred": p.deferred,
        "deferred_by_reason": p.deferred_by_reason,
        "duration_s": round(duration_s, 3),
        "throughput_mps": round(p.delivered / duration_s, 1) if duration_s else 0.0,
        "first_message_s": round((c.first_send_at - c.launched_at).total_seconds(), 3)
        if c.first_send_at and c.launched_at
        else None,
        "handset_messages": stats["handset_messages"],
        "peak_rss_mb": round(peak_rss / 2**20, 1),
        "errors": p.errors,
        "carriers": {
            r.carrier: {"delivered": r.delivered, "undelivered": r.undelivered, "failed": r.failed}
            for r in p.carriers
        },
        "variants": {
            v.name: {
                k: v.figures[k]
                for k in (
                    "delivered",
                    "unique_clicks",
                    "click_rate",
                    "orders",
                    "revenue",
                    "revenue_per_message",
                )
            }
            for v in earned.variants
        },
    }
    if as_json:
        print(json.dumps(report))
    else:
        _print_report(console, report)
    return report


async def _quiet(sim: SimProcess, within_s: float = 30.0) -> None:
    """Until the simulator's people stop clicking and buying (or `within_s`)."""
    deadline, last, still = time.monotonic() + within_s, None, 0
    while still < 12 and time.monotonic() < deadline:
        seen = await asyncio.to_thread(sim.shoppers)
        now = (seen.get("clicks"), seen.get("orders"))
        still = still + 1 if now == last else 0
        last = now
        await asyncio.sleep(0.25)


def _print_report(console: Console, r: dict[str, Any]) -> None:
    table = Table(title="Black Friday campaign — report", show_header=False)
    rows = [
        ("Subscribers", f"{r['recipients']:,}"),
        ("Eligible (SMS consent)", f"{r['eligible']:,}"),
        ("Not sent (suppressed)", f"{r['suppressed']:,}"),
        *((f"  … {reason}", f"{n:,}") for reason, n in r["suppressed_by_reason"].items()),
        ("Deferred (quiet hours)", f"{r['deferred']:,}"),
        *((f"  … {reason}", f"{n:,}") for reason, n in r["deferred_by_reason"].items()),
        ("Handed to provider", f"{r['sent']:,}"),
        ("Delivered", f"{r['delivered']:,}"),
        ("Failed / undelivered", f"{r['failed']:,}"),
        ("Messages on handsets (simulator)", f"{r['handset_messages']:,}"),
        ("Launch → last receipt", f"{r['duration_s']:.2f} s"),
        ("Throughput", f"{r['throughput_mps']:,.0f} messages/s"),
        (
            "Launch → first provider call",
            "—" if r["first_message_s"] is None else f"{r['first_message_s']:.2f} s",
        ),
        ("Peak memory (this process)", f"{r['peak_rss_mb']} MB"),
    ]
    for k, v in rows:
        table.add_row(k, v)
    console.print(table)
    if r["sent"] == 0 and r["deferred_by_reason"].get("quiet_hours_deferred"):
        console.print(
            "Every eligible subscriber is in quiet hours now (marketing texts go out only "
            "between 8 am and 9 pm their time): their messages wait in Postgres for the "
            "morning. To see them go, run it as if it were daytime in the US: "
            "clarion demo --at 2026-11-25T18:00"
        )
    if r["errors"]:
        console.print("Error codes: " + ", ".join(f"{k} × {v}" for k, v in r["errors"].items()))
    if r.get("variants"):
        _print_variants(console, r["variants"])
    carriers = Table(title="By carrier")
    for col in ("carrier", "delivered", "undelivered", "failed"):
        carriers.add_column(col)
    for name, n in r["carriers"].items():
        carriers.add_row(name, str(n["delivered"]), str(n["undelivered"]), str(n["failed"]))
    console.print(carriers)


def _print_variants(console: Console, variants: dict[str, dict[str, Any]]) -> None:
    table = Table(title="A/B split: what each variant earned (clicks, attributed orders)")
    for col in ("variant", "delivered", "clicked", "click rate", "orders", "revenue",
                "per message"):  # fmt: skip
        table.add_column(col)
    for name, v in variants.items():
        table.add_row(
            name, f"{v['delivered']:,}", f"{v['unique_clicks']:,}", f"{v['click_rate']:.1%}",
            f"{v['orders']:,}", f"${v['revenue']:,.2f}", f"${v['revenue_per_message']:.3f}",
        )  # fmt: skip
    console.print(table)
