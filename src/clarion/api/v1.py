"""The `/v1` HTTP API. Every request carries `Authorization: Bearer <key>`; a key belongs to
one brand and sees only that brand's records (another brand's campaign is a 404)."""

# No `from __future__ import annotations` here: FastAPI reads the endpoints' annotations
# (including the local `Brand` dependency) at runtime.

import uuid
from collections.abc import Awaitable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any, TypeVar

import msgspec
from fastapi import APIRouter, Depends, Header, HTTPException, Path, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field, field_validator

from clarion import service
from clarion.compliance.encoding import MAX_SMS_CHARS
from clarion.domain.clock import SystemClock
from clarion.domain.ports import Clock
from clarion.errors import CampaignStateError, ClarionError, InvalidInput, NotFound, Refused

_json = msgspec.json.Encoder()
T = TypeVar("T")

# Ids are Postgres bigints: a larger number is no id of anything (422, not an overflow).
CampaignId = Annotated[int, Path(ge=1, le=2**63 - 1)]
# The carrier report looks back at most 31 days.
MAX_REPORT_MINUTES = 31 * 24 * 60
# Clarion's errors as HTTP statuses, most specific first.
_STATUS: tuple[tuple[type[ClarionError], int], ...] = (
    (NotFound, 404),
    (Refused, 409),
    (CampaignStateError, 409),
    (InvalidInput, 422),
    (ClarionError, 400),
)


def _respond(value: Any, status_code: int = 200) -> Response:
    return Response(_json.encode(value), status_code=status_code, media_type="application/json")


async def _call(use_case: Awaitable[T]) -> T:
    """Run a use case; its error becomes an HTTP error whose detail names the field, as
    "field: what" (a campaign of another brand is "campaign N not found", a 404)."""
    try:
        return await use_case
    except ClarionError as exc:
        status = next(code for kind, code in _STATUS if isinstance(exc, kind))
        field = getattr(exc, "field", None)
        reason = getattr(exc, "reason", None)
        if isinstance(exc, NotFound):
            detail = f"{exc.kind} {exc.key} not found"
        elif field and reason:
            detail = f"{field}: {reason}"
        else:
            detail = str(exc)
        raise HTTPException(status, detail) from None


@dataclass
class V1:
    """The API over the use cases (`clarion.service`); `clock` is the one it runs on (tests
    pin its decision time)."""

    svc: service.Services
    clock: Clock = field(default_factory=SystemClock)

    async def brand(self, request: Request) -> int:
        """The brand of the request's bearer key (401 without a valid one)."""
        scheme, _, key = request.headers.get("authorization", "").partition(" ")
        brand_id = None
        if scheme.lower() == "bearer" and key:
            brand_id = await service.brands.brand_of_key(self.svc, key.strip())
        if brand_id is None:
            raise HTTPException(
                401, "a valid API key is required: Authorization: Bearer <key>",
                headers={"WWW-Authenticate": "Bearer"},
            )  # fmt: skip
        return brand_id

    def router(self) -> APIRouter:
        r = APIRouter(prefix="/v1")
        Brand = Annotated[int, Depends(self.brand)]
        svc = self.svc

        @r.post("/campaigns/{campaign_id}/plan", summary="Compute a campaign's send plan")
        async def compute_plan(
            campaign_id: CampaignId,
            brand_id: Brand,
            at: Annotated[
                datetime | None, Query(description="Plan a launch at this time (default now).")
            ] = None,
        ) -> Response:
            """Before launch: recipients per lane and carrier, quiet hours and when they go,
            daily caps that will be hit, cost in segments, the estimated finish time. The
            plan is stored for the plan-versus-actual report."""
            when = at or self.clock.now()
            plan = await _call(service.campaigns.plan(svc, campaign_id, at=when, brand_id=brand_id))
            return _respond(plan)

        @r.get("/campaigns/{campaign_id}/plan", summary="The campaign's last computed plan")
        async def get_plan(campaign_id: CampaignId, brand_id: Brand) -> Response:
            plan = await _call(service.campaigns.stored_plan(svc, campaign_id, brand_id=brand_id))
            if plan is None:
                raise HTTPException(404, f"campaign {campaign_id} has no plan yet")
            return _respond(plan)

        @r.get("/campaigns/{campaign_id}", summary="A campaign, its progress and plan vs actual")
        async def get_campaign(campaign_id: CampaignId, brand_id: Brand) -> Response:
            st = await _call(service.campaigns.status(svc, campaign_id, brand_id=brand_id))
            c, p = st.campaign, st.progress
            return _respond(
                {
                    "id": c.id,
                    "name": c.name,
                    "status": c.status,
                    "launched_at": c.launched_at,
                    "audience": p.audience,
                    "eligible": p.eligible,
                    "by_status": p.by_status,
                    "suppressed_by_reason": p.suppressed_by_reason,
                    "deferred_by_reason": p.deferred_by_reason,
                    "complete": p.complete,
                    "plan_vs_actual": st.plan_vs_actual,
                }
            )

        @r.post(
            "/messages",
            status_code=202,
            summary="Send a transactional SMS (a one-time code, a confirmation)",
        )
        async def send_message(
            message: TransactionalMessage,
            brand_id: Brand,
            idempotency_key: Annotated[str | None, Header(min_length=1, max_length=255)] = None,
        ) -> Response:
            """Queued on the transactional hop, with lanes of its own: it never waits behind a
            campaign. Not a marketing message, so marketing consent and quiet hours do not
            apply; a number that opted out of the brand (STOP), or that can never receive
            (invalid, landline), is refused. The same `Idempotency-Key` sends once. The
            sender, when given, must be one of the brand's own."""
            queued = await _call(
                service.messages.send_transactional(
                    svc,
                    brand_id,
                    to=message.to,
                    body=message.body,
                    sender=message.sender,
                    idempotency_key=idempotency_key,
                    now=self.clock.now(),
                )
            )
            body = {"id": queued.id, "status": queued.status, "segments": queued.segments}
            return _respond(body, 202)

        @r.get("/messages/{message_id}", summary="A message's current status")
        async def get_message(message_id: uuid.UUID, brand_id: Brand) -> Response:
            return _respond(await _call(service.messages.status(svc, brand_id, message_id)))

        @r.get("/alerts", summary="The brand's open alerts (all with ?all=true)")
        async def get_alerts(brand_id: Brand, all: bool = False) -> Response:
            rows = await service.monitoring.alerts(svc, brand_id=brand_id, include_cleared=all)
            return _respond(rows)

        @r.get("/carriers", summary="Delivery per carrier: outcomes, rate, latency, errors")
        async def get_carriers(
            brand_id: Brand,
            minutes: Annotated[int, Query(ge=1, le=MAX_REPORT_MINUTES)] = 60,
        ) -> Response:
            rows = await service.monitoring.carriers(
                svc, brand_id, minutes=minutes, now=self.clock.now()
            )
            return _respond(rows)

        return r


class TransactionalMessage(BaseModel):
    to: str = Field(max_length=64)
    body: str = Field(max_length=MAX_SMS_CHARS)  # and at most the brand's max_segments
    sender: str | None = Field(default=None, max_length=64)  # default: the brand's sender

    @field_validator("to", "body", "sender")
    @classmethod
    def _no_nul(cls, value: str | None) -> str | None:
        # Postgres text cannot hold NUL: such a message was accepted, then failed at every
        # retry of its batch
        if value is not None and "\x00" in value:
            raise ValueError("contains a NUL character")
        return value
