"""`/v1/keys`: a brand's API keys — listed without their secrets, created and rotated (the
secret shown once, in that answer), revoked."""

# No `from __future__ import annotations`: FastAPI reads the endpoints' annotations.

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from clarion import service
from clarion.api import pages
from clarion.api.auth import Auth
from clarion.api.calls import call, respond
from clarion.domain.keys import SCOPES, ApiKey

KeyId = Annotated[int, Path(ge=1, le=2**63 - 1)]


class NewKey(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    scopes: list[str] = Field(default=list(SCOPES), min_length=1, max_length=len(SCOPES))
    rate_per_s: float | None = Field(default=None, gt=0, le=100_000)


def shown(key: ApiKey) -> dict[str, Any]:
    return {
        "id": key.id,
        "name": key.name,
        "scopes": key.scopes,
        "hint": key.hint,
        "created_at": key.created_at,
        "last_used_at": key.last_used_at,
        "revoked_at": key.revoked_at,
        "rate_per_s": key.rate_per_s,
    }


def router(svc: service.Services, auth: Auth) -> APIRouter:
    r = APIRouter(tags=["keys"])
    Reader = Annotated[ApiKey, Depends(auth.require("read"))]
    Writer = Annotated[ApiKey, Depends(auth.require("write"))]

    @r.get("/keys", summary="The brand's API keys (without their secrets)")
    async def list_keys(
        key: Reader, limit: pages.Limit = 100, cursor: pages.Cursor = None
    ) -> Response:
        found = await service.keys.listed(
            svc, key.brand_id, after_id=pages.decode(cursor), limit=limit + 1
        )
        return respond(pages.page(found, limit, lambda k: k.id, shown))

    @r.post("/keys", status_code=201, summary="Create a key (its secret is shown this once)")
    async def create_key(new: NewKey, key: Writer) -> Response:
        """A key may only grant scopes it holds itself."""
        made, secret = await call(
            service.keys.create(
                svc, key.brand_id, new.name, new.scopes, rate_per_s=new.rate_per_s, by=key
            )
        )
        return respond({**shown(made), "secret": secret}, 201)

    @r.get("/keys/{key_id}", summary="One of the brand's keys")
    async def get_key(key_id: KeyId, key: Reader) -> Response:
        return respond(shown(await call(service.keys.get(svc, key.brand_id, key_id))))

    @r.post("/keys/{key_id}/rotate", summary="A new secret for a key; the old one stops working")
    async def rotate_key(key_id: KeyId, key: Writer) -> Response:
        made, secret = await call(service.keys.rotate(svc, key.brand_id, key_id, by=key))
        return respond({**shown(made), "secret": secret})

    @r.delete("/keys/{key_id}", summary="Revoke a key: its next request gets 401")
    async def revoke_key(key_id: KeyId, key: Writer) -> Response:
        return respond(shown(await call(service.keys.revoke(svc, key.brand_id, key_id))))

    return r
