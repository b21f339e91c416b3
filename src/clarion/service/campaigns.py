"""Campaign use cases: author, check, plan, launch, pause, resume, cancel, report.

`brand_id`, where a function takes it, scopes the campaign to a brand (an API key's): another
brand's campaign is `NotFound`. An operator's command (the CLI) passes None.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec

from clarion.domain.brands import brand_fields
from clarion.domain.ids import campaign_message_id
from clarion.domain.records import LaunchCampaign
from clarion.domain.rows import CampaignRow
from clarion.domain.segments import parse_definition
from clarion.domain.variants import ab_in, message_variant, variants_in
from clarion.errors import CampaignInvalid, InvalidInput
from clarion.pipeline import links
from clarion.pipeline.campaign import (
    BodyCheck,
    check_sms_body,
    launch_command,
    sample_fields,
    validate_launch,
)
from clarion.pipeline.personalize import (
    brand_names_used,
    check_template,
    constant_urls,
    render_sample,
)
from clarion.pipeline.plan import PlanRow, SendPlan, plan_vs_actual
from clarion.runtime import planning
from clarion.service.context import Services
from clarion.service.progress import Progress, campaign_progress
from clarion.store import brands, campaigns, performance, segments


def _now() -> datetime:
    return datetime.now(UTC)


def check_texts(*texts: str | None) -> None:
    """Refuse (`TemplateError`, naming the line) a campaign text that cannot compile or is
    over the sandbox's limits whatever the subscriber; needs no server."""
    for text in texts:
        if text is not None:
            check_template(text)


async def create(
    svc: Services,
    *,
    brand_id: int,
    name: str,
    body: str,
    channel: str = "sms",
    subject: str | None = None,
    email_body: str | None = None,
    segment_id: int | None = None,
    exclude_segment_ids: Sequence[int] = (),
    definition: Any = None,
    variants: Any = None,
    ab: Any = None,
    track_links: bool = True,
) -> int:
    """A draft campaign; its texts are templates, refused now if they cannot compile or are
    over the sandbox's limits whatever the subscriber. Its audience is the segment or the
    `definition` of its own (less the exclusion segments' subscribers), or the brand's whole
    list; the segments must be the brand's."""
    stored_variants = stored_ab = None
    if variants is not None:  # the first variant is the campaign's own texts
        parsed = variants_in(variants)
        for i, v in enumerate(parsed):
            try:
                check_texts(v.body, v.subject, v.email_body)
            except InvalidInput as exc:
                raise InvalidInput(str(exc), field=f"variants[{i}]") from None
        body, subject, email_body = parsed[0].body, parsed[0].subject, parsed[0].email_body
        stored_variants = msgspec.to_builtins(parsed)
    if ab is not None:
        test = ab_in(ab)
        if variants is None or len(stored_variants or []) < 2:
            raise InvalidInput("an A/B test needs two variants or more", field="ab")
        stored_ab = msgspec.to_builtins(test)
    check_texts(body, subject, email_body)
    if definition is not None:
        if segment_id is not None:
            raise InvalidInput("a segment or a definition, not both", field="definition")
        parse_definition(definition)  # InvalidInput naming the path of the bad part
    for sid in (*([segment_id] if segment_id is not None else []), *exclude_segment_ids):
        await segments.get(svc.pool, brand_id, sid)  # NotFound for another brand's
    if exclude_segment_ids and segment_id is None and definition is None:
        raise InvalidInput("exclusions need a segment to exclude from", field="exclude")
    return await campaigns.create_campaign(
        svc.pool, brand_id=brand_id, name=name, body=body, channel=channel,
        subject=subject, email_body=email_body, segment_id=segment_id,
        exclude_segment_ids=exclude_segment_ids, definition=definition,
        variants=stored_variants, ab=stored_ab, track_links=track_links,
    )  # fmt: skip


async def resolve_audience(svc: Services, c: CampaignRow, *, launched: bool) -> int | None:
    """Write a targeted campaign's audience (its segment or definition, less the exclusion
    segments, as they are now) for the audience stage and the plan to read; None for a
    campaign to the whole list. Resolved once at the first launch: a relaunch goes to the
    same audience."""
    if not c.targeted:
        return None
    if launched and c.audience_resolved_at is not None:
        return None  # resolved at the first launch
    if c.segment_id is not None:
        definition = (await segments.get(svc.pool, c.brand_id, c.segment_id)).definition
    else:
        definition = c.audience_definition
    exclude = [await segments.get(svc.pool, c.brand_id, x) for x in c.exclude_segment_ids]
    return await segments.resolve_audience(
        svc.pool, c.brand_id, c.id, parse_definition(definition),
        [parse_definition(x.definition) for x in exclude], launched=launched,
    )  # fmt: skip


def preview_links(
    svc: Services, link_domain: str | None, body: str, brand: dict[str, str], rendered: str
) -> str:
    """`rendered` with each URL that will be tracked as a short link of the length it will
    have (a sample code)."""
    urls = constant_urls(body, brand=brand)
    base = links.links_base(link_domain, svc.settings.links_url or svc.settings.public_url)
    rewriter = links.Rewriter(base, dict.fromkeys(urls, 1), "preview")
    return rewriter.apply([rendered], [1])[0]


async def get(svc: Services, campaign_id: int, *, brand_id: int | None = None) -> CampaignRow:
    return await campaigns.get_campaign(svc.pool, campaign_id, brand_id=brand_id)


async def check(svc: Services, campaign_id: int, *, brand_id: int | None = None) -> BodyCheck:
    """Render the campaign for a sample subscriber and check it (brand name and opt-out
    instructions when it is someone's first message; encoding; the brand's segment limit)."""
    c = await campaigns.get_campaign(svc.pool, campaign_id, brand_id=brand_id)
    b = await brands.get_brand(svc.pool, c.brand_id)
    sample, first_contact = await campaigns.sample_and_first_contact(svc.pool, c.brand_id)
    brand = brand_fields(b.name, b.help_text, b.sender, b.macros)
    rendered = render_sample(c.body, sample_fields(sample), brand=brand)
    if c.track_links:  # counted as sent: each tracked URL as its short link
        rendered = preview_links(svc, b.link_domain, c.body, brand, rendered)
    checked = check_sms_body(
        rendered, brand_name=b.name, first_contact=first_contact,
        max_segments=b.max_segments,
    )  # fmt: skip
    texts = [c.body, c.subject or "", c.email_body or ""]
    unknown = sorted({n for t in texts for n in brand_names_used(t)} - brand.keys())
    if unknown:  # every recipient's render would fail on it
        known = ", ".join(sorted(brand)) or "none"
        missing = [f"unknown macro brand.{n} (the brand's: {known})" for n in unknown]
        return dataclasses.replace(checked, errors=(*checked.errors, *missing))
    return checked


async def plan(
    svc: Services,
    campaign_id: int,
    *,
    at: datetime | None = None,
    brand_id: int | None = None,
) -> SendPlan:
    """The send plan of the campaign launched at `at` (default now); stored on the campaign
    for the plan-versus-actual report."""
    c = await campaigns.get_campaign(svc.pool, campaign_id, brand_id=brand_id)
    if c.audience_resolved_at is None:
        await resolve_audience(svc, c, launched=False)
    when = at or _now()
    provider = svc.lookup_provider()
    try:
        return await planning.plan_campaign(
            svc.pool, provider, campaign_id,
            at=when if when.tzinfo else when.replace(tzinfo=UTC),
            platform_rate_mps=svc.settings.platform_rate_mps,
            links_url=svc.settings.links_url or svc.settings.public_url,
        )  # fmt: skip
    finally:
        await provider.aclose()


async def stored_plan(
    svc: Services, campaign_id: int, *, brand_id: int | None = None
) -> SendPlan | None:
    """The campaign's last computed plan, if any."""
    await campaigns.get_campaign(svc.pool, campaign_id, brand_id=brand_id)
    return await campaigns.stored_plan(svc.pool, campaign_id)


async def launch(
    svc: Services,
    campaign_id: int,
    *,
    relaunch: bool = False,
    at: datetime | None = None,
    brand_id: int | None = None,
) -> LaunchCampaign:
    """Validate, count the launch, publish the command the campaign stage acts on. `at` is
    the launch time (the expiry of its messages counts from it); default now."""
    c = await campaigns.get_campaign(svc.pool, campaign_id, brand_id=brand_id)
    validate_launch(campaign_id=campaign_id, body=c.body, status=c.status, relaunch=relaunch)
    checked = await check(svc, campaign_id)
    if checked.errors:
        raise CampaignInvalid(campaign_id, list(checked.errors), checked.describe())
    at = at or _now()
    await resolve_audience(svc, c, launched=True)
    attempt = await campaigns.begin_launch(svc.pool, campaign_id, at)
    cmd = launch_command(brand_id=c.brand_id, campaign_id=campaign_id, attempt=attempt, now=at)
    await svc.bus.publish("launch", cmd, msg_id=cmd.command_id)
    return cmd


async def pause(svc: Services, campaign_id: int, *, brand_id: int | None = None) -> None:
    """Stop new provider calls for a sending campaign (within one batch); resumable."""
    await campaigns.get_campaign(svc.pool, campaign_id, brand_id=brand_id)
    await campaigns.set_paused(svc.pool, campaign_id, True)


async def resume(
    svc: Services,
    campaign_id: int,
    *,
    at: datetime | None = None,
    brand_id: int | None = None,
) -> None:
    """Continue a paused campaign where it stopped. `at`: now on the send stage's clock
    (default: the database's), when the messages the pause held are due."""
    await campaigns.get_campaign(svc.pool, campaign_id, brand_id=brand_id)
    await campaigns.set_paused(svc.pool, campaign_id, False, now=at)


async def cancel(svc: Services, campaign_id: int, *, brand_id: int | None = None) -> int:
    """End a campaign; every message not yet handed over is recorded as cancelled. Returns
    how many were waiting."""
    await campaigns.get_campaign(svc.pool, campaign_id, brand_id=brand_id)
    return await campaigns.cancel(svc.pool, campaign_id)


@dataclass(frozen=True)
class Status:
    """A campaign, its progress per stage, and its plan versus what happened (when planned)."""

    campaign: CampaignRow
    progress: Progress
    plan_vs_actual: list[PlanRow] | None


async def status(svc: Services, campaign_id: int, *, brand_id: int | None = None) -> Status:
    c = await campaigns.get_campaign(svc.pool, campaign_id, brand_id=brand_id)
    progress = await campaign_progress(svc.pool, campaign_id)
    planned = await campaigns.stored_plan(svc.pool, campaign_id)
    rows = None
    if planned is not None:
        rows = plan_vs_actual(planned, await planning.actual(svc.pool, campaign_id))
    return Status(campaign=c, progress=progress, plan_vs_actual=rows)


class VariantFigures(msgspec.Struct, frozen=True, kw_only=True):
    key: str
    name: str
    figures: dict[str, Any]


class Performance(msgspec.Struct, frozen=True, kw_only=True):
    """What a campaign did and earned: the whole, per variant, per carrier, per minute, and
    its A/B test's decision."""

    campaign_id: int
    name: str
    status: str
    totals: dict[str, Any]
    suppressed_by_reason: dict[str, int]
    deferred_by_reason: dict[str, int]
    failed_by_error: dict[str, int]
    variants: list[VariantFigures]
    carriers: dict[str, dict[str, Any]]
    per_minute: list[dict[str, Any]]
    ab: dict[str, Any] | None


def _figures(s: performance.Slice) -> dict[str, Any]:
    return {
        **msgspec.to_builtins(s), "click_rate": s.click_rate,
        "revenue_per_message": s.revenue_per_message,
    }  # fmt: skip


async def report(svc: Services, campaign_id: int, *, brand_id: int | None = None) -> Performance:
    """The campaign's report (`clarion campaign report`, `GET /v1/campaigns/{id}/report`):
    recipients, eligible, suppressed by reason, deferred, sent, delivered, failed by error
    code, people's clicks, click rate, opt-outs, orders, attributed revenue, revenue per
    message, cost in segments — for the whole, each variant, each carrier, each minute."""
    c = await campaigns.get_campaign(svc.pool, campaign_id, brand_id=brand_id)
    r = await campaigns.campaign_report(svc.pool, campaign_id)
    variants = c.variant_list()
    uid = str(c.uid)
    prefixes = {
        campaign_message_id(uid, message_variant(ch, v.key), 0)[:19]: v.key
        for v in variants
        for ch in ("sms", "email")
    }
    total, by_variant, by_carrier = await performance.slices(svc.pool, campaign_id, prefixes)
    minutes = await performance.per_minute(svc.pool, campaign_id)
    eligible = r.persisted - sum(r.suppressed_by_reason.values())
    ab = None
    if c.ab is not None:
        ab = {**c.ab, "winner": c.ab_winner, "decided_at": c.ab_decided_at,
              "decision": c.ab_decision}  # fmt: skip
    return Performance(
        campaign_id=c.id, name=c.name, status=c.status,
        totals={**_figures(total), "eligible": eligible},
        suppressed_by_reason=r.suppressed_by_reason, deferred_by_reason=r.deferred_by_reason,
        failed_by_error=r.errors,
        variants=[
            VariantFigures(
                key=v.key, name=v.name,
                figures=_figures(by_variant.get(v.key) or performance.Slice()),
            )
            for v in variants
        ],
        carriers={k: _figures(v) for k, v in sorted(by_carrier.items())},
        per_minute=[msgspec.to_builtins(m) for m in minutes],
        ab=ab,
    )  # fmt: skip
