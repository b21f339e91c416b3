"""A/B tests in Postgres: the test-then-winner campaigns whose wait is over, what each
variant's sample did, and the decision (made once, with the launch that sends the winner to
the rest)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from clarion.domain.rows import CampaignRow
from clarion.store.db import Pool


async def tests_due(pool: Pool) -> list[CampaignRow]:
    """Sending test-then-winner campaigns, undecided, whose wait since the launch is over
    (on the database's clock, as the launch time is)."""
    rows = await pool.fetch(
        """
        SELECT * FROM campaigns
        WHERE ab IS NOT NULL AND ab_winner IS NULL AND status = 'sending'
          AND ab->>'mode' = 'test'
          AND launched_at + make_interval(mins => (ab->>'wait_minutes')::int) <= now()
        ORDER BY launched_at LIMIT 100
        """
    )
    return [msgspec.convert(dict(r), CampaignRow) for r in rows]


class Arm(msgspec.Struct, frozen=True):
    """A variant's part of a campaign: messages delivered, people who clicked (one of its
    links, a person's click), attributed revenue and its sum of squares per recipient."""

    delivered: int = 0
    clickers: int = 0
    revenue: float = 0.0
    revenue_sq: float = 0.0


async def arms(
    pool: Pool, campaign_id: int, prefixes: Mapping[str, str], variants: Mapping[str, str]
) -> dict[str, Arm]:
    """Each variant's part of the campaign, by key. A message's variant is known from its
    id (`prefixes`: the first 19 characters of a variant's ids → its key), a link's from
    its row (`variants`: a link's variant → the key)."""
    delivered = await pool.fetch(
        "SELECT substr(id::text, 1, 19) AS p, count(*) AS n FROM messages"
        " WHERE campaign_id = $1 AND status = 'delivered' GROUP BY 1",
        campaign_id,
    )
    clickers = await pool.fetch(
        "SELECT l.variant, count(DISTINCT k.subscriber_id) AS n FROM clicks k"
        " JOIN links l ON l.id = k.link_id WHERE k.campaign_id = $1 AND k.kind = 'human'"
        " GROUP BY 1",
        campaign_id,
    )
    revenue = await pool.fetch(
        "SELECT p, sum(v)::float8 AS total, sum(v * v)::float8 AS sq FROM ("
        " SELECT substr(message_id::text, 1, 19) AS p, sum(value) AS v FROM attributions"
        " WHERE campaign_id = $1 GROUP BY 1, message_id) x GROUP BY p",
        campaign_id,
    )
    out: dict[str, dict[str, Any]] = {}
    for r in delivered:
        if (key := prefixes.get(r["p"])) is not None:
            out.setdefault(key, {})["delivered"] = out.get(key, {}).get("delivered", 0) + r["n"]
    for r in clickers:
        if (key := variants.get(r["variant"])) is not None:
            out.setdefault(key, {})["clickers"] = out.get(key, {}).get("clickers", 0) + r["n"]
    for r in revenue:
        if (key := prefixes.get(r["p"])) is not None:
            arm = out.setdefault(key, {})
            arm["revenue"] = arm.get("revenue", 0.0) + (r["total"] or 0.0)
            arm["revenue_sq"] = arm.get("revenue_sq", 0.0) + (r["sq"] or 0.0)
    return {k: Arm(**v) for k, v in out.items()}


async def decide(pool: Pool, campaign_id: int, winner: str, decision: Any) -> int | None:
    """Record the decision and count the launch that sends the winner to the rest; its
    attempt number, or None if the test was decided already (by another process)."""
    attempt: int | None = await pool.fetchval(
        """
        UPDATE campaigns SET ab_winner = $2, ab_decision = $3, ab_decided_at = now(),
               launch_count = launch_count + 1, ab_attempt = launch_count + 1,
               audience_cursor = 0, audience_done = false,
               audience_cursors = array_fill(0::bigint, ARRAY[8])
        WHERE id = $1 AND ab_winner IS NULL AND status = 'sending'
        RETURNING launch_count
        """,
        campaign_id, winner, decision,
    )  # fmt: skip
    return attempt


async def undelivered_decisions(pool: Pool, older_than_s: float) -> list[CampaignRow]:
    """Decided tests whose winner's launch has not begun (a process stopped between the
    decision and publishing its command), decided at least `older_than_s` ago."""
    rows = await pool.fetch(
        """
        SELECT * FROM campaigns
        WHERE ab_winner IS NOT NULL AND status = 'sending' AND launch_count = ab_attempt
          AND NOT audience_done AND audience_cursors = array_fill(0::bigint, ARRAY[8])
          AND ab_decided_at < now() - make_interval(secs => $1)
        """,
        older_than_s,
    )
    return [msgspec.convert(dict(r), CampaignRow) for r in rows]
