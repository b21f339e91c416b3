"""Subscriber imports from CSV, the same for the API (`POST /v1/imports`, run in the
background, its progress at `GET /v1/imports/{id}`) and the CLI (`clarion subscribers
import`, in the foreground): rows are read a batch at a time off the event loop, checked in
worker processes while the batch before goes in by COPY, and a row repeating an earlier
row's phone or email is found through Postgres (`import_keys`), so memory stays flat in the
file's size (a few batches in flight) and a bad row never stops the good ones."""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import logging
import multiprocessing
import os
from collections.abc import Awaitable, Callable, Iterable, Iterator

from clarion.domain.contacts import NewSubscriber
from clarion.domain.csv_import import Record, check_records, read_records
from clarion.domain.imports import ImportRow, Rejection
from clarion.errors import InvalidInput
from clarion.service.context import Services
from clarion.store import brands, imports

log = logging.getLogger(__name__)

BATCH = 20_000  # rows a COPY
# An import whose process has not moved it for this long is failed as interrupted.
STALE_AFTER_S = 120.0

Outcome = NewSubscriber | InvalidInput
Item = Record | InvalidInput
# Rows are checked (phone numbers parsed: most of an import's cost) in worker processes,
# one per core, once an import is past this many rows; a small one is checked in a thread.
PARALLEL_AFTER = 2 * BATCH
# Batches read ahead of the one going in (each in flight at the workers): memory stays
# bounded by them, whatever the file's size.
AHEAD = 2


def open_csv(
    chunks: Iterable[bytes],
    *,
    encoding: str = "auto",
    on_fallback: Callable[[str], None] | None = None,
) -> Iterator[Item]:
    """The file's rows, each a subscriber or the reason it is not one. The header is read
    now: a file that cannot be imported at all (no phone or email column, not CSV) raises
    `InvalidInput` here, before any import starts. `on_fallback` hears of a file read as
    cp1252 because it does not start as UTF-8."""
    rows = iter(read_records(chunks, encoding=encoding, on_fallback=on_fallback))
    first = list(itertools.islice(rows, 1))
    return itertools.chain(first, rows)


def _take(rows: Iterator[Item], n: int) -> list[Item]:
    return list(itertools.islice(rows, n))


class _Checker:
    """Checks batches of records: in a thread at first, then, for a big file, in a pool of
    worker processes (one per core; each batch split between them)."""

    def __init__(self) -> None:
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None
        self._workers = max(1, os.cpu_count() or 1)
        self._rows = 0

    async def check(self, items: list[Item]) -> list[tuple[int, Outcome]]:
        self._rows += len(items)
        if self._rows <= PARALLEL_AFTER or self._workers == 1:
            return await asyncio.to_thread(check_records, items)
        if self._pool is None:
            self._pool = concurrent.futures.ProcessPoolExecutor(
                self._workers, mp_context=multiprocessing.get_context("spawn")
            )
        loop = asyncio.get_running_loop()
        size = -(-len(items) // self._workers)
        parts = [items[i : i + size] for i in range(0, len(items), size)]
        done = await asyncio.gather(
            *(loop.run_in_executor(self._pool, check_records, part) for part in parts)
        )
        return [outcome for part in done for outcome in part]

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)


async def _first_seen(
    svc: Services, import_id: int, checked: list[tuple[int, Outcome]]
) -> list[Outcome]:
    """The batch's outcomes, a row whose phone or email an earlier row had (of this batch,
    or of an earlier one: the import's keys are kept in Postgres, so memory stays flat in
    the file's size) rejected as a duplicate of that row, as `Seen.first` does in memory."""
    keys = {k for _, o in checked if not isinstance(o, InvalidInput) for k in _keys(o)}
    earlier = await imports.earlier_rows(svc.pool, import_id, sorted(keys))
    out: list[Outcome] = []
    accepted: dict[str, int] = {}
    for row, o in checked:
        if not isinstance(o, InvalidInput):
            for field, key in (("phone", o.phone), ("email", o.email)):
                first = None if key is None else earlier.get(key) or accepted.get(key)
                if first is not None:
                    o = InvalidInput(f"duplicate of row {first}", field=field, row=row)
                    break
            else:
                accepted.update((k, row) for k in _keys(o))
        out.append(o)
    await imports.remember(svc.pool, import_id, list(accepted), list(accepted.values()))
    return out


def _keys(s: NewSubscriber) -> list[str]:
    return [k for k in (s.phone, s.email) if k is not None]


async def start(svc: Services, brand_id: int, *, source: str) -> int:
    await brands.get_brand(svc.pool, brand_id)  # NotFound before anything is recorded
    if not 0 < len(source) <= 200 or "\x00" in source:
        raise InvalidInput("1 to 200 characters", field="source")
    return await imports.start(svc.pool, brand_id, source)


async def run(
    svc: Services,
    import_id: int,
    brand_id: int,
    rows: Iterator[Item],
    *,
    source: str,
    on_batch: Callable[[ImportRow], Awaitable[None] | None] | None = None,
    on_rejected: Callable[[InvalidInput], None] | None = None,
) -> ImportRow:
    """Import the rows into the brand, `BATCH` at a time: batches are read in a thread and
    checked (in worker processes, one per core, for a big file) up to `AHEAD` ahead of the
    one going in. Progress is recorded after every batch; an error fails the import (what
    went in stays: each batch is its own transaction)."""
    checker = _Checker()
    ahead: asyncio.Queue[asyncio.Future[list[tuple[int, Outcome]]] | None] = asyncio.Queue(AHEAD)

    async def read_ahead() -> None:
        """Read batches and hand them to the checker, a few ahead of the COPY."""
        try:
            while items := await asyncio.to_thread(_take, rows, BATCH):
                await ahead.put(asyncio.ensure_future(checker.check(items)))
        finally:  # an error is raised where the import awaits the reader
            await ahead.put(None)

    async def store(outcomes: list[Outcome]) -> None:
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

    reader = asyncio.ensure_future(read_ahead())
    storing: asyncio.Future[None] | None = None
    try:
        while (checking := await ahead.get()) is not None:
            # a batch's duplicates are found while the batch before goes in
            outcomes = await _first_seen(svc, import_id, await checking)
            if storing is not None:
                await storing
            storing = asyncio.ensure_future(store(outcomes))
        if storing is not None:
            await storing
        await reader  # its errors (a file that breaks off) fail the import
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
    finally:
        reader.cancel()
        if storing is not None:
            storing.cancel()
        checker.close()
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
