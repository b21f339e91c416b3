"""The one consume loop every stage worker runs.

Pull up to `max_inflight` batches, handle each concurrently (bounded), ack only after the
handler returns (its effect is committed and its output published). A failing batch is
nak'ed with a growing delay and redelivered; nothing is dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

import nats.errors
import nats.js.errors

from clarion.bus.jetstream import PARTITIONED, Bus, decode
from clarion.domain.ids import PARTITIONS
from clarion.errors import Held
from clarion.observability import metrics

log = logging.getLogger(__name__)

Handler = Callable[[Any], Awaitable[int]]  # returns how many items it handled
_MAX_BACKOFF_S = 30.0


async def consume(
    bus: Bus,
    hop: str,
    handler: Handler,
    *,
    stop: asyncio.Event,
    max_inflight: int = 4,
    ack_wait_s: float = 30.0,
    merge: int = 1,
    retry_base_s: float = 0.5,
) -> None:
    """Run `handler` on every batch of `hop` until `stop` is set.

    With `merge` > 1 the handler receives a list of up to `merge` waiting batches at once
    (one database transaction for many small bus messages) and they are acked together.

    A partitioned hop is consumed one batch at a time per partition (its consumer allows one
    unacknowledged batch across all workers), and at most `max_inflight` partitions at once
    in this process.
    """
    if hop in PARTITIONED:
        slots = asyncio.Semaphore(max_inflight)
        await asyncio.gather(
            *(
                _consume_partition(bus, hop, p, handler, stop, ack_wait_s, retry_base_s, slots)
                for p in range(PARTITIONS)
            )
        )
        return
    await bus.consumer_config(hop, ack_wait_s=ack_wait_s, max_inflight=max_inflight)
    sub = await bus.js.pull_subscribe_bind(bus.durable(hop), stream=bus.stream)
    tasks: set[asyncio.Task[None]] = set()

    async def handle(msgs: list[Any]) -> None:
        await _handle(hop, msgs, handler, merge=merge, retry_base_s=retry_base_s)

    try:
        while not stop.is_set():
            free = max_inflight - len(tasks)
            if free <= 0:  # bounded work in flight: wait for a slot
                await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                continue
            try:
                msgs = await sub.fetch(free * merge, timeout=0.5)
            except (nats.errors.TimeoutError, nats.js.errors.FetchTimeoutError, TimeoutError):
                msgs = []
            except Exception as exc:  # connection blips: the client reconnects by itself
                log.warning("%s fetch failed: %s", hop, exc)
                msgs = []
                await asyncio.sleep(0.2)
            for i in range(0, len(msgs), merge):
                task = asyncio.create_task(handle(msgs[i : i + merge]))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
    finally:
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        with contextlib.suppress(Exception):
            await sub.unsubscribe()


async def _handle(
    hop: str, msgs: list[Any], handler: Handler, *, merge: int, retry_base_s: float
) -> None:
    """Run the handler on fetched bus messages; ack, or nak with a delay."""
    started = time.perf_counter()
    metrics.INFLIGHT.labels(hop).inc()
    msg = msgs[0]
    try:
        records = [decode(hop, m.data) for m in msgs]
        items = await handler(records if merge > 1 else records[0])
        for m in msgs:
            await m.ack()
        elapsed = time.perf_counter() - started
        metrics.BATCHES.labels(hop, "ok").inc()
        metrics.ITEMS.labels(hop).inc(items)
        metrics.BATCH_SECONDS.labels(hop).observe(elapsed)
    except Held as held:
        metrics.BATCHES.labels(hop, "held").inc()
        with contextlib.suppress(Exception):
            for m in msgs:
                await m.nak(delay=held.retry_after_s)
    except Exception as exc:
        deliveries = msg.metadata.num_delivered if msg.metadata else 1
        # Exponential backoff with jitter, so batches that failed together do not all
        # come back at the same instant.
        backoff = retry_base_s * 2 ** min(deliveries - 1, 10)
        delay = min(_MAX_BACKOFF_S, backoff) * random.uniform(0.5, 1.5)
        log.warning(
            "%s batch failed (delivery %d), retrying in %.1fs: %s",
            hop,
            deliveries,
            delay,
            exc,
            exc_info=not isinstance(exc, OSError),
        )
        metrics.BATCHES.labels(hop, "error").inc()
        for m in msgs:
            with contextlib.suppress(Exception):
                await m.nak(delay=delay)
    finally:
        metrics.INFLIGHT.labels(hop).dec()


async def _consume_partition(
    bus: Bus,
    hop: str,
    partition: int,
    handler: Handler,
    stop: asyncio.Event,
    ack_wait_s: float,
    retry_base_s: float,
    slots: asyncio.Semaphore,
) -> None:
    """One partition of a partitioned hop: fetch a batch, handle it when one of the process's
    `slots` for this hop is free (bounded work in flight), repeat."""
    await bus.consumer_config(hop, ack_wait_s=ack_wait_s, max_inflight=1, partition=partition)
    sub = await bus.js.pull_subscribe_bind(bus.durable(hop, partition), stream=bus.stream)
    try:
        while not stop.is_set():
            try:
                msgs = await sub.fetch(1, timeout=0.5)
            except (nats.errors.TimeoutError, nats.js.errors.FetchTimeoutError, TimeoutError):
                continue
            except Exception as exc:  # connection blips: the client reconnects by itself
                log.warning("%s.%d fetch failed: %s", hop, partition, exc)
                await asyncio.sleep(0.2)
                continue
            async with slots:
                for m in msgs:
                    await _handle(hop, [m], handler, merge=1, retry_base_s=retry_base_s)
    finally:
        with contextlib.suppress(Exception):
            await sub.unsubscribe()
