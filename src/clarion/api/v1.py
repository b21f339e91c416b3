"""The `/v1` HTTP API. Every request carries `Authorization: Bearer <key>`; a key belongs to
one brand and sees only that brand's records (another brand's campaign is a 404)."""

# No `from __future__ import annotations` here: FastAPI reads the endpoints' annotations
# (including the local `Brand` dependency) at runtime.

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

import msgspec
from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import Response

from clarion.errors import NotFound
from clarion.pipeline.plan import SendPlan, plan_vs_actual
from clarion.providers.base import Provider
from clarion.report import campaign_progress
from clarion.runtime import planning
from clarion.store import api_keys, campaigns
from clarion.store.db import Pool

_json = msgspec.json.Encoder()


def _respond(value: Any, status_code: int = 200) -> Response:
    return Response(_json.encode(value), status_code=status_code, media_type="application/json")


@dataclass
class V1:
    """What the API reaches: the database, and (for plans) the provider's carrier lookup."""

    pool: Pool
    provider: Provider
    platform_rate_mps: float
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)

    async def brand(self, request: Request) -> int:
        """The brand of the request's bearer key (401 without a valid one)."""
        scheme, _, key = request.headers.get("authorization", "").partition(" ")
        brand_id = None
        if scheme.lower() == "bearer" and key:
            brand_id = await api_keys.brand_of(self.pool, key.strip())
        if brand_id is None:
            raise HTTPException(
                401, "a valid API key is required: Authorization: Bearer <key>",
                headers={"WWW-Authenticate": "Bearer"},
            )  # fmt: skip
        return brand_id

    async def _campaign(self, brand_id: int, campaign_id: int) -> dict[str, Any]:
        try:
            return await campaigns.get_campaign(self.pool, campaign_id, brand_id=brand_id)
        except NotFound:
            raise HTTPException(404, f"campaign {campaign_id} not found") from None

    def router(self) -> APIRouter:
        r = APIRouter(prefix="/v1")
        Brand = Annotated[int, Depends(self.brand)]

        @r.post("/campaigns/{campaign_id}/plan", summary="Compute a campaign's send plan")
        async def compute_plan(
            campaign_id: int,
            brand_id: Brand,
            at: Annotated[
                datetime | None, Query(description="Plan a launch at this time (default now).")
            ] = None,
        ) -> Response:
            """Before launch: recipients per lane and carrier, quiet hours and when they go,
            daily caps that will be hit, cost in segments, the estimated finish time. The
            plan is stored for the plan-versus-actual report."""
            await self._campaign(brand_id, campaign_id)
            when = at or self.clock()
            if when.tzinfo is None:
                when = when.replace(tzinfo=UTC)
            plan = await planning.plan_campaign(
                self.pool, self.provider, campaign_id, at=when,
                platform_rate_mps=self.platform_rate_mps,
            )  # fmt: skip
            return _respond(plan)

        @r.get("/campaigns/{campaign_id}/plan", summary="The campaign's last computed plan")
        async def get_plan(campaign_id: int, brand_id: Brand) -> Response:
            await self._campaign(brand_id, campaign_id)
            plan = await planning.stored_plan(self.pool, campaign_id)
            if plan is None:
                raise HTTPException(404, f"campaign {campaign_id} has no plan yet")
            return _respond(plan)

        @r.get("/campaigns/{campaign_id}", summary="A campaign, its progress and plan vs actual")
        async def get_campaign(campaign_id: int, brand_id: Brand) -> Response:
            c = await self._campaign(brand_id, campaign_id)
            p = await campaign_progress(self.pool, campaign_id)
            plan: SendPlan | None = await planning.stored_plan(self.pool, campaign_id)
            body: dict[str, Any] = {
                "id": c["id"],
                "name": c["name"],
                "status": c["status"],
                "launched_at": c["launched_at"],
                "audience": p.audience,
                "eligible": p.eligible,
                "by_status": p.by_status,
                "suppressed_by_reason": p.suppressed_by_reason,
                "deferred_by_reason": p.deferred_by_reason,
                "complete": p.complete,
                "plan_vs_actual": None,
            }
            if plan is not None:
                actual = await planning.actual(self.pool, campaign_id)
                body["plan_vs_actual"] = plan_vs_actual(plan, actual)
            return _respond(body)

        return r
