"""The consume loops stage workers run.

`consume`: pull up to `max_inflight` batches, handle each concurrently (bounded), ack only
after the handler returns (its effect is committed and its output published). A failing
batch is nak'ed with a growing delay and redelivered; nothing is dropped.

`consume_holding` (the aggregate's): receipts are held until their message's final one is
in, then folded together; a bus message is acked once all it carried is folded.
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
from clarion.pipeline.aggregate import Holding

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
    retry_base_s: float = 0.5,
) -> None:
    """Run `handler` on every batch of `hop` until `stop` is set.

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

    async def handle(msg: Any) -> None:
        await _handle(hop, msg, handler, retry_base_s=retry_base_s)

    try:
        while not stop.is_set():
            free = max_inflight - len(tasks)
            if free <= 0:  # bounded work in flight: wait for a slot
                await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                continue
            try:
                msgs = await sub.fetch(free, timeout=0.5)
            except (nats.errors.TimeoutError, nats.js.errors.FetchTimeoutError, TimeoutError):
                msgs = []
            except Exception as exc:  # connection blips: the client reconnects by itself
                log.warning("%s fetch failed: %s", hop, exc)
                msgs = []
                await asyncio.sleep(0.2)
            for m in msgs:
                task = asyncio.create_task(handle(m))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
    finally:
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        with contextlib.suppress(Exception):
            await sub.unsubscribe()


async def _handle(hop: str, msg: Any, handler: Handler, *, retry_base_s: float) -> None:
    """Run the handler on a fetched bus message; ack, or nak with a delay."""
    started = time.perf_counter()
    metrics.INFLIGHT.labels(hop).inc()
    try:
        items = await handler(decode(hop, msg.data))
        await msg.ack()
        elapsed = time.perf_counter() - started
        metrics.BATCHES.labels(hop, "ok").inc()
        metrics.ITEMS.labels(hop).inc(items)
        metrics.BATCH_SECONDS.labels(hop).observe(elapsed)
    except Held as held:
        metrics.BATCHES.labels(hop, "held").inc()
        with contextlib.suppress(Exception):
            await msg.nak(delay=held.retry_after_s)
    except Exception as exc:
        deliveries = msg.metadata.num_delivered if msg.metadata else 1
        delay = _failed(hop, f"batch failed (delivery {deliveries})", deliveries, exc, retry_base_s)
        with contextlib.suppress(Exception):
            await msg.nak(delay=delay)
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
                    await _handle(hop, m, handler, retry_base_s=retry_base_s)
    finally:
        with contextlib.suppress(Exception):
            await sub.unsubscribe()


async def consume_holding(
    bus: Bus,
    hop: str,
    handler: Handler,
    *,
    stop: asyncio.Event,
    hold_s: float,
    fetch: int = 32,
    ack_wait_s: float = 30.0,
    retry_base_s: float = 0.5,
) -> None:
    """The receipts hop's loop: batches go into a `Holding`, and what it releases is folded
    (the handler gets a list of receipt batches, one transaction). A bus message is acked once
    every receipt it carried has been folded; one that waits is reported in progress, so it
    is not redelivered meanwhile. A failed fold hands every bus message in hand back for
    redelivery (folding is idempotent). On stop, everything held is folded first."""
    # Held bus messages count against the consumer's unacknowledged limit (16,384 here, for
    # all processes); each process releases everything at half of it.
    await bus.consumer_config(hop, ack_wait_s=ack_wait_s, max_inflight=1024)
    sub = await bus.js.pull_subscribe_bind(bus.durable(hop), stream=bus.stream)
    holding: Holding[Any] = Holding(hold_s, max_batches=8192)
    failures, touched_at = 0, time.monotonic()
    try:
        while not stop.is_set():
            due = holding.next_due()
            now = time.monotonic()
            wait = 0.5 if due is None else min(0.5, max(0.01, due - now))
            try:
                msgs = await sub.fetch(fetch, timeout=wait)
            except (nats.errors.TimeoutError, nats.js.errors.FetchTimeoutError, TimeoutError):
                msgs = []
            except Exception as exc:  # connection blips: the client reconnects by itself
                log.warning("%s fetch failed: %s", hop, exc)
                msgs = []
                await asyncio.sleep(0.2)
            now = time.monotonic()
            for m in msgs:
                try:
                    holding.add(m, decode(hop, m.data), now)
                except Exception as exc:
                    log.warning("%s: undecodable batch, retrying: %s", hop, exc)
                    with contextlib.suppress(Exception):
                        await m.nak(delay=_MAX_BACKOFF_S)
            failures = await _fold_released(hop, holding, handler, now, failures, retry_base_s)
            if now - touched_at >= ack_wait_s / 6:  # a walk over every bus message in hand
                touched_at = now
                for m in holding.stale(now, ack_wait_s / 3):
                    with contextlib.suppress(Exception):
                        await m.in_progress()
        await _fold_released(hop, holding, handler, time.monotonic(), 0, retry_base_s, True)
    finally:
        for m in holding.drop():
            with contextlib.suppress(Exception):
                await m.nak()
        with contextlib.suppress(Exception):
            await sub.unsubscribe()


async def _fold_released(
    hop: str,
    holding: Holding[Any],
    handler: Handler,
    now: float,
    failures: int,
    retry_base_s: float,
    everything: bool = False,
) -> int:
    """Fold what `holding` releases and ack the bus messages it finished; returns the count
    of consecutive failed folds."""
    batches, done = holding.take(now, everything=everything)
    if not batches:
        await _ack(done)
        return failures
    started = time.perf_counter()
    metrics.INFLIGHT.labels(hop).inc()
    try:
        items = await handler(batches)
    except Exception as exc:
        failures += 1
        delay = _failed(hop, f"fold failed ({failures} in a row)", failures, exc, retry_base_s)
        for m in done + holding.drop():
            with contextlib.suppress(Exception):
                await m.nak(delay=delay)
        return failures
    finally:
        metrics.INFLIGHT.labels(hop).dec()
    await _ack(done)
    metrics.BATCHES.labels(hop, "ok").inc()
    metrics.ITEMS.labels(hop).inc(items)
    metrics.BATCH_SECONDS.labels(hop).observe(time.perf_counter() - started)
    return 0


def _failed(hop: str, what: str, attempt: int, exc: Exception, base_s: float) -> float:
    """Log and count a failed batch; returns how long until it comes back: exponential
    backoff with jitter, so batches that failed together do not all return at once."""
    backoff: float = base_s * 2.0 ** min(attempt - 1, 10)
    delay = min(_MAX_BACKOFF_S, backoff) * random.uniform(0.5, 1.5)
    log.warning(
        "%s %s, retrying in %.1fs: %s", hop, what, delay, exc, exc_info=not isinstance(exc, OSError)
    )
    metrics.BATCHES.labels(hop, "error").inc()
    return delay


async def _ack(msgs: list[Any]) -> None:
    """Ack folded bus messages; one whose ack is lost comes back and folds to nothing."""
    for m in msgs:
        with contextlib.suppress(Exception):
            await m.ack()
