"""The marketer's web UI, served by `clarion run` at `/` beside the API: server-rendered
pages (Jinja2, templates in `templates/`), a little htmx, and static files of our own and
vendored ones (`static/vendor/`, each with its licence) — no build step.

One module per area adds its routes (`auth`, `dashboard`, …); `common` holds what they
share. Pages call the use cases in `clarion.service`, never the SQL, and look every record
up within the signed-in user's brand.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from starlette.responses import Response
from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from clarion import service
from clarion.domain.ports import Clock
from clarion.web import (
    auth,
    composer,
    conversations,
    dashboard,
    imports,
    launch,
    segments,
    settings,
    subscribers,
    watch,
)
from clarion.web.common import Web

__all__ = ["Web", "routes"]

# Static URLs carry a hash of their file's content (`static_url`), so a browser may keep a
# file for a year: a changed file has a new URL.
_STATIC_HEADERS = {
    "Cache-Control": "public, max-age=31536000, immutable",
    "X-Content-Type-Options": "nosniff",
}


class _Static(StaticFiles):
    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        if response.status_code in (200, 304):
            response.headers.update(_STATIC_HEADERS)
        return response


def routes(svc: service.Services, clock: Clock) -> tuple[Web, list[BaseRoute]]:
    """The web UI's routes (mount them on the HTTP app that serves the API) and the `Web`
    they share."""
    web = Web(svc, clock)
    static = Path(str(resources.files("clarion.web") / "static"))
    return web, [
        *auth.routes(web),
        *composer.routes(web),  # before `dashboard`: its `/campaigns/{id}` would take `/new`
        *segments.routes(web),
        *launch.routes(web),
        *dashboard.routes(web),
        *conversations.routes(web),
        *settings.routes(web),
        *subscribers.routes(web),
        *imports.routes(web),
        *watch.routes(web),  # after the pages of literal paths under /campaigns/
        Mount("/static", app=_Static(directory=static), name="static"),
    ]
