"""The `/v1` HTTP API. Every request carries `Authorization: Bearer <key>`; a key belongs to
one brand and sees only that brand's records (another brand's campaign is a 404)."""

# No `from __future__ import annotations` here: FastAPI reads the endpoints' annotations
# (including the local `Brand` dependency) at runtime.

import asyncio
import uuid
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query
from fastapi.responses import Response
from pydantic import BaseModel, Field, field_validator

from clarion import service
from clarion.api import (
    brand,
    campaigns,
    events,
    hooks,
    imports,
    keys,
    models,
    segments,
    subscribers,
)
from clarion.api.auth import Auth
from clarion.api.calls import call, respond
from clarion.api.errors import RESPONSES
from clarion.compliance.encoding import MAX_SMS_CHARS
from clarion.domain.clock import SystemClock
from clarion.domain.keys import ApiKey
from clarion.domain.ports import Clock

# The carrier report looks back at most 31 days.
MAX_REPORT_MINUTES = 31 * 24 * 60


@dataclass
class V1:
    """The API over the use cases (`clarion.service`); `clock` is the one it runs on (tests
    pin its decision time). Each route names the scope its key must hold (read, write,
    send)."""

    svc: service.Services
    clock: Clock = field(default_factory=SystemClock)
    rate_per_s: float = 100.0  # a key's requests a second, unless it has a rate of its own
    auth: Auth = field(init=False)
    # the imports this process runs in the background (`imports.cancel_all` at its stop)
    imports_running: set[asyncio.Task[object]] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.auth = Auth(self.svc, self.clock, rate_per_s=self.rate_per_s)

    def router(self) -> APIRouter:
        r = APIRouter(prefix="/v1", responses=RESPONSES)
        Reader = Annotated[ApiKey, Depends(self.auth.require("read"))]
        Sender = Annotated[ApiKey, Depends(self.auth.require("send"))]
        svc = self.svc

        @r.post(
            "/messages",
            status_code=202,
            summary="Send a transactional SMS (a one-time code, a confirmation)",
        )
        async def send_message(
            message: TransactionalMessage,
            key: Sender,
            idempotency_key: Annotated[str | None, Header(min_length=1, max_length=255)] = None,
        ) -> Response:
            """Queued on the transactional hop, with lanes of its own: it never waits behind a
            campaign. Not a marketing message, so marketing consent and quiet hours do not
            apply; a number that opted out of the brand (STOP), or that can never receive
            (invalid, landline), is refused. The same `Idempotency-Key` sends once. The
            sender, when given, must be one of the brand's own."""
            queued = await call(
                service.messages.send_transactional(
                    svc,
                    key.brand_id,
                    to=message.to,
                    body=message.body,
                    sender=message.sender,
                    idempotency_key=idempotency_key,
                    now=self.clock.now(),
                )
            )
            body = {"id": queued.id, "status": queued.status, "segments": queued.segments}
            return respond(body, 202)

        @r.get("/messages/{message_id}", summary="A message's current status")
        async def get_message(message_id: uuid.UUID, key: Reader) -> Response:
            return respond(await call(service.messages.status(svc, key.brand_id, message_id)))

        @r.get("/alerts", summary="The brand's open alerts (all with ?all=true)")
        async def get_alerts(key: Reader, all: bool = False) -> Response:
            rows = await service.monitoring.alerts(svc, brand_id=key.brand_id, include_cleared=all)
            return respond(rows)

        @r.get("/carriers", summary="Delivery per carrier: outcomes, rate, latency, errors")
        async def get_carriers(
            key: Reader,
            minutes: Annotated[int, Query(ge=1, le=MAX_REPORT_MINUTES)] = 60,
        ) -> Response:
            rows = await service.monitoring.carriers(
                svc, key.brand_id, minutes=minutes, now=self.clock.now()
            )
            return respond(rows)

        r.include_router(campaigns.router(svc, self.auth, self.clock))
        r.include_router(keys.router(svc, self.auth))
        r.include_router(brand.router(svc, self.auth))
        r.include_router(hooks.router(svc, self.auth))
        r.include_router(subscribers.router(svc, self.auth, self.clock))
        r.include_router(events.router(svc, self.auth, self.clock))
        r.include_router(imports.router(svc, self.auth, self.imports_running))
        r.include_router(segments.router(svc, self.auth))
        r.include_router(models.router(svc, self.auth, self.clock))
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
