"""The simulator's receipt dispatcher: due receipts reported through each message's channel,
batched as the channel takes them; a failed report is retried with backoff, never lost."""

from __future__ import annotations

import asyncio
import contextlib
import time

from clarion.sim.state import Report, SimState

REPORT_EVERY_S = 0.05
RECEIPTS_PER_PASS = 16_000  # taken from the wheel at most per pass (8 batch API posts' worth)


async def dispatch_receipts(state: SimState, stop: asyncio.Event) -> None:
    """Report due receipts through their channel until `stop` is set."""
    while not stop.is_set():
        # Due receipts are gathered for a moment and reported together: one webhook per
        # 50 ms and target instead of one per poll (an HTTP request costs both sides about
        # a millisecond of CPU, whatever its size).
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), REPORT_EVERY_S)
        due = state.pop_due(RECEIPTS_PER_PASS)
        if not due:
            continue
        reports = []
        for report in due:
            size = state.channels[report.to[0]].batch
            receipts = report.receipts
            if len(receipts) <= size:
                reports.append(report)
            else:
                reports += [
                    Report(report.to, receipts[i : i + size]) for i in range(0, len(receipts), size)
                ]
        n = sum(len(r.receipts) for r in due)
        state.posting += n
        try:
            await asyncio.gather(*(_report(state, report) for report in reports))
        finally:
            state.posting -= n


async def _report(state: SimState, report: Report) -> None:
    channel, target = report.to
    try:
        ok = await state.channels[channel].receipts(target, report.receipts)
    except Exception:  # a client gone away: retried later
        ok = False
    if ok:
        state.counts["receipts_posted"] += len(report.receipts)
        return
    state.counts["receipt_post_failures"] += 1
    state.requeue(report, time.monotonic() + 1.0 + state.rng.random())
