"""Areas of the navigation whose pages are not built yet: each answers with a page saying
so (not a 404), within the layout. Remove a path here when its module adds the real page."""

from __future__ import annotations

from starlette.responses import Response
from starlette.routing import Route

from clarion.web.common import NAV, Ctx, Web

SOON = ("/segments", "/conversations", "/settings")


def routes(web: Web) -> list[Route]:
    labels = dict(NAV)

    def soon(path: str) -> Route:
        async def page(ctx: Ctx) -> Response:
            return web.render(
                ctx.request, "soon.html", session=ctx.session, nav=path, title=labels[path]
            )

        return web.page(path, page)

    return [soon(p) for p in SOON]
