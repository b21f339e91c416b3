"""The models' use cases: which brands' models are due a new version, training them, and
what a brand's versions are. Training is what the `intelligence` worker role runs (elected,
every minute) and `clarion intelligence train` runs on demand."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from clarion.errors import InvalidInput
from clarion.service import recs, sto
from clarion.store import models
from clarion.store.db import Pool
from clarion.store.models import ModelRow as ModelRow  # what its callers show

log = logging.getLogger(__name__)

# A brand's model is fitted again once it is this old and there is something new to learn.
RETRAIN_AFTER = timedelta(hours=1)
Trainer = Callable[..., Awaitable[ModelRow | None]]
TRAINERS: dict[str, Trainer] = {"sto": sto.train, "recs": recs.train}


async def train(pool: Pool, brand_id: int, kind: str, *, now: datetime) -> ModelRow | None:
    """A new version of one of the brand's models (None: nothing to learn from yet)."""
    trainer = TRAINERS.get(kind)
    if trainer is None:
        raise InvalidInput(f"a model kind: {', '.join(TRAINERS)}", field="kind")
    return await trainer(pool, brand_id, now=now)


async def train_due(pool: Pool, *, now: datetime, stop: asyncio.Event | None = None) -> int:
    """Train every model that is due (see `models.due`); how many were trained."""
    trained = 0
    for kind in TRAINERS:
        for brand_id in await models.due(pool, kind, now - RETRAIN_AFTER):
            if stop is not None and stop.is_set():
                return trained
            try:
                trained += await train(pool, brand_id, kind, now=now) is not None
            except Exception:  # one brand's failure is logged; the others train
                log.exception("brand %d: training its %s model failed", brand_id, kind)
    return trained


async def listed(pool: Pool, brand_id: int, kind: str | None = None) -> list[ModelRow]:
    return await models.listed(pool, brand_id, kind)
