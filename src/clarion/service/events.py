"""Events from a brand's systems (`POST /v1/events`): each checked on its own and tied to one
of the brand's subscribers; stored once per client id."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from clarion.domain.events import MAX_BATCH, Event, EventIn, event_in
from clarion.domain.subscribers import email_of, phone_of
from clarion.errors import ClarionError, InvalidInput
from clarion.service.context import Services
from clarion.store import attribution, events

# An E.164 number is looked up as it is; any other format is parsed first (phonenumbers
# costs ~40 µs a number: a batch of a shop's events carries E.164 numbers).
_E164 = re.compile(r"\+[1-9][0-9]{6,14}")


@dataclass
class Ingested:
    """What became of a request's events: how many were stored now, how many had been
    stored before (the same client id), and each rejected one's index and error."""

    stored: int = 0
    duplicates: int = 0
    rejected: list[tuple[int, ClarionError]] = field(default_factory=list)


def _phone(raw: str) -> str | None:
    return raw if _E164.fullmatch(raw) else phone_of(raw, "subscriber.phone")


async def ingest(
    svc: Services, brand_id: int, raw_events: Sequence[Any], *, now: datetime
) -> Ingested:
    """Check each event, find its subscriber, store those that are new."""
    if len(raw_events) > MAX_BATCH:
        raise InvalidInput(f"at most {MAX_BATCH} events a request", field="events")
    out = Ingested()
    checked: list[tuple[int, EventIn, str | None, str | None]] = []
    for i, raw in enumerate(raw_events):
        try:
            e = event_in(raw, now=now)
            ref = e.subscriber
            phone = _phone(ref.phone) if ref.phone is not None else None
            email = email_of(ref.email, "subscriber.email") if ref.email is not None else None
            checked.append((i, e, phone, email))
        except InvalidInput as exc:
            out.rejected.append((i, exc))
    ids, by_phone, by_email = await events.subscriber_ids(
        svc.pool, brand_id,
        ids=[e.subscriber.id for _, e, _, _ in checked if e.subscriber.id is not None],
        phones=[p for _, _, p, _ in checked if p is not None],
        emails=[m for _, _, _, m in checked if m is not None],
    )  # fmt: skip
    ready: list[Event] = []
    for i, e, phone, email in checked:
        sid = e.subscriber.id
        found = (
            (sid if sid in ids else None)
            if sid is not None
            else by_phone.get(phone or "")
            if phone is not None
            else by_email.get(email or "")
        )
        if found is None:
            which = "id" if sid is not None else "phone" if phone is not None else "email"
            out.rejected.append(
                (i, InvalidInput(f"no subscriber of the brand has this {which}",
                                 field=f"subscriber.{which}"))
            )  # fmt: skip
            continue
        ready.append(
            Event(
                index=i, client_id=e.id, subscriber_id=found, type=e.type,
                occurred_at=e.occurred_at, value=e.value, properties=e.properties,
                items=e.items,
            )
        )  # fmt: skip
    stored = await events.append(svc.pool, brand_id, ready)
    orders = [stored[e.client_id] for e in ready if e.type == "ordered" and e.client_id in stored]
    if orders:  # attributed as they arrive (and looked at again as receipts come in)
        await attribution.attribute(svc.pool, orders)
    out.stored = len(stored)
    out.duplicates = len(ready) - out.stored
    out.rejected.sort(key=lambda r: r[0])
    return out
