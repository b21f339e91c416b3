"""The send plan and the plan-versus-actual report as tables for the terminal."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from rich.table import Table

from clarion.service import PlanRow, SendPlan


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
