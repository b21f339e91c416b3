"""Training the brand's product recommendations: read its shop events, fit, write a new
'recs' model version with each subscriber's products, prune what older versions wrote."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime

from clarion.intelligence import recs
from clarion.store import models
from clarion.store import recommendations as store_recs
from clarion.store.db import Pool
from clarion.store.models import ModelRow

log = logging.getLogger(__name__)
KIND = "recs"


async def train(
    pool: Pool, brand_id: int, *, now: datetime, params: recs.Params | None = None
) -> ModelRow | None:
    """A new version of the brand's recommendations from its shop events up to `now`
    (None: it has none on a product of its catalog). The version and its lists are written
    in one transaction; then the output of versions older than the newest kept is pruned.
    Its summary: what it learned from (`rows` subscriber-product pairs, `subscribers`,
    `products`), its parameters, its timings (`read_s`, `fit_s`, `rank_s`) and the
    popularity list (`popular`) newcomers get."""
    started = time.perf_counter()
    data = await store_recs.interactions(pool, brand_id, until=now)
    until = await store_recs.data_until(pool, brand_id, until=now)
    if until is None or not len(data.subscribers):
        return None
    read_s = time.perf_counter() - started
    # the fit runs in implicit's compiled code without the GIL: the loop goes on meanwhile
    fitted = await asyncio.to_thread(recs.fit, data, params or recs.Params())
    summary = {
        **fitted.summary,
        "read_s": round(read_s, 3),
        "weights": recs.WEIGHTS,
        "popular": fitted.popular,
    }
    written = time.perf_counter()
    async with pool.acquire() as conn, conn.transaction():
        model = await models.new_model(conn, brand_id, KIND, until, summary)
        await store_recs.write(conn, model.id, fitted.subscribers.tolist(), fitted.lists)
    write_s = time.perf_counter() - written
    for old in await models.superseded(pool, brand_id, KIND):
        async with pool.acquire() as conn, conn.transaction():
            await store_recs.prune(conn, old)
            await models.mark_pruned(conn, old)
    log.info(
        "brand %s: recommendations v%d from %d subscribers' %d products in %.1f s"
        " (read %.1f, fit %.1f, rank %.1f, write %.1f)",
        brand_id, model.version, len(fitted.subscribers), summary["rows"],
        time.perf_counter() - started, read_s, fitted.summary["fit_s"],
        fitted.summary["rank_s"], write_s,
    )  # fmt: skip
    return model
