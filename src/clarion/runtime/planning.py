"""The send plan against live data: stream a campaign's audience from Postgres through the
pure `Planner`, store the plan on the campaign, and count what actually happened for the
plan-versus-actual report."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from clarion.domain.brands import brand_fields
from clarion.domain.ports import Provider
from clarion.domain.rows import SubscriberRow
from clarion.errors import InvalidInput, ProviderError
from clarion.pipeline import audience, links, personalize
from clarion.pipeline.lanes import pacific_day
from clarion.pipeline.plan import Actual, PlanContext, Planner, PlanRecipient, SendPlan
from clarion.store import brands, campaigns, compliance, messages
from clarion.store import lanes as lane_store
from clarion.store.db import Pool

log = logging.getLogger(__name__)

# How far from now a plan's launch time may be: a plan is for a launch that can happen (and
# times near year 1 or 9999 overflow the plan's date arithmetic).
MAX_PLAN_OFFSET = timedelta(days=5 * 366)


async def plan_campaign(
    pool: Pool,
    provider: Provider,
    campaign_id: int,
    *,
    at: datetime,
    platform_rate_mps: float,
    links_url: str = "http://127.0.0.1:8080",
    page_size: int = 2000,
) -> SendPlan:
    """What launching the campaign at `at` would do, computed over its whole audience with
    the same rules the send stage applies (current consent, suppressions, recent sends,
    quiet hours, sender pool, lane limits, today's use of daily caps). Unknown carriers are
    looked up (and remembered), as the send stage would. The plan is stored on the campaign."""
    if abs(at - datetime.now(UTC)) > MAX_PLAN_OFFSET:
        raise InvalidInput(
            f"must be within {MAX_PLAN_OFFSET.days} days of now, not {at.isoformat()}", field="at"
        )
    c = await campaigns.get_campaign(pool, campaign_id)
    b = await brands.get_brand(pool, c.brand_id)
    brand_id = c.brand_id
    limits, pools = await lane_store.load_limits(pool)
    expires_at = c.expires_at or at + timedelta(hours=c.expiry_h)
    ctx = PlanContext(
        at=at,
        brand_id=brand_id,
        campaign_id=campaign_id,
        provider=provider.name,
        sender_pool=pools.get(brand_id, []),
        default_sender=b.sender,
        limits=limits,
        expires_at=expires_at,
        smart_sending_h=b.smart_sending_h,
        daily_used=await _daily_used(pool, brand_id, at),
        platform_rate_mps=platform_rate_mps,
    )
    planner = Planner(ctx)
    template = personalize.compile_template(c.body)
    shown = brand_fields(b.name, b.help_text, b.sender, b.macros)
    short = None  # tracked links, as long as they will be (a sample code each)
    if c.track_links:
        urls = personalize.constant_urls(c.body, brand=shown)
        base = links.links_base(b.link_domain, links_url)
        short = links.Rewriter(base, dict.fromkeys(urls, 1), "preview")
    cursor = 0
    while True:
        rows = (
            await brands.phone_page(pool, brand_id, cursor, page_size)
            if not c.targeted  # else resolved by the service
            else await brands.campaign_audience_range(
                pool, brand_id, campaign_id, cursor, page_size
            )
        )
        if not rows:
            break
        cursor = rows[-1].id
        carriers = await _carriers(pool, provider, rows)
        async with pool.acquire() as conn:
            state = await compliance.gate_state(
                conn,
                brand_id,
                [r.id for r in rows],
                [r.phone for r in rows if r.phone is not None],
                at - timedelta(hours=24),
            )
        batch = audience.recipient_batch(
            brand_id=brand_id, campaign_id=campaign_id, attempt=0, rows=rows
        )
        rendered = personalize.render_batch(
            template, batch, campaign_uid=str(c.uid), brand=shown, sender=b.sender,
            max_segments=b.max_segments, links=short,
        )  # fmt: skip
        segments = {m.subscriber_id: m.segments for m in rendered.messages}
        errors = {f.subscriber_id: f.error for f in rendered.failures}
        planner.add(
            PlanRecipient(
                subscriber_id=r.id,
                phone=r.phone,
                timezone=r.timezone,
                carrier=carriers.get(r.id),
                segments=segments.get(r.id, 0),
                consent=state.consent.get(r.id),
                suppression=state.suppressed.get(r.phone),
                recent_sends=tuple(state.recent_sends.get(r.id, ())),
                render_error=errors.get(r.id),
            )
            for r in rows
            if r.phone is not None  # `phone_page` reads only those; a segment's page, all
        )
    plan = planner.result()
    await campaigns.store_plan(pool, campaign_id, plan)
    return plan


async def _carriers(pool: Pool, provider: Provider, rows: list[SubscriberRow]) -> dict[int, str]:
    """Each subscriber's carrier: stored, else looked up and remembered. A failed lookup
    leaves them unknown in the plan (the send stage looks again before sending)."""
    known = {r.id: r.carrier for r in rows if r.carrier is not None}
    unknown = [(r.id, r.phone) for r in rows if r.carrier is None and r.phone is not None]
    if unknown:
        try:
            found = await provider.lookup_carriers(sorted({phone for _, phone in unknown}))
        except ProviderError as exc:
            log.warning("carrier lookup failed, planning without it: %s", exc)
            return known
        fresh = [(sid, found[phone]) for sid, phone in unknown if phone in found]
        async with pool.acquire() as conn:
            await messages.set_carriers(conn, fresh)
        known.update(fresh)
    return known


async def _daily_used(pool: Pool, brand_id: int, at: datetime) -> dict[tuple[str, str], int]:
    """Today's (Pacific) use of the brand's daily carrier caps, from the shared lane state."""
    return await lane_store.daily_used(pool, brand_id, pacific_day(at))


async def actual(pool: Pool, campaign_id: int) -> Actual:
    """What the campaign did, counted the way its plan was."""
    c = await campaigns.get_campaign(pool, campaign_id)
    n = await campaigns.actual_counts(pool, campaign_id)
    return Actual(
        eligible=c.audience_count - n.excluded - n.expired,
        sent=n.sent,
        deferred=n.deferred,
        capped=n.capped,
        expired=n.expired,
        segments=n.segments,
        first_send_at=c.first_send_at,
        finished_at=n.finished_at,
        carriers=n.carriers,
    )
