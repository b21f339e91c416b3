"""Calling a use case from a `/v1` route: Clarion's errors become `ApiError`s (404, 409, 422,
…) naming the field; answers are encoded with msgspec (datetimes as RFC 3339)."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, TypeVar

import msgspec
from fastapi.responses import Response

from clarion.api.errors import ApiError
from clarion.errors import (
    CampaignStateError,
    ClarionError,
    Duplicate,
    Forbidden,
    InvalidInput,
    NotFound,
    Refused,
)

T = TypeVar("T")
_json = msgspec.json.Encoder()

# Clarion's errors as (HTTP status, code), most specific first.
_STATUS: tuple[tuple[type[ClarionError], int, str], ...] = (
    (NotFound, 404, "not_found"),
    (Forbidden, 403, "forbidden"),
    (Duplicate, 409, "duplicate"),
    (Refused, 409, "refused"),
    (CampaignStateError, 409, "conflict"),
    (InvalidInput, 422, "invalid"),
    (ClarionError, 400, "bad_request"),
)


def respond(value: Any, status_code: int = 200) -> Response:
    return Response(_json.encode(value), status_code=status_code, media_type="application/json")


async def call(use_case: Awaitable[T]) -> T:
    """Run a use case; its error becomes an API error whose message names the field, as
    "field: what" (a campaign of another brand is "campaign N not found", a 404)."""
    try:
        return await use_case
    except ClarionError as exc:
        raise api_error(exc) from None


def api_error(exc: ClarionError) -> ApiError:
    """Clarion's error as the API answers it."""
    status, code = next((s, c) for kind, s, c in _STATUS if isinstance(exc, kind))
    field = getattr(exc, "field", None)
    reason = getattr(exc, "reason", None)
    if isinstance(exc, NotFound):
        message = f"{exc.kind} {exc.key} not found"
    elif field and reason:
        message = f"{field}: {reason}"
    else:
        message = str(exc)
    # a duplicate names what it duplicates
    existing = getattr(exc, "existing_id", None)
    extra = {"existing_id": existing} if existing is not None else None
    return ApiError(status, message, code=code, field=field, extra=extra)
