"""`/v1/segments`: definitions counted before saving, saved segments and their live
counts."""

# No `from __future__ import annotations`: FastAPI reads the endpoints' annotations.

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from clarion import service
from clarion.api import pages
from clarion.api.auth import Auth
from clarion.api.calls import call, respond
from clarion.domain.keys import ApiKey

SegmentId = Annotated[int, Path(ge=1, le=2**63 - 1)]
_DEFINITION = (
    "JSON conditions: all/any/not; attribute, field (phone email timezone state first_name"
    " last_name) with op eq ne in not_in contains starts_with gt gte lt lte exists"
    " not_exists; consent (sms, email); subscribed_within_days; event (count, within_days,"
    " where); message (sent, delivered; campaign_id, within_days, count). See docs/api.md."
)


class Definition(BaseModel):
    model_config = ConfigDict(extra="forbid")

    definition: dict[str, Any] = Field(description=_DEFINITION)


class NewSegment(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    definition: dict[str, Any] = Field(description=_DEFINITION)


def router(svc: service.Services, auth: Auth) -> APIRouter:
    r = APIRouter(tags=["segments"])
    Reader = Annotated[ApiKey, Depends(auth.require("read"))]
    Writer = Annotated[ApiKey, Depends(auth.require("write"))]

    @r.post("/segments/count", summary="Count a definition before saving it")
    async def count_definition(body: Definition, key: Reader) -> Response:
        """`{"count": N, "took_ms": …}`. An invalid definition is a 422 naming the path of
        the bad part (`definition.all[2].op`)."""
        got = await call(service.segments.count_definition(svc, key.brand_id, body.definition))
        return respond({"count": got.count, "took_ms": got.took_ms})

    @r.post("/segments", status_code=201, summary="Save a segment")
    async def create_segment(body: NewSegment, key: Writer) -> Response:
        made = await call(service.segments.create(svc, key.brand_id, body.name, body.definition))
        return respond(made, 201)

    @r.get("/segments", summary="The brand's segments")
    async def list_segments(
        key: Reader, limit: pages.Limit = 100, cursor: pages.Cursor = None
    ) -> Response:
        found = await service.segments.listed(
            svc, key.brand_id, after_id=pages.decode(cursor), limit=limit + 1
        )
        return respond(pages.page(found, limit, lambda x: x.id, lambda x: x))

    @r.get("/segments/{segment_id}", summary="A segment")
    async def get_segment(segment_id: SegmentId, key: Reader) -> Response:
        return respond(await call(service.segments.get(svc, key.brand_id, segment_id)))

    @r.get("/segments/{segment_id}/count", summary="A segment's live count")
    async def count_segment(segment_id: SegmentId, key: Reader) -> Response:
        got = await call(service.segments.count_saved(svc, key.brand_id, segment_id))
        return respond({"count": got.count, "took_ms": got.took_ms})

    @r.delete("/segments/{segment_id}", status_code=204, summary="Delete a segment")
    async def delete_segment(segment_id: SegmentId, key: Writer) -> Response:
        await call(service.segments.delete(svc, key.brand_id, segment_id))
        return Response(status_code=204)

    return r
