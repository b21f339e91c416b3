"""The brand's subscribers (`/subscribers`): found by phone or email, exactly or by how it
starts; and one subscriber's page (`/subscribers/{id}`) with their timeline."""

from __future__ import annotations

from starlette.responses import Response
from starlette.routing import Route

from clarion.errors import InvalidInput
from clarion.service import timeline
from clarion.web.common import Ctx, Web


def routes(web: Web) -> list[Route]:
    async def search(ctx: Ctx) -> Response:
        query = ctx.request.query_params.get("q", "")
        error = None
        try:
            found = await timeline.search(web.svc, ctx.brand_id, query)
        except InvalidInput as exc:
            found, error = [], str(exc)
        return web.render(
            ctx.request, "subscribers.html", session=ctx.session, nav="/subscribers",
            title="Subscribers", query=query.strip(), found=found, error=error,
            limit=timeline.MAX_RESULTS,
        )  # fmt: skip

    async def subscriber(ctx: Ctx) -> Response:
        raw: str = ctx.request.path_params["subscriber_id"]
        if not (raw.isascii() and raw.isdigit()) or len(raw) > 18:
            raise InvalidInput("a subscriber id", field="subscriber_id")
        # `brand_id`: another brand's subscriber is NotFound, the 404 page
        t = await timeline.subscriber_timeline(web.svc, ctx.brand_id, int(raw))
        s = t.subscriber
        name = " ".join(n for n in (s.first_name, s.last_name) if n)
        return web.render(
            ctx.request, "subscriber.html", session=ctx.session, nav="/subscribers",
            title=name or s.phone or s.email or f"Subscriber {s.id}", timeline=t, s=s,
            per_kind=timeline.PER_KIND,
        )  # fmt: skip

    return [
        web.page("/subscribers", search),
        web.page("/subscribers/{subscriber_id}", subscriber),
    ]
