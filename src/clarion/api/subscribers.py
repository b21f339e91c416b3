"""`/v1/subscribers`: one at a time, in batches of up to 1,000 (each accepted or rejected by
index), looked up by phone (any format) or email, changed, erased."""

# No `from __future__ import annotations`: FastAPI reads the endpoints' annotations.

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from clarion import service
from clarion.api import pages
from clarion.api.auth import Auth
from clarion.api.calls import api_error, call, respond
from clarion.api.errors import body
from clarion.domain.keys import ApiKey
from clarion.domain.ports import Clock
from clarion.domain.subscribers import (
    MAX_ATTRIBUTES,
    MAX_DISCLOSURE_CHARS,
    MAX_EMAIL_CHARS,
    MAX_NAME_CHARS,
    MAX_SOURCE_CHARS,
    Subscriber,
)
from clarion.service.subscribers import MAX_BATCH

SubscriberId = Annotated[int, Path(ge=1, le=2**63 - 1)]


class ConsentBody(BaseModel):
    """Consent on one channel and its evidence."""

    model_config = ConfigDict(extra="forbid")

    source: str = Field(max_length=MAX_SOURCE_CHARS, description="Where it was given.")
    disclosure: str | None = Field(
        default=None, max_length=MAX_DISCLOSURE_CHARS, description="The words agreed to."
    )
    status: Literal["opted_in", "opted_out"] = "opted_in"


class SubscriberBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    phone: str | None = Field(default=None, max_length=64, description="Any format.")
    email: str | None = Field(default=None, max_length=MAX_EMAIL_CHARS)
    timezone: str | None = Field(default=None, max_length=64, description="An IANA zone.")
    first_name: str | None = Field(default=None, max_length=MAX_NAME_CHARS)
    last_name: str | None = Field(default=None, max_length=MAX_NAME_CHARS)
    attributes: dict[str, str | int | float | bool | None] | None = Field(
        default=None, max_length=MAX_ATTRIBUTES, description="null removes one (PATCH)."
    )
    consent: dict[Literal["sms", "email"], ConsentBody | None] | None = None


class BatchBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    subscribers: list[dict[str, Any]] = Field(
        min_length=1, max_length=MAX_BATCH, description="Subscribers as POST /v1/subscribers."
    )


class SignupBody(BaseModel):
    """A sign-up form's submission, with the evidence of consent."""

    model_config = ConfigDict(extra="forbid")

    phone: str | None = Field(
        default=None, max_length=64, description="The number to text a confirmation to."
    )
    email: str | None = Field(
        default=None, max_length=MAX_EMAIL_CHARS,
        description="The address to email a confirmation link to.",
    )  # fmt: skip
    page: str = Field(max_length=2000, description="The page the form was on.")
    disclosure: str = Field(
        max_length=MAX_DISCLOSURE_CHARS, description="The consent text the visitor was shown."
    )
    ip: str = Field(max_length=64, description="The visitor's IP address.")
    user_agent: str | None = Field(default=None, max_length=1000)
    first_name: str | None = Field(default=None, max_length=MAX_NAME_CHARS)
    last_name: str | None = Field(default=None, max_length=MAX_NAME_CHARS)
    attributes: dict[str, str | int | float | bool | None] | None = Field(
        default=None, max_length=MAX_ATTRIBUTES
    )


def shown(s: Subscriber) -> Subscriber:
    return s


def router(svc: service.Services, auth: Auth, clock: Clock) -> APIRouter:
    r = APIRouter(tags=["subscribers"])
    Reader = Annotated[ApiKey, Depends(auth.require("read"))]
    Writer = Annotated[ApiKey, Depends(auth.require("write"))]

    @r.post("/subscribers", status_code=201, summary="Add a subscriber")
    async def create(new: SubscriberBody, key: Writer) -> Response:
        """A second subscriber with the same phone or email is a 409 naming the existing one
        (`existing_id`). Consent given is recorded in the ledger with its evidence."""
        raw = new.model_dump(exclude_unset=True)
        made = await call(service.subscribers.create(svc, key.brand_id, raw, key_id=key.id))
        return respond(made, 201)

    @r.post("/subscribers/batch", summary="Add up to 1,000 subscribers, each on its own")
    async def create_batch(batch: BatchBody, key: Writer) -> Response:
        """Each subscriber is created or rejected on its own: the answer lists them by index,
        with the id made or the error (and, for a duplicate, the existing id)."""
        outcomes = await call(
            service.subscribers.create_batch(svc, key.brand_id, batch.subscribers, key_id=key.id)
        )
        results = []
        for o in outcomes:
            if o.error is None:
                results.append({"index": o.index, "status": "created", "id": o.id})
                continue
            e = api_error(o.error)
            error = body(e.code, str(e.detail), e.field)
            item = {"index": o.index, "status": "rejected", "error": error}
            if o.existing_id is not None:
                item["existing_id"] = o.existing_id
            results.append(item)
        created = sum(1 for x in results if x["status"] == "created")
        return respond({"created": created, "rejected": len(results) - created, "results": results})

    @r.post(
        "/signups",
        status_code=202,
        summary="A sign-up form's submission: double opt-in by text and/or email",
        responses={200: {"description": "subscribed already: nothing sent"}},
    )
    async def signup(form: SignupBody, key: Writer) -> Response:
        """The number or address becomes a subscriber who is not sendable yet on that
        channel. A number is texted "Reply Y to confirm…", an address emailed a link to a
        page whose button confirms, on the transactional path (once a day at most per
        channel, whatever the number of sign-ups). The consent ledger records the request
        with its evidence (page, the disclosure shown, IP address, user agent) and, on the
        reply Y or the button, the opt-in with that answer's evidence. `channels` gives each
        channel's outcome. A number that texted STOP is a 409: it subscribes again by
        texting START or JOIN; so is a phone and an email of two different subscribers."""
        raw = form.model_dump(exclude_unset=True)
        done = await call(
            service.signups.signup(svc, key.brand_id, raw, key_id=key.id, now=clock.now())
        )
        body = {
            "subscriber_id": done.subscriber_id,
            "status": done.status,
            "confirmation_id": done.confirmation_id,
            "channels": {
                channel: {"status": a.status, "confirmation_id": a.confirmation_id}
                for channel, a in done.channels.items()
            },
        }
        return respond(body, 200 if done.status == "confirmed" else 202)

    @r.get("/subscribers", summary="The brand's subscribers, or the one with a phone or email")
    async def list_subscribers(
        key: Reader,
        phone: Annotated[str | None, Query(max_length=64, description="Any format.")] = None,
        email: Annotated[str | None, Query(max_length=MAX_EMAIL_CHARS)] = None,
        limit: pages.Limit = 100,
        cursor: pages.Cursor = None,
    ) -> Response:
        if phone is not None or email is not None:
            found = await call(
                service.subscribers.find(svc, key.brand_id, phone=phone, email=email)
            )
            return respond({"data": found, "next_cursor": None})
        listed = await service.subscribers.listed(
            svc, key.brand_id, after_id=pages.decode(cursor), limit=limit + 1
        )
        return respond(pages.page(listed, limit, lambda s: s.id, shown))

    @r.get("/subscribers/{subscriber_id}", summary="A subscriber and their current consent")
    async def get(subscriber_id: SubscriberId, key: Reader) -> Response:
        return respond(await call(service.subscribers.get(svc, key.brand_id, subscriber_id)))

    @r.patch("/subscribers/{subscriber_id}", summary="Change a subscriber")
    async def update(subscriber_id: SubscriberId, changes: SubscriberBody, key: Writer) -> Response:
        """Only the fields given change; attributes are merged (an attribute given as null is
        removed); consent given is appended to the ledger."""
        raw = changes.model_dump(exclude_unset=True)
        return respond(
            await call(
                service.subscribers.update(svc, key.brand_id, subscriber_id, raw, key_id=key.id)
            )
        )

    @r.delete("/subscribers/{subscriber_id}", status_code=204, summary="Erase a subscriber's data")
    async def erase(subscriber_id: SubscriberId, key: Writer) -> Response:
        """Personal data is erased (phone, email, names, attributes, message texts); the
        consent ledger keeps its legal record, ending with an opt-out."""
        source = f"api erasure (key {key.id})"
        await call(service.subscribers.erase(svc, key.brand_id, subscriber_id, source=source))
        return Response(status_code=204)

    return r
