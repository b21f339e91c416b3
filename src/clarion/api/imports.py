"""`/v1/imports`: a CSV of subscribers, streamed in the request's body, imported in the
background; its progress and its rejected rows (row number and reason) while it runs and
after."""

# No `from __future__ import annotations`: FastAPI reads the endpoints' annotations.

import asyncio
import contextlib
import tempfile
from collections.abc import Iterator
from typing import IO, Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response

from clarion import service
from clarion.api import pages
from clarion.api.auth import Auth
from clarion.api.calls import call, respond
from clarion.api.errors import ApiError
from clarion.domain.keys import ApiKey

ImportId = Annotated[int, Path(ge=1, le=2**63 - 1)]
_READ_BYTES = 256 * 1024
_CSV_BODY = {
    "required": True,
    "description": "The CSV: a header row (phone and/or email, first_name, last_name,"
    " timezone, sms_consent, email_consent; any other column becomes an attribute), then a"
    " subscriber a row.",
    "content": {
        "text/csv": {"schema": {"type": "string"}},
        "text/plain": {"schema": {"type": "string"}},
    },
}


def _chunks(f: IO[bytes]) -> Iterator[bytes]:
    try:
        while chunk := f.read(_READ_BYTES):
            yield chunk
    finally:
        f.close()


def router(svc: service.Services, auth: Auth, running: set[asyncio.Task[object]]) -> APIRouter:
    """`running` holds the imports this process runs in the background (the app cancels them
    when it stops: they end as failed, and what went in stays)."""
    r = APIRouter(tags=["imports"])
    Reader = Annotated[ApiKey, Depends(auth.require("read"))]
    Writer = Annotated[ApiKey, Depends(auth.require("write"))]

    @r.post(
        "/imports",
        status_code=202,
        summary="Import subscribers from a CSV (in the background)",
        openapi_extra={"requestBody": _CSV_BODY},
    )
    async def start_import(
        request: Request,
        key: Writer,
        source: Annotated[
            str, Query(min_length=1, max_length=200, description="Where consent was collected.")
        ] = "api-import",
        encoding: Annotated[
            str, Query(max_length=40, description="auto, or a codec: cp1252, utf-16…")
        ] = "auto",
    ) -> Response:
        """The body is stored as it arrives, its header checked (a file that cannot be
        imported at all is a 422 at once), then imported in batches; `GET
        /v1/imports/{id}` shows its progress. Rows that are not valid are rejected one by
        one, by row number (the header is row 1), and never stop the others; a phone or
        email the brand has already counts as `existing`."""
        spool = tempfile.TemporaryFile()  # noqa: SIM115 - closed by _chunks
        try:
            async for chunk in request.stream():
                spool.write(chunk)
            spool.seek(0)
            try:
                rows = await call(
                    asyncio.to_thread(service.imports.open_csv, _chunks(spool), encoding=encoding)
                )
            except ApiError as exc:  # the file as a whole: the body is what was wrong
                exc.field = exc.field or "body"
                raise
            import_id = await call(service.imports.start(svc, key.brand_id, source=source))
        except BaseException:
            spool.close()
            raise
        task = asyncio.create_task(
            service.imports.run(svc, import_id, key.brand_id, rows, source=source)
        )
        running.add(task)
        task.add_done_callback(running.discard)
        answer = respond(await service.imports.get(svc, key.brand_id, import_id), 202)
        answer.headers["Location"] = f"/v1/imports/{import_id}"
        return answer

    @r.get("/imports", summary="The brand's imports, newest last")
    async def list_imports(
        key: Reader, limit: pages.Limit = 100, cursor: pages.Cursor = None
    ) -> Response:
        found = await service.imports.listed(
            svc, key.brand_id, after_id=pages.decode(cursor), limit=limit + 1
        )
        return respond(pages.page(found, limit, lambda i: i.id, lambda i: i))

    @r.get("/imports/{import_id}", summary="An import's progress")
    async def get_import(import_id: ImportId, key: Reader) -> Response:
        return respond(await call(service.imports.get(svc, key.brand_id, import_id)))

    @r.get("/imports/{import_id}/rejections", summary="An import's rejected rows")
    async def get_rejections(
        import_id: ImportId, key: Reader, limit: pages.Limit = 100, cursor: pages.Cursor = None
    ) -> Response:
        """Row number, field and reason of each rejected row (the first 10,000 are kept;
        the import's `rejected` counts them all)."""
        found = await call(
            service.imports.rejections(
                svc, key.brand_id, import_id, after_row=pages.decode(cursor), limit=limit + 1
            )
        )
        return respond(pages.page(found, limit, lambda x: x.row, lambda x: x))

    return r


async def cancel_all(running: set[asyncio.Task[object]]) -> None:
    """Stop the imports this process runs (each ends as failed; what went in stays)."""
    for task in list(running):
        task.cancel()
    for task in list(running):
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
