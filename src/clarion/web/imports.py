"""Subscriber imports from the web UI: a CSV sent from a form (`/imports/new`, posted to
`/imports`), imported in the background by the same use case as `POST /v1/imports`, and its
page (`/imports/{id}`) with a progress bar brought up to date every second while it runs,
then its rejected rows with their reasons.

The form is `multipart/form-data` (a file): its body is spooled to a temporary file as it
arrives and its parts found in place (`form_parts`), so a large file never sits in memory;
the session and its CSRF token are checked as `Web.page` checks them."""

from __future__ import annotations

import asyncio
import mmap
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from clarion import service
from clarion.domain.users import WebSession
from clarion.errors import InvalidInput
from clarion.web.common import CSRF_FIELD, Ctx, Web, same_token

POLL_EVERY_S = 1
REJECTIONS_SHOWN = 100
MAX_UPLOAD_BYTES = 1 << 30  # as `POST /v1/imports` (the app's body limit for `/imports`)
MAX_EXPECTED = 1000  # imports whose expected rows are kept
_READ_BYTES = 256 * 1024
_MAX_HEAD_BYTES = 8 << 10
_BOUNDARY = re.compile(r'boundary="?([^";]{1,200})"?')
_NAME = re.compile(r'\bname="([^"]*)"')
_FILENAME = re.compile(r'\bfilename="([^"]*)"')


@dataclass(frozen=True)
class Part:
    """A part of a multipart form: its name, its file's name (None: a plain field), and
    where its content lies in the body, [start, end)."""

    name: str
    filename: str | None
    start: int
    end: int


def form_parts(body: bytes | mmap.mmap, boundary: bytes) -> dict[str, Part]:
    """The parts of a `multipart/form-data` body (RFC 7578), by name; `InvalidInput` for a
    body that is not one."""
    delimiter = b"--" + boundary
    at = body.find(delimiter)
    if at < 0:
        raise InvalidInput("not a multipart form", field="file")
    parts: dict[str, Part] = {}
    while True:
        at += len(delimiter)
        if body[at : at + 2] == b"--":
            return parts
        head_end = body.find(b"\r\n\r\n", at, at + _MAX_HEAD_BYTES)
        if body[at : at + 2] != b"\r\n" or head_end < 0:
            raise InvalidInput("a part of the form is malformed", field="file")
        head = bytes(body[at + 2 : head_end]).decode("utf-8", "replace")
        start = head_end + 4
        end = body.find(b"\r\n" + delimiter, start)
        if end < 0:
            raise InvalidInput("the form breaks off", field="file")
        name, filename = _NAME.search(head), _FILENAME.search(head)
        if name is not None:
            parts[name.group(1)] = Part(
                name.group(1), None if filename is None else filename.group(1), start, end
            )
        at = end + 2


def _chunks(view: mmap.mmap, f: IO[bytes], start: int, end: int) -> Iterator[bytes]:
    """The file's bytes, a chunk at a time; the spool is closed when they are read."""
    try:
        for at in range(start, end, _READ_BYTES):
            yield view[at : min(end, at + _READ_BYTES)]
    finally:
        view.close()
        f.close()


def _lines(view: mmap.mmap, start: int, end: int) -> int:
    """The file's lines (a quoted field's line breaks count too: an estimate)."""
    n = 0
    for at in range(start, end, 1 << 20):
        n += view[at : min(end, at + (1 << 20))].count(b"\n")
    return n if view[end - 1 : end] == b"\n" else n + 1


def routes(web: Web) -> list[Route]:
    # the imports this process runs (each ends as failed, what went in staying, if the
    # process stops; `service.imports.fail_stale` marks one a stopped process left)
    running: set[asyncio.Task[object]] = set()

    # an estimate of each import's rows (its file's lines), for the progress bar: kept by
    # this process for its own imports (elsewhere, or after a restart, the bar is a spinner)
    expected_rows: dict[int, int] = {}

    def form(
        request: Request, session: WebSession, status_code: int = 200, **extra: object
    ) -> Response:
        return web.render(
            request, "import_new.html", status_code=status_code, session=session,
            nav="/subscribers", title="Import subscribers", **extra,
        )  # fmt: skip

    async def new(ctx: Ctx) -> Response:
        return form(ctx.request, ctx.session, error=None, source="web-import")

    async def upload(request: Request) -> Response:
        session = await web.signed_in(request)
        if session is None:
            return web.error(request, 403, "Your session has ended: sign in again.")
        found = _BOUNDARY.search(request.headers.get("content-type", ""))
        if not request.headers.get("content-type", "").startswith("multipart/form-data") or (
            found is None
        ):
            return web.error(request, 415, "A form with a file was expected.", session)
        spool = tempfile.TemporaryFile()  # noqa: SIM115 - closed by _chunks or below
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_UPLOAD_BYTES:
                spool.close()
                return web.error(request, 400, "The file is over 1 GiB.", session)
            spool.write(chunk)
        spool.flush()
        view = mmap.mmap(spool.fileno(), 0, access=mmap.ACCESS_READ) if size else None
        handed_over = False
        source = "web-import"
        try:
            parts = form_parts(view if view is not None else b"", found.group(1).encode())

            def text(name: str) -> str:
                p = parts.get(name)
                return (
                    ""
                    if p is None or view is None
                    else view[p.start : p.end].decode("utf-8", "replace")
                )

            if not same_token(text(CSRF_FIELD) or None, session.csrf_token):
                return web.error(
                    request, 403,
                    "This form is out of date or did not come from Clarion: reload the page"
                    " and try again.", session,
                )  # fmt: skip
            source = text("source").strip() or "web-import"
            file = parts.get("file")
            if view is None or file is None or file.end <= file.start:
                raise InvalidInput("choose a CSV file to import", field="file")
            lines = await asyncio.to_thread(_lines, view, file.start, file.end)
            rows = await asyncio.to_thread(
                service.imports.open_csv, _chunks(view, spool, file.start, file.end)
            )
            handed_over = True  # the rows' reader closes the spool
            import_id = await service.imports.start(web.svc, session.user.brand_id, source=source)
        except InvalidInput as exc:
            if not handed_over:
                if view is not None:
                    view.close()
                spool.close()
            return form(request, session, 400, error=str(exc), source=source)
        if len(expected_rows) >= MAX_EXPECTED:
            expected_rows.clear()
        expected_rows[import_id] = max(1, lines - 1)  # less the header
        task = asyncio.create_task(
            service.imports.run(web.svc, import_id, session.user.brand_id, rows, source=source)
        )
        running.add(task)
        task.add_done_callback(running.discard)
        return RedirectResponse(f"/imports/{import_id}", status_code=303)

    async def imported(ctx: Ctx, template: str) -> Response:
        raw: str = ctx.request.path_params["import_id"]
        if not (raw.isascii() and raw.isdigit()) or len(raw) > 18:
            raise InvalidInput("an import id", field="import_id")
        # `brand_id`: another brand's import is NotFound, the 404 page
        i = await service.imports.get(web.svc, ctx.brand_id, int(raw))
        rejected = []
        if i.status != "running" and i.rejected:
            rejected = await service.imports.rejections(
                web.svc, ctx.brand_id, i.id, limit=REJECTIONS_SHOWN
            )
        return web.render(
            ctx.request, template, session=ctx.session, nav="/subscribers",
            title=f"Import {i.id}", imp=i, rejected=rejected, poll_every_s=POLL_EVERY_S,
            shown=REJECTIONS_SHOWN, expected=expected_rows.get(i.id),
        )  # fmt: skip

    async def page(ctx: Ctx) -> Response:
        return await imported(ctx, "import.html")

    async def progress(ctx: Ctx) -> Response:
        return await imported(ctx, "import_progress.html")

    return [
        web.page("/imports/new", new),
        Route("/imports", upload, methods=["POST"], name="/imports"),
        web.page("/imports/{import_id}", page),
        web.page("/imports/{import_id}/progress", progress),
    ]
