"""What does a reconciliation run read, as the table grows?

Fills `messages` with N messages handed over at `--rate` a second, in hand-over order (more
rows: a longer history at the same traffic), all settled but 1 % of the last hour's (their
receipts lost: still `sent`; those handed over more than ten minutes ago were asked about
once already), as an install's table is; then times, in transactions rolled back so each
starts from the same state:

- `before`: the statement reconciliation ran every 30 s until migration 0016 (every
  message without a final status, ordered by how long it waited: a scan of the table);
- `first`: the first run of an install (no floor yet, migration 0017: everything handed
  over in the last three days, read 15 minutes of hand-overs at a time for as long as the
  run has time, two seconds; the next runs go on from where it stopped);
- `first_one_read`: the same run as the tenth pass made it, the whole three days in one
  read (as every newly elected sweeper did then, its floor lost with its predecessor);
- `steady`: a run 30 s after the previous one (the floor that run left, kept in Postgres:
  ten and a half minutes ago), as is the first run of a newly elected sweeper.

Prints one JSON line; `steady_ms` should not grow with `--rows` (the history), `before_ms`
does, and `first_ms` stays near the run's budget whatever the history.

    .venv/bin/python bench/reconcile_window.py --rows 1000000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from clarion import bootstrap
from clarion.config import RECONCILE_MAX_AGE_S, Settings
from clarion.domain.status import rank
from clarion.store import messages

AFTER_S = 600.0  # CLARION_RECONCILE_AFTER_S's default
MAX_AGE_S = RECONCILE_MAX_AGE_S  # CLARION_RECONCILE_MAX_AGE_S's default

_BEFORE = """
    UPDATE messages m SET reconciled_at = now()
    FROM (SELECT id FROM messages
          WHERE status IN ('accepted', 'sent', 'unknown') AND provider IS NOT NULL
            AND greatest(updated_at, reconciled_at) < now() - make_interval(secs => $1)
          ORDER BY greatest(updated_at, reconciled_at) LIMIT $2
          FOR UPDATE SKIP LOCKED) due
    WHERE m.id = due.id
    RETURNING m.id::text, m.provider, m.provider_message_id
"""


class _Rollback(Exception):
    pass


async def main(rows: int, rate: float, rounds: int) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="clarion-reconcile-"))
    settings = replace(Settings.from_env(), data_dir=root, bus_namespace="reconcile")
    try:
        async with bootstrap.infrastructure(settings) as infra:
            pool = infra.pool
            await pool.execute(
                "INSERT INTO messages (id, brand_id, subscriber_id, to_address, body, status,"
                " status_rank, provider, provider_message_id, carrier, sent_at, created_at,"
                " updated_at)"
                " SELECT gen_random_uuid(), 1, n, '+15125550100',"
                " 'Hi Noah, Black Friday at Northwind: 30% off everything until midnight.',"
                " CASE WHEN t > now() - interval '1 hour' AND n % 100 = 0 THEN 'sent'"
                " ELSE 'delivered' END, $2, 'sim', 'SM' || n, 'Verizon', t, t, t"
                " FROM generate_series(1, $1::int) AS n,"
                " LATERAL (SELECT now() - make_interval(secs => ($1 - n) * $3::float8)) AS h(t)",
                rows,
                rank("delivered"),
                1 / rate,
            )
            await pool.execute(
                "UPDATE messages SET status_rank = $1, reconciled_at = CASE WHEN sent_at <"
                " now() - make_interval(secs => $2) THEN sent_at + make_interval(secs => $2)"
                " END WHERE status = 'sent'",
                rank("sent"),
                AFTER_S,
            )
            await pool.execute("VACUUM ANALYZE messages")  # what autovacuum does over time
            await pool.execute("SELECT brin_summarize_new_values('messages_sent_at_brin')")
            floor = await pool.fetchval("SELECT now() - make_interval(secs => $1)", AFTER_S + 30)

            async def timed(call: Any) -> tuple[float, int]:
                best, found = float("inf"), 0
                for _ in range(rounds):
                    try:
                        async with pool.acquire() as conn, conn.transaction():
                            started = time.perf_counter()
                            found = await call(conn)
                            best = min(best, time.perf_counter() - started)
                            raise _Rollback
                    except _Rollback:
                        pass
                return round(best * 1000, 1), found

            async def before(conn: Any) -> int:
                return len(await conn.fetch(_BEFORE, AFTER_S, 1000))

            def after(start: Any, window_s: float = messages.RECONCILE_WINDOW_S) -> Any:
                async def run(conn: Any) -> int:
                    await conn.execute("UPDATE reconcile_floor SET floor = $1", start)
                    due = await messages.to_reconcile(
                        conn, older_than_s=AFTER_S, max_age_s=MAX_AGE_S, limit=1000,
                        window_s=window_s,
                    )  # fmt: skip
                    return len(due)

                return run

            before_ms, before_n = await timed(before)
            first_ms, first_n = await timed(after(None))
            one_read_ms, one_read_n = await timed(after(None, window_s=MAX_AGE_S))
            steady_ms, steady_n = await timed(after(floor))
            return {
                "rows": rows,
                "history_h": round(rows / rate / 3600, 1),
                "open": await pool.fetchval("SELECT count(*) FROM messages WHERE status = 'sent'"),
                "before_ms": before_ms,
                "first_ms": first_ms,
                "first_one_read_ms": one_read_ms,
                "steady_ms": steady_ms,
                "asked": {
                    "before": before_n,
                    "first": first_n,
                    "first_one_read": one_read_n,
                    "steady": steady_n,
                },
            }
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rate", type=float, default=200.0, help="hand-overs a second")
    parser.add_argument("--rounds", type=int, default=3, help="the fastest of these is kept")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main(args.rows, args.rate, args.rounds))))
