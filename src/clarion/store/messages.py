"""Messages and their status events: COPY in, set-based updates out, events logged.

Every `UPDATE … FROM unnest(ids, …) WHERE m.id = u.id` also says `m.id = ANY(ids)`. The
planner sizes the unnest right, and for a batch of thousands it then hashes the whole table
(a sequential scan per batch, growing with the table). The `ANY` gives it an index scan of
the batch's rows instead: 3× faster at 300,000 messages, and independent of table size.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Collection, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import asyncpg
import msgspec

from clarion.domain.messages import MESSAGE_COLUMNS, MessageRow, StatusUpdate, Waiting
from clarion.domain.records import Folded, Receipt, StatusChange, StatusCount
from clarion.domain.rows import MessageStatusRow
from clarion.domain.status import rank
from clarion.errors import NotFound

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from clarion.store.db import Conn


async def persist(conn: Conn, rows: Sequence[MessageRow]) -> int:
    """Insert the messages that do not exist yet; returns how many were new.

    The common case (a batch seen for the first time) is one COPY straight into `messages`.
    A redelivered batch violates the unique key: then, and only then, the batch goes in again
    as one INSERT … ON CONFLICT DO NOTHING. Run inside a transaction.
    """
    try:
        async with conn.transaction():  # a savepoint: a failed COPY leaves the caller's txn usable
            await copy_new(conn, rows)
        return len(rows)
    except asyncpg.UniqueViolationError:
        pass
    records = [msgspec.structs.astuple(r) for r in rows]
    cols = ", ".join(MESSAGE_COLUMNS)
    arrays = ", ".join(f"${i}::{t}[]" for i, t in enumerate(_COLUMN_TYPES, start=1))
    result: str = await conn.execute(
        f"INSERT INTO messages ({cols}) SELECT * FROM unnest({arrays}) ON CONFLICT DO NOTHING",
        *(list(col) for col in zip(*records, strict=True)),
    )
    return int(result.rsplit(" ", 1)[-1])


async def copy_new(conn: Conn, rows: Sequence[MessageRow]) -> None:
    """COPY rows of messages never stored before; raises asyncpg.UniqueViolationError (and
    writes nothing) if any of them was. Run inside a transaction."""
    records = [msgspec.structs.astuple(r) for r in rows]
    await conn.copy_records_to_table("messages", records=records, columns=MESSAGE_COLUMNS)


# The SQL type of each of `MESSAGE_COLUMNS`, in order (for the redelivery INSERT).
_COLUMN_TYPES = (
    "uuid", "bigint", "bigint", "bigint", "text", "text", "text", "smallint", "text",
    "smallint", "text", "text", "text", "timestamptz", "text", "text", "timestamptz",
    "timestamptz",
)  # fmt: skip
assert len(_COLUMN_TYPES) == len(MESSAGE_COLUMNS), "a column of MessageRow has no SQL type"


async def still_pending(
    conn: Conn, message_ids: Sequence[str], now: datetime
) -> tuple[set[str], dict[str, str | None]]:
    """(waiting, interrupted) among these messages. Waiting: queued, or deferred until a
    moment that has come. Interrupted: claimed for a provider call that a crash cut short,
    with the provider it was claimed for."""
    rows = await conn.fetch(
        "SELECT id::text, status, provider FROM messages WHERE id = ANY($1::uuid[])"
        " AND (status IN ('queued', 'sending') OR (status = 'deferred' AND not_before <= $2))",
        message_ids,
        now,
    )
    return (
        {r["id"] for r in rows if r["status"] != "sending"},
        {r["id"]: r["provider"] for r in rows if r["status"] == "sending"},
    )


async def claim(conn: Conn, message_ids: Sequence[str], provider: str) -> set[str]:
    """Mark waiting messages `sending` (this worker is about to call the provider); returns
    the ids it claimed. A cancel no longer touches them: their outcome is the provider's."""
    rows = await conn.fetch(
        """
        UPDATE messages SET status = 'sending', updated_at = now(), provider = $2,
               sent_at = now(),
               waited = CASE WHEN status = 'deferred' AND (waited IS NULL
                   OR error_code IN ('quiet_hours_deferred', 'carrier_daily_cap'))
                   THEN error_code ELSE waited END,
               error_code = CASE WHEN status = 'deferred' THEN NULL ELSE error_code END,
               error_detail = CASE WHEN status = 'deferred' THEN NULL ELSE error_detail END
        WHERE id = ANY($1::uuid[]) AND status IN ('queued', 'deferred', 'sending')
        RETURNING id::text
        """,
        message_ids,
        provider,
    )
    return {r["id"] for r in rows}


async def defer(conn: Conn, defers: Sequence[tuple[str, datetime, str, str | None]]) -> None:
    """Put messages back to wait until a moment: (id, not_before, reason, detail). Only
    messages not yet handed over are touched; the deferred sweeper republishes them."""
    if defers:
        await conn.execute(
            """
            UPDATE messages m SET status = 'deferred', not_before = d.not_before,
                   error_code = d.reason, error_detail = d.detail, updated_at = now()
            FROM unnest($1::uuid[], $2::timestamptz[], $3::text[], $4::text[])
                 AS d(id, not_before, reason, detail)
            WHERE m.id = d.id AND m.id = ANY($1::uuid[])
              AND m.status IN ('queued', 'deferred', 'sending')
            """,
            *(list(c) for c in zip(*defers, strict=True)),
        )


# The send stage's read of a batch's subscribers' messages (`recent_and_waiting`): one index
# lookup per subscriber, whatever the table's statistics say. As `subscriber_id = ANY($1)`, a
# column without statistics (a new table, or one grown fast since its last ANALYZE: a first
# big campaign) is estimated at 0.5 % of the rows per id, all of them for a batch of 2,000,
# and Postgres scanned the whole table for every batch: 155 ms at 600,000 rows against 3 ms
# (BENCHMARKS.md's history, fifth pass). `OFFSET 0` keeps the planner from flattening the
# lateral lookup into a join, which it planned the same way.
RECENT_AND_WAITING = (
    "SELECT m.* FROM unnest($1::bigint[]) AS s(id) CROSS JOIN LATERAL ("
    " SELECT id::text, subscriber_id, status, created_at, not_before, sent_at"
    " FROM messages WHERE subscriber_id = s.id AND kind = 'marketing' AND channel = $3"
    " AND ((status = ANY($4::text[]) AND sent_at > $2)"
    "   OR (status IN ('queued', 'deferred') AND (expires_at IS NULL OR expires_at > $5)"
    "       AND error_code IS DISTINCT FROM 'paused'))"
    " OFFSET 0) AS m"
)


async def recent_and_waiting(
    conn: Conn,
    subscriber_ids: Sequence[int],
    *,
    since: datetime,
    now: datetime,
    channel: str,
    handed_over: Sequence[str],
    now_sending: Collection[str] = (),
) -> tuple[dict[int, list[datetime]], list[Waiting]]:
    """One read of these subscribers' marketing messages on `channel` for the send stage:
    (when each was handed a message since `since`, for smart sending and caps; every message
    of theirs still waiting to go (not expired, not held by a paused campaign), for the
    sequence check). `now_sending`, the batch's own messages, are not earlier sends, even
    claimed by a call a crash cut short."""
    rows = await conn.fetch(
        RECENT_AND_WAITING, subscriber_ids, since, channel, list(handed_over), now
    )
    recent: dict[int, list[datetime]] = {}
    waiting: list[Waiting] = []
    for r in rows:
        if r["status"] in ("queued", "deferred"):
            waiting.append(Waiting(r["id"], r["subscriber_id"], r["created_at"], r["not_before"]))
        elif r["id"] not in now_sending:
            recent.setdefault(r["subscriber_id"], []).append(r["sent_at"])
    return recent, waiting


async def set_carriers(conn: Conn, carriers: Sequence[tuple[int, str]]) -> None:
    """Remember subscribers' carriers (from a lookup): (subscriber id, carrier)."""
    if carriers:
        await conn.execute(
            "UPDATE subscribers s SET carrier = c.carrier"
            " FROM unnest($1::bigint[], $2::text[]) AS c(id, carrier)"
            " WHERE s.id = c.id AND s.id = ANY($1::bigint[])",
            *(list(c) for c in zip(*carriers, strict=True)),
        )


async def record_failed_attempt(
    conn: Conn, message_ids: Sequence[str], *, max_attempts: int, error: str
) -> list[tuple[str, int]]:
    """Count a failed provider call for claimed messages: they go back to `queued` for a
    retry, or, at the limit, to `failed` / `dead_letter` with the error. Returns (id,
    attempts so far) of those left to retry."""
    if not message_ids:
        return []
    rows = await conn.fetch(
        """
        UPDATE messages SET attempts = attempts + 1, updated_at = now(),
               status = CASE WHEN attempts + 1 >= $2 THEN 'failed' ELSE 'queued' END,
               status_rank = CASE WHEN attempts + 1 >= $2 THEN 3 ELSE status_rank END,
               error_code = CASE WHEN attempts + 1 >= $2 THEN 'dead_letter' ELSE error_code END,
               error_detail = $3
        WHERE id = ANY($1::uuid[]) AND status = 'sending'
        RETURNING id::text, status, attempts
        """,
        message_ids,
        max_attempts,
        error[:500],
    )
    return [(r["id"], r["attempts"]) for r in rows if r["status"] == "queued"]


async def mark_unknown(conn: Conn, message_ids: Sequence[str]) -> None:
    """Messages whose provider call was interrupted and cannot be repeated safely."""
    if message_ids:
        await conn.execute(
            "UPDATE messages SET status = 'unknown', error_code = 'fate_unknown',"
            " updated_at = now() WHERE id = ANY($1::uuid[]) AND status = 'sending'",
            message_ids,
        )


async def apply_send_results(conn: Conn, provider: str, updates: Sequence[StatusUpdate]) -> int:
    """Record provider answers, never moving a message's status backwards."""
    if not updates:
        return 0
    result: str = await conn.execute(
        """
        UPDATE messages m SET status = u.status, status_rank = u.status_rank, provider = $7,
               provider_message_id = coalesce(m.provider_message_id, u.provider_message_id),
               error_code = coalesce(u.error_code, m.error_code),
               error_detail = coalesce(u.error_detail, m.error_detail),
               sent_at = coalesce(m.sent_at, now()), updated_at = now()
        FROM unnest($1::uuid[], $2::text[], $3::smallint[], $4::text[], $5::text[], $6::text[])
             AS u(id, status, status_rank, provider_message_id, error_code, error_detail)
        WHERE m.id = u.id AND m.id = ANY($1::uuid[]) AND u.status_rank > m.status_rank
        """,
        [u.message_id for u in updates],
        [u.status for u in updates],
        [u.status_rank for u in updates],
        [u.provider_message_id for u in updates],
        [u.error_code for u in updates],
        [u.error_detail for u in updates],
        provider,
    )
    return int(result.rsplit(" ", 1)[-1])


async def apply_receipts(
    conn: Conn, provider: str, events: Sequence[Receipt], folded: Sequence[Receipt]
) -> Folded:
    """Move each message's status forward to its folded status and append the events to
    the receipt log (the `message_events` view leaves out those of messages this install
    does not have, and de-duplicates repeats). Returns the status changes that took
    effect, counted, and those with an error code one by one."""
    result = await _fold(conn, folded) if folded else Folded([], [])
    if events:
        await _record_events(conn, provider, events)
    return result


# A set-based fold. `m.id = ANY(ids)` finds the batch's rows through the primary key:
# sized right by the planner, the `unnest` alone was hashed against a scan of the whole
# table (BENCHMARKS.md's history, third pass). (Passing the rows as one jsonb array
# instead saved the client the per-element checks asyncpg makes of each array, but Postgres
# spent what it saved: tenth pass.) Postgres counts every change per brand, campaign, carrier and
# status (the rows whose `error_code` column is null); the changes with an error code
# also come back one by one (`error_code` set), with the number, which a permanent failure
# suppresses. Counting every change in Python, one at a time, was an eighth of the
# receipts side's time (fifteenth pass).
_FOLD = """
    WITH changed AS (
        UPDATE messages m SET status = f.status, status_rank = f.status_rank,
               error_code = coalesce(f.error_code, m.error_code),
               carrier = coalesce(f.carrier, m.carrier),
               provider_message_id = coalesce(m.provider_message_id, f.pid),
               sent_at = coalesce(m.sent_at, now()), updated_at = now()
        FROM unnest($1::uuid[], $2::text[], $3::smallint[], $4::text[], $5::text[], $6::text[])
             AS f(id, status, status_rank, error_code, carrier, pid)
        WHERE m.id = f.id AND m.id = ANY($1::uuid[]) AND f.status_rank > m.status_rank
        RETURNING m.id, f.status, m.brand_id, m.campaign_id, m.carrier, m.error_code,
                  m.to_address, extract(epoch FROM now() - m.sent_at)::float8 AS latency_s
    )
    SELECT brand_id, campaign_id, carrier, status, count(*)::int,
           coalesce(sum(latency_s), 0)::float8, count(latency_s)::int, min(id::text),
           NULL::text AS error_code, NULL::text AS to_address
      FROM changed GROUP BY brand_id, campaign_id, carrier, status
    UNION ALL
    SELECT brand_id, campaign_id, carrier, status, 1, latency_s, 1, id::text,
           error_code, to_address
      FROM changed WHERE error_code IS NOT NULL
"""


async def _fold(conn: Conn, folded: Sequence[Receipt]) -> Folded:
    rows = await conn.fetch(
        _FOLD,
        [f.message_id for f in folded],
        [f.status for f in folded],
        [rank(f.status) for f in folded],
        [f.error_code for f in folded],
        [f.carrier for f in folded],
        [f.provider_message_id for f in folded],
    )
    counts = [StatusCount(*r[:8]) for r in rows if r[8] is None]
    failures = [
        StatusChange(
            message_id=r[7],
            brand_id=r[0],
            campaign_id=r[1],
            status=r[3],
            carrier=r[2],
            error_code=r[8],
            to=r[9],
            latency_s=r[5],
        )
        for r in rows
        if r[8] is not None
    ]
    return Folded(counts, failures)


_encode_events = msgspec.json.Encoder().encode


async def _record_events(conn: Conn, provider: str, events: Sequence[Receipt]) -> None:
    """Append the reports to the receipt log, one row for the batch, as the receipts
    themselves (migration 0018). Every one names a message id the fold has just read as a
    uuid; the `message_events` view joins them to their messages, for the brand, which
    leaves out reports of messages the install does not have."""
    await conn.execute(
        "INSERT INTO receipt_log (provider, events) VALUES ($1, $2::json)",
        provider,
        _encode_events(events).decode(),
    )


async def add_carrier_stats(
    conn: Conn, rows: Sequence[tuple[int, int, str, int, int, int]]
) -> None:
    """Add (brand, campaign, carrier, delivered, undelivered, failed) to the running totals."""
    if not rows:
        return
    rows = sorted(rows)  # one lock order for every worker, so concurrent batches never deadlock
    await conn.executemany(
        """
        INSERT INTO carrier_stats (brand_id, campaign_id, carrier, delivered, undelivered, failed)
        VALUES ($1, $2, $3, $4, $5, $6)
        ON CONFLICT (brand_id, campaign_id, carrier) DO UPDATE SET
            delivered = carrier_stats.delivered + excluded.delivered,
            undelivered = carrier_stats.undelivered + excluded.undelivered,
            failed = carrier_stats.failed + excluded.failed,
            updated_at = now()
        """,
        rows,
    )


async def resolve_provider_ids(
    conn: Conn, provider: str, provider_ids: Sequence[str]
) -> dict[str, str]:
    """Our message id for each provider id we know (from the send answers)."""
    rows = await conn.fetch(
        "SELECT provider_message_id, message_id::text FROM provider_refs"
        " WHERE provider = $1 AND provider_message_id = ANY($2::text[])",
        provider,
        list(provider_ids),
    )
    return {r["provider_message_id"]: r["message_id"] for r in rows}


async def keep_early(conn: Conn, provider: str, receipts: Sequence[Receipt]) -> None:
    """Receipts naming a provider id no send answer has named yet: kept until one does."""
    if receipts:
        await conn.executemany(
            "INSERT INTO early_receipts"
            " (provider, provider_message_id, status, occurred_at, error_code, carrier)"
            " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
            [
                (provider, r.provider_message_id, r.status, r.occurred_at, r.error_code, r.carrier)
                for r in receipts
            ],
        )


async def record_refs(conn: Conn, provider: str, refs: Sequence[tuple[str, str]]) -> list[Receipt]:
    """Remember (provider id, our id) from send answers; returns the early receipts that were
    waiting for them, now with our ids (the caller puts them back on the receipts hop)."""
    if not refs:
        return []
    await conn.execute(
        "INSERT INTO provider_refs (provider, provider_message_id, message_id)"
        " SELECT $1, r.pid, r.mid FROM unnest($2::text[], $3::uuid[]) AS r(pid, mid)"
        " ON CONFLICT DO NOTHING",
        provider,
        [pid for pid, _ in refs],
        [mid for _, mid in refs],
    )
    ours = dict(refs)
    rows = await conn.fetch(
        "DELETE FROM early_receipts WHERE provider = $1 AND provider_message_id = ANY($2::text[])"
        " RETURNING provider_message_id, status, occurred_at, error_code, carrier",
        provider,
        list(ours),
    )
    return [_early_receipt(r, ours[r["provider_message_id"]]) for r in rows]


def _early_receipt(r: Any, message_id: str) -> Receipt:
    """A kept early receipt, now naming our message."""
    return Receipt(
        message_id=message_id,
        status=r["status"],
        occurred_at=r["occurred_at"],
        provider_message_id=r["provider_message_id"],
        error_code=r["error_code"],
        carrier=r["carrier"],
    )


async def matched_early(conn: Conn, limit: int = 5000) -> list[tuple[str, Receipt]]:
    """Early receipts whose send answer has landed since (a receipt kept by one transaction
    while another recorded the answer): (provider, receipt with our id), removed."""
    rows = await conn.fetch(
        """
        DELETE FROM early_receipts e USING provider_refs r
        WHERE e.id IN (SELECT e2.id FROM early_receipts e2 JOIN provider_refs r2
                         ON r2.provider = e2.provider
                        AND r2.provider_message_id = e2.provider_message_id
                       LIMIT $1)
          AND r.provider = e.provider AND r.provider_message_id = e.provider_message_id
        RETURNING e.provider, r.message_id::text, e.provider_message_id, e.status,
                  e.occurred_at, e.error_code, e.carrier
        """,
        limit,
    )
    return [(r["provider"], _early_receipt(r, r["message_id"])) for r in rows]


# Reconciliation (asking providers about messages whose final report never came) reads two
# small parts of `messages`, never the whole table (migration 0016): the messages handed
# over since the oldest it has not asked about yet, and those it asked about before that
# are still open. A message is open when its provider has it and no final status came; one
# still `sending` long after its claim (`ORPHANED_AFTER_S`, $4) is open too: its batch has
# not come back to settle it, and the provider may know what became of it.
_OPEN = """(status IN ('accepted', 'sent', 'unknown') OR (status = 'sending' AND sent_at < $4))
            AND provider IS NOT NULL"""


def _ask(which: str, order: str) -> str:
    """Mark the first `$3` open messages of `which` asked now, in `order`."""
    return f"""
    UPDATE messages m SET reconciled_at = now()
    FROM (SELECT id FROM messages WHERE {which} AND {_OPEN} ORDER BY {order} LIMIT $3) due
    WHERE m.id = due.id
    RETURNING m.id::text, m.provider, m.provider_message_id
"""


_ASK_FRESH = _ask("sent_at >= $1 AND sent_at < $2 AND reconciled_at IS NULL", "sent_at")
_ASK_AGAIN = _ask(
    "reconciled_at IS NOT NULL AND reconciled_at < $1 AND sent_at >= $2", "reconciled_at"
)
# `sending` counts: a claim a crash cut short turns `unknown` when its batch comes again,
# and is then asked about; if its batch never comes back, it is asked about once orphaned,
# so no message holds the floor longer than `ORPHANED_AFTER_S`.
_OLDEST_UNASKED = """
    SELECT min(sent_at) FROM messages
    WHERE sent_at >= $1 AND sent_at < $2 AND reconciled_at IS NULL
      AND status IN ('sending', 'accepted', 'sent', 'unknown') AND provider IS NOT NULL
"""
# The front of the record of the asked (the longest-asked), cleared of messages that have
# settled since or are too old to ask about; taken in index order, whatever the statistics.
_SETTLED = """
    UPDATE messages SET reconciled_at = NULL
    WHERE id IN (SELECT id FROM messages WHERE reconciled_at IS NOT NULL
                 ORDER BY reconciled_at LIMIT $2)
      AND (status NOT IN ('sending', 'accepted', 'sent', 'unknown') OR provider IS NULL
           OR sent_at < $1)
"""


async def _summarize_new_pages(conn: Conn) -> None:
    """Summarise the ranges of pages written since the last run now, rather than when
    autovacuum comes to them (a minute or more later, and later still when it is busy): a
    range without a summary is read whole by every query of the index. Each page is read
    once for it. Summarising waits for no one: a vacuum of `messages` holds the lock it
    needs (an anti-wraparound one for as long as it runs), and then this run goes without."""
    try:
        async with conn.transaction():  # a savepoint: a lock not had leaves the run going
            await conn.execute("SET LOCAL lock_timeout = '50ms'")
            await conn.execute("SELECT brin_summarize_new_values('messages_sent_at_brin')")
            await conn.execute("SET LOCAL lock_timeout = DEFAULT")  # for the rest of the run
    except asyncpg.LockNotAvailableError:
        log.info("reconciliation: messages is being vacuumed; its new pages stay unsummarised")


# A run reads hand-overs a window of time at a time, and goes on to the next while it has
# asked fewer than its limit and has time left, so a sweeper far behind its floor (the first
# run of an install, or after the sweepers were down for a while) catches up over a few
# runs, each of them bounded, instead of in one statement sized by the history.
RECONCILE_WINDOW_S = 15 * 60.0
RECONCILE_BUDGET_S = 2.0
# A claim still `sending` this long after it was made is orphaned: a crash cut its call short
# and its batch, which comes back within `CLARION_ACK_WAIT_S` (30 s), did not settle it.
ORPHANED_AFTER_S = 3600.0


async def to_reconcile(
    conn: Conn,
    *,
    older_than_s: float,
    max_age_s: float,
    limit: int,
    window_s: float = RECONCILE_WINDOW_S,
    budget_s: float = RECONCILE_BUDGET_S,
) -> list[tuple[str, str, str | None]]:
    """Messages to ask their provider about, as (id, provider, provider id), each marked
    asked now. Run inside a transaction: it holds the floor's row until the commit.

    First those handed over more than `older_than_s` ago, since the floor (the first run
    ever: since `max_age_s` ago), never asked about yet, in hand-over order, `window_s` of
    hand-overs a read, for as long as fewer than `limit` are found and `budget_s` has not
    passed; then, with what is left of `limit`, those asked more than `older_than_s` ago and
    still open, the longest-asked first. The floor moves on to the hand-over of the oldest
    message not asked about yet that may still need it (one still being handed over
    included, until it is orphaned: `ORPHANED_AFTER_S` after its claim it is asked about
    like the others), or to the end of what was read. Before asking again, the
    longest-asked that have settled since, or were handed over more than `max_age_s` ago,
    leave the record of the asked (up to four times `limit` a call)."""
    began = time.monotonic()
    bounds = await conn.fetchrow(
        "SELECT now() - make_interval(secs => $1), now() - make_interval(secs => $2),"
        " now() - make_interval(secs => $3), (SELECT floor FROM reconcile_floor FOR UPDATE)",
        older_than_s,
        max_age_s,
        max(ORPHANED_AFTER_S, older_than_s),
    )
    assert bounds is not None  # a SELECT without FROM has its one row
    upto, oldest, orphaned, stored = bounds
    floor = oldest if stored is None else max(stored, oldest)
    await _summarize_new_pages(conn)
    window = timedelta(seconds=window_s)
    rows: list[Any] = []
    start, next_floor = floor, None
    while True:
        end = max(start, min(upto, start + window))
        rows += await conn.fetch(_ASK_FRESH, start, end, limit - len(rows), orphaned)
        if next_floor is None:
            next_floor = await conn.fetchval(_OLDEST_UNASKED, start, end)
        if len(rows) >= limit or end >= upto or time.monotonic() - began >= budget_s:
            break
        start = end
    if len(rows) < limit:
        await conn.execute(_SETTLED, oldest, 4 * limit)
        rows += await conn.fetch(_ASK_AGAIN, upto, oldest, limit - len(rows), orphaned)
    await conn.execute(
        "UPDATE reconcile_floor SET floor = $1, updated_at = now()", next_floor or end
    )
    return [(r[0], r[1], r[2]) for r in rows]


async def message_status(
    pool: asyncpg.Pool, brand_id: int, message_id: uuid.UUID
) -> MessageStatusRow:
    """A message of the brand's, as the API shows it; `NotFound` for another brand's."""
    row = await pool.fetchrow(
        "SELECT id::text, kind, to_address AS to, status, error_code, segments, sent_at,"
        " updated_at FROM messages WHERE id = $1 AND brand_id = $2",
        message_id,
        brand_id,
    )
    if row is None:
        raise NotFound("message", str(message_id))
    return msgspec.convert(dict(row), MessageStatusRow)


async def recipients_of(conn: Conn, message_ids: Sequence[str]) -> list[tuple[int, str]]:
    """(brand id, address) of each message."""
    rows = await conn.fetch(
        "SELECT brand_id, to_address FROM messages WHERE id = ANY($1::uuid[])", message_ids
    )
    return [(r["brand_id"], r["to_address"]) for r in rows]
