"""The outbound webhooks' dispatcher: posts the events due to each endpoint in batches,
signed (`pipeline.hooks`), and records each attempt; a failure is tried again later with
backoff, and an endpoint failing for a day is disabled (an alert says so). Elected: one
process dispatches. It runs beside the pipeline, never in it: a dead endpoint makes only
its own retries.

Two sources: the outbox (`webhook_deliveries`: clicks, consents, attributions, written by
triggers), and the receipt log, read by each endpoint's own cursor for `message.delivered`
and `message.failed` (a copy per receipt, at campaign rates, cost Postgres more than the
campaign did)."""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from clarion.httpclient import AsyncClient
from clarion.pipeline import hooks
from clarion.runtime.context import WorkerContext
from clarion.store import hooks as store

log = logging.getLogger(__name__)

# Receipt-log rows (one per fold, up to a few thousand reports) an endpoint reads a pass.
LOG_ROWS_PER_PASS = 20


@dataclass
class HooksWorker:
    ctx: WorkerContext
    timeout_s: float = 10.0
    rng: random.Random = field(default_factory=random.Random)

    async def dispatch(self, client: AsyncClient) -> int:
        """One pass: every endpoint with events due gets them (concurrently); returns how
        many events were delivered."""
        due = await store.due(self.ctx.pool, hooks.MAX_EVENTS_PER_REQUEST)
        streams = await store.receipt_streams(
            self.ctx.pool, sorted(set(hooks.RECEIPT_TYPES.values()))
        )
        results = await asyncio.gather(
            *(self._outbox(client, d) for d in due),
            *(self._receipts(client, s) for s in streams),
        )
        return sum(results)

    async def _post(
        self, client: AsyncClient, url: str, secret: str, events: list[hooks.Event]
    ) -> tuple[int | None, str | None]:
        """(HTTP status, None) for a 2xx, else (status or None, the error)."""
        msg_id, body = hooks.request_of(events)
        # the receiver compares the signature's time with its own clock: the real one
        now = datetime.fromtimestamp(self.ctx.clock.epoch(), UTC)
        try:
            r = await client.post(
                url, content=body, headers=hooks.signed_headers(secret, msg_id, now, body),
                timeout=self.timeout_s,
            )  # fmt: skip
        except httpx.HTTPError as exc:
            return None, f"{type(exc).__name__}: {exc}"[:300]
        if 200 <= r.status_code < 300:
            return r.status_code, None
        return r.status_code, f"HTTP {r.status_code}"

    async def _outbox(self, client: AsyncClient, d: store.Due) -> int:
        ids = [int(e.id.removeprefix("evt_")) for e in d.events]
        code, error = await self._post(client, d.url, d.secret, d.events)
        if error is None:
            assert code is not None
            await store.delivered(self.ctx.pool, d.endpoint_id, ids, code)
            return len(ids)
        disabled = await store.failed(
            self.ctx.pool, d.endpoint_id, ids, code=code, error=error,
            retry_after_s=hooks.retry_after_s(d.attempts + 1, self.rng),
            disable_after_s=hooks.DISABLE_AFTER.total_seconds(),
        )  # fmt: skip
        self._disabled(d.endpoint_id, disabled, error)
        return 0

    async def _receipts(self, client: AsyncClient, s: store.ReceiptStream) -> int:
        wanted = [st for st, t in hooks.RECEIPT_TYPES.items() if t in s.event_types]
        rows, last = await store.receipt_events(self.ctx.pool, s, wanted, LOG_ROWS_PER_PASS)
        events = [_receipt_event(r) for r in rows]
        for i in range(0, len(events), hooks.MAX_EVENTS_PER_REQUEST):
            chunk = events[i : i + hooks.MAX_EVENTS_PER_REQUEST]
            _, error = await self._post(client, s.url, s.secret, chunk)
            if error is not None:  # from the same place next time: the same batches, ids
                disabled = await store.receipts_failed(
                    self.ctx.pool, s.endpoint_id, error=error,
                    retry_after_s=hooks.retry_after_s(s.attempts + 1, self.rng),
                    disable_after_s=hooks.DISABLE_AFTER.total_seconds(),
                )  # fmt: skip
                self._disabled(s.endpoint_id, disabled, error)
                return 0
        await store.receipts_posted(self.ctx.pool, s.endpoint_id, last)
        return len(events)

    @staticmethod
    def _disabled(endpoint_id: int, disabled: bool, error: str) -> None:
        if disabled:
            log.warning("webhook endpoint %s disabled: failing for a day (%s)", endpoint_id, error)


def _receipt_event(r: dict[str, Any]) -> hooks.Event:
    payload = {k: r[k] for k in ("message_id", "status", "error_code", "carrier", "occurred_at",
                                 "campaign_id", "subscriber_id", "channel")}  # fmt: skip
    return hooks.Event(
        f"evt_msg_{r['message_id']}_{r['status']}", hooks.RECEIPT_TYPES[r["status"]],
        r["recorded_at"], payload,
    )  # fmt: skip
