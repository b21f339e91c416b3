"""What an operator watches: alerts, and delivery per carrier."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer

from clarion import bootstrap, service
from clarion.cli._app import app, run_async
from clarion.config import Settings
from clarion.domain.monitoring import AlertRow, CarrierDelivery


@app.command("alerts")
def alerts(
    brand: Annotated[int | None, typer.Option(help="Only this brand's alerts.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Cleared alerts too.")] = False,
) -> None:
    """Alerts an operator should see (a carrier's delivery rate below the threshold, …)."""

    async def go() -> list[AlertRow]:
        async with bootstrap.infrastructure(Settings.from_env()) as infra:
            return await service.monitoring.alerts(infra, brand_id=brand, include_cleared=all_)

    rows = run_async(go())
    for a in rows:
        state = f"cleared {a.cleared_at:%Y-%m-%d %H:%M}" if a.cleared_at else "OPEN"
        when = f"{a.raised_at:%Y-%m-%d %H:%M}"
        print(f"{when} brand {a.brand_id} {a.kind} {state}: {a.message}")
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

    async def go() -> list[CarrierDelivery]:
        async with bootstrap.infrastructure(Settings.from_env()) as infra:
            return await service.monitoring.carriers(
                infra, brand_id, minutes=minutes, now=datetime.now(UTC)
            )

    for r in run_async(go()):
        rate = "-" if r.delivery_rate is None else f"{r.delivery_rate:.1%}"
        latency = "-" if r.mean_latency_s is None else f"{r.mean_latency_s:.2f} s"
        top = ", ".join(f"{code}×{n}" for code, n in list(r.errors.items())[:3]) or "-"
        print(f"{r.carrier:<12} delivered {r.delivered:>8} failed {r.failed:>6} "
              f"rate {rate:>6} latency {latency:>8} errors {top}")  # fmt: skip
