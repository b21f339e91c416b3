"""The send stage's per-batch reads look each subscriber and number up by index even when
Postgres has no statistics for the table: a new install's first big campaign fills
`messages` faster than autovacuum analyzes it, and a suppression list may be imported just
before a send. Planned as `= ANY(<2,000 ids>)` without statistics, the message reads scanned
the whole table for every batch (BENCHMARKS.md's history, fifth pass)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg

from clarion import bootstrap
from clarion.store import compliance, messages


async def test_the_gate_reads_use_indexes_on_tables_without_statistics(
    infra: bootstrap.Infra,
) -> None:
    now = datetime.now(UTC)
    since = now - timedelta(hours=24)
    subscriber_ids = list(range(910_000_000, 910_002_000))
    phones = [f"+1512556{i:04d}" for i in range(2000)]
    # A connection of its own: no statement of another test prepared (and planned) on it.
    conn = await asyncpg.connect(infra.database_url)
    try:
        tx = conn.transaction()
        await tx.start()
        try:
            # 20,000 messages of other subscribers and 20,000 suppressed numbers, and no
            # statistics on either table: what the planner sees a minute into a first campaign.
            await conn.execute(
                "INSERT INTO messages (id, brand_id, subscriber_id, to_address, status,"
                " status_rank, sent_at)"
                " SELECT gen_random_uuid(), 0, g, '+1512555' || lpad((g % 10000)::text, 4, '0'),"
                " 'delivered', 50, now() FROM generate_series(900000000, 900019999) AS g"
            )
            await conn.execute(
                "INSERT INTO suppressions (channel, address, reason, source)"
                " SELECT 'sms', '+1737555' || lpad(g::text, 4, '0'), 'landline', 'test'"
                " FROM generate_series(0, 9999) AS g"
                " UNION ALL SELECT 'sms', '+1737556' || lpad(g::text, 4, '0'), 'landline', 'test'"
                " FROM generate_series(0, 9999) AS g"
            )
            await conn.execute(
                "DELETE FROM pg_statistic"
                " WHERE starelid IN ('messages'::regclass, 'suppressions'::regclass)"
            )
            await messages.recent_and_waiting(
                conn, subscriber_ids, since=since, now=now, channel="sms",
                handed_over=compliance.HANDED_OVER,
            )  # fmt: skip
            await compliance.gate_state(conn, 1, subscriber_ids, phones, since, recent=True)
            scans = {
                r["relname"]: r["seq_scan"]
                for r in await conn.fetch(
                    "SELECT relname, seq_scan FROM pg_stat_xact_user_tables"
                    " WHERE relname IN ('messages', 'suppressions', 'consents')"
                )
            }
        finally:
            await tx.rollback()
    finally:
        await conn.close()
    assert scans == {"messages": 0, "suppressions": 0, "consents": 0}, (
        f"tables scanned whole (sequential scans per table): {scans}"
    )
