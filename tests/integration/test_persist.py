"""Persisting a batch the bus delivers again: the COPY hits the unique key and the batch goes
in once more as INSERT … ON CONFLICT DO NOTHING, adding nothing."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from clarion import bootstrap
from clarion.domain.records import Receipt
from clarion.pipeline import aggregate, send
from clarion.pipeline.send import SendResult
from clarion.store import compliance, messages
from tests.integration.helpers import rendered_batch, stored_batch


async def test_a_redelivered_batch_persists_nothing_new(infra: bootstrap.Infra) -> None:
    batch = await rendered_batch(infra, 5, seed=1501, key="b1")
    rows = send.rows_to_persist(batch, expires_at=None)
    async with infra.pool.acquire() as conn, conn.transaction():
        assert await messages.persist(conn, rows) == 5
    async with infra.pool.acquire() as conn, conn.transaction():
        assert await messages.persist(conn, rows) == 0  # the fallback path, nothing new
    assert await infra.pool.fetchval("SELECT count(*) FROM messages") == 5


async def test_receipts_seen_again_add_no_event_and_keep_the_rest_of_their_batch(
    infra: bootstrap.Infra,
) -> None:
    batch = await stored_batch(infra, 3, seed=1502, key="b2")
    ids = [m.message_id for m in batch.messages]
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
    assert {e["brand_id"] for e in events} == {batch.brand_id}
    # the log keeps what the provider sent, the repeat too, one row per batch
    logged = await infra.pool.fetch(
        "SELECT provider, json_array_length(events) AS n FROM receipt_log ORDER BY recorded_at"
    )
    assert [(r["provider"], r["n"]) for r in logged] == [("sim", 1), ("sim", 3)]
    statuses = await infra.pool.fetch("SELECT id::text AS id, status FROM messages ORDER BY 1")
    assert [r["status"] for r in statuses] == ["sent", "delivered", "delivered"]


async def test_events_recorded_before_the_receipt_log_are_still_read_and_kept_first(
    infra: bootstrap.Infra,
) -> None:
    batch = await stored_batch(infra, 1, seed=1506, key="b6")
    (mid,) = (m.message_id for m in batch.messages)
    before = datetime.now(UTC) - timedelta(minutes=5)
    # a `sent` recorded one row per event, before migration 0018
    await infra.pool.execute(
        "INSERT INTO message_events_by_row (brand_id, message_id, status, provider, occurred_at,"
        " recorded_at) VALUES ($1, $2, 'sent', 'sim', $3, $3)",
        batch.brand_id, mid, before,
    )  # fmt: skip
    receipts = [
        Receipt(message_id=mid, status=s, occurred_at=datetime.now(UTC), carrier="Verizon")
        for s in ("sent", "delivered")
    ]
    async with infra.pool.acquire() as conn, conn.transaction():
        await messages.apply_receipts(conn, "sim", receipts, aggregate.fold(receipts))
    events = await infra.pool.fetch(
        "SELECT status, recorded_at, carrier FROM message_events WHERE message_id = $1"
        " ORDER BY recorded_at",
        mid,
    )
    assert [(e["status"], e["recorded_at"], e["carrier"]) for e in events] == [
        ("sent", before, None), ("delivered", events[1]["recorded_at"], "Verizon"),
    ]  # fmt: skip
    assert events[1]["recorded_at"] > before


async def test_a_claimed_message_counts_for_smart_sending_before_any_answer(
    infra: bootstrap.Infra,
) -> None:
    batch = await rendered_batch(infra, 2, seed=1503, key="b3")
    claimed_at = datetime.now(UTC)
    rows = send.decided_rows(
        batch, expires_at=None, provider="sim", quiet=[], waits=[],
        drops=[(batch.messages[1].message_id, "suppressed", "opted_out", None)],
        sent_at=claimed_at,
    )  # fmt: skip
    async with infra.pool.acquire() as conn, conn.transaction():
        await messages.copy_new(conn, rows)
    ids = [m.subscriber_id for m in batch.messages if m.subscriber_id is not None]
    since = claimed_at - timedelta(hours=24)
    async with infra.pool.acquire() as conn:
        recent, waiting = await messages.recent_and_waiting(
            conn, ids, since=since, now=claimed_at, channel="sms",
            handed_over=compliance.HANDED_OVER,
        )  # fmt: skip
        state = await compliance.gate_state(
            conn, batch.brand_id, ids, [m.to for m in batch.messages], since
        )
        # a redelivered batch that finds its own message claimed (a crash cut the call
        # short) does not count that message as an earlier send to its subscriber
        again, _ = await messages.recent_and_waiting(
            conn, ids, since=since, now=claimed_at, channel="sms",
            handed_over=compliance.HANDED_OVER, now_sending={batch.messages[0].message_id},
        )  # fmt: skip
    # in flight (claimed, no answer folded yet) counts; the suppressed one does not
    assert recent == {ids[0]: [claimed_at]}
    assert state.recent_sends == {ids[0]: [claimed_at]}
    assert waiting == []
    assert again == {}


async def test_an_answer_folds_to_accepted_without_an_event_and_receipts_move_it_on(
    infra: bootstrap.Infra,
) -> None:
    batch = await rendered_batch(infra, 2, seed=1504, key="b4")
    claimed_at = datetime.now(UTC)
    rows = send.decided_rows(
        batch, expires_at=None, provider="sim", drops=[], quiet=[], waits=[], sent_at=claimed_at
    )
    async with infra.pool.acquire() as conn, conn.transaction():
        await messages.copy_new(conn, rows)
    a, b = (m.message_id for m in batch.messages)
    answers = send.answer_receipts(
        [
            SendResult(message_id=a, accepted=True, provider_message_id="SMa"),
            SendResult(message_id=b, accepted=True, provider_message_id="SMb"),
        ],
        claimed_at,
    )
    # a: its answer alone; b: its answer folded with its receipts, one status change
    delivered = Receipt(message_id=b, status="delivered", occurred_at=claimed_at, carrier="AT&T")
    async with infra.pool.acquire() as conn, conn.transaction():
        changes = await messages.apply_receipts(
            conn, "sim", [delivered], aggregate.fold([*answers, delivered])
        )
    assert sorted((c.message_id, c.status) for c in changes) == [
        (a, "accepted"), (b, "delivered"),
    ]  # fmt: skip
    stored = {
        r["id"]: r
        for r in await infra.pool.fetch(
            "SELECT id::text AS id, status, provider_message_id, sent_at FROM messages"
        )
    }
    assert (stored[a]["status"], stored[a]["provider_message_id"]) == ("accepted", "SMa")
    assert (stored[b]["status"], stored[b]["provider_message_id"]) == ("delivered", "SMb")
    assert {r["sent_at"] for r in stored.values()} == {claimed_at}
    events = await infra.pool.fetch("SELECT message_id::text AS id, status FROM message_events")
    assert [(e["id"], e["status"]) for e in events] == [(b, "delivered")]


async def test_a_late_receipt_is_an_event_without_a_change_and_an_unknown_message_is_dropped(
    infra: bootstrap.Infra,
) -> None:
    batch = await stored_batch(infra, 1, seed=1505, key="b5")
    (mid,) = (m.message_id for m in batch.messages)
    at = datetime.now(UTC)
    delivered = [Receipt(message_id=mid, status="delivered", occurred_at=at)]
    # the `sent` comes after the `delivered`; a receipt names a message this install never had
    late = [
        Receipt(message_id=mid, status="sent", occurred_at=at),
        Receipt(message_id="00000000-0000-4000-8000-999999999999", status="sent", occurred_at=at),
    ]
    for receipts in (delivered, late):
        async with infra.pool.acquire() as conn, conn.transaction():
            changes = await messages.apply_receipts(conn, "sim", receipts, aggregate.fold(receipts))
    assert changes == []
    events = await infra.pool.fetch(
        "SELECT message_id::text AS id, status, brand_id FROM message_events"
    )
    assert sorted((e["id"], e["status"], e["brand_id"]) for e in events) == [
        (mid, "delivered", batch.brand_id), (mid, "sent", batch.brand_id),
    ]  # fmt: skip
    assert await infra.pool.fetchval("SELECT status FROM messages") == "delivered"


async def test_the_fold_returns_each_change_with_its_message_and_the_number_of_a_failure(
    infra: bootstrap.Infra,
) -> None:
    """The fold's changes name their message and new status from the receipt they came
    from, the brand and campaign from the row; the number only where a failure may suppress
    it, and a permanent failure does."""
    batch = await stored_batch(infra, 4, seed=1504, key="b4")
    ids = [m.message_id for m in batch.messages]
    to = {m.message_id: m.to for m in batch.messages}
    at = datetime.now(UTC)
    receipts = [
        Receipt(message_id=ids[0], status="delivered", occurred_at=at, carrier="Verizon"),
        Receipt(message_id=ids[1], status="undelivered", occurred_at=at, error_code="30005"),
        Receipt(message_id=ids[2], status="sent", occurred_at=at, carrier="AT&T"),
        Receipt(message_id=ids[3], status="read", occurred_at=at),  # unknown: no change
    ]
    folded = sorted(aggregate.fold(receipts), key=lambda r: r.message_id)
    async with infra.pool.acquire() as conn, conn.transaction():
        changes = await messages.apply_receipts(conn, "sim", receipts, folded)
        await compliance.suppress(conn, send.hard_failure_suppressions(changes))
    got = {c.message_id: c for c in changes}
    assert set(got) == set(ids[:3])
    assert [(got[i].status, got[i].carrier, got[i].error_code) for i in ids[:3]] == [
        ("delivered", "Verizon", None),
        ("undelivered", None, "30005"),
        ("sent", "AT&T", None),
    ]
    assert {(c.brand_id, c.campaign_id) for c in changes} == {(batch.brand_id, batch.campaign_id)}
    assert [got[i].to for i in ids[:3]] == [None, to[ids[1]], None]
    assert all(c.latency_s is not None and c.latency_s >= 0 for c in changes)
    suppressed = await infra.pool.fetch("SELECT address, reason FROM suppressions")
    assert [(r["address"], r["reason"]) for r in suppressed] == [(to[ids[1]], "unknown_handset")]


async def test_the_fold_takes_receipts_in_any_order_and_any_text(infra: bootstrap.Infra) -> None:
    """Each change names its own message when the receipts come in no particular order, and
    text a provider sends (quotes, backslashes, accents) arrives as sent."""
    batch = await stored_batch(infra, 3, seed=1505, key="b5")
    ids = [m.message_id for m in batch.messages]
    at = datetime.now(UTC)
    carriers = ['AT&T "Mobility"', "Bouygues T\u00e9l\u00e9com", "back\\slash"]
    cases = list(enumerate(zip(ids, ["sent", "delivered", "undelivered"], carriers, strict=True)))
    receipts = [
        Receipt(message_id=i, status=s, occurred_at=at, carrier=c, provider_message_id=f"P{n}")
        for n, (i, s, c) in cases
    ]
    folded = sorted(aggregate.fold(receipts), key=lambda r: r.message_id, reverse=True)
    async with infra.pool.acquire() as conn, conn.transaction():
        changes = await messages.apply_receipts(conn, "sim", receipts, folded)
    got = {c.message_id: (c.status, c.carrier) for c in changes}
    assert got == {
        ids[0]: ("sent", carriers[0]),
        ids[1]: ("delivered", carriers[1]),
        ids[2]: ("undelivered", carriers[2]),
    }
    stored = await infra.pool.fetch(
        "SELECT id::text AS id, status, carrier, provider_message_id AS pid FROM messages"
    )
    assert {r["id"]: (r["status"], r["carrier"], r["pid"]) for r in stored} == {
        i: (s, c, f"P{n}") for n, (i, s, c) in cases
    }


async def test_the_fold_probes_messages_by_key_however_large_the_table_and_the_batch(
    infra: bootstrap.Infra,
) -> None:
    """A fold of thousands of receipts against a table of many messages finds its rows
    through the primary key: its cost follows the batch, never the table (a hash join over
    a scan of `messages` would cost a pass over the table per batch)."""
    await infra.pool.execute(
        "INSERT INTO messages (id, brand_id, subscriber_id, to_address, status, status_rank)"
        " SELECT gen_random_uuid(), 1, n, '+15005550006', 'accepted', 1"
        " FROM generate_series(1, 50000) AS n"
    )
    await infra.pool.execute("ANALYZE messages")
    n = 5000
    ids = [str(uuid.uuid4()) for _ in range(n)]
    arrays = (ids, ["delivered"] * n, [5] * n, [None] * n, [None] * n, [None] * n)
    rows = await infra.pool.fetch("EXPLAIN " + messages._FOLD, *arrays)
    plan = "\n".join(r[0] for r in rows)
    assert "on messages_pkey" in plan, plan
    assert "Seq Scan on messages" not in plan, plan


async def test_a_malformed_entry_in_the_receipt_log_does_not_stop_the_events_being_read(
    infra: bootstrap.Infra,
) -> None:
    batch = await stored_batch(infra, 2, seed=1507, key="b7")
    ids = [m.message_id for m in batch.messages]
    at = datetime.now(UTC)
    receipts = [Receipt(message_id=i, status="delivered", occurred_at=at) for i in ids]
    async with infra.pool.acquire() as conn, conn.transaction():
        await messages.apply_receipts(conn, "sim", receipts, aggregate.fold(receipts))
    # written by hand: the fold logs only ids it has read as uuids
    await infra.pool.execute(
        "INSERT INTO receipt_log (provider, events) VALUES ('sim', $1::json)",
        '[{"message_id": "not-a-uuid", "status": "sent", "occurred_at": "2026-12-02T10:00:00Z"}]',
    )
    events = await infra.pool.fetch("SELECT message_id::text AS id, status FROM message_events")
    assert sorted((e["id"], e["status"]) for e in events) == sorted((i, "delivered") for i in ids)
