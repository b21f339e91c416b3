"""Persisting a batch the bus delivers again: the COPY hits the unique key and the batch goes
in once more as INSERT … ON CONFLICT DO NOTHING, adding nothing."""

from __future__ import annotations

from clarion import bootstrap
from clarion.domain.records import OutboundMessage, RenderedBatch
from clarion.pipeline import send
from clarion.store import messages
from tests.integration.helpers import brand_with_subscribers, campaign


async def test_a_redelivered_batch_persists_nothing_new(infra: bootstrap.Infra) -> None:
    audience = await brand_with_subscribers(infra.pool, 5, seed=1501)
    campaign_id = await campaign(infra.pool, audience.brand_id)
    subs = await infra.pool.fetch(
        "SELECT id, phone FROM subscribers WHERE brand_id = $1 ORDER BY id", audience.brand_id
    )
    batch = RenderedBatch(
        batch_id="b1", brand_id=audience.brand_id, campaign_id=campaign_id,
        sender="+15125550100", channel="sms",
        messages=[
            OutboundMessage(
                message_id=f"00000000-0000-4000-8000-{r['id']:012d}", subscriber_id=r["id"],
                to=r["phone"], body="hi", segments=1,
            )
            for r in subs
        ],
    )  # fmt: skip
    rows = send.rows_to_persist(batch, expires_at=None)
    async with infra.pool.acquire() as conn, conn.transaction():
        assert await messages.persist(conn, rows) == len(subs)
    async with infra.pool.acquire() as conn, conn.transaction():
        assert await messages.persist(conn, rows) == 0  # the fallback path, nothing new
    assert await infra.pool.fetchval("SELECT count(*) FROM messages") == len(subs)
