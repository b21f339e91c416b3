"""`/v1/webhooks`: the brand's outbound webhook endpoints (Standard Webhooks), their
secrets (shown once) and recent deliveries."""

# No `from __future__ import annotations`: FastAPI reads the endpoints' annotations.

from typing import Annotated

import msgspec
from fastapi import APIRouter, Depends, Path
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from clarion import service
from clarion.api import pages
from clarion.api.auth import Auth
from clarion.api.calls import call, respond
from clarion.domain.keys import ApiKey
from clarion.service.hooks import EVENT_TYPES

EndpointId = Annotated[int, Path(ge=1, le=2**63 - 1)]


class NewEndpoint(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=8, max_length=2000, description="Where to POST (https).")
    event_types: list[str] = Field(
        min_length=1, max_length=len(EVENT_TYPES), description=", ".join(EVENT_TYPES)
    )


def router(svc: service.Services, auth: Auth) -> APIRouter:
    r = APIRouter(tags=["webhooks"])
    Reader = Annotated[ApiKey, Depends(auth.require("read"))]
    Writer = Annotated[ApiKey, Depends(auth.require("write"))]

    @r.post("/webhooks", status_code=201, summary="Register a webhook endpoint")
    async def create_endpoint(body: NewEndpoint, key: Writer) -> Response:
        """The answer carries `secret` (`whsec_…`), once: each request is signed with it as
        Standard Webhooks sign (`webhook-id`, `webhook-timestamp`, `webhook-signature`).
        A request's body is `{"type": "batch", "data": [{"id", "type", "timestamp",
        "data"}]}`; an event's `id` is stable across retries."""
        made, secret = await call(
            service.hooks.create(svc, key.brand_id, body.url, body.event_types)
        )
        return respond({**_shown(made), "secret": secret}, 201)

    @r.get("/webhooks", summary="The brand's webhook endpoints")
    async def list_endpoints(
        key: Reader, limit: pages.Limit = 100, cursor: pages.Cursor = None
    ) -> Response:
        found = await service.hooks.listed(
            svc, key.brand_id, after_id=pages.decode(cursor), limit=limit + 1
        )
        return respond(pages.page(found, limit, lambda e: e.id, _shown))

    @r.get("/webhooks/{endpoint_id}", summary="An endpoint and its recent deliveries")
    async def get_endpoint(endpoint_id: EndpointId, key: Reader) -> Response:
        found = await call(service.hooks.get(svc, key.brand_id, endpoint_id))
        recent = await call(service.hooks.recent(svc, key.brand_id, endpoint_id))
        return respond({**_shown(found), "recent": recent})

    @r.post("/webhooks/{endpoint_id}/enable", summary="Enable a disabled endpoint again")
    async def enable_endpoint(endpoint_id: EndpointId, key: Writer) -> Response:
        return respond(_shown(await call(service.hooks.enable(svc, key.brand_id, endpoint_id))))

    @r.delete("/webhooks/{endpoint_id}", status_code=204, summary="Delete an endpoint")
    async def delete_endpoint(endpoint_id: EndpointId, key: Writer) -> Response:
        await call(service.hooks.delete(svc, key.brand_id, endpoint_id))
        return Response(status_code=204)

    return r


def _shown(e: object) -> dict[str, object]:
    shown: dict[str, object] = msgspec.to_builtins(e)
    return shown
