"""A brand's past, written in bulk: the experiments (`harness/experiments`) give a brand the
history of campaigns a real one would have — messages delivered, links clicked — in the
tables the pipeline and the redirect write, so what learns from them reads them as it would
in production."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

import msgspec

from clarion.store.db import Pool


class Recipient(msgspec.Struct, frozen=True):
    id: int
    phone: str
    timezone: str | None


class PastMessage(msgspec.Struct, frozen=True, gc=False):
    """A delivered message of a past campaign and, if its recipient clicked, when."""

    id: str
    subscriber_id: int
    to: str
    sent_at: datetime
    clicked_at: datetime | None


async def recipients(pool: Pool, brand_id: int) -> list[Recipient]:
    rows = await pool.fetch(
        "SELECT id, phone, timezone FROM subscribers WHERE brand_id = $1 AND phone IS NOT NULL"
        " ORDER BY id",
        brand_id,
    )
    return [Recipient(r["id"], r["phone"], r["timezone"]) for r in rows]


async def past_campaign(
    pool: Pool, brand_id: int, campaign_id: int, link_url: str, messages: Sequence[PastMessage]
) -> None:
    """A campaign's past sending (the campaign row stays as created): its messages
    delivered, its one tracked link, the human clicks on it."""
    async with pool.acquire() as conn, conn.transaction():
        link_id = await conn.fetchval(
            "INSERT INTO links (brand_id, campaign_id, variant, url) VALUES ($1, $2, 'a', $3)"
            " RETURNING id",
            brand_id, campaign_id, link_url,
        )  # fmt: skip
        await conn.copy_records_to_table(
            "messages",
            records=[
                (
                    uuid.UUID(m.id),
                    brand_id,
                    campaign_id,
                    m.subscriber_id,
                    "sms",
                    m.to,
                    "delivered",
                    3,
                    m.sent_at,
                    m.sent_at,
                    m.sent_at,
                )
                for m in messages
            ],
            columns=(
                "id",
                "brand_id",
                "campaign_id",
                "subscriber_id",
                "channel",
                "to_address",
                "status",
                "status_rank",
                "created_at",
                "sent_at",
                "updated_at",
            ),
        )
        await conn.copy_records_to_table(
            "clicks",
            records=[
                (
                    link_id,
                    m.subscriber_id,
                    "human",
                    brand_id,
                    campaign_id,
                    uuid.UUID(m.id),
                    m.clicked_at,
                    m.clicked_at,
                    1,
                )
                for m in messages
                if m.clicked_at is not None
            ],
            columns=(
                "link_id",
                "subscriber_id",
                "kind",
                "brand_id",
                "campaign_id",
                "message_id",
                "first_at",
                "last_at",
                "clicks",
            ),
        )
        await conn.execute(
            "UPDATE campaigns SET launched_at = $2 WHERE id = $1",
            campaign_id, min((m.sent_at for m in messages), default=None),
        )  # fmt: skip


async def analyze(pool: Pool) -> None:
    """Fresh statistics for the tables a history filled (autovacuum would have them long
    before anyone learns from a real history)."""
    await pool.execute("ANALYZE messages, clicks, links, campaigns, subscribers")
