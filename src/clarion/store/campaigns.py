"""Campaigns: authoring, launch bookkeeping, the audience cursor, and the report."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

import asyncpg
import msgspec

from clarion.domain.reports import ActualCounts, CampaignReport, CarrierOutcomes
from clarion.domain.rows import (
    SUBSCRIBER_COLUMNS,
    CampaignRow,
    CampaignSummary,
    SubscriberRow,
)
from clarion.errors import CampaignStateError, NotFound
from clarion.pipeline.campaign import require_draft
from clarion.pipeline.plan import SendPlan
from clarion.store.db import Pool

if TYPE_CHECKING:
    from clarion.store.db import Conn


async def create_campaign(
    pool: Pool,
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
    track_links: bool = True,
    variants: Any = None,
    ab: Any = None,
    email_html: str | None = None,
) -> int:
    """A draft campaign: by SMS (`body`), email (`subject`, `email_body` or else `body`), or
    both (each subscriber on each channel they consented to); to a segment's subscribers (or
    those a `definition` of its own takes) less those of the exclusion segments, or to the
    brand's whole list."""
    campaign_id: int = await pool.fetchval(
        "INSERT INTO campaigns (brand_id, name, body, channel, subject, email_body,"
        " segment_id, exclude_segment_ids, audience_definition, track_links, variants, ab,"
        " email_html) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
        " RETURNING id",
        brand_id, name, body, channel, subject, email_body, segment_id,
        list(exclude_segment_ids), definition, track_links, variants, ab, email_html,
    )  # fmt: skip
    return campaign_id


async def get_campaign(pool: Pool, campaign_id: int, *, brand_id: int | None = None) -> CampaignRow:
    """The campaign (of the brand, when `brand_id` is given); `NotFound` if there is none."""
    row = await pool.fetchrow(
        "SELECT * FROM campaigns WHERE id = $1 AND ($2::bigint IS NULL OR brand_id = $2)",
        campaign_id,
        brand_id,
    )
    if row is None:
        raise NotFound("campaign", campaign_id)
    return msgspec.convert(dict(row), CampaignRow)


async def listed(
    pool: Pool, brand_id: int | None, *, status: str | None, after_id: int, limit: int
) -> list[CampaignSummary]:
    """The campaigns (of the brand, when `brand_id` is given; in `status`, when given) after
    `after_id`, by id: oldest first."""
    rows = await pool.fetch(
        "SELECT id, brand_id, name, channel, status, created_at, launched_at, segment_id,"
        " exclude_segment_ids, audience_definition, scheduled_at FROM campaigns"
        " WHERE ($1::bigint IS NULL OR brand_id = $1) AND ($2::text IS NULL OR status = $2)"
        " AND id > $3 ORDER BY id LIMIT $4",
        brand_id, status, after_id, limit,
    )  # fmt: skip
    return [msgspec.convert(dict(r), CampaignSummary) for r in rows]


async def _lock_draft(conn: Conn, campaign_id: int, brand_id: int | None, verb: str) -> None:
    """In a transaction: lock the campaign's row until it ends (a launch waits, and then
    finds what this transaction left); `NotFound`, or `CampaignStateError` unless it is a
    draft."""
    status: str | None = await conn.fetchval(
        "SELECT status FROM campaigns WHERE id = $1 AND ($2::bigint IS NULL OR brand_id = $2)"
        " FOR UPDATE",
        campaign_id,
        brand_id,
    )
    if status is None:
        raise NotFound("campaign", campaign_id)
    require_draft(campaign_id=campaign_id, status=status, verb=verb)


async def update_draft(
    pool: Pool,
    campaign_id: int,
    *,
    brand_id: int | None,
    name: str,
    body: str,
    channel: str,
    subject: str | None,
    email_body: str | None,
    segment_id: int | None,
    exclude_segment_ids: Sequence[int],
    definition: Any,
    forget_plan: bool,
    variants: Any = None,
    ab: Any = None,
    track_links: bool = True,
    email_html: str | None = None,
) -> CampaignRow:
    """Rewrite a draft (name, texts, channel, audience); `forget_plan` drops its stored plan
    and the audience the plan resolved (they were for the campaign as it was).
    `CampaignStateError` once it has been launched."""
    async with pool.acquire() as conn, conn.transaction():
        await _lock_draft(conn, campaign_id, brand_id, "changed")
        if forget_plan:
            await conn.execute(
                "DELETE FROM campaign_audience_chunks WHERE campaign_id = $1", campaign_id
            )
        row = await conn.fetchrow(
            "UPDATE campaigns SET name = $2, body = $3, channel = $4, subject = $5,"
            " email_body = $6, segment_id = $7, exclude_segment_ids = $8,"
            " audience_definition = $9, plan = CASE WHEN $10 THEN NULL ELSE plan END,"
            " variants = $11, ab = $12, track_links = $13, email_html = $14"
            " WHERE id = $1 RETURNING *",
            campaign_id, name, body, channel, subject, email_body, segment_id,
            list(exclude_segment_ids), definition, forget_plan, variants, ab, track_links,
            email_html,
        )  # fmt: skip
    assert row is not None  # locked above
    return msgspec.convert(dict(row), CampaignRow)


async def delete_draft(pool: Pool, campaign_id: int, *, brand_id: int | None) -> None:
    """Delete a draft and the audience its plan resolved. `CampaignStateError` once it has
    been launched: a launched campaign's messages name it (they have no foreign key: the
    hottest insert pays for none)."""
    async with pool.acquire() as conn, conn.transaction():
        await _lock_draft(conn, campaign_id, brand_id, "deleted")
        await conn.execute(
            "DELETE FROM campaign_audience_chunks WHERE campaign_id = $1", campaign_id
        )
        await conn.execute("DELETE FROM campaigns WHERE id = $1", campaign_id)


# Count a launch: the campaign sends, its audience read again from the start; its messages
# expire `expiry_h` after $2 (the gate's clock at the first launch). $3: only from this
# status (NULL: any).
_BEGIN_LAUNCH = """
UPDATE campaigns SET launch_count = launch_count + 1, status = 'sending',
       launched_at = coalesce(launched_at, now()),
       expires_at = coalesce(expires_at, $2::timestamptz + expiry_h * interval '1 hour'),
       audience_cursor = 0, audience_done = false,
       audience_cursors = array_fill(0::bigint, ARRAY[8]),
       -- the models in force at the first launch: what chose its times and products
       sto_model_id = CASE WHEN best_time_h IS NULL THEN NULL
                           ELSE coalesce(sto_model_id, (SELECT id FROM models m
                               WHERE m.brand_id = campaigns.brand_id AND m.kind = 'sto'
                               AND m.pruned_at IS NULL ORDER BY m.version DESC LIMIT 1)) END,
       recs_model_id = coalesce(recs_model_id, (SELECT id FROM models m
                           WHERE m.brand_id = campaigns.brand_id AND m.kind = 'recs'
                           AND m.pruned_at IS NULL ORDER BY m.version DESC LIMIT 1))
WHERE id = $1 AND ($3::text IS NULL OR status = $3) RETURNING launch_count
"""


async def begin_launch(pool: Pool, campaign_id: int, at: datetime) -> int:
    """Count a launch; returns the attempt number (1 for the first launch). The campaign's
    messages expire `expiry_h` after `at` (the gate's clock at the first launch)."""
    attempt: int | None = await pool.fetchval(_BEGIN_LAUNCH, campaign_id, at, None)
    if attempt is None:  # deleted (a draft) since the launch read it
        raise NotFound("campaign", campaign_id)
    return attempt


async def advance_audience(
    pool: Pool,
    campaign_id: int,
    *,
    before: Sequence[int],
    after: Sequence[int],
    added: int,
    attempt: int,
    counted: bool | None = None,
) -> bool:
    """Move the partitions' audience cursors from `before` to `after` once their pages are
    published (-1: a partition is done). False when a newer launch attempt owns the campaign
    (this read's attempt is stale) or the cursors moved already (a replay): nothing is
    counted twice. `counted`: whether this launch's messages add to the audience (default:
    the first launch's only; a test's winner launch, sent to the rest, too)."""
    result: str = await pool.execute(
        """
        UPDATE campaigns SET audience_cursors = $3::bigint[],
               audience_cursor = greatest(audience_cursor, (SELECT max(c) FROM unnest($3) c)),
               audience_count = CASE WHEN $6 THEN audience_count + $4 ELSE audience_count END
        WHERE id = $1 AND launch_count = $5 AND audience_cursors = $2::bigint[]
        """,
        campaign_id,
        list(before),
        list(after),
        added,
        attempt,
        attempt == 1 if counted is None else counted,
    )
    return result.endswith(" 1")


async def finish_audience(pool: Pool, campaign_id: int, attempt: int) -> None:
    await pool.execute(
        "UPDATE campaigns SET audience_done = true WHERE id = $1 AND launch_count = $2",
        campaign_id,
        attempt,
    )


async def campaign_report(pool: Pool, campaign_id: int) -> CampaignReport:
    """Counts by status plus the campaign's bookkeeping, for progress and the final report."""
    campaign = await get_campaign(pool, campaign_id)
    rows = await pool.fetch(
        "SELECT status, error_code, channel, count(*) AS n FROM messages WHERE campaign_id = $1"
        " GROUP BY status, error_code, channel",
        campaign_id,
    )
    # final outcomes the carrier stage counts (SMS receipts; email has no carriers)
    receipted = sum(
        r["n"]
        for r in rows
        if r["channel"] == "sms" and r["status"] in ("delivered", "undelivered")
    )
    by_status: dict[str, int] = {}
    suppressed: dict[str, int] = {}
    deferred: dict[str, int] = {}
    errors: dict[str, int] = {}
    for r in rows:
        status, code, n = r["status"], r["error_code"], r["n"]
        by_status[status] = by_status.get(status, 0) + n
        bucket = {"suppressed": suppressed, "expired": suppressed, "deferred": deferred}.get(
            status, errors
        )
        if code is not None:
            bucket[code] = bucket.get(code, 0) + n
    carriers = await pool.fetch(
        "SELECT carrier, delivered, undelivered, failed FROM carrier_stats"
        " WHERE campaign_id = $1 ORDER BY carrier",
        campaign_id,
    )
    return CampaignReport(
        campaign=campaign,
        by_status=by_status,
        persisted=sum(by_status.values()),
        receipted=receipted,
        carriers=msgspec.convert([dict(r) for r in carriers], list[CarrierOutcomes]),
        errors=errors,
        suppressed_by_reason=suppressed,
        deferred_by_reason=deferred,
    )


async def sample_and_first_contact(pool: Pool, brand_id: int) -> tuple[SubscriberRow | None, bool]:
    """(a sample subscriber with a phone, the brand's first; whether any subscriber of the
    brand has never been handed a marketing message: then a campaign is someone's first
    message)."""
    row = await pool.fetchrow(
        f"SELECT {', '.join(SUBSCRIBER_COLUMNS)} FROM subscribers"
        " WHERE brand_id = $1 AND phone IS NOT NULL ORDER BY id LIMIT 1",
        brand_id,
    )
    sample = None if row is None else SubscriberRow(*row)
    first_contact: bool = await pool.fetchval(
        """
        SELECT EXISTS (
            SELECT 1 FROM subscribers s WHERE s.brand_id = $1 AND s.phone IS NOT NULL
              AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.subscriber_id = s.id
                              AND m.kind = 'marketing'
                              AND m.status IN ('accepted', 'sent', 'delivered')))
        """,
        brand_id,
    )
    return sample, first_contact


# Advisory lock space of campaign control: a pause or cancel takes its campaign's key
# exclusively; the send stage takes it shared while it writes a new batch's claimed rows
# (a row lock on `campaigns` would also block the audience's cursor updates).
_CONTROL_LOCK = 0x0C1A_0002


def control_key(campaign_id: int) -> int:
    """The advisory lock key of a campaign's pause, resume and cancel."""
    return (_CONTROL_LOCK << 32) | (campaign_id & 0xFFFF_FFFF)


async def set_paused(
    pool: Pool, campaign_id: int, paused: bool, *, now: datetime | None = None
) -> str:
    """Pause a sending campaign, or resume a paused one; returns the new status. The
    messages a pause held are due again at `now` (default: the database's clock), the
    moment the deferred sweeper compares with its own clock."""
    frm, to = ("sending", "paused") if paused else ("paused", "sending")
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", control_key(campaign_id))
        status: str | None = await conn.fetchval(
            "UPDATE campaigns SET status = $3 WHERE id = $1 AND status = $2 RETURNING status",
            campaign_id,
            frm,
            to,
        )
    if status is None:
        current = (await get_campaign(pool, campaign_id)).status
        raise CampaignStateError(f"campaign {campaign_id} is {current}; it cannot be {to}")
    if not paused:  # the messages the pause held wait no longer (the sweeper sends them on)
        await pool.execute(
            "UPDATE messages SET not_before = coalesce($2, now()), error_code = 'resumed',"
            " updated_at = now()"
            " WHERE campaign_id = $1 AND status = 'deferred' AND error_code = 'paused'",
            campaign_id,
            now,
        )
    return status


async def cancel(pool: Pool, campaign_id: int) -> int:
    """End a campaign: no more pages, and every message still waiting is recorded as
    suppressed with reason `cancelled`. Returns how many waiting messages it cancelled.

    The cancel updates thousands of rows while the send stage and the sweeper update some of
    the same ones: Postgres may pick it as a deadlock's victim. It then rolls back whole and
    is tried again."""
    for attempt in range(5):
        try:
            return await _cancel(pool, campaign_id)
        except asyncpg.exceptions.DeadlockDetectedError:
            if attempt == 4:
                raise
            await asyncio.sleep(0.05 * (attempt + 1))
    raise AssertionError("unreachable")


async def _cancel(pool: Pool, campaign_id: int) -> int:
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", control_key(campaign_id))
        status = await conn.fetchval(
            "UPDATE campaigns SET status = 'cancelled', audience_done = true"
            " WHERE id = $1 AND status IN ('sending', 'paused', 'draft', 'scheduled')"
            " RETURNING status",
            campaign_id,
        )
        if status is None:
            current = (await get_campaign(pool, campaign_id)).status
            raise CampaignStateError(f"campaign {campaign_id} is {current}; it cannot be cancelled")
        result: str = await conn.execute(
            "UPDATE messages SET status = 'suppressed', status_rank = 3, error_code = 'cancelled',"
            " updated_at = now() WHERE campaign_id = $1 AND status IN ('queued', 'deferred')",
            campaign_id,
        )
    return int(result.rsplit(" ", 1)[-1])


async def status_of(conn: Conn | Pool, campaign_id: int | None) -> str | None:
    """The campaign's status now (None: no such campaign, or none: a transactional batch)."""
    if campaign_id is None:
        return None
    status: str | None = await conn.fetchval(
        "SELECT status FROM campaigns WHERE id = $1", campaign_id
    )
    return status


async def status_and_now(conn: Conn, campaign_id: int) -> tuple[str, datetime] | None:
    """(the campaign's status, the database's time now), or None: no such campaign. The
    send stage stamps its claims with the database's clock, the one reconciliation reads."""
    row = await conn.fetchrow(
        "SELECT status, now() AS claimed_at FROM campaigns WHERE id = $1", campaign_id
    )
    return None if row is None else (row["status"], row["claimed_at"])


async def hold_control_shared(conn: Conn, campaign_id: int) -> None:
    """In a transaction: hold the campaign's control lock shared until it ends, so a pause
    or cancel waits for the rows written under it (and sees them)."""
    await conn.execute("SELECT pg_advisory_xact_lock_shared($1)", control_key(campaign_id))


async def stamp_first_send(pool: Pool, campaign_id: int) -> None:
    """The campaign's first provider call is now (set once)."""
    await pool.execute(
        "UPDATE campaigns SET first_send_at = now() WHERE id = $1 AND first_send_at IS NULL",
        campaign_id,
    )


async def store_plan(pool: Pool, campaign_id: int, plan: SendPlan) -> None:
    """Keep the campaign's send plan (as JSON) for the plan-versus-actual report."""
    await pool.execute(
        "UPDATE campaigns SET plan = $2 WHERE id = $1", campaign_id, msgspec.to_builtins(plan)
    )


async def stored_plan(pool: Pool, campaign_id: int) -> SendPlan | None:
    """The campaign's stored send plan (None: not planned)."""
    raw = await pool.fetchval("SELECT plan FROM campaigns WHERE id = $1", campaign_id)
    return None if raw is None else msgspec.convert(raw, SendPlan)


async def actual_counts(pool: Pool, campaign_id: int) -> ActualCounts:
    """What the campaign did, counted the way a send plan counts."""
    r = await pool.fetchrow(
        """
        SELECT
          count(*) FILTER (WHERE status IN ('accepted', 'sent', 'delivered', 'undelivered')
                           AND waited IS DISTINCT FROM 'quiet_hours_deferred') AS sent,
          count(*) FILTER (WHERE waited = 'quiet_hours_deferred'
                           OR error_code = 'quiet_hours_deferred') AS deferred,
          count(*) FILTER (WHERE waited = 'carrier_daily_cap'
                           OR error_code = 'carrier_daily_cap') AS capped,
          count(*) FILTER (WHERE status = 'expired') AS expired,
          count(*) FILTER (WHERE status = 'suppressed' OR error_code = 'template_error')
              AS excluded,
          coalesce(sum(segments) FILTER (WHERE status IN ('accepted', 'sent', 'delivered',
                                                          'undelivered')), 0) AS segments,
          max(updated_at) FILTER (WHERE status_rank = 3) AS finished_at
        FROM messages WHERE campaign_id = $1
        """,
        campaign_id,
    )
    assert r is not None
    carriers = await pool.fetch(
        "SELECT coalesce(m.carrier, s.carrier, 'unknown') AS carrier, count(*) AS n"
        " FROM messages m JOIN subscribers s ON s.id = m.subscriber_id"
        " WHERE m.campaign_id = $1"
        " AND m.status IN ('accepted', 'sent', 'delivered', 'undelivered')"
        " GROUP BY 1",
        campaign_id,
    )
    by_carrier = {x["carrier"]: x["n"] for x in carriers}
    return msgspec.convert({**dict(r), "carriers": by_carrier}, ActualCounts)


async def schedule(
    pool: Pool,
    campaign_id: int,
    *,
    brand_id: int | None,
    at: datetime,
    local_day: date | None,
    local_time: str | None,
    best_time_h: int | None = None,
) -> None:
    """A draft becomes `scheduled`: launched by the sweeper at `at` (with a local-time wave
    when `local_day` and `local_time` are given; each subscriber at their best time within
    `best_time_h` hours of `at` when that is). `CampaignStateError` unless a draft."""
    async with pool.acquire() as conn, conn.transaction():
        await _lock_draft(conn, campaign_id, brand_id, "scheduled")
        await conn.execute(
            "UPDATE campaigns SET status = 'scheduled', scheduled_at = $2, local_day = $3,"
            " local_time = $4, best_time_h = $5 WHERE id = $1",
            campaign_id, at, local_day, local_time, best_time_h,
        )  # fmt: skip


async def unschedule(pool: Pool, campaign_id: int, *, brand_id: int | None) -> None:
    """A scheduled campaign back to a draft (`CampaignStateError` unless scheduled)."""
    done = await pool.execute(
        "UPDATE campaigns SET status = 'draft', scheduled_at = NULL, local_day = NULL,"
        " local_time = NULL, best_time_h = NULL"
        " WHERE id = $1 AND ($2::bigint IS NULL OR brand_id = $2) AND status = 'scheduled'",
        campaign_id, brand_id,
    )  # fmt: skip
    if done == "UPDATE 0":
        status = (await get_campaign(pool, campaign_id, brand_id=brand_id)).status
        raise CampaignStateError(f"campaign {campaign_id} is {status}, not scheduled")


async def due_schedules(pool: Pool, now: datetime) -> list[CampaignRow]:
    """Scheduled campaigns whose moment has come by `now` (the workers' clock, the one the
    API checked the schedule with)."""
    rows = await pool.fetch(
        "SELECT * FROM campaigns WHERE status = 'scheduled' AND scheduled_at <= $1"
        " ORDER BY scheduled_at LIMIT 100",
        now,
    )
    return [msgspec.convert(dict(r), CampaignRow) for r in rows]


async def launch_scheduled(pool: Pool, campaign_id: int, at: datetime) -> int | None:
    """Count a scheduled campaign's launch (`begin_launch`, its moment the schedule's); its
    attempt, or None when it is no longer scheduled (another process launched it, or it was
    unscheduled): one launch, whoever asks."""
    attempt: int | None = await pool.fetchval(_BEGIN_LAUNCH, campaign_id, at, "scheduled")
    return attempt


async def stalled_launches(pool: Pool, older_than_s: float) -> list[CampaignRow]:
    """Campaigns launched by the sweeper at least `older_than_s` ago whose audience has not
    begun (a process stopped between counting the launch and publishing its command)."""
    rows = await pool.fetch(
        """
        SELECT * FROM campaigns
        WHERE status = 'sending' AND scheduled_at IS NOT NULL AND NOT audience_done
          AND audience_cursors = array_fill(0::bigint, ARRAY[8]) AND audience_count = 0
          AND launched_at < now() - make_interval(secs => $1)
        LIMIT 100
        """,
        older_than_s,
    )
    return [msgspec.convert(dict(r), CampaignRow) for r in rows]


async def audience_zones(pool: Pool, campaign: CampaignRow) -> dict[str, int]:
    """The time zones of the campaign's audience (resolved, or the whole list) and how many
    subscribers each has."""
    if campaign.targeted:
        rows = await pool.fetch(
            "SELECT s.timezone, count(*) AS n FROM campaign_audience_chunks c,"
            " unnest(c.ids) AS u(id) JOIN subscribers s ON s.id = u.id"
            " WHERE c.campaign_id = $1 AND s.timezone IS NOT NULL GROUP BY 1",
            campaign.id,
        )
    else:
        rows = await pool.fetch(
            "SELECT timezone, count(*) AS n FROM subscribers WHERE brand_id = $1"
            " AND erased_at IS NULL AND timezone IS NOT NULL GROUP BY 1",
            campaign.brand_id,
        )
    return {r[0]: r[1] for r in rows}
