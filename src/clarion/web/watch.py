"""A campaign's own page (`/campaigns/{id}`): watch it send, and see what it did.

The page is cheap to keep open while a campaign sends, whatever its size:
- its headline (`/campaigns/{id}/live`, polled every `LIVE_EVERY_S`) reads two rows by
  primary key — the campaign and its stored figures (`service.figures`) — and asks the
  figures' `Counter` to count them again when they are older than it allows (one count at a
  time per campaign, in the background, however many pages are open);
- the report (`/campaigns/{id}/report`: chart, funnel, failures, suppressed and deferred by
  reason, A/B test, models, plan versus actual) is the report use case's, which scans the
  campaign's messages: it is kept per campaign for `REPORT_FRESH_S` while the campaign sends
  (longer after, and `REPORT_COST_SHARE` times as long as it took to count), shared by every
  page open on it, counted by one request at a time, and polled every `REPORT_EVERY_S`.
Both stop polling once the campaign is settled (every recipient final or waiting for a later
moment), cancelled, or not launched."""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from starlette.responses import Response
from starlette.routing import Route

from clarion import service
from clarion.domain.rows import CampaignRow
from clarion.errors import InvalidInput
from clarion.web.common import Ctx, Web

LIVE_EVERY_S = 5
REPORT_EVERY_S = 60
REPORT_FRESH_S = 50.0  # while it sends: a report polled every minute is counted once
REPORT_FRESH_AFTER_S = 300.0  # settled: clicks and orders still come, slowly
# A report is kept at least this many times as long as it took to count (a million
# messages: ~10 s cold, so counted every few minutes, ~5 % of one core at most).
REPORT_COST_SHARE = 20
MAX_KEPT = 64  # campaigns whose report is kept
MINUTES_SHOWN = 120  # the per-minute table's rows (the chart has every minute)


def campaign_id_of(ctx: Ctx) -> int:
    """The path's campaign id; `InvalidInput` (the 400 page) for one that is not a number.
    (A literal path such as `/campaigns/new` is another page's: its module's routes come
    before these.)"""
    raw: str = ctx.request.path_params["campaign_id"]
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 18:
        raise InvalidInput("a campaign id", field="campaign_id")
    return int(raw)


@dataclass(frozen=True)
class Watched:
    """A campaign's report as last counted: the report use case's figures, its status
    (progress, plan versus actual), and when (monotonic seconds)."""

    report: service.campaigns.Performance
    status: service.Status
    at_s: float
    took_s: float  # what counting it cost
    counted_at: datetime

    @property
    def settled(self) -> bool:
        return self.status.progress.complete


@dataclass
class Reports:
    """Campaigns' reports, kept a while and shared by the pages open on them."""

    svc: service.Services
    now: Callable[[], datetime]
    _kept: OrderedDict[tuple[int, int], Watched] = field(default_factory=OrderedDict)
    _locks: dict[tuple[int, int], asyncio.Lock] = field(default_factory=dict)

    def kept(self, brand_id: int, campaign_id: int) -> Watched | None:
        """The report as last counted (however old), if any."""
        return self._kept.get((brand_id, campaign_id))

    async def get(self, brand_id: int, campaign_id: int) -> Watched:
        """The campaign's report, counted again when it is older than it may be."""
        key = (brand_id, campaign_id)
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:  # pages open on one campaign wait for one count
            w = self._kept.get(key)
            if w is None or time.monotonic() - w.at_s >= _fresh_for(w):
                started = time.monotonic()
                report = await service.campaigns.report(self.svc, campaign_id, brand_id=brand_id)
                status = await service.campaigns.status(self.svc, campaign_id, brand_id=brand_id)
                now = time.monotonic()
                w = Watched(report, status, now, now - started, self.now())
                self._kept[key] = w
            self._kept.move_to_end(key)
            while len(self._kept) > MAX_KEPT:
                old, _ = self._kept.popitem(last=False)
                self._locks.pop(old, None)
            return w


def _fresh_for(w: Watched) -> float:
    """How long a report is kept: longer the more it cost, so that counting a campaign's
    report takes at most 1/`REPORT_COST_SHARE` of the time (of one database connection)
    however large the campaign is."""
    least = REPORT_FRESH_AFTER_S if _done(w.status.campaign, w) else REPORT_FRESH_S
    return max(least, w.took_s * REPORT_COST_SHARE)


def _done(c: CampaignRow, w: Watched | None) -> bool:
    """Nothing more will be sent: not launched, cancelled, or every recipient settled."""
    if c.launched_at is None or c.status in ("draft", "scheduled", "cancelled"):
        return True
    return w is not None and w.settled


def _funnel(totals: dict[str, Any]) -> list[tuple[str, int, float]]:
    """(step, people, share of the eligible) from eligible to ordered."""
    eligible = max(0, int(totals.get("eligible", 0)))
    steps = [
        ("Eligible", eligible), ("Sent", totals["sent"]), ("Delivered", totals["delivered"]),
        ("Clicked", totals["unique_clicks"]), ("Ordered", totals["orders"]),
    ]  # fmt: skip
    return [(name, n, n / eligible if eligible else 0.0) for name, n in steps]


def _minutes(per_minute: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The report's per-minute figures, each minute a `datetime` again."""
    return [{**m, "minute": datetime.fromisoformat(m["minute"])} for m in per_minute]


def _chart(per_minute: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """The per-minute figures as uPlot's columns: unix seconds, then each series."""
    return {
        "t": [int(m["minute"].timestamp()) for m in per_minute],
        "sent": [m["sent"] for m in per_minute],
        "delivered": [m["delivered"] for m in per_minute],
        "clicks": [m["clicks"] for m in per_minute],
    }


def routes(web: Web) -> list[Route]:
    reports = Reports(web.svc, web.now)

    async def headline(ctx: Ctx, campaign_id: int) -> dict[str, Any]:
        # `brand_id`: another brand's campaign is NotFound, the 404 page
        c = await service.campaigns.get(web.svc, campaign_id, brand_id=ctx.brand_id)
        rows = await service.figures.page(web.svc, ctx.brand_id, before_id=campaign_id + 1, limit=1)
        figures = rows[0] if rows and rows[0].id == campaign_id else None
        if figures is not None:
            web.counter.ask(ctx.brand_id, service.figures.stale([figures], web.now()))
        w = reports.kept(ctx.brand_id, campaign_id)
        live = not _done(c, w)
        return {
            "campaign": c, "figures": figures, "watched": w, "live": live,
            "live_every_s": LIVE_EVERY_S, "report_every_s": REPORT_EVERY_S,
        }  # fmt: skip

    async def page(ctx: Ctx) -> Response:
        campaign_id = campaign_id_of(ctx)
        h = await headline(ctx, campaign_id)
        # the report when it is at hand; else the page asks for it once it is shown
        return web.render(
            ctx.request, "watch.html", session=ctx.session, nav="/campaigns",
            title=h["campaign"].name, **{**h, **_report_context(h["watched"])},
        )  # fmt: skip

    async def live(ctx: Ctx) -> Response:
        h = await headline(ctx, campaign_id_of(ctx))
        return web.render(ctx.request, "watch_live.html", session=ctx.session, **h)

    async def report(ctx: Ctx) -> Response:
        campaign_id = campaign_id_of(ctx)
        c = await service.campaigns.get(web.svc, campaign_id, brand_id=ctx.brand_id)
        if c.launched_at is None:
            raise InvalidInput("the campaign has not been launched: it has no report yet")
        w = await reports.get(ctx.brand_id, campaign_id)
        return web.render(
            ctx.request, "watch_report.html", session=ctx.session, campaign=c,
            live=not _done(c, w), report_every_s=REPORT_EVERY_S, **_report_context(w),
        )  # fmt: skip

    return [
        web.page("/campaigns/{campaign_id}", page),
        web.page("/campaigns/{campaign_id}/live", live),
        web.page("/campaigns/{campaign_id}/report", report),
    ]


def _report_context(w: Watched | None) -> dict[str, Any]:
    if w is None:
        return {"watched": None}
    r = w.report
    minutes = _minutes(r.per_minute)
    return {
        "watched": w, "report": r, "funnel": _funnel(r.totals), "chart": _chart(minutes),
        "minutes": minutes[-MINUTES_SHOWN:],
        "plan_rows": w.status.plan_vs_actual, "progress": w.status.progress,
    }  # fmt: skip
