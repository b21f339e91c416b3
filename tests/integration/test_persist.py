"""Persisting a batch the bus delivers again: the COPY hits the unique key and the batch goes
in once more as INSERT … ON CONFLICT DO NOTHING, adding nothing."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from clarion import bootstrap
from clarion.domain.messages import SendResult
from clarion.domain.records import Receipt, StatusChange, StatusCount
from clarion.pipeline import aggregate, carrier, send
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
        counts, failures = await messages.apply_receipts(
            conn, "sim", [delivered], aggregate.fold([*answers, delivered])
        )
    # one change each: a's to `accepted`, b's straight to `delivered`
    assert sorted((c.status, c.n, c.carrier, c.first_id) for c in counts) == [
        ("accepted", 1, None, a), ("delivered", 1, "AT&T", b),
    ]  # fmt: skip
    assert failures == []
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
            folded = await messages.apply_receipts(conn, "sim", receipts, aggregate.fold(receipts))
    assert folded == ([], [])  # the late `sent` changes nothing
    events = await infra.pool.fetch(
        "SELECT message_id::text AS id, status, brand_id FROM message_events"
    )
    assert sorted((e["id"], e["status"], e["brand_id"]) for e in events) == [
        (mid, "delivered", batch.brand_id), (mid, "sent", batch.brand_id),
    ]  # fmt: skip
    assert await infra.pool.fetchval("SELECT status FROM messages") == "delivered"


async def test_the_fold_counts_its_changes_and_returns_each_failure_with_its_number(
    infra: bootstrap.Infra,
) -> None:
    """The fold's changes come back counted per brand, campaign, carrier and status (the
    status the receipt's, the rest the row's), with the delivery latency summed; a change
    with an error code comes back alone too, with its number, and a permanent failure
    suppresses it."""
    batch = await stored_batch(infra, 5, seed=1504, key="b4")
    ids = [m.message_id for m in batch.messages]
    to = {m.message_id: m.to for m in batch.messages}
    at = datetime.now(UTC)
    receipts = [
        Receipt(message_id=ids[0], status="delivered", occurred_at=at, carrier="Verizon"),
        Receipt(message_id=ids[4], status="delivered", occurred_at=at, carrier="Verizon"),
        Receipt(message_id=ids[1], status="undelivered", occurred_at=at, error_code="30005"),
        Receipt(message_id=ids[2], status="sent", occurred_at=at, carrier="AT&T"),
        Receipt(message_id=ids[3], status="read", occurred_at=at),  # unknown: no change
    ]
    folded = sorted(aggregate.fold(receipts), key=lambda r: r.message_id)
    async with infra.pool.acquire() as conn, conn.transaction():
        counts, failures = await messages.apply_receipts(conn, "sim", receipts, folded)
        await compliance.suppress(conn, send.hard_failure_suppressions(failures))
    got = {(c.carrier, c.status): c for c in counts}
    assert {k: (c.n, c.first_id) for k, c in got.items()} == {
        ("Verizon", "delivered"): (2, min(ids[0], ids[4])),
        (None, "undelivered"): (1, ids[1]),
        ("AT&T", "sent"): (1, ids[2]),
    }
    assert {(c.brand_id, c.campaign_id) for c in counts} == {(batch.brand_id, batch.campaign_id)}
    assert all(c.latency_n == c.n and c.latency_sum_s >= 0 for c in counts)
    assert [(f.message_id, f.status, f.error_code, f.to) for f in failures] == [
        (ids[1], "undelivered", "30005", to[ids[1]])
    ]
    assert (failures[0].brand_id, failures[0].campaign_id) == (batch.brand_id, batch.campaign_id)
    suppressed = await infra.pool.fetch("SELECT address, reason FROM suppressions")
    assert [(r["address"], r["reason"]) for r in suppressed] == [(to[ids[1]], "unknown_handset")]


async def test_the_fold_counts_as_counts_of_its_changes_one_by_one(
    infra: bootstrap.Infra,
) -> None:
    """What Postgres counts is what `carrier.counts_of` counts of the same changes one by
    one (status batches from before the fold counted its own are counted that way)."""
    batch = await stored_batch(infra, 40, seed=1508, key="b8")
    at = datetime.now(UTC)
    statuses = ["delivered", "undelivered", "sent", "failed"]
    carriers = ["AT&T", "Verizon", None]
    receipts = [
        Receipt(
            message_id=m.message_id,
            status=statuses[n % 4],
            occurred_at=at,
            carrier=carriers[n % 3],
            error_code="30003" if n % 4 in (1, 3) else None,
        )
        for n, m in enumerate(batch.messages)
    ]
    folded = sorted(aggregate.fold(receipts), key=lambda r: r.message_id)
    async with infra.pool.acquire() as conn, conn.transaction():
        counts, failures = await messages.apply_receipts(conn, "sim", receipts, folded)
    rows = await infra.pool.fetch(
        "SELECT id::text AS id, brand_id, campaign_id, carrier, status,"
        " extract(epoch FROM now() - sent_at)::float8 AS latency FROM messages"
    )
    one_by_one = carrier.counts_of(
        [
            StatusChange(
                message_id=r["id"],
                brand_id=r["brand_id"],
                campaign_id=r["campaign_id"],
                status=r["status"],
                carrier=r["carrier"],
                error_code=None,
                latency_s=0.0,
            )
            for r in rows
        ]
    )

    def key(c: StatusCount) -> tuple[object, ...]:
        return (c.brand_id, c.campaign_id, c.carrier or "", c.status, c.n, c.first_id)

    assert sorted(map(key, counts)) == sorted(map(key, one_by_one))
    assert sum(c.n for c in counts) == 40
    assert sorted(f.message_id for f in failures) == sorted(
        r.message_id for r in receipts if r.error_code
    )


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
        counts, _ = await messages.apply_receipts(conn, "sim", receipts, folded)
    got = {c.first_id: (c.status, c.carrier, c.n) for c in counts}
    assert got == {
        ids[0]: ("sent", carriers[0], 1),
        ids[1]: ("delivered", carriers[1], 1),
        ids[2]: ("undelivered", carriers[2], 1),
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
