"""What every page of the web UI shares: the signed-in user (a dependency of each page), the
CSRF check of every POST, the form parser, and rendering a template into a page.

A page is a plain async function of a `Ctx`; `Web.page` wraps it into a route that signs the
visitor in (or sends them to `/signin?next=…`), checks the CSRF token of a POST (403 page
without it), and turns a record of another brand (`NotFound`) into the 404 page."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from importlib import resources
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from clarion import service
from clarion.domain.ports import Clock
from clarion.domain.users import WebSession
from clarion.errors import InvalidInput, NotFound

SESSION_COOKIE = "clarion_session"
# The sign-in form's CSRF token, before there is a session: a cookie the form must echo.
SIGNIN_COOKIE = "clarion_signin"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
MAX_FORM_BYTES = 64 << 10

# Pages are never cached, never framed, and run only our own scripts and styles.
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
        " object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}

# The navigation, in its order: (path, label). A page names its own as `nav`.
NAV = (
    ("/", "Dashboard"),
    ("/campaigns", "Campaigns"),
    ("/segments", "Audience"),
    ("/subscribers", "Subscribers"),
    ("/conversations", "Conversations"),
    ("/settings", "Settings"),
)


@cache
def _static_version(path: str) -> str:
    """A short hash of a static file's content: its URL changes when it does, so the
    browser may keep it for a year."""
    data = (resources.files("clarion.web") / "static" / path).read_bytes()
    return hashlib.sha256(data).hexdigest()[:10]


def static_url(path: str) -> str:
    return f"/static/{path}?v={_static_version(path)}"


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("clarion.web", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals.update(static_url=static_url, nav_items=NAV)
    env.filters.update(number=lambda n: f"{n:,}", percent=lambda x: f"{x * 100:.1f} %")
    return env


def local_path(raw: str | None, default: str = "/") -> str:
    """`raw` when it is a path on this site (`/campaigns?page=2`), else `default`: a link
    never sends a signed-in visitor elsewhere (`//evil.example`, `https://…`, `/\\evil`)."""
    if not raw or not raw.startswith("/") or raw.startswith("//") or "\\" in raw:
        return default
    parts = urlsplit(raw)
    if parts.scheme or parts.netloc or any(ord(c) < 0x20 for c in raw):
        return default
    return raw


async def read_form(request: Request) -> dict[str, str] | None:
    """A POST's urlencoded fields (what a page's forms and htmx send); None for a body over
    64 KiB or of another type. Parsed here: Starlette's parser needs python-multipart."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type not in ("application/x-www-form-urlencoded", ""):
        return None
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            return None
    return dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))


def same_token(given: str | None, expected: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


@dataclass(frozen=True)
class Ctx:
    """A request to a page of a signed-in user: who, and (a POST) the form's fields."""

    request: Request
    session: WebSession
    form: dict[str, str]

    @property
    def brand_id(self) -> int:
        """The user's brand: every record a page shows is looked up within it."""
        return self.session.user.brand_id


Page = Callable[[Ctx], Awaitable[Response]]


@dataclass
class Web:
    """The web UI over the use cases: the services, the clock, and the templates."""

    svc: service.Services
    clock: Clock
    counter: service.figures.Counter = field(init=False)
    env: jinja2.Environment = field(default_factory=_environment)

    def __post_init__(self) -> None:
        self.counter = service.figures.Counter(self.svc)

    @property
    def secure_cookies(self) -> bool:
        """Cookies only over https when the site is served over https."""
        return self.svc.settings.public_url.lower().startswith("https://")

    def now(self) -> datetime:
        return self.clock.now()

    def render(
        self,
        request: Request,
        template: str,
        *,
        status_code: int = 200,
        session: WebSession | None = None,
        **context: Any,
    ) -> HTMLResponse:
        """The template as a page; `session` (the signed-in user) fills the header."""
        html = self.env.get_template(template).render(
            request=request, session=session, path=request.url.path, **context
        )
        return HTMLResponse(html, status_code=status_code, headers=PAGE_HEADERS)

    def error(
        self, request: Request, status_code: int, message: str, session: WebSession | None = None
    ) -> HTMLResponse:
        titles = {400: "Not accepted", 403: "Refused", 404: "Not found", 415: "Not accepted"}
        return self.render(
            request, "error.html", status_code=status_code, session=session,
            title=titles.get(status_code, "Error"), message=message, nav="",
        )  # fmt: skip

    async def signed_in(self, request: Request) -> WebSession | None:
        token = request.cookies.get(SESSION_COOKIE, "")
        return await service.users.session(self.svc, token, now=self.now()) if token else None

    def page(self, path: str, handler: Page, methods: tuple[str, ...] = ("GET",)) -> Route:
        """A route to a page for signed-in users only."""

        async def endpoint(request: Request) -> Response:
            session = await self.signed_in(request)
            if session is None:
                if request.method != "GET":
                    return self.error(request, 403, "Your session has ended: sign in again.")
                here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                return RedirectResponse(f"/signin?next={quote(here, safe='')}", status_code=303)
            form: dict[str, str] = {}
            if request.method == "POST":
                fields = await read_form(request)
                if fields is None:
                    return self.error(request, 415, "A form was expected.", session)
                token = fields.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER)
                if not same_token(token, session.csrf_token):
                    return self.error(
                        request, 403,
                        "This form is out of date or did not come from Clarion: reload the"
                        " page and try again.", session,
                    )  # fmt: skip
                form = fields
            try:
                return await handler(Ctx(request, session, form))
            except NotFound:
                return self.error(request, 404, "There is nothing here.", session)
            except InvalidInput as exc:
                return self.error(request, 400, str(exc), session)

        return Route(path, endpoint, methods=list(methods), name=path)


def new_token() -> str:
    return secrets.token_urlsafe(32)
