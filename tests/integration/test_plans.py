"""The send stage's per-batch reads keep their plan on a table Postgres has no statistics
for: a new install's first big campaign fills `messages` faster than autovacuum analyzes it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from clarion import bootstrap
from clarion.store import compliance, messages


def _nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


async def test_the_recent_read_looks_each_subscriber_up_without_statistics(
    infra: bootstrap.Infra,
) -> None:
    now = datetime.now(UTC)
    async with infra.pool.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        try:
            # 20,000 messages of other subscribers, and no statistics on the table: what the
            # planner sees a minute into a first campaign.
            await conn.execute(
                "INSERT INTO messages (id, brand_id, subscriber_id, to_address, status,"
                " status_rank, sent_at)"
                " SELECT gen_random_uuid(), 0, g, '+1512555' || lpad(g::text, 4, '0'),"
                " 'delivered', 50, now() FROM generate_series(900000000, 900019999) AS g"
            )
            await conn.execute("DELETE FROM pg_statistic WHERE starelid = 'messages'::regclass")
            raw = await conn.fetchval(
                "EXPLAIN (FORMAT JSON) " + messages.RECENT_AND_WAITING,
                list(range(910000000, 910002000)),
                now - timedelta(hours=24),
                "sms",
                list(compliance.HANDED_OVER),
                now,
            )
        finally:
            await tx.rollback()
    nodes = list(_nodes(json.loads(raw)[0]["Plan"]))
    on_messages = [n for n in nodes if n.get("Relation Name") == "messages"]
    assert on_messages, f"the plan reads no messages: {nodes}"
    scans = {n["Node Type"] for n in on_messages}
    assert "Seq Scan" not in scans, f"the read scans the whole table: {scans}"
    indexes = {n["Index Name"] for n in nodes if "Index Name" in n}
    assert indexes == {"messages_subscriber"}, f"looked up by {indexes}, not by subscriber"
