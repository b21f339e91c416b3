"""Campaign use cases: author (create, list, change or delete a draft), check, plan, launch,
pause, resume, cancel, report.

`brand_id`, where a function takes it, scopes the campaign to a brand (an API key's): another
brand's campaign is `NotFound`. An operator's command (the CLI) passes None.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import msgspec

from clarion.domain.ids import campaign_message_id
from clarion.domain.records import LaunchCampaign
from clarion.domain.rows import CAMPAIGN_STATUSES, CampaignRow, CampaignSummary
from clarion.domain.schedule import LocalWave, check_at, local_time_in
from clarion.domain.segments import parse_definition
from clarion.domain.variants import AbTest, ab_in, check_floor, message_variant, variants_in
from clarion.errors import CampaignInvalid, InvalidInput, TemplateError
from clarion.pipeline import sandbox
from clarion.pipeline.campaign import (
    BodyCheck,
    launch_command,
    require_draft,
    sample_fields,
    validate_launch,
)
from clarion.pipeline.personalize import check_template
from clarion.pipeline.plan import PlanRow, SendPlan, Wave, plan_vs_actual
from clarion.runtime import planning
from clarion.service import previews
from clarion.service.context import Services
from clarion.service.progress import Progress, campaign_progress
from clarion.store import ab_rounds, brands, campaigns, models, performance, segments


def _now() -> datetime:
    return datetime.now(UTC)


CHANNELS = ("sms", "email", "both")
MAX_NAME_CHARS = 200
MAX_TEMPLATE_CHARS = sandbox.MAX_TEXT_CHARS  # a text: the most the sandbox takes
MAX_EXCLUSIONS = 100  # exclusion segments of one campaign
# Postgres text holds no NUL, and UTF-8 no unpaired surrogate.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def check_texts(**texts: str | None) -> None:
    """Refuse (`TemplateError`, naming the text's field and the line) a campaign text that
    cannot compile or is over the sandbox's limits whatever the subscriber; needs no
    server."""
    for field, text in texts.items():
        if text is None:
            continue
        if len(text) > MAX_TEMPLATE_CHARS:
            raise InvalidInput(f"at most {MAX_TEMPLATE_CHARS:,} characters", field=field)
        if _UNSTORABLE.search(text):
            raise InvalidInput("contains a NUL or an unpaired surrogate", field=field)
        try:
            check_template(text)
        except TemplateError as exc:
            raise TemplateError(exc.message, line=exc.line, field=field) from None


@dataclass(frozen=True)
class Draft:
    """A campaign as authored: its name, channel, texts (templates) and audience (a segment
    or a `definition` of its own, less the exclusion segments; neither: the whole list)."""

    name: str
    body: str
    channel: str = "sms"
    subject: str | None = None
    email_body: str | None = None
    email_html: str | None = None
    segment_id: int | None = None
    exclude_segment_ids: tuple[int, ...] = ()
    definition: Any = None
    # [{"name", "weight", "body", "subject", "email_body", "email_html"}] (None: one, the
    # texts above; the first variant's texts are the campaign's), and the A/B test
    # (`domain.variants`)
    variants: Any = None
    ab: Any = None
    track_links: bool = True

    @classmethod
    def of(cls, c: CampaignRow) -> Draft:
        return cls(
            name=c.name, body=c.body, channel=c.channel, subject=c.subject,
            email_body=c.email_body, email_html=c.email_html, segment_id=c.segment_id,
            exclude_segment_ids=tuple(c.exclude_segment_ids), definition=c.audience_definition,
            variants=c.variants, ab=c.ab, track_links=c.track_links,
        )  # fmt: skip


DRAFT_FIELDS = frozenset(f.name for f in fields(Draft))


async def _checked(svc: Services, brand_id: int, d: Draft) -> Draft:
    """The draft, its name stripped, once every part of it is acceptable: `InvalidInput`
    naming the field, `TemplateError` naming the text and line, `NotFound` for a segment
    that is not the brand's."""
    if not d.name.strip() or len(d.name) > MAX_NAME_CHARS:
        raise InvalidInput(f"1 to {MAX_NAME_CHARS} characters", field="name")
    if _UNSTORABLE.search(d.name):
        raise InvalidInput("contains a NUL or an unpaired surrogate", field="name")
    if d.channel not in CHANNELS:
        raise InvalidInput(f"one of sms, email or both, not {d.channel!r}", field="channel")
    if d.variants is not None:  # the first variant's texts are the campaign's
        parsed = variants_in(d.variants)
        for i, v in enumerate(parsed):
            check_texts(**{
                f"variants[{i}].body": v.body, f"variants[{i}].subject": v.subject,
                f"variants[{i}].email_body": v.email_body,
                f"variants[{i}].email_html": v.email_html,
            })  # fmt: skip
        first = parsed[0]
        d = replace(d, body=first.body, subject=first.subject, email_body=first.email_body,
                    email_html=first.email_html,
                    variants=msgspec.to_builtins(parsed))  # fmt: skip
    if d.ab is not None:
        test = ab_in(d.ab)
        if d.variants is None or len(d.variants) < 2:
            raise InvalidInput("an A/B test needs two variants or more", field="ab")
        check_floor(test, len(d.variants))
        d = replace(d, ab=msgspec.to_builtins(test))
    check_texts(body=d.body, subject=d.subject, email_body=d.email_body, email_html=d.email_html)
    if d.definition is not None:
        if d.segment_id is not None:
            raise InvalidInput("a segment or a definition, not both", field="definition")
        parse_definition(d.definition)  # InvalidInput naming the path of the bad part
    if len(d.exclude_segment_ids) > MAX_EXCLUSIONS:
        raise InvalidInput(f"at most {MAX_EXCLUSIONS} exclusion segments", field="exclude")
    for sid in (*([d.segment_id] if d.segment_id is not None else []), *d.exclude_segment_ids):
        await segments.get(svc.pool, brand_id, sid)  # NotFound for another brand's
    if d.exclude_segment_ids and d.segment_id is None and d.definition is None:
        raise InvalidInput("exclusions need a segment to exclude from", field="exclude")
    return replace(d, name=d.name.strip())


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
    email_html: str | None = None,
    variants: Any = None,
    ab: Any = None,
    track_links: bool = True,
) -> int:
    """A draft campaign; its texts are templates, refused now if they cannot compile or are
    over the sandbox's limits whatever the subscriber. Its audience is the segment or the
    `definition` of its own (less the exclusion segments' subscribers), or the brand's whole
    list; the segments must be the brand's."""
    draft = Draft(
        name=name, body=body, channel=channel, subject=subject, email_body=email_body,
        email_html=email_html,
        segment_id=segment_id, exclude_segment_ids=tuple(exclude_segment_ids),
        definition=definition, variants=variants, ab=ab, track_links=track_links,
    )  # fmt: skip
    d = await _checked(svc, brand_id, draft)
    return await campaigns.create_campaign(
        svc.pool, brand_id=brand_id, name=d.name, body=d.body, channel=d.channel,
        subject=d.subject, email_body=d.email_body, segment_id=d.segment_id,
        exclude_segment_ids=d.exclude_segment_ids, definition=d.definition,
        variants=d.variants, ab=d.ab, track_links=d.track_links, email_html=d.email_html,
    )  # fmt: skip


async def update_draft(
    svc: Services, campaign_id: int, changes: Mapping[str, Any], *, brand_id: int | None = None
) -> CampaignRow:
    """Change a draft: the fields of `changes` (named as `Draft`'s) take their new values,
    checked as at create; the others keep theirs. A change to anything but the name drops
    the stored plan (it was for the campaign as it was). `CampaignStateError` once the
    campaign has been launched."""
    unknown = sorted(set(changes) - DRAFT_FIELDS)
    if unknown:
        raise InvalidInput("not a field of a campaign", field=unknown[0])
    c = await campaigns.get_campaign(svc.pool, campaign_id, brand_id=brand_id)
    # refused before the checks (the answer is no, whatever the changes), and again under
    # the row's lock (a launch may come between)
    require_draft(campaign_id=campaign_id, status=c.status, verb="changed")
    edited = dict(changes)
    texts = sorted({"body", "subject", "email_body", "email_html"} & set(edited))
    if c.variants is not None and texts and "variants" not in edited:
        raise InvalidInput(
            "the campaign has variants: change its texts through `variants`", field=texts[0]
        )
    if "exclude_segment_ids" in edited:
        edited["exclude_segment_ids"] = tuple(edited["exclude_segment_ids"] or ())
    d = await _checked(svc, c.brand_id, replace(Draft.of(c), **edited))
    return await campaigns.update_draft(
        svc.pool, campaign_id, brand_id=brand_id, name=d.name, body=d.body, channel=d.channel,
        subject=d.subject, email_body=d.email_body, segment_id=d.segment_id,
        exclude_segment_ids=d.exclude_segment_ids, definition=d.definition,
        forget_plan=bool(set(changes) - {"name"}), variants=d.variants, ab=d.ab,
        track_links=d.track_links, email_html=d.email_html,
    )  # fmt: skip


async def delete_draft(svc: Services, campaign_id: int, *, brand_id: int | None = None) -> None:
    """Delete a campaign that was never launched (and the audience a plan resolved for it);
    `CampaignStateError` for one that was: cancel it instead."""
    await campaigns.delete_draft(svc.pool, campaign_id, brand_id=brand_id)


async def listed(
    svc: Services,
    brand_id: int | None,
    *,
    status: str | None = None,
    after_id: int = 0,
    limit: int = 100,
) -> list[CampaignSummary]:
    """The brand's campaigns (every brand's: None), oldest first, after `after_id`; only
    those in `status` when it is given."""
    if status is not None and status not in CAMPAIGN_STATUSES:
        raise InvalidInput(f"one of {', '.join(CAMPAIGN_STATUSES)}", field="status")
    return await campaigns.listed(svc.pool, brand_id, status=status, after_id=after_id, limit=limit)


async def resolve_audience(svc: Services, c: CampaignRow, *, launched: bool) -> int | None:
    """Write a targeted campaign's audience (its segment or definition, less the exclusion
    segments, as they are now) for the audience stage and the plan to read; None for a
    campaign to the whole list. Resolved once at the first launch: a relaunch goes to the
    same audience."""
    return await segments.resolve_campaign(svc.pool, c, launched=launched)


async def get(svc: Services, campaign_id: int, *, brand_id: int | None = None) -> CampaignRow:
    return await campaigns.get_campaign(svc.pool, campaign_id, brand_id=brand_id)


async def check(svc: Services, campaign_id: int, *, brand_id: int | None = None) -> BodyCheck:
    """Render the campaign for a sample subscriber and check it (brand name and opt-out
    instructions when it is someone's first message; encoding; the brand's segment limit;
    the brand's macros). A body that does not render is its `TemplateError`."""
    c = await campaigns.get_campaign(svc.pool, campaign_id, brand_id=brand_id)
    b = await brands.get_brand(svc.pool, c.brand_id)
    sample, first_contact = await campaigns.sample_and_first_contact(svc.pool, c.brand_id)
    texts = previews.Texts(c.body, c.subject, c.email_body, c.email_html)
    done = previews.checked(
        svc, b, texts, sample_fields(sample), first_contact=first_contact,
        track_links=c.track_links,
    )  # fmt: skip
    if "body" in done.template_errors:
        raise done.template_errors["body"]
    return done.sms


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
    when = at or c.scheduled_at or _now()
    provider = svc.lookup_provider()
    try:
        computed = await planning.plan_campaign(
            svc.pool, provider, campaign_id,
            at=when if when.tzinfo else when.replace(tzinfo=UTC),
            platform_rate_mps=svc.settings.platform_rate_mps,
            links_url=svc.settings.links_url or svc.settings.public_url,
        )  # fmt: skip
    finally:
        await provider.aclose()
    wave = c.local_wave()
    if wave is None:
        return computed
    computed = msgspec.structs.replace(computed, waves=await waves(svc, c, wave))
    await campaigns.store_plan(svc.pool, campaign_id, computed)
    return computed


async def waves(svc: Services, c: CampaignRow, wave: LocalWave) -> list[Wave]:
    """When a local-time send reaches each zone of the audience, earliest first."""
    zones = await campaigns.audience_zones(svc.pool, c)
    found = [(wave.due(z), z, n) for z, n in zones.items()]
    return sorted(
        (Wave(at, z, n) for at, z, n in found if at is not None), key=lambda w: (w.at, w.timezone)
    )


# A best-time send's window: at most three days from its launch.
MAX_BEST_TIME_H = 72


class Scheduled(msgspec.Struct, frozen=True, kw_only=True):
    campaign_id: int
    status: str
    scheduled_at: datetime
    local_time: str | None
    local_day: date | None
    waves: list[Wave]
    best_time_h: int | None = None
    # a best-time send: the send-time model it will use, as things stand (None: none
    # trained yet; everyone then goes at the launch)
    sto_model_version: int | None = None


async def schedule(
    svc: Services,
    campaign_id: int,
    *,
    now: datetime,
    at: datetime | None = None,
    local_time: str | None = None,
    day: date | None = None,
    best_time_h: int | None = None,
    brand_id: int | None = None,
) -> Scheduled:
    """Schedule a draft: launched by the workers at `at`, or — with `local_time` (HH:MM) on
    `day` — in waves, each subscriber's message at that time on their clock (the launch is
    the first wave; a subscriber whose zone is not known goes with it), or — with
    `best_time_h` — each subscriber at their best hour within that many hours of `at`, as
    the brand's newest send-time model says at the launch. The compliance window governs
    each message still. Checked as a launch is (`CampaignInvalid`); a time in the past is
    refused."""
    if best_time_h is not None and not 1 <= best_time_h <= MAX_BEST_TIME_H:
        raise InvalidInput(f"a window of 1 to {MAX_BEST_TIME_H} hours", field="best_time_h")
    if best_time_h is not None and local_time is not None:
        raise InvalidInput("a local time or a best time, not both", field="best_time_h")
    c = await campaigns.get_campaign(svc.pool, campaign_id, brand_id=brand_id)
    require_draft(campaign_id=campaign_id, status=c.status, verb="scheduled")
    checked = await check(svc, campaign_id)
    if checked.errors:
        raise CampaignInvalid(campaign_id, list(checked.errors), checked.describe())
    found: list[Wave] = []
    if local_time is not None:
        if at is not None:
            raise InvalidInput("a time or a local time, not both", field="at")
        hour, minute = local_time_in(local_time)
        wave = LocalWave(day or now.date(), hour, minute)
        await resolve_audience(svc, c, launched=False)  # the zones of the audience as it is
        found = await waves(svc, c, wave)
        first = found[0].at if found else datetime.combine(
            wave.day, time(hour, minute), tzinfo=UTC
        )  # fmt: skip
        if first < now - timedelta(seconds=1):
            raise InvalidInput(
                f"{wave.day} {local_time} has passed in the audience's first zone",
                field="local_time",
            )
        when = check_at(max(first, now), now)
        local_day: date | None = wave.day
        local_hhmm: str | None = f"{hour:02d}:{minute:02d}"
    else:
        when = check_at(at or now, now)
        local_day, local_hhmm = None, None
    await campaigns.schedule(
        svc.pool, campaign_id, brand_id=brand_id, at=when, local_day=local_day,
        local_time=local_hhmm, best_time_h=best_time_h,
    )  # fmt: skip
    model = None if best_time_h is None else await models.latest(svc.pool, c.brand_id, "sto")
    return Scheduled(
        campaign_id=campaign_id, status="scheduled", scheduled_at=when, local_time=local_hhmm,
        local_day=local_day, waves=found, best_time_h=best_time_h,
        sto_model_version=None if model is None else model.version,
    )  # fmt: skip


async def unschedule(svc: Services, campaign_id: int, *, brand_id: int | None = None) -> None:
    """A scheduled campaign back to a draft (it will not launch itself)."""
    await campaigns.unschedule(svc.pool, campaign_id, brand_id=brand_id)


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


async def pause(svc: Services, campaign_id: int, *, brand_id: int | None = None) -> str:
    """Stop new provider calls for a sending campaign (within one batch); resumable.
    Returns its status (paused); `CampaignStateError` unless it was sending."""
    await campaigns.get_campaign(svc.pool, campaign_id, brand_id=brand_id)
    return await campaigns.set_paused(svc.pool, campaign_id, True)


async def resume(
    svc: Services,
    campaign_id: int,
    *,
    at: datetime | None = None,
    brand_id: int | None = None,
) -> str:
    """Continue a paused campaign where it stopped; returns its status (sending). `at`: now
    on the send stage's clock (default: the database's), when the messages the pause held
    are due. `CampaignStateError` unless it was paused."""
    await campaigns.get_campaign(svc.pool, campaign_id, brand_id=brand_id)
    return await campaigns.set_paused(svc.pool, campaign_id, False, now=at)


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
    # the learned models in force at its launch: send times (a best-time send) and
    # recommendations — {"id", "version", "trained_at"} each, or None
    models: dict[str, dict[str, Any] | None] = msgspec.field(default_factory=dict)


def _figures(s: performance.Slice) -> dict[str, Any]:
    return {
        **msgspec.to_builtins(s), "click_rate": s.click_rate,
        "revenue_per_message": s.revenue_per_message,
    }  # fmt: skip


_FIRST_ROUND = "first round: split by the variants' weights"


def _rounds(test: AbTest, releases: Sequence[ab_rounds.AbRound]) -> list[dict[str, Any]]:
    """An adaptive test's allocation over time: each release, the share of the audience it
    sends, its split, and what that was decided from (delivered, clicks and exposures per
    variant over the rounds before it, each variant's P(best), the reason)."""
    shares = test.round_shares()
    return [
        {
            "round": r.round, "last_round": r.last_round, "decided_at": r.decided_at,
            "audience_share": round(sum(shares[r.round : r.last_round + 1]), 4),
            "weights": r.weights, "delivered": r.delivered, "clicks": r.clicks,
            "exposures": r.exposures, "p_best": r.p_best,
            "reason": (r.decision or {}).get("reason", _FIRST_ROUND),
        }
        for r in releases
    ]  # fmt: skip


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
        test = c.ab_test()
        if test is not None and test.mode == "adaptive":
            ab["rounds"] = _rounds(test, await ab_rounds.releases(svc.pool, campaign_id))
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
        models={
            "sto": await _model(svc, c.sto_model_id, c.brand_id),
            "recs": await _model(svc, c.recs_model_id, c.brand_id),
        },
    )  # fmt: skip


async def _model(svc: Services, model_id: int | None, brand_id: int) -> dict[str, Any] | None:
    m = None if model_id is None else await models.get_model(svc.pool, model_id, brand_id=brand_id)
    return None if m is None else {"id": m.id, "version": m.version, "trained_at": m.trained_at}
