"""Cursor pagination for `/v1` lists: `?limit=` (1 to 1000, default 100) and `?cursor=` from
the previous page's `next_cursor` (null on the last page). A cursor is opaque to clients: a
list's position (the last id it gave), encoded."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from typing import Annotated, Any, TypeVar

from fastapi import Query

from clarion.api.errors import ApiError

T = TypeVar("T")
Limit = Annotated[int, Query(ge=1, le=1000, description="Items per page (at most 1000).")]
Cursor = Annotated[
    str | None,
    Query(max_length=64, description="`next_cursor` of the previous page; none for the first."),
]
_VERSION = "1:"


def encode(after_id: int) -> str:
    return base64.urlsafe_b64encode(f"{_VERSION}{after_id}".encode()).decode().rstrip("=")


def decode(cursor: str | None) -> int:
    """The id a cursor continues after (0 without one); 422 naming `cursor` for one this API
    did not give."""
    if not cursor:
        return 0
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        text = ""
    if not text.startswith(_VERSION) or not text[len(_VERSION) :].isdigit():
        raise ApiError(422, "not a cursor this API gave", field="cursor")
    after = int(text[len(_VERSION) :])
    if after >= 2**63:
        raise ApiError(422, "not a cursor this API gave", field="cursor")
    return after


def page(
    items: Sequence[T], limit: int, id_of: Callable[[T], int], shown: Callable[[T], Any]
) -> dict[str, Any]:
    """A page of a list read with `limit + 1` items: the first `limit` of them, and the cursor
    to the next page when there was one more."""
    more = len(items) > limit
    kept = list(items[:limit])
    return {
        "data": [shown(i) for i in kept],
        "next_cursor": encode(id_of(kept[-1])) if more and kept else None,
    }
