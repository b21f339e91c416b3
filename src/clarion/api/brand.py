"""`/v1/brand`: the key's brand and its settings — global macros, the link domain, the
revenue attribution windows."""

# No `from __future__ import annotations`: FastAPI reads the endpoints' annotations.

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from clarion import service
from clarion.api.auth import Auth
from clarion.api.calls import call, respond
from clarion.domain.brands import MAX_MACRO_CHARS, MAX_MACROS
from clarion.domain.keys import ApiKey
from clarion.service.brands import MAX_WINDOW_H


class BrandChanges(BaseModel):
    """Only the fields given change."""

    model_config = ConfigDict(extra="forbid")

    macros: dict[str, Annotated[str, Field(max_length=MAX_MACRO_CHARS)]] | None = Field(
        default=None, max_length=MAX_MACROS,
        description="Its own `{{ brand.NAME }}` values, replaced whole.",
    )  # fmt: skip
    link_domain: str | None = Field(
        default=None, max_length=253,
        description="A host name pointed at Clarion for its short links; null: the install's.",
    )  # fmt: skip
    click_window_h: float | None = Field(default=None, ge=0, le=MAX_WINDOW_H)
    view_window_h: float | None = Field(default=None, ge=0, le=MAX_WINDOW_H)


def router(svc: service.Services, auth: Auth) -> APIRouter:
    r = APIRouter(tags=["brand"])
    Reader = Annotated[ApiKey, Depends(auth.require("read"))]
    Writer = Annotated[ApiKey, Depends(auth.require("write"))]

    async def shown(brand_id: int) -> dict[str, Any]:
        b = await call(service.brands.get(svc, brand_id))
        return {
            "id": b.id, "name": b.name, "sender": b.sender, "macros": b.macros,
            "link_domain": b.link_domain, "click_window_h": b.click_window_h,
            "view_window_h": b.view_window_h,
        }  # fmt: skip

    @r.get("/brand", summary="The key's brand and its settings")
    async def get_brand(key: Reader) -> Response:
        return respond(await shown(key.brand_id))

    @r.patch("/brand", summary="Change the brand's macros, link domain, attribution windows")
    async def update_brand(changes: BrandChanges, key: Writer) -> Response:
        """A link domain another brand has is a 409; a macro that is not a lower-case name
        and a text is a 422 naming it (`macros.NAME`)."""
        raw = changes.model_dump(exclude_unset=True)
        if "macros" in raw:
            await call(service.brands.set_macros(svc, key.brand_id, raw["macros"] or {}))
        if "link_domain" in raw:
            await call(service.links.set_link_domain(svc, key.brand_id, raw["link_domain"]))
        if "click_window_h" in raw or "view_window_h" in raw:
            now = await shown(key.brand_id)
            await call(
                service.brands.set_attribution_windows(
                    svc, key.brand_id,
                    now["click_window_h"] if raw.get("click_window_h") is None
                    else raw["click_window_h"],
                    now["view_window_h"] if raw.get("view_window_h") is None
                    else raw["view_window_h"],
                )
            )  # fmt: skip
        return respond(await shown(key.brand_id))

    return r
