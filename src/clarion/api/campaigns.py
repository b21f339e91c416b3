"""`/v1/campaigns`: drafts authored, listed, changed and deleted; launched, paused, resumed
and cancelled; planned before launch and followed after."""

# No `from __future__ import annotations`: FastAPI reads the endpoints' annotations.

import re
from collections.abc import Awaitable
from datetime import date as date_
from datetime import datetime
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, field_validator

from clarion import service
from clarion.api import pages
from clarion.api.auth import Auth
from clarion.api.calls import api_error, call, respond
from clarion.api.errors import ApiError
from clarion.domain.keys import ApiKey
from clarion.domain.ports import Clock
from clarion.domain.rows import CampaignRow, CampaignSummary
from clarion.errors import ClarionError, InvalidInput
from clarion.service.campaigns import MAX_EXCLUSIONS, MAX_NAME_CHARS, MAX_TEMPLATE_CHARS

T = TypeVar("T")
MAX_ID = 2**63 - 1  # ids are Postgres bigints: a larger number is no id of anything
CampaignId = Annotated[int, Path(ge=1, le=MAX_ID)]
SegmentId = Annotated[int, Field(ge=1, le=MAX_ID)]
Channel = Literal["sms", "email", "both"]
Status = Literal["draft", "scheduled", "sending", "paused", "cancelled"]  # CAMPAIGN_STATUSES
_TEMPLATE = "a Jinja2 template ({{ first_name }}, {{ brand.name }}, filters, conditions)"


class AudienceBody(BaseModel):
    """A segment or a definition of the campaign's own, less the exclusion segments'
    subscribers; neither (or no audience at all): the brand's whole list."""

    model_config = ConfigDict(extra="forbid")

    segment_id: SegmentId | None = None
    definition: dict[str, Any] | None = Field(
        default=None, description="A segment definition of its own, as POST /v1/segments takes."
    )
    exclude_segment_ids: list[SegmentId] = Field(default_factory=list, max_length=MAX_EXCLUSIONS)


class VariantBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=100)
    weight: float | None = Field(
        default=None, gt=0, le=100, description="Percent of the (test) audience; all sum to 100."
    )
    body: str = Field(min_length=1, max_length=MAX_TEMPLATE_CHARS, description="The SMS text.")
    subject: str | None = Field(default=None, max_length=MAX_TEMPLATE_CHARS)
    email_body: str | None = Field(default=None, max_length=MAX_TEMPLATE_CHARS)
    email_html: str | None = Field(default=None, max_length=MAX_TEMPLATE_CHARS)


class AbBody(BaseModel):
    """`split`: each subscriber gets a variant by the weights. `test`: a `sample` of the
    audience does; after `wait_minutes` the winner by `metric` goes to the rest.
    `adaptive`: the audience goes out in `rounds` (each but the last `round_share` of it)
    `wait_minutes` apart, each split by the variants' chance of being the best so far (at
    least `floor` each), until one is the best with P >= `confidence`."""

    model_config = ConfigDict(extra="forbid")

    mode: Literal["split", "test", "adaptive"] = "split"
    sample: float = Field(default=0.2, ge=0.01, le=0.9)
    wait_minutes: int = Field(default=60, ge=1, le=7 * 24 * 60)
    metric: Literal["click_rate", "revenue_per_recipient"] = "click_rate"
    alpha: float = Field(default=0.05, ge=0.001, le=0.2)
    fallback: Literal["leader", "first"] = "leader"
    rounds: int = Field(default=5, ge=2, le=20)
    round_share: float = Field(default=0.1, ge=0.01, le=0.5)
    floor: float = Field(default=0.05, ge=0, le=0.2)
    confidence: float = Field(default=0.95, ge=0.5, le=0.999)
    click_delay_minutes: float = Field(
        default=15.0, ge=0, le=24 * 60,
        description="Half of a message's clicks come within this (0: count them all at once).",
    )  # fmt: skip


class NewCampaign(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=MAX_NAME_CHARS)
    channel: Channel = "sms"
    body: str = Field(
        default="", max_length=MAX_TEMPLATE_CHARS,
        description=f"The SMS text: {_TEMPLATE} (with `variants`: the first's).",
    )  # fmt: skip
    variants: list[VariantBody] | None = Field(
        default=None, min_length=1, max_length=5,
        description="One to five variants (their texts instead of body, subject, email_body).",
    )  # fmt: skip
    ab: AbBody | None = None
    track_links: bool = Field(
        default=True, description="Its URLs become tracked short links, one per recipient."
    )
    subject: str | None = Field(
        default=None, max_length=MAX_TEMPLATE_CHARS, description="Email subject (default: name)."
    )
    email_body: str | None = Field(
        default=None, max_length=MAX_TEMPLATE_CHARS, description="Email text (default: body)."
    )
    email_html: str | None = Field(
        default=None, max_length=MAX_TEMPLATE_CHARS,
        description="Email HTML (a template; fields are escaped; its links tracked).",
    )  # fmt: skip
    audience: AudienceBody | None = None


class CampaignChanges(BaseModel):
    """Only the fields given change; `audience`, when given, is replaced whole (null: the
    whole list)."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=MAX_NAME_CHARS)
    channel: Channel | None = None
    body: str | None = Field(default=None, min_length=1, max_length=MAX_TEMPLATE_CHARS)
    subject: str | None = Field(default=None, max_length=MAX_TEMPLATE_CHARS)
    email_body: str | None = Field(default=None, max_length=MAX_TEMPLATE_CHARS)
    email_html: str | None = Field(default=None, max_length=MAX_TEMPLATE_CHARS)
    audience: AudienceBody | None = None
    variants: list[VariantBody] | None = Field(default=None, min_length=1, max_length=5)
    ab: AbBody | None = None
    track_links: bool | None = None

    @field_validator("name", "channel", "body", "track_links")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        # runs only for a field given: one that is left out keeps its value
        if value is None:
            raise ValueError("may be left out, not null")
        return value


class ScheduleBody(BaseModel):
    """`at` a time; or `local_time` (HH:MM) on `date` (default today) on each subscriber's
    clock, sent in waves by zone; or `best_time_h`: each subscriber at their best time
    within that many hours of `at` (default now)."""

    model_config = ConfigDict(extra="forbid")

    at: datetime | None = Field(default=None, description="When to launch (with its offset).")
    local_time: str | None = Field(
        default=None, min_length=5, max_length=5, description="HH:MM on each subscriber's clock."
    )
    date: date_ | None = Field(default=None, description="The day of a local-time send.")
    best_time_h: int | None = Field(
        default=None, ge=1, le=72,
        description="Each subscriber at their best hour within this many hours of `at` (the "
        "brand's send-time model; the compliance window still governs).",
    )  # fmt: skip


class LaunchBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    relaunch: bool = Field(
        default=False, description="Launch again a campaign launched already (it resumes)."
    )


def targeting(segment_id: int | None, exclude: list[int], definition: Any) -> dict[str, Any]:
    """A campaign's audience as a body gives it (answered as `targeting`: `audience` in a
    campaign's progress has long been its number of recipients)."""
    return {"segment_id": segment_id, "definition": definition, "exclude_segment_ids": exclude}


def summary(c: CampaignSummary | CampaignRow) -> dict[str, Any]:
    return {
        "id": c.id,
        "name": c.name,
        "status": c.status,
        "channel": c.channel,
        "created_at": c.created_at,
        "launched_at": c.launched_at,
        "scheduled_at": c.scheduled_at,
        "targeting": targeting(c.segment_id, c.exclude_segment_ids, c.audience_definition),
    }


def shown(c: CampaignRow) -> dict[str, Any]:
    return {
        **summary(c), "body": c.body, "subject": c.subject, "email_body": c.email_body,
        "email_html": c.email_html,
        "variants": c.variants, "ab": c.ab, "ab_winner": c.ab_winner,
        "ab_decision": c.ab_decision, "track_links": c.track_links,
    }  # fmt: skip


# The service names an audience's parts as its own arguments; a body nests them in
# `audience`, and an error names them as the body does (`audience.definition.all[1].op`).
_IN_AUDIENCE = {
    "segment_id": "audience.segment_id",
    "definition": "audience.definition",
    "exclude": "audience.exclude_segment_ids",
}


async def _authoring(use_case: Awaitable[T]) -> T:
    """`call`, with the fields of the audience's errors named as the body names them."""
    try:
        return await use_case
    except InvalidInput as exc:
        head = re.split(r"[.\[]", exc.field or "", maxsplit=1)[0]
        if head in _IN_AUDIENCE and exc.field is not None:
            field = _IN_AUDIENCE[head] + exc.field[len(head) :]
            raise api_error(InvalidInput(exc.reason, field=field)) from None
        raise api_error(exc) from None
    except ClarionError as exc:
        raise api_error(exc) from None


def _audience_changes(audience: dict[str, Any] | None) -> dict[str, Any]:
    """A body's `audience` as the service's fields (none given: the whole list)."""
    a = audience or {}
    return {
        "segment_id": a.get("segment_id"),
        "definition": a.get("definition"),
        "exclude_segment_ids": a.get("exclude_segment_ids", []),
    }


def router(svc: service.Services, auth: Auth, clock: Clock) -> APIRouter:
    r = APIRouter(tags=["campaigns"])
    Reader = Annotated[ApiKey, Depends(auth.require("read"))]
    Writer = Annotated[ApiKey, Depends(auth.require("write"))]
    Sender = Annotated[ApiKey, Depends(auth.require("send"))]

    @r.post("/campaigns", status_code=201, summary="Create a draft campaign")
    async def create_campaign(new: NewCampaign, key: Writer) -> Response:
        """Its texts are Jinja2 templates, refused now (422 naming the field and line) if
        they cannot compile or are over the sandbox's limits; another brand's segment is a
        404. The audience is resolved at the first launch."""
        raw = new.model_dump(exclude_unset=True, exclude_none=True)
        audience = _audience_changes(raw.pop("audience", None))
        raw.setdefault("body", "")
        campaign_id = await _authoring(
            service.campaigns.create(svc, brand_id=key.brand_id, **raw, **audience)
        )
        made = await call(service.campaigns.get(svc, campaign_id, brand_id=key.brand_id))
        return respond(shown(made), 201)

    @r.get("/campaigns", summary="The brand's campaigns, oldest first")
    async def list_campaigns(
        key: Reader,
        status: Annotated[Status | None, Query(description="Only those in this status.")] = None,
        limit: pages.Limit = 100,
        cursor: pages.Cursor = None,
    ) -> Response:
        found = await call(
            service.campaigns.listed(
                svc, key.brand_id, status=status, after_id=pages.decode(cursor), limit=limit + 1
            )
        )
        return respond(pages.page(found, limit, lambda c: c.id, summary))

    @r.get("/campaigns/{campaign_id}", summary="A campaign, its progress and plan vs actual")
    async def get_campaign(campaign_id: CampaignId, key: Reader) -> Response:
        st = await call(service.campaigns.status(svc, campaign_id, brand_id=key.brand_id))
        p = st.progress
        return respond(
            {
                **shown(st.campaign),
                "audience": p.audience,
                "eligible": p.eligible,
                "by_status": p.by_status,
                "suppressed_by_reason": p.suppressed_by_reason,
                "deferred_by_reason": p.deferred_by_reason,
                "complete": p.complete,
                "plan_vs_actual": st.plan_vs_actual,
            }
        )

    @r.patch("/campaigns/{campaign_id}", summary="Change a draft campaign")
    async def update_campaign(
        campaign_id: CampaignId, changes: CampaignChanges, key: Writer
    ) -> Response:
        """Only the fields given change, checked as at creation; `audience`, when given, is
        replaced whole. A campaign that has been launched is a 409. A change to anything but
        the name forgets the stored plan (it was for the campaign as it was)."""
        raw = changes.model_dump(exclude_unset=True)
        if "audience" in raw:
            raw.update(_audience_changes(raw.pop("audience")))
        changed = await _authoring(
            service.campaigns.update_draft(svc, campaign_id, raw, brand_id=key.brand_id)
        )
        return respond(shown(changed))

    @r.delete("/campaigns/{campaign_id}", status_code=204, summary="Delete a draft campaign")
    async def delete_campaign(campaign_id: CampaignId, key: Writer) -> Response:
        """Only a draft: a campaign that has been launched is a 409 (cancel it instead)."""
        await call(service.campaigns.delete_draft(svc, campaign_id, brand_id=key.brand_id))
        return Response(status_code=204)

    @r.post("/campaigns/{campaign_id}/launch", status_code=202, summary="Launch a campaign")
    async def launch_campaign(
        campaign_id: CampaignId, key: Sender, launch: LaunchBody | None = None
    ) -> Response:
        """Checked first: a text that fails its checks (the brand's name and how to opt out in
        a first message, the brand's segment limit) is a 422 listing the problems; a
        campaign launched already is a 409 unless `relaunch` (which resumes it where it
        was). The workers send it from then on."""
        relaunch = launch is not None and launch.relaunch
        cmd = await call(
            service.campaigns.launch(
                svc, campaign_id, relaunch=relaunch, at=clock.now(), brand_id=key.brand_id
            )
        )
        return respond({"id": campaign_id, "status": "sending", "attempt": cmd.attempt}, 202)

    @r.post("/campaigns/{campaign_id}/schedule", summary="Schedule a draft campaign")
    async def schedule_campaign(
        campaign_id: CampaignId, when: ScheduleBody, key: Sender
    ) -> Response:
        """It launches itself at `at` (within a second, once, whichever worker is up), or
        with `local_time` at that time on each subscriber's clock on `date`, in waves by
        zone (`waves`: when each zone's go), or with `best_time_h` each subscriber at their
        best hour within that window (`sto_model_version`: the send-time model it would use
        now; the launch records the one it uses). The compliance window still governs every
        message. Checked as a launch is (422); a time in the past is a 422; a campaign that
        is not a draft is a 409."""
        done = await call(
            service.campaigns.schedule(
                svc, campaign_id, now=clock.now(), at=when.at, local_time=when.local_time,
                day=when.date, best_time_h=when.best_time_h, brand_id=key.brand_id,
            )
        )  # fmt: skip
        return respond(done)

    @r.delete("/campaigns/{campaign_id}/schedule", summary="Unschedule a campaign")
    async def unschedule_campaign(campaign_id: CampaignId, key: Sender) -> Response:
        """Back to a draft; 409 unless it is scheduled."""
        await call(service.campaigns.unschedule(svc, campaign_id, brand_id=key.brand_id))
        return respond({"id": campaign_id, "status": "draft"})

    @r.post("/campaigns/{campaign_id}/pause", summary="Pause a sending campaign")
    async def pause_campaign(campaign_id: CampaignId, key: Sender) -> Response:
        """No new provider calls from the next batch on; 409 unless it is sending."""
        status = await call(service.campaigns.pause(svc, campaign_id, brand_id=key.brand_id))
        return respond({"id": campaign_id, "status": status})

    @r.post("/campaigns/{campaign_id}/resume", summary="Resume a paused campaign")
    async def resume_campaign(campaign_id: CampaignId, key: Sender) -> Response:
        """It continues where it stopped; 409 unless it is paused."""
        status = await call(
            service.campaigns.resume(svc, campaign_id, at=clock.now(), brand_id=key.brand_id)
        )
        return respond({"id": campaign_id, "status": status})

    @r.post("/campaigns/{campaign_id}/cancel", summary="Cancel a campaign")
    async def cancel_campaign(campaign_id: CampaignId, key: Sender) -> Response:
        """For good: every message not yet handed over is recorded as cancelled
        (`messages_cancelled`). 409 for a campaign cancelled already."""
        n = await call(service.campaigns.cancel(svc, campaign_id, brand_id=key.brand_id))
        return respond({"id": campaign_id, "status": "cancelled", "messages_cancelled": n})

    @r.get("/campaigns/{campaign_id}/report", summary="What a campaign did and earned")
    async def campaign_report(campaign_id: CampaignId, key: Reader) -> Response:
        """Recipients, eligible, suppressed by reason, deferred, sent, delivered, failed by
        error code, people's unique and total clicks, click rate, opt-outs, orders,
        attributed revenue, revenue per message, cost in segments — in `totals`, per
        variant (with the A/B test's decision in `ab`), per carrier, and per minute."""
        return respond(
            await call(service.campaigns.report(svc, campaign_id, brand_id=key.brand_id))
        )

    @r.get("/campaigns/{campaign_id}/links", summary="A campaign's tracked links and clicks")
    async def campaign_links(campaign_id: CampaignId, key: Reader) -> Response:
        found = await call(service.links.campaign_links(svc, key.brand_id, campaign_id))
        return respond({"data": found})

    @r.post("/campaigns/{campaign_id}/plan", summary="Compute a campaign's send plan")
    async def compute_plan(
        campaign_id: CampaignId,
        key: Writer,
        at: Annotated[
            datetime | None, Query(description="Plan a launch at this time (default now).")
        ] = None,
    ) -> Response:
        """Before launch: recipients per lane and carrier, quiet hours and when they go,
        daily caps that will be hit, cost in segments, the estimated finish time. The
        plan is stored for the plan-versus-actual report."""
        when = at or clock.now()
        plan = await call(service.campaigns.plan(svc, campaign_id, at=when, brand_id=key.brand_id))
        return respond(plan)

    @r.get("/campaigns/{campaign_id}/plan", summary="The campaign's last computed plan")
    async def get_plan(campaign_id: CampaignId, key: Reader) -> Response:
        plan = await call(service.campaigns.stored_plan(svc, campaign_id, brand_id=key.brand_id))
        if plan is None:
            raise ApiError(404, f"campaign {campaign_id} has no plan yet")
        return respond(plan)

    return r
