"""What does a receipt event cost Postgres to record: a row with its key, or a log entry?

COPYs `--events` receipt events (a `sent` and a `delivered` for each of half as many
messages, ids ascending as a campaign's are) in transactions of 2,000, as the receipts side
does, into copies of the per-row events table (`message_events_by_row`, as migration 0012 left
it) and of the receipt log:

- `as_is`: the table as the migrations leave it (primary key on `(message_id, status)`,
  which de-duplicates a repeated report);
- `no_key`: the same columns without any index;
- `narrow`: the key, without the columns a message row holds already (the provider, its
  id for the message, the carrier);
- `log`: what the receipts side writes since migration 0018, one row of `receipt_log` per
  transaction, its events a JSON array of the receipts as the bus carries them (no key:
  the `message_events` view de-duplicates).

Prints one JSON line: per table, the best of `--rounds` rounds of Postgres' CPU (every
process of the embedded server), WAL per row, and the client's CPU per row (encoding the
COPY's records, or the log's JSON). The events' timestamps and carrier are all the same
here, so the log's JSON compresses better than a campaign's (18 B of WAL an event in
`clarion bench`). Compare runs close together.

    .venv/bin/python bench/event_insert.py
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import psutil

from clarion import bootstrap
from clarion.config import Settings
from clarion.domain.ids import campaign_message_id
from clarion.domain.records import Receipt
from clarion.harness.measure import cpu_times, cpu_used

BATCH = 2000
_FULL = (
    "brand_id", "message_id", "status", "provider", "provider_message_id", "error_code",
    "carrier", "occurred_at",
)  # fmt: skip
_NARROW = ("brand_id", "message_id", "status", "error_code", "occurred_at")
_TABLES = {
    "as_is": "CREATE TABLE ev_as_is (LIKE message_events_by_row INCLUDING ALL)",
    "no_key": "CREATE TABLE ev_no_key (LIKE message_events_by_row INCLUDING DEFAULTS)",
    "narrow": "CREATE TABLE ev_narrow (LIKE message_events_by_row INCLUDING ALL);"
    " ALTER TABLE ev_narrow DROP COLUMN provider, DROP COLUMN provider_message_id,"
    " DROP COLUMN carrier",
    "log": "CREATE TABLE ev_log (LIKE receipt_log INCLUDING ALL)",
}
_encode = msgspec.json.Encoder().encode


async def main(events: int, rounds: int) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="clarion-events-"))
    settings = replace(Settings.from_env(), data_dir=root, bus_namespace="events")
    now = datetime.now(UTC)
    ids = [campaign_message_id("bench-events", "a", n) for n in range(events // 2)]
    full = [
        (1, m, s, "sim", "SM" + m.replace("-", ""), None, "Verizon", now)
        for m in ids
        for s in ("sent", "delivered")
    ]
    narrow = [(1, m, s, None, now) for m in ids for s in ("sent", "delivered")]
    logged = [
        Receipt(message_id=m, status=s, occurred_at=at, provider_message_id=pid, carrier=c)
        for _, m, s, _, pid, _, c, at in full
    ]
    try:
        async with bootstrap.infrastructure(settings) as infra:
            out: dict[str, dict[str, float]] = {}
            async with infra.pool.acquire() as conn:
                for ddl in _TABLES.values():
                    await conn.execute(ddl)
                for _ in range(rounds):
                    for name in _TABLES:
                        records, columns = (narrow, _NARROW) if name == "narrow" else (full, _FULL)
                        await conn.execute(f"TRUNCATE ev_{name}")
                        await conn.execute("CHECKPOINT")  # no page images from earlier writes
                        lsn = await conn.fetchval("SELECT pg_current_wal_lsn()")
                        before, started = cpu_times(_postgres(root)), time.perf_counter()
                        client = time.process_time()
                        for k in range(0, len(records), BATCH):
                            async with conn.transaction():
                                if name == "log":
                                    await conn.execute(
                                        "INSERT INTO ev_log (provider, events)"
                                        " VALUES ('sim', $1::json)",
                                        _encode(logged[k : k + BATCH]).decode(),
                                    )
                                    continue
                                await conn.copy_records_to_table(
                                    f"ev_{name}", records=records[k : k + BATCH], columns=columns
                                )
                        elapsed = time.perf_counter() - started
                        client = time.process_time() - client
                        after = cpu_times(_postgres(root))
                        cpu = cpu_used(before, after, list(after))
                        wal = await conn.fetchval("SELECT pg_current_wal_lsn() - $1::pg_lsn", lsn)
                        figures = {
                            "postgres_cpu_us_per_row": round(cpu / len(records) * 1e6, 2),
                            "elapsed_us_per_row": round(elapsed / len(records) * 1e6, 2),
                            "wal_bytes_per_row": round(float(wal) / len(records)),
                            "client_cpu_us_per_row": round(client / len(records) * 1e6, 2),
                        }
                        best = out.get(name)
                        if best is None or (
                            figures["postgres_cpu_us_per_row"] < best["postgres_cpu_us_per_row"]
                        ):
                            out[name] = figures
            return {"events": len(full), "batch": BATCH, "rounds": rounds, "tables": out}
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _postgres(root: Path) -> list[psutil.Process]:
    """The embedded server's processes: the postmaster (its command line names `root`) and
    its children, the backends and background workers (autovacuum included)."""
    out: list[psutil.Process] = []
    for p in psutil.process_iter(["cmdline"]):
        cmd = " ".join(p.info["cmdline"] or [])
        if str(root) in cmd and "postgres" in cmd:
            out.append(p)
            out.extend(p.children(recursive=True))
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main(args.events, args.rounds))))
