"""The `/v1` API's errors: JSON `{"code", "message"}` with `field` naming the bad part of the
request when there is one (`definition.all[2].op`, `limit`), and, for a request that failed
validation in several places, each of them under `errors`. Never a traceback."""

from __future__ import annotations

from typing import Any

from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

# An error's `code` by HTTP status, when the error does not name its own.
CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid",
    429: "rate_limited",
    503: "unavailable",
}


class FieldError(BaseModel):
    field: str
    message: str


class ErrorBody(BaseModel):
    """What every `/v1` error answers with."""

    code: str
    message: str
    field: str | None = None
    errors: list[FieldError] | None = None
    existing_id: int | None = None  # a duplicate: the subscriber it duplicates


# The error responses every `/v1` operation may give, for the OpenAPI document.
RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": code.replace("_", " ")}
    for status, code in CODES.items()
    if status in (401, 403, 404, 409, 413, 422, 429)
}


class ApiError(HTTPException):
    """An HTTP error with Clarion's body: a code, a message, and the field it is about."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        field: str | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(status, message, headers=headers)
        self.code = code or CODES.get(status, "error")
        self.field = field
        self.extra = extra or {}


def body(code: str, message: str, field: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"code": code, "message": message}
    if field is not None:
        out["field"] = field
    return out


def field_path(loc: tuple[Any, ...] | list[Any]) -> str:
    """A validation error's location as a path: ('body', 'definition', 'all', 2, 'op') is
    `definition.all[2].op`; ('query', 'limit') is `limit`."""
    parts = list(loc)
    if parts and parts[0] in ("body", "query", "path", "header", "cookie"):
        parts = parts[1:]
    out = ""
    for p in parts:
        if isinstance(p, int):
            out += f"[{p}]"
        elif p not in ("function-after",) and not str(p).startswith("function-"):
            out += f".{p}" if out else str(p)
    return out or "body"


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = getattr(exc, "code", None) or CODES.get(exc.status_code, "error")
    field = getattr(exc, "field", None)
    headers = dict(exc.headers) if exc.headers else None
    out = {**body(code, str(exc.detail), field), **getattr(exc, "extra", {})}
    return JSONResponse(out, exc.status_code, headers=headers)


async def validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    found = []
    for e in exc.errors():
        message = str(e.get("msg", "invalid"))
        if e.get("type") == "extra_forbidden":
            message = "unknown field"
        found.append({"field": field_path(e.get("loc", ())), "message": message})
    if not found:
        found = [{"field": "body", "message": "invalid request"}]
    first = found[0]
    out = body("invalid", f"{first['field']}: {first['message']}", first["field"])
    if len(found) > 1:
        out["errors"] = found
    return JSONResponse(out, 422)
