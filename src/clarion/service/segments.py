"""Segments: definitions checked (`domain.segments`), counted live (`store.segments`), saved
by name. A count reads the subscribers, their consent, events and messages as they are now:
there is no stored list to rebuild."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from clarion.domain.segments import SegmentRow, parse_definition
from clarion.errors import InvalidInput
from clarion.service.context import Services
from clarion.store import segments

MAX_NAME_CHARS = 200


@dataclass(frozen=True)
class Counted:
    count: int
    took_ms: float


async def count_definition(svc: Services, brand_id: int, definition: Any) -> Counted:
    """How many of the brand's subscribers the definition takes now."""
    condition = parse_definition(definition)
    started = time.perf_counter()
    n = await segments.count(svc.pool, brand_id, condition)
    return Counted(n, round((time.perf_counter() - started) * 1000, 1))


def _check(name: str, definition: Any) -> None:
    if not name.strip() or len(name) > MAX_NAME_CHARS or "\x00" in name:
        raise InvalidInput(f"1 to {MAX_NAME_CHARS} characters", field="name")
    parse_definition(definition)  # refused by path before it is saved


async def create(svc: Services, brand_id: int, name: str, definition: Any) -> SegmentRow:
    _check(name, definition)
    return await segments.create(svc.pool, brand_id, name.strip(), definition)


async def update(
    svc: Services, brand_id: int, segment_id: int, name: str, definition: Any
) -> SegmentRow:
    """A saved segment's new name and definition, checked as at creation. The campaigns
    that target it and have not launched yet go to it as it is now."""
    _check(name, definition)
    return await segments.update(svc.pool, brand_id, segment_id, name.strip(), definition)


async def get(svc: Services, brand_id: int, segment_id: int) -> SegmentRow:
    return await segments.get(svc.pool, brand_id, segment_id)


async def count_saved(svc: Services, brand_id: int, segment_id: int) -> Counted:
    saved = await segments.get(svc.pool, brand_id, segment_id)
    return await count_definition(svc, brand_id, saved.definition)


async def listed(
    svc: Services, brand_id: int, *, after_id: int = 0, limit: int = 100
) -> list[SegmentRow]:
    return await segments.listed(svc.pool, brand_id, after_id=after_id, limit=limit)


async def delete(svc: Services, brand_id: int, segment_id: int) -> None:
    await segments.delete(svc.pool, brand_id, segment_id)
