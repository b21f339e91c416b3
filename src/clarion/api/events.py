"""`/v1/events` (what subscribers did, up to 1,000 a request) and `/v1/products` (the
catalog their events name). Each event or product of a request is accepted or rejected on
its own, by index."""

# No `from __future__ import annotations`: FastAPI reads the endpoints' annotations.

from typing import Annotated, Any

import msgspec
from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from clarion import service
from clarion.api import pages
from clarion.api.auth import Auth
from clarion.api.calls import api_error, call, respond
from clarion.api.errors import ApiError, body
from clarion.domain.catalog import MAX_BATCH as MAX_PRODUCTS
from clarion.domain.catalog import MAX_ID_CHARS
from clarion.domain.events import MAX_BATCH as MAX_EVENTS
from clarion.domain.events import batch_schema, explain
from clarion.domain.keys import ApiKey
from clarion.domain.ports import Clock
from clarion.errors import ClarionError

ProductId = Annotated[str, Path(min_length=1, max_length=MAX_ID_CHARS)]


class _RawEvents(msgspec.Struct, forbid_unknown_fields=True):
    events: list[Any]


_decode_events = msgspec.json.Decoder(_RawEvents).decode


class ProductBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    products: list[dict[str, Any]] = Field(
        min_length=1,
        max_length=MAX_PRODUCTS,
        description="Each {id, name, url, price, image_url, categories, in_stock}.",
    )


def _rejected(found: list[tuple[int, ClarionError]]) -> list[dict[str, Any]]:
    out = []
    for index, error in found:
        e = api_error(error)
        out.append({"index": index, **body(e.code, str(e.detail), e.field)})
    return out


def router(svc: service.Services, auth: Auth, clock: Clock) -> APIRouter:
    r = APIRouter()
    Reader = Annotated[ApiKey, Depends(auth.require("read"))]
    Writer = Annotated[ApiKey, Depends(auth.require("write"))]

    @r.post(
        "/events",
        tags=["events"],
        summary="Record what subscribers did (up to 1,000 events)",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": batch_schema()}},
            }
        },
    )
    async def post_events(request: Request, key: Writer) -> Response:
        """Each event: `{"id", "type", "occurred_at", "subscriber": {"id" | "phone" |
        "email"}, "properties", "value", "items": [{"product_id", "quantity", "price"}]}`.
        Standard types are `viewed_product`, `added_to_cart`, `started_checkout` and
        `ordered` (`value`: the revenue); any other lower-case name is a custom type. The
        client's `id` makes a retry harmless: an event is stored once. Events are
        append-only."""
        try:
            batch = _decode_events(await request.body())
        except msgspec.ValidationError as exc:
            reason, field = explain(exc)
            raise ApiError(422, f"{field}: {reason}", field=field) from None
        except msgspec.DecodeError as exc:
            raise ApiError(422, f"body: not JSON ({exc})", field="body") from None
        if not 1 <= len(batch.events) <= MAX_EVENTS:
            raise ApiError(422, f"events: 1 to {MAX_EVENTS} a request", field="events")
        got = await call(service.events.ingest(svc, key.brand_id, batch.events, now=clock.now()))
        return respond(
            {
                "stored": got.stored,
                "duplicates": got.duplicates,
                "rejected": _rejected(got.rejected),
            }
        )

    @r.post("/products/batch", tags=["catalog"], summary="Add or replace up to 1,000 products")
    async def upsert_products(batch: ProductBatch, key: Writer) -> Response:
        """Products are keyed by the shop's own `id` (what events' items name): a product
        sent again replaces the one stored."""
        written, rejected = await call(service.catalog.upsert(svc, key.brand_id, batch.products))
        return respond({"written": written, "rejected": _rejected(rejected)})

    @r.get("/products", tags=["catalog"], summary="The brand's products")
    async def list_products(
        key: Reader, limit: pages.Limit = 100, cursor: pages.Cursor = None
    ) -> Response:
        found = await service.catalog.listed(
            svc, key.brand_id, after=pages.decode(cursor), limit=limit + 1
        )
        page = pages.page(found, limit, lambda sp: sp[0], lambda sp: sp[1])
        return respond(page)

    @r.get("/products/{product_id}", tags=["catalog"], summary="One product")
    async def get_product(product_id: ProductId, key: Reader) -> Response:
        return respond(await call(service.catalog.get(svc, key.brand_id, product_id)))

    return r
