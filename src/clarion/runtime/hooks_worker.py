"""The outbound webhooks' dispatcher: posts the events due to each endpoint in batches,
signed (`pipeline.hooks`), and records each attempt; a failure is tried again later with
backoff, and an endpoint failing for a day is disabled (an alert says so). Elected: one
process dispatches. It runs beside the pipeline, never in it: a dead endpoint makes only
its own retries."""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx

from clarion.httpclient import AsyncClient
from clarion.pipeline import hooks
from clarion.runtime.context import WorkerContext
from clarion.store import hooks as store

log = logging.getLogger(__name__)


@dataclass
class HooksWorker:
    ctx: WorkerContext
    timeout_s: float = 10.0
    rng: random.Random = field(default_factory=random.Random)

    async def dispatch(self, client: AsyncClient) -> int:
        """One pass: every endpoint with events due gets one request (concurrently);
        returns how many events were delivered."""
        due = await store.due(self.ctx.pool, hooks.MAX_EVENTS_PER_REQUEST)
        results = await asyncio.gather(*(self._post(client, d) for d in due))
        return sum(results)

    async def _post(self, client: AsyncClient, d: store.Due) -> int:
        msg_id, body = hooks.request_of(d.events)
        # the receiver compares the signature's time with its own clock: the real one
        now = datetime.fromtimestamp(self.ctx.clock.epoch(), UTC)
        ids = [e.id for e in d.events]
        code: int | None = None
        try:
            r = await client.post(
                d.url, content=body, headers=hooks.signed_headers(d.secret, msg_id, now, body),
                timeout=self.timeout_s,
            )  # fmt: skip
            code = r.status_code
            if 200 <= code < 300:
                await store.delivered(self.ctx.pool, d.endpoint_id, ids, code)
                return len(ids)
            error = f"HTTP {code}"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"[:300]
        disabled = await store.failed(
            self.ctx.pool, d.endpoint_id, ids, code=code, error=error,
            retry_after_s=hooks.retry_after_s(d.attempts + 1, self.rng),
            disable_after_s=hooks.DISABLE_AFTER.total_seconds(),
        )  # fmt: skip
        if disabled:
            log.warning(
                "webhook endpoint %s disabled: failing for a day (%s)", d.endpoint_id, error
            )
        return 0
