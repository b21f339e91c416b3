"""Subscriber use cases: import from CSV, one at a time and in batches over the API,
erasure, the consent ledger for audits."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from clarion.domain.rows import ConsentRow
from clarion.domain.subscribers import (
    Subscriber,
    SubscriberIn,
    email_of,
    phone_of,
    subscriber_in,
    subscriber_patch,
)
from clarion.email.unsubscribe import read_token
from clarion.errors import ClarionError, Duplicate, InvalidInput
from clarion.service.context import Services
from clarion.store import compliance, subscribers


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


# --- one at a time and in batches, over the API --------------------------------------------

MAX_BATCH = 1000


@dataclass(frozen=True)
class BatchOutcome:
    """One subscriber of a batch: created (its id) or rejected (the error that says why,
    and for a duplicate the subscriber it duplicates)."""

    index: int
    id: int | None = None
    error: ClarionError | None = None
    existing_id: int | None = None


def _evidence(key_id: int | None) -> dict[str, Any] | None:
    return None if key_id is None else {"api_key_id": key_id}


async def create(
    svc: Services, brand_id: int, raw: Any, *, key_id: int | None = None
) -> Subscriber:
    """A new subscriber from the API's JSON (`domain.subscribers.subscriber_in`), with its
    consent in the ledger; `Duplicate` (409) names an existing one."""
    new = subscriber_in(raw)
    async with svc.pool.acquire() as conn, conn.transaction():
        subscriber_id = await subscribers.create(conn, brand_id, new, evidence=_evidence(key_id))
    return await subscribers.get(svc.pool, brand_id, subscriber_id)


async def create_batch(
    svc: Services, brand_id: int, items: Sequence[Any], *, key_id: int | None = None
) -> list[BatchOutcome]:
    """Up to `MAX_BATCH` subscribers: each created or rejected on its own, by index."""
    if len(items) > MAX_BATCH:
        raise InvalidInput(f"at most {MAX_BATCH} subscribers a request", field="subscribers")
    valid: list[tuple[int, SubscriberIn]] = []
    outcomes: dict[int, BatchOutcome] = {}
    for i, raw in enumerate(items):
        try:
            valid.append((i, subscriber_in(raw)))
        except InvalidInput as exc:
            outcomes[i] = BatchOutcome(index=i, error=exc)
    stored = await subscribers.create_many(
        svc.pool, brand_id, [s for _, s in valid], evidence=_evidence(key_id)
    )
    for (i, _), got in zip(valid, stored, strict=True):
        if isinstance(got, Duplicate):
            outcomes[i] = BatchOutcome(index=i, error=got, existing_id=got.existing_id)
        else:
            outcomes[i] = BatchOutcome(index=i, id=got)
    return [outcomes[i] for i in range(len(items))]


async def get(svc: Services, brand_id: int, subscriber_id: int) -> Subscriber:
    return await subscribers.get(svc.pool, brand_id, subscriber_id)


async def find(
    svc: Services, brand_id: int, *, phone: str | None = None, email: str | None = None
) -> list[Subscriber]:
    """The brand's subscriber with this phone (any format: it is normalised to E.164) or
    email (any case); both given, one with both."""
    return await subscribers.find(svc.pool, brand_id, phone=phone_of(phone), email=email_of(email))


async def listed(
    svc: Services, brand_id: int, *, after_id: int = 0, limit: int = 100
) -> list[Subscriber]:
    return await subscribers.page(svc.pool, brand_id, after_id=after_id, limit=limit)


async def update(
    svc: Services, brand_id: int, subscriber_id: int, raw: Any, *, key_id: int | None = None
) -> Subscriber:
    """Change the fields given; attributes are merged (null removes one); consent given is
    appended to the ledger."""
    patch = subscriber_patch(raw)
    return await subscribers.update(
        svc.pool, brand_id, subscriber_id, patch, evidence=_evidence(key_id)
    )


async def erase(svc: Services, brand_id: int, subscriber_id: int, *, source: str) -> None:
    """Erase a subscriber's personal data; the consent ledger keeps its legal record
    (`store.subscribers.erase`)."""
    await subscribers.erase(svc.pool, brand_id, subscriber_id, source=source)
