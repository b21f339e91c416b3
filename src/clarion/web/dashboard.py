"""The dashboard (`/`) and the campaign list (`/campaigns`): the brand's campaigns with their
headline figures, newest first, a page at a time (a campaign's own page is `watch`'s)."""

from __future__ import annotations

from starlette.responses import Response
from starlette.routing import Route

from clarion import service
from clarion.errors import InvalidInput
from clarion.web.common import Ctx, Web

PAGE_SIZE = 25


def _id(raw: str | None, name: str) -> int | None:
    if raw is None or raw == "":
        return None
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 18:
        raise InvalidInput("a campaign id", field=name)
    return int(raw)


def _refresh_s(rows: list[service.figures.Headline]) -> int | None:
    """How often the table reloads itself: soon while a campaign is being counted for the
    first time, every few seconds while one sends, never when nothing moves."""
    if any(r.counted_at is None and r.launched_at is not None for r in rows):
        return 2
    if any(r.status == "sending" for r in rows):
        return 10
    return None


def routes(web: Web) -> list[Route]:
    async def campaign_list(ctx: Ctx, template: str, nav: str) -> Response:
        before = _id(ctx.request.query_params.get("before"), "before")
        rows = await service.figures.page(
            web.svc, ctx.brand_id, before_id=before, limit=PAGE_SIZE + 1
        )
        more = len(rows) > PAGE_SIZE
        rows = rows[:PAGE_SIZE]
        web.counter.ask(ctx.brand_id, service.figures.stale(rows, web.now()))
        url = ctx.request.url
        return web.render(
            ctx.request, template, session=ctx.session, campaigns=rows, nav=nav,
            older=rows[-1].id if more else None, paged=before is not None,
            title="Dashboard" if nav == "/" else "Campaigns",
            refresh_s=_refresh_s(rows), here=url.path + (f"?{url.query}" if url.query else ""),
        )  # fmt: skip

    async def dashboard(ctx: Ctx) -> Response:
        return await campaign_list(ctx, "dashboard.html", "/")

    async def campaigns(ctx: Ctx) -> Response:
        return await campaign_list(ctx, "campaigns.html", "/campaigns")

    return [
        web.page("/", dashboard),
        web.page("/campaigns", campaigns),
    ]
