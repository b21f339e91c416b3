"""The `/v1` HTTP API. Every request carries `Authorization: Bearer <key>`; a key belongs to
one brand and sees only that brand's records (another brand's campaign is a 404)."""

# No `from __future__ import annotations` here: FastAPI reads the endpoints' annotations
# (including the local `Brand` dependency) at runtime.

import contextlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import msgspec
from fastapi import APIRouter, Depends, Header, HTTPException, Path, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field, field_validator

from clarion.bus.jetstream import Bus
from clarion.compliance.encoding import MAX_SMS_CHARS, sms_segments
from clarion.domain.contacts import normalize_phone
from clarion.domain.ids import api_message_id, partition_of
from clarion.domain.ports import Provider
from clarion.domain.records import OutboundMessage, RenderedBatch
from clarion.errors import InvalidPhoneNumber, NotFound
from clarion.pipeline.plan import SendPlan, plan_vs_actual
from clarion.report import campaign_progress
from clarion.runtime import planning
from clarion.store import api_keys, brands, campaigns, compliance, monitoring
from clarion.store.db import Pool

_json = msgspec.json.Encoder()

# Ids are Postgres bigints: a larger number is no id of anything (422, not an overflow).
CampaignId = Annotated[int, Path(ge=1, le=2**63 - 1)]
# The carrier report looks back at most 31 days.
MAX_REPORT_MINUTES = 31 * 24 * 60


def _respond(value: Any, status_code: int = 200) -> Response:
    return Response(_json.encode(value), status_code=status_code, media_type="application/json")


@dataclass
class V1:
    """What the API reaches: the database, the bus (transactional sends), and (for plans)
    the provider's carrier lookup."""

    pool: Pool
    bus: Bus
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

    async def _sender(self, brand_id: int, asked: str | None, default: str) -> str:
        """The sender a message goes from: the brand's default, or one of its own senders
        (never another brand's number: 422, without saying whose it is)."""
        if asked is None:
            return default
        forms = [asked.strip()]  # as stored, or as E.164 (a short code is no phone number)
        with contextlib.suppress(InvalidPhoneNumber):
            forms.append(normalize_phone(asked)[0])
        owned = await brands.senders_of(self.pool, brand_id)
        for number in forms:
            if number in owned:
                return number
        raise HTTPException(422, f"sender: {asked!r} is not one of this brand's senders")

    def router(self) -> APIRouter:
        r = APIRouter(prefix="/v1")
        Brand = Annotated[int, Depends(self.brand)]

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
        async def get_plan(campaign_id: CampaignId, brand_id: Brand) -> Response:
            await self._campaign(brand_id, campaign_id)
            plan = await planning.stored_plan(self.pool, campaign_id)
            if plan is None:
                raise HTTPException(404, f"campaign {campaign_id} has no plan yet")
            return _respond(plan)

        @r.get("/campaigns/{campaign_id}", summary="A campaign, its progress and plan vs actual")
        async def get_campaign(campaign_id: CampaignId, brand_id: Brand) -> Response:
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
            (invalid, landline), is refused. The same `Idempotency-Key` sends once."""
            try:
                to, _ = normalize_phone(message.to)
            except InvalidPhoneNumber as exc:
                raise HTTPException(422, f"to: {exc}") from None
            body = message.body.strip()
            if not body:
                raise HTTPException(422, "body: empty")
            b = await brands.get_brand(self.pool, brand_id)
            segments = sms_segments(body).segments
            if segments > b["max_segments"]:
                raise HTTPException(
                    422, f"body: {segments} segments; the brand's limit is {b['max_segments']}"
                )
            async with self.pool.acquire() as conn:
                sub_id, consent = await compliance.subscriber_consent(conn, brand_id, to)
                state = await compliance.gate_state(conn, brand_id, [], [to], self.clock())
            if consent == "opted_out":
                raise HTTPException(409, f"to: {to} opted out of {b['name']} (STOP)")
            if to in state.suppressed:
                raise HTTPException(409, f"to: {to} is suppressed ({state.suppressed[to]})")
            key = idempotency_key or uuid.uuid4().hex
            mid = api_message_id(brand_id, key)
            out = OutboundMessage(
                message_id=mid, subscriber_id=sub_id, to=to, body=body, segments=segments
            )  # fmt: skip
            batch = RenderedBatch(
                batch_id=f"api:{mid}", brand_id=brand_id, campaign_id=None,
                sender=await self._sender(brand_id, message.sender, b["sender"]),
                messages=[out], kind="transactional",
                partition=partition_of(sub_id, to),
            )  # fmt: skip
            await self.bus.publish("transactional", batch, msg_id=batch.batch_id)
            return _respond({"id": mid, "status": "queued", "segments": out.segments}, 202)

        @r.get("/messages/{message_id}", summary="A message's current status")
        async def get_message(message_id: uuid.UUID, brand_id: Brand) -> Response:
            row = await self.pool.fetchrow(
                "SELECT id::text, kind, to_address AS to, status, error_code, segments, sent_at,"
                " updated_at FROM messages WHERE id = $1 AND brand_id = $2",
                message_id,
                brand_id,
            )
            if row is None:
                raise HTTPException(404, f"message {message_id} not found")
            return _respond(dict(row))

        @r.get("/alerts", summary="The brand's open alerts (all with ?all=true)")
        async def get_alerts(brand_id: Brand, all: bool = False) -> Response:
            rows = await monitoring.list_alerts(self.pool, brand_id=brand_id, open_only=not all)
            return _respond(rows)

        @r.get("/carriers", summary="Delivery per carrier: outcomes, rate, latency, errors")
        async def get_carriers(
            brand_id: Brand,
            minutes: Annotated[int, Query(ge=1, le=MAX_REPORT_MINUTES)] = 60,
        ) -> Response:
            since = self.clock() - timedelta(minutes=minutes)
            return _respond(await monitoring.carrier_report(self.pool, brand_id, since))

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
