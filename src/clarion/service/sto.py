"""Send-time optimisation's use cases: fit a brand's model from what Clarion recorded (a new
version, its per-subscriber hours written in one transaction), and the moment each
recipient of a best-time campaign is sent at."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from clarion.domain.schedule import zone_of
from clarion.intelligence import sto
from clarion.store import models, send_hours
from clarion.store.db import Pool
from clarion.store.models import ModelRow

log = logging.getLogger(__name__)

KIND = "sto"
# What a fit learns from: the deliveries and clicks of this long before it.
HISTORY = timedelta(days=180)
_HOURLY = ("sends_by_hour", "clicks_by_hour", "peaks")


async def train(pool: Pool, brand_id: int, *, now: datetime) -> ModelRow | None:
    """A new version of the brand's send-time model, fit on its last `HISTORY` of deliveries
    and clicks; None when the brand has delivered nothing with a tracked link."""
    started = time.perf_counter()
    rows = await send_hours.exposures(pool, brand_id, now - HISTORY)
    if not rows:
        return None
    everyone = [
        sto.Totals(tuple(o["sends_by_hour"]), tuple(o["clicks_by_hour"]), tuple(o["peaks"]))
        for o in await send_hours.everyone_totals(pool, brand_id)
        if all(isinstance(o.get(k), list) and len(o[k]) == sto.HOURS for k in _HOURLY)
    ]
    read_s = time.perf_counter() - started
    fitted = await asyncio.to_thread(sto.fit, rows, everyone)  # the event loop goes on
    fit_s = time.perf_counter() - started - read_s
    summary: dict[str, Any] = {
        "subscribers": len(fitted.subscriber_ids),
        "messages": fitted.messages,
        "clicks": fitted.clicks,
        "brand_hours": list(fitted.brand_ranked),
        "brand_rates": [round(r, 5) for r in fitted.brand_rates],
        "peaks": [round(p, 5) for p in fitted.peaks],
        "curve": [round(r, 5) for r in fitted.curve],
        "sends_by_hour": list(fitted.totals.sends),
        "clicks_by_hour": list(fitted.totals.clicks),
        "other_brands": len(everyone),
        "iterations": sto.ITERATIONS,
        "peaks_prior": sto.PEAKS_PRIOR,
        "read_s": round(read_s, 3),
        "fit_s": round(fit_s, 3),
    }
    data_until = await send_hours.newest_exposure(pool, brand_id) or now
    async with pool.acquire() as conn, conn.transaction():
        model = await models.new_model(conn, brand_id, KIND, data_until, summary)
        await send_hours.write(
            conn, model.id, fitted.subscriber_ids.tolist(), fitted.ranked.tolist()
        )
    for old in await models.superseded(pool, brand_id, KIND):
        await send_hours.prune(pool, old)
    log.info(
        "brand %d: send-time model v%d from %d messages, %d clicks, %d subscribers (%.1f s)",
        brand_id, model.version, fitted.messages, fitted.clicks, len(fitted.subscriber_ids),
        time.perf_counter() - started,
    )  # fmt: skip
    return model


async def moments(
    pool: Pool,
    model: ModelRow | None,
    recipients: Sequence[tuple[int, str | None]],
    *,
    start: datetime,
    window_h: float,
) -> dict[int, datetime]:
    """When each (subscriber id, zone name) of a best-time campaign is sent: at their best
    hour within `window_h` of `start` (the brand's best hour for a subscriber the model has
    no history of; `start` when there is no model yet)."""
    if model is None:
        return {sid: start for sid, _ in recipients}
    known = await send_hours.read(pool, model.id, [sid for sid, _ in recipients])
    return sto.moments(
        known, sto.brand_hours(model.summary), [(sid, zone_of(z)) for sid, z in recipients],
        start=start, window_h=window_h,
    )  # fmt: skip
