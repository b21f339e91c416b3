"""Adaptive A/B tests in Postgres: each campaign's releases (`ab_rounds`), the campaigns whose
next round is due, what each variant's messages did so far by their age, and a release,
counted once with the launch that sends it."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import msgspec

from clarion.domain.rows import CampaignRow
from clarion.store.db import Pool


class NextRound(msgspec.Struct, frozen=True, kw_only=True):
    """A release to make: subscriber rounds `round` to `last_round`, sent by `weights`
    (variant key → share), and what it was decided from (per key; the first: nothing)."""

    round: int
    last_round: int
    weights: dict[str, float]
    delivered: dict[str, int] = {}
    clicks: dict[str, int] = {}
    exposures: dict[str, float] = {}
    p_best: dict[str, float] = {}
    decision: dict[str, Any] | None = None


class AbRound(NextRound, frozen=True, kw_only=True):
    """A release made: sent by launch `attempt`, decided at `decided_at`."""

    attempt: int
    decided_at: datetime


async def releases(pool: Pool, campaign_id: int) -> list[AbRound]:
    """The campaign's releases, first first."""
    rows = await pool.fetch(
        "SELECT round, last_round, attempt, decided_at, weights, delivered, clicks, exposures,"
        " p_best, decision FROM ab_rounds WHERE campaign_id = $1 ORDER BY round",
        campaign_id,
    )
    return [msgspec.convert(dict(r), AbRound) for r in rows]


async def open_first(
    pool: Pool, campaign_id: int, weights: Mapping[str, float], attempt: int
) -> list[AbRound]:
    """Record the first release (round 0, by `weights`, sent by `attempt`) unless it is
    recorded already; the campaign's releases."""
    await pool.execute(
        "INSERT INTO ab_rounds (campaign_id, round, last_round, attempt, weights)"
        " VALUES ($1, 0, 0, $2, $3) ON CONFLICT DO NOTHING",
        campaign_id, attempt, dict(weights),
    )  # fmt: skip
    return await releases(pool, campaign_id)


# The latest release of each undecided adaptive campaign that is sending.
_LATEST = """
SELECT c.* FROM campaigns c
JOIN LATERAL (SELECT * FROM ab_rounds r WHERE r.campaign_id = c.id
              ORDER BY r.round DESC LIMIT 1) r ON true
WHERE c.ab IS NOT NULL AND c.ab_winner IS NULL AND c.status = 'sending'
  AND c.ab->>'mode' = 'adaptive'
"""


async def rounds_due(pool: Pool) -> list[CampaignRow]:
    """Sending adaptive campaigns whose latest release (or a relaunch since) has been
    published whole and whose wait since the release is over (on the database's clock):
    their next round is due."""
    rows = await pool.fetch(
        _LATEST
        + """
          AND c.audience_done AND c.launch_count >= r.attempt  -- or a relaunch since
          AND r.decided_at + make_interval(mins => (c.ab->>'wait_minutes')::int) <= now()
        ORDER BY r.decided_at LIMIT 100
        """
    )
    return [msgspec.convert(dict(r), CampaignRow) for r in rows]


async def undelivered_releases(pool: Pool, older_than_s: float) -> list[CampaignRow]:
    """Adaptive campaigns whose latest (not final) release has not begun, released at least
    `older_than_s` ago (a process stopped between the release and publishing its command;
    a final one is a decision, `abtests.undelivered_decisions`)."""
    rows = await pool.fetch(
        _LATEST
        + """
          AND r.round > 0 AND c.launch_count = r.attempt AND NOT c.audience_done
          AND c.audience_cursors = array_fill(0::bigint, ARRAY[8])
          AND r.decided_at < now() - make_interval(secs => $1)
        """,
        older_than_s,
    )
    return [msgspec.convert(dict(r), CampaignRow) for r in rows]


async def delivered_ages(
    pool: Pool, campaign_id: int, prefixes: Mapping[str, str]
) -> dict[str, list[tuple[float, int]]]:
    """Per variant key, its delivered messages by age since they were handed over: (age in
    minutes, the middle of a minute's bucket; messages). A message's variant is known from
    its id (`prefixes`, as `abtests.arms` reads them)."""
    rows = await pool.fetch(
        "SELECT substr(id::text, 1, 19) AS p,"
        " floor(extract(epoch FROM now() - sent_at) / 60)::int AS age, count(*) AS n"
        " FROM messages WHERE campaign_id = $1 AND status = 'delivered'"
        " AND sent_at IS NOT NULL GROUP BY 1, 2",
        campaign_id,
    )
    out: dict[str, list[tuple[float, int]]] = {}
    for r in rows:
        if (key := prefixes.get(r["p"])) is not None:
            out.setdefault(key, []).append((max(r["age"], 0) + 0.5, r["n"]))
    return out


async def release(
    pool: Pool, campaign_id: int, *, after_attempt: int, row: NextRound, winner: str | None
) -> int | None:
    """Record the next release and count the launch that sends it (with `winner`: the test
    is decided, `row.decision` its decision); its attempt, or None if the campaign moved on
    meanwhile (released by another process, relaunched, paused or cancelled)."""
    async with pool.acquire() as conn, conn.transaction():
        attempt: int | None = await conn.fetchval(
            """
            UPDATE campaigns SET launch_count = launch_count + 1, ab_attempt = launch_count + 1,
                   audience_cursor = 0, audience_done = false,
                   audience_cursors = array_fill(0::bigint, ARRAY[8]),
                   ab_winner = $3,
                   ab_decision = CASE WHEN $3::text IS NULL THEN NULL ELSE $4::jsonb END,
                   ab_decided_at = CASE WHEN $3::text IS NULL THEN NULL ELSE now() END
            WHERE id = $1 AND launch_count = $2 AND ab_winner IS NULL AND status = 'sending'
            RETURNING launch_count
            """,
            campaign_id, after_attempt, winner, row.decision,
        )  # fmt: skip
        if attempt is None:
            return None
        await conn.execute(
            "INSERT INTO ab_rounds (campaign_id, round, last_round, attempt, weights, delivered,"
            " clicks, exposures, p_best, decision) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9,"
            " $10)",
            campaign_id, row.round, row.last_round, attempt, row.weights, row.delivered,
            row.clicks, row.exposures, row.p_best, row.decision,
        )  # fmt: skip
    return attempt
