"""Subscriber imports from CSV, the same for the API (`POST /v1/imports`, run in the
background, its progress at `GET /v1/imports/{id}`) and the CLI (`clarion subscribers
import`, in the foreground): rows are read and checked a batch at a time off the event loop
while the batch before goes in by COPY, so memory stays flat in the file's size and a bad
row never stops the good ones."""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Awaitable, Callable, Iterable, Iterator

from clarion.domain.contacts import NewSubscriber
from clarion.domain.csv_import import read_subscribers
from clarion.domain.imports import ImportRow, Rejection
from clarion.errors import InvalidInput
from clarion.service.context import Services
from clarion.store import brands, imports

log = logging.getLogger(__name__)

BATCH = 10_000  # rows a COPY
# An import whose process has not moved it for this long is failed as interrupted.
STALE_AFTER_S = 120.0

Outcome = NewSubscriber | InvalidInput


def open_csv(
    chunks: Iterable[bytes],
    *,
    encoding: str = "auto",
    on_fallback: Callable[[str], None] | None = None,
) -> Iterator[Outcome]:
    """The file's rows, each a subscriber or the reason it is not one. The header is read
    now: a file that cannot be imported at all (no phone or email column, not CSV) raises
    `InvalidInput` here, before any import starts. `on_fallback` hears of a file read as
    cp1252 because it does not start as UTF-8."""
    rows = iter(read_subscribers(chunks, encoding=encoding, on_fallback=on_fallback))
    first = list(itertools.islice(rows, 1))
    return itertools.chain(first, rows)


def _take(rows: Iterator[Outcome], n: int) -> list[Outcome]:
    return list(itertools.islice(rows, n))


async def start(svc: Services, brand_id: int, *, source: str) -> int:
    await brands.get_brand(svc.pool, brand_id)  # NotFound before anything is recorded
    if not 0 < len(source) <= 200 or "\x00" in source:
        raise InvalidInput("1 to 200 characters", field="source")
    return await imports.start(svc.pool, brand_id, source)


async def run(
    svc: Services,
    import_id: int,
    brand_id: int,
    rows: Iterator[Outcome],
    *,
    source: str,
    on_batch: Callable[[ImportRow], Awaitable[None] | None] | None = None,
    on_rejected: Callable[[InvalidInput], None] | None = None,
) -> ImportRow:
    """Import the rows into the brand, `BATCH` at a time: each batch read and checked in a
    thread while the one before goes in. Progress is recorded after every batch; an error
    fails the import (what went in stays: each batch is its own transaction)."""
    try:
        reading = asyncio.ensure_future(asyncio.to_thread(_take, rows, BATCH))
        while outcomes := await reading:
            reading = asyncio.ensure_future(asyncio.to_thread(_take, rows, BATCH))
            valid = [o for o in outcomes if not isinstance(o, InvalidInput)]
            bad = [o for o in outcomes if isinstance(o, InvalidInput)]
            refused = [Rejection(o.row or 0, o.field, o.reason) for o in bad]
            if on_rejected is not None:
                for o in bad:
                    on_rejected(o)
            created = await brands.import_subscribers(
                svc.pool, brand_id, valid, source=source, analyze=False
            )
            await imports.progress(
                svc.pool, import_id, rows_read=len(outcomes), created=created,
                existing=len(valid) - created, rejections=refused,
            )  # fmt: skip
            if on_batch is not None:
                shown = on_batch(await imports.get(svc.pool, brand_id, import_id))
                if shown is not None:
                    await shown
        await brands.analyze_subscribers(svc.pool)
        await imports.finish(svc.pool, import_id)
    except (Exception, asyncio.CancelledError) as exc:
        reason = str(exc) if isinstance(exc, InvalidInput) else f"{type(exc).__name__}: {exc}"
        if isinstance(exc, asyncio.CancelledError):
            reason = "cancelled (its process stopped)"
        else:
            log.exception("import %s failed", import_id)
        await asyncio.shield(imports.finish(svc.pool, import_id, error=reason[:1000]))
        if isinstance(exc, asyncio.CancelledError):
            raise
    return await imports.get(svc.pool, brand_id, import_id)


async def get(svc: Services, brand_id: int, import_id: int) -> ImportRow:
    return await imports.get(svc.pool, brand_id, import_id)


async def listed(
    svc: Services, brand_id: int, *, after_id: int = 0, limit: int = 100
) -> list[ImportRow]:
    return await imports.listed(svc.pool, brand_id, after_id=after_id, limit=limit)


async def rejections(
    svc: Services, brand_id: int, import_id: int, *, after_row: int = 0, limit: int = 100
) -> list[Rejection]:
    """An import's rejected rows in row order (the brand's import only)."""
    await imports.get(svc.pool, brand_id, import_id)  # NotFound for another brand's
    return await imports.rejections(svc.pool, import_id, after_row=after_row, limit=limit)


async def fail_stale(svc: Services) -> int:
    """Fail the imports a stopped process left running."""
    return await imports.fail_stale(svc.pool, STALE_AFTER_S)
