"""Persisting a batch the bus delivers again: the COPY hits the unique key and the batch goes
in once more as INSERT … ON CONFLICT DO NOTHING, adding nothing."""

from __future__ import annotations

from datetime import UTC, datetime

from clarion import bootstrap
from clarion.domain.records import OutboundMessage, Receipt, RenderedBatch
from clarion.pipeline import aggregate, send
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


async def test_receipts_seen_again_add_no_event_and_keep_the_rest_of_their_batch(
    infra: bootstrap.Infra,
) -> None:
    audience = await brand_with_subscribers(infra.pool, 3, seed=1502)
    campaign_id = await campaign(infra.pool, audience.brand_id)
    subs = await infra.pool.fetch(
        "SELECT id, phone FROM subscribers WHERE brand_id = $1 ORDER BY id", audience.brand_id
    )
    ids = [f"00000000-0000-4000-8000-{r['id']:012d}" for r in subs]
    batch = RenderedBatch(
        batch_id="b2", brand_id=audience.brand_id, campaign_id=campaign_id,
        sender="+15125550100", channel="sms",
        messages=[
            OutboundMessage(
                message_id=i, subscriber_id=r["id"], to=r["phone"], body="hi", segments=1
            )
            for i, r in zip(ids, subs, strict=True)
        ],
    )  # fmt: skip
    async with infra.pool.acquire() as conn, conn.transaction():
        await messages.persist(conn, send.rows_to_persist(batch, expires_at=None))
    at = datetime.now(UTC)
    first = [Receipt(message_id=ids[0], status="sent", occurred_at=at)]
    # the same `sent` again, with receipts never seen for the other two
    again = first + [Receipt(message_id=i, status="delivered", occurred_at=at) for i in ids[1:]]
    for receipts in (first, again):
        async with infra.pool.acquire() as conn, conn.transaction():
            await messages.apply_receipts(conn, "sim", receipts, aggregate.fold(receipts))
    events = await infra.pool.fetch(
        "SELECT message_id::text AS id, status, brand_id FROM message_events ORDER BY 1, 2"
    )
    assert [(e["id"], e["status"]) for e in events] == [(ids[0], "sent")] + [
        (i, "delivered") for i in ids[1:]
    ]
    assert {e["brand_id"] for e in events} == {audience.brand_id}
    statuses = await infra.pool.fetch("SELECT id::text AS id, status FROM messages ORDER BY 1")
    assert [r["status"] for r in statuses] == ["sent", "delivered", "delivered"]
