"""Subscriber use cases: import from CSV, the consent ledger for audits."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from clarion.domain.contacts import NewSubscriber
from clarion.domain.csv_import import read_subscribers
from clarion.domain.rows import ConsentRow
from clarion.email.unsubscribe import read_token
from clarion.errors import InvalidInput
from clarion.service.context import Services
from clarion.store import brands, compliance

IMPORT_BATCH = 10_000  # subscribers per COPY: memory stays flat in the file's size


def read_csv(
    chunks: Iterable[bytes],
    *,
    encoding: str = "auto",
    on_fallback: Callable[[str], None] | None = None,
) -> Iterable[NewSubscriber | InvalidInput]:
    """The file's rows, each a subscriber or the reason it is not one (with its row number).
    Reading the first item checks the header: a file that cannot be imported at all raises
    `InvalidInput` then."""
    return read_subscribers(chunks, encoding=encoding, on_fallback=on_fallback)


async def import_rows(
    svc: Services,
    brand_id: int,
    rows: Iterable[NewSubscriber | InvalidInput],
    *,
    source: str,
    on_rejected: Callable[[InvalidInput], None] = lambda _: None,
) -> tuple[int, int]:
    """Import what `read_csv` yields, `IMPORT_BATCH` at a time; every rejected row goes to
    `on_rejected` and the rest go in. Returns (new subscribers, rejected rows)."""
    await brands.get_brand(svc.pool, brand_id)  # NotFound before any row is read
    added = rejected = 0
    batch: list[NewSubscriber] = []
    for row in rows:
        if isinstance(row, InvalidInput):
            rejected += 1
            on_rejected(row)
            continue
        batch.append(row)
        if len(batch) == IMPORT_BATCH:
            added += await brands.import_subscribers(
                svc.pool, brand_id, batch, source=source, analyze=False
            )
            batch = []
    if batch:
        added += await brands.import_subscribers(
            svc.pool, brand_id, batch, source=source, analyze=False
        )
    await brands.analyze_subscribers(svc.pool)
    return added, rejected


async def consent_ledger(
    svc: Services, brand_id: int, subscriber_id: int | None = None
) -> list[ConsentRow]:
    """Every opt-in and opt-out of the brand (or one subscriber), oldest first."""
    return await compliance.consent_ledger(svc.pool, brand_id, subscriber_id)


async def unsubscribe_email(svc: Services, brand_id: int, subscriber_id: int, how: str) -> None:
    """Record the subscriber's email opt-out (one-click or the page's button); idempotent."""
    await compliance.unsubscribe_email(svc.pool, brand_id, subscriber_id, how)


def read_unsubscribe_token(secret: str | bytes, token: str) -> tuple[int, int]:
    """(brand id, subscriber id) an unsubscribe link's token names; `InvalidInput` for a
    token that is malformed, tampered with, or made with another secret."""
    return read_token(secret, token)
