"""Campaign progress per stage, read from Postgres (the record of truth, not worker memory)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from rich.table import Table

from clarion.pipeline.plan import PlanRow, SendPlan
from clarion.pipeline.send import CARRIER_DAILY_CAP, PAUSED
from clarion.store.campaigns import campaign_report
from clarion.store.db import Pool

_HANDED_OVER = ("accepted", "sent", "delivered", "undelivered")
_FINAL = ("delivered", "undelivered", "failed", "expired", "suppressed")


_LONG_WAITS = frozenset({"quiet_hours_deferred", CARRIER_DAILY_CAP, PAUSED})


@dataclass(frozen=True)
class Progress:
    audience: int  # recipients the audience resolved (every subscriber with a phone)
    audience_done: bool
    persisted: int  # rendered (or failed to render) and stored
    handed_over: int  # accepted by the provider
    final: int  # in a terminal status
    carrier_counted: int  # final outcomes the carrier stage has tallied
    by_status: dict[str, int]
    errors: dict[str, int]
    carriers: list[dict[str, Any]]
    suppressed_by_reason: dict[str, int]
    deferred_by_reason: dict[str, int]
    receipted: int = 0  # SMS outcomes the carrier stage is to count

    @property
    def suppressed(self) -> int:
        """Recipients the compliance gate dropped (no consent, opted out, caps, expired)."""
        return sum(self.suppressed_by_reason.values())

    @property
    def deferred(self) -> int:
        return self.by_status.get("deferred", 0)

    @property
    def unknown(self) -> int:
        """Messages whose provider call a crash cut short (not repeatable): they wait for the
        provider's receipts to say what became of them."""
        return self.by_status.get("unknown", 0)

    @property
    def eligible(self) -> int:
        return self.audience - self.suppressed

    @property
    def delivered(self) -> int:
        return self.by_status.get("delivered", 0)

    @property
    def failed(self) -> int:
        s = self.by_status
        return s.get("failed", 0) + s.get("undelivered", 0)

    @property
    def waiting_long(self) -> int:
        """Deferred to a later moment (quiet hours, a spent daily cap, a pause), as opposed to
        the seconds a lane wait, a retry or the subscriber's sequence takes."""
        return sum(n for r, n in self.deferred_by_reason.items() if r in _LONG_WAITS)

    @property
    def complete(self) -> bool:
        """Every recipient settled (final, or deferred to a later moment) and counted."""
        return (
            self.audience_done
            and self.final + self.waiting_long == self.audience
            and self.carrier_counted >= self.receipted
        )


async def campaign_progress(pool: Pool, campaign_id: int) -> Progress:
    r = await campaign_report(pool, campaign_id)
    s: dict[str, int] = r["by_status"]
    return Progress(
        audience=r["campaign"]["audience_count"],
        audience_done=r["campaign"]["audience_done"],
        persisted=r["persisted"],
        handed_over=sum(s.get(k, 0) for k in _HANDED_OVER),
        final=sum(s.get(k, 0) for k in _FINAL),
        carrier_counted=sum(c["delivered"] + c["undelivered"] + c["failed"] for c in r["carriers"]),
        by_status=s,
        errors=r["errors"],
        carriers=r["carriers"],
        suppressed_by_reason=r["suppressed_by_reason"],
        deferred_by_reason=r["deferred_by_reason"],
        receipted=r["receipted"],
    )


def _n(x: Any) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:,.1f}"
    if isinstance(x, int):
        return f"{x:,}"
    if isinstance(x, datetime):
        return x.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return str(x)


def plan_tables(plan: SendPlan) -> list[Table]:
    """The send plan as tables for the terminal."""
    summary = Table(title=f"Send plan for campaign {plan.campaign_id}", show_header=False)
    summary.add_column("what")
    summary.add_column("value", justify="right")
    rows: list[tuple[str, Any]] = [
        ("planned at", plan.computed_at),
        ("audience", plan.audience),
        ("eligible", plan.eligible),
        ("sent at once", plan.send_now),
        ("deferred for quiet hours", plan.deferred),
        ("held over by daily caps", plan.capped),
        ("will expire (quiet hours, caps)", plan.expire_in_quiet_hours + plan.expire_after_caps),
        ("cost (segments)", plan.segments),
        ("first send", plan.first_send_at),
        ("estimated finish", plan.finish_at),
        ("estimated duration (s)", plan.duration_s),
        ("bottleneck", plan.bottleneck),
    ]
    rows += [(f"excluded: {reason}", n) for reason, n in sorted(plan.excluded.items())]
    rows += [(f"carrier: {name}", n) for name, n in sorted(plan.carriers.items())]
    for what, value in rows:
        summary.add_row(what, _n(value))
    tables = [summary]
    if plan.deferred_by_hour:
        hours = Table(title="Quiet hours: when the deferred go")
        hours.add_column("from (UTC hour)")
        hours.add_column("recipients", justify="right")
        for h in plan.deferred_by_hour:
            hours.add_row(_n(h.at), _n(h.count))
        tables.append(hours)
    lanes = Table(title="Lanes (busiest first)")
    for col in ("lane", "recipients", "tokens", "rate/s", "per day", "busy (s)"):
        lanes.add_column(col, justify="left" if col == "lane" else "right")
    for lane in plan.lanes:
        lanes.add_row(
            f"{lane.kind}:{lane.key}", _n(lane.recipients), _n(lane.tokens),
            _n(lane.rate_per_s), _n(lane.per_day), _n(lane.busy_s),
        )  # fmt: skip
    tables.append(lanes)
    if plan.caps:
        caps = Table(title="Daily caps that will be hit")
        for col in ("lane", "per day", "left today", "recipients", "held over", "resume", "expire"):
            caps.add_column(col, justify="left" if col == "lane" else "right")
        for c in plan.caps:
            caps.add_row(
                f"{c.kind}:{c.key}", _n(c.per_day), _n(c.remaining_today), _n(c.recipients),
                _n(c.left_over), _n(c.resumes_at), _n(c.expire),
            )  # fmt: skip
        tables.append(caps)
    return tables


def plan_vs_actual_table(rows: Sequence[PlanRow]) -> Table:
    table = Table(title="Plan versus actual")
    for col in ("", "planned", "actual"):
        table.add_column(col, justify="left" if not col else "right")
    for r in rows:
        table.add_row(r.metric, _n(r.planned), _n(r.actual))
    return table
