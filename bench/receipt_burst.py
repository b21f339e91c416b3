"""How fast is a burst of receipts absorbed, and with how many database transactions?

Persists N handed-over messages, then publishes 2 × N receipts (`sent` and a final status,
in webhook-sized batches, shuffled so finals often come first) onto the receipts hop and
runs only the aggregate and carrier stages. Prints one JSON line: the time until every
message is final, receipts per second, and the database transactions it took (from
`pg_stat_database`), which shows receipts are folded in sets, not row by row.

    .venv/bin/python bench/receipt_burst.py --messages 50000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import tempfile
import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from clarion import bootstrap
from clarion.config import Settings
from clarion.domain.ids import batch_id
from clarion.domain.records import OutboundMessage, Receipt, ReceiptBatch, RenderedBatch
from clarion.harness.seed import synthetic_subscribers
from clarion.pipeline import send
from clarion.store import brands, campaigns, messages

WEBHOOK_BATCH = 1000  # receipts per provider webhook (the simulator posts up to 2,000)


async def main(n: int) -> dict[str, object]:
    root = Path(tempfile.mkdtemp(prefix="clarion-burst-"))
    settings = replace(Settings.from_env(), data_dir=root, bus_namespace="burst")
    try:
        async with bootstrap.infrastructure(settings) as infra:
            ids = await seed(infra, n)
            now = datetime.now(UTC)
            receipts = [
                Receipt(message_id=m, status=s, occurred_at=now, carrier="Verizon")
                for m in ids
                for s in ("sent", "delivered")
            ]
            random.Random(3).shuffle(receipts)
            provider = bootstrap.build_provider(settings)
            async with bootstrap.running(
                infra, provider, stages=["aggregate", "carrier"], http=False
            ):
                xacts = await infra.pool.fetchval(_XACTS)
                started = time.perf_counter()
                for i in range(0, len(receipts), WEBHOOK_BATCH):
                    chunk = receipts[i : i + WEBHOOK_BATCH]
                    key = batch_id("burst", i)
                    await infra.bus.publish(
                        "receipts", ReceiptBatch(batch_id=key, provider="sim", receipts=chunk),
                        msg_id=key,
                    )  # fmt: skip
                published_s = time.perf_counter() - started
                while await infra.pool.fetchval(
                    "SELECT count(*) FROM messages WHERE status <> 'delivered'"
                ):
                    await asyncio.sleep(0.05)
                elapsed = time.perf_counter() - started
                used = await infra.pool.fetchval(_XACTS) - xacts
            await provider.aclose()
            events = await infra.pool.fetchval("SELECT count(*) FROM message_events")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return {
        "messages": n,
        "receipts": len(receipts),
        "events_recorded": events,
        "published_s": round(published_s, 2),
        "absorbed_s": round(elapsed, 2),
        "receipts_per_s": round(len(receipts) / elapsed),
        "db_transactions": used,
    }


_XACTS = "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"


async def seed(infra: bootstrap.Infra, n: int) -> list[str]:
    pool = infra.pool
    brand_id = await brands.create_brand(pool, slug="burst", name="Burst", sender="+15125550100")
    subs = await asyncio.to_thread(synthetic_subscribers, n)
    await brands.import_subscribers(pool, brand_id, subs, source="bench")
    campaign_id = await campaigns.create_campaign(pool, brand_id=brand_id, name="B", body="x")
    rows = await pool.fetch("SELECT id, phone FROM subscribers WHERE brand_id = $1", brand_id)
    ids = []
    for i in range(0, len(rows), 5000):
        chunk = rows[i : i + 5000]
        batch = RenderedBatch(
            batch_id=f"b{i}",
            brand_id=brand_id,
            campaign_id=campaign_id,
            sender="+15125550100",
            messages=[
                OutboundMessage(
                    message_id=str(uuid.uuid4()),
                    subscriber_id=r["id"],
                    to=r["phone"],
                    body="x",
                    segments=1,
                )
                for r in chunk
            ],
        )
        async with pool.acquire() as conn:
            await messages.persist(conn, send.rows_to_persist(batch, expires_at=None))
            await conn.execute(
                "UPDATE messages SET status = 'accepted', status_rank = 1, provider = 'sim',"
                " sent_at = now() WHERE campaign_id = $1",
                campaign_id,
            )
        ids += [m.message_id for m in batch.messages]
    return ids


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=50_000)
    print(json.dumps(asyncio.run(main(parser.parse_args().messages))))
