"""Reconciliation: messages whose receipts never came are asked about, and the provider's
answer becomes their final status."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pytest

from clarion import bootstrap, service
from clarion.domain.messages import SendResult
from clarion.domain.records import OutboundMessage, Receipt
from clarion.domain.status import rank
from clarion.providers import accounts
from clarion.runtime.stages import Stages
from clarion.sim.process import SimProcess
from clarion.store import messages
from tests.conftest import DAYTIME, wait_for_campaign
from tests.integration.helpers import (
    brand_with_subscribers,
    campaign,
    daytime,
    rendered_batch,
    stored_batch,
)


async def test_messages_whose_receipts_were_lost_are_reconciled_from_the_provider(
    infra: bootstrap.Infra,
) -> None:
    audience = await brand_with_subscribers(infra.pool, 600, seed=1101)
    campaign_id = await campaign(infra.pool, audience.brand_id)
    quick = dataclasses.replace(
        infra,
        settings=dataclasses.replace(infra.settings, reconcile_after_s=1.0, reconcile_every_s=0.5),
    )
    with SimProcess(secret=infra.settings.sim_secret, failure_rate=0.0, receipt_loss=0.4) as sim:
        provider = bootstrap.build_provider(infra.settings, url=sim.url)
        async with bootstrap.running(quick, provider, clock=daytime):
            await service.campaigns.launch(quick, campaign_id, at=DAYTIME)
            done = await wait_for_campaign(infra.pool, campaign_id, sim, timeout_s=60)
        lost = (await asyncio.to_thread(sim.stats))["receipts_lost"]

    assert lost > 100  # a good share of the receipts never came
    assert done.delivered == len(audience.consented)  # yet every message is final


async def test_a_twilio_account_is_asked_for_the_status_of_its_messages(
    infra: bootstrap.Infra, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reconciliation through Twilio's message resource (GET …/Messages/{sid}.json)."""
    audience = await brand_with_subscribers(infra.pool, 300, seed=1102)
    campaign_id = await campaign(infra.pool, audience.brand_id)
    quick = dataclasses.replace(
        infra,
        settings=dataclasses.replace(infra.settings, reconcile_after_s=1.0, reconcile_every_s=0.5),
    )
    sid, token = "AC" + "5" * 32, "reconcile-token"
    monkeypatch.setenv("TEST_RECONCILE_TOKEN", token)
    with SimProcess(
        secret=infra.settings.sim_secret, failure_rate=0.0, receipt_loss=0.4,
        twilio_account_sid=sid, twilio_auth_token=token,
    ) as sim:  # fmt: skip
        twilio = accounts.build(
            "twilio", "twilio",
            {"account_sid": sid, "auth_token": "env:TEST_RECONCILE_TOKEN", "api_base": sim.url,
             "lookup_base": sim.url},
            infra.settings,
        )  # fmt: skip
        async with bootstrap.running(quick, twilio, clock=daytime):
            await service.campaigns.launch(quick, campaign_id, at=DAYTIME)
            done = await wait_for_campaign(infra.pool, campaign_id, sim, timeout_s=60)
        lost = (await asyncio.to_thread(sim.stats))["receipts_lost"]

    assert lost > 50
    assert done.delivered == len(audience.consented)


class _Stubborn:
    """A provider that always says its messages are `sent` (no final word, ever)."""

    name = "stubborn"
    max_batch = 1000
    idempotent = True

    def __init__(self) -> None:
        self.asked: list[list[str]] = []

    async def send(self, sender: str, messages: Sequence[OutboundMessage]) -> list[SendResult]:
        raise AssertionError("not called: reconciliation only asks")

    async def fetch_status(self, refs: Sequence[tuple[str, str | None]]) -> list[Receipt]:
        self.asked.append(sorted(mid for mid, _ in refs))
        at = datetime.now(UTC)
        return [Receipt(message_id=mid, status="sent", occurred_at=at) for mid, _ in refs]


async def test_a_message_the_provider_never_finishes_does_not_hold_up_the_others(
    infra: bootstrap.Infra,
) -> None:
    """Reconciliation takes the longest-waiting messages a run at a time. One the provider
    keeps calling `sent` goes to the back of the line once asked, instead of being taken
    again every run ahead of everyone else."""
    batch = await stored_batch(infra, 3, seed=1103, key="stubborn")
    ids = [m.message_id for m in batch.messages]
    # handed over an hour ago, the first message longest ago; `sent` is all that came
    for age_min, mid in zip((90, 80, 70), ids, strict=True):
        await _handed_over(infra, mid, "sent", age_min)
    stubborn = _Stubborn()
    core = Stages(infra.pool, infra.bus, stubborn)

    assert await core.reconcile(older_than_s=600, limit=2) == 2
    assert await core.reconcile(older_than_s=600, limit=2) == 1
    # all asked a moment ago: none again before `older_than_s` has passed once more
    assert await core.reconcile(older_than_s=600, limit=2) == 0

    assert stubborn.asked == [sorted(ids[:2]), [ids[2]]]
    assert await core.reconcile(older_than_s=0, limit=2) == 2  # the first asked come back first
    assert stubborn.asked[-1] == sorted(ids[:2])


async def _handed_over(
    infra: bootstrap.Infra, message_id: str, status: str, age_min: float
) -> None:
    await infra.pool.execute(
        "UPDATE messages SET status = $2, status_rank = $3, provider = 'stubborn',"
        " sent_at = now() - make_interval(mins => $4), updated_at = now()"
        " WHERE id = $1::uuid",
        message_id, status, rank(status), age_min,
    )  # fmt: skip


async def test_a_call_a_crash_cut_short_is_asked_about_once_its_fate_is_unknown(
    infra: bootstrap.Infra,
) -> None:
    """The floor below which every message has been asked about or has settled does not
    pass a message still being handed over: when its batch comes again and its fate is
    `unknown`, it is asked about, however many runs went by meanwhile. Settled messages do
    not hold the floor back."""
    batch = await stored_batch(infra, 3, seed=1104, key="floor")
    ids = [m.message_id for m in batch.messages]
    await _handed_over(infra, ids[0], "delivered", 60)
    await _handed_over(infra, ids[1], "sending", 50)  # the worker died in the call
    await _handed_over(infra, ids[2], "delivered", 40)
    stubborn = _Stubborn()
    core = Stages(infra.pool, infra.bus, stubborn)

    assert await core.reconcile(older_than_s=600) == 0
    assert await core.reconcile(older_than_s=600) == 0
    sent_at = await infra.pool.fetchval("SELECT sent_at FROM messages WHERE id = $1", ids[1])
    assert await _floor(infra) == sent_at  # held at the message in flight, past the settled
    await infra.pool.execute(
        "UPDATE messages SET status = 'unknown', status_rank = $2 WHERE id = $1",
        ids[1], rank("unknown"),
    )  # fmt: skip
    assert await core.reconcile(older_than_s=600) == 1
    assert stubborn.asked == [[ids[1]]]
    # nothing before the hand-over of the newest is left unasked: the floor moves on
    assert await _floor(infra) > sent_at


async def test_an_orphaned_claim_is_asked_about_and_holds_the_floor_no_longer(
    infra: bootstrap.Infra,
) -> None:
    """A message still `sending` long after its claim (its batch never came back to settle
    it) would hold the floor for good, and every run would read from it again. Once
    orphaned it is asked about like any open message, and the floor moves past it."""
    batch = await stored_batch(infra, 3, seed=1108, key="orphan")
    ids = [m.message_id for m in batch.messages]
    await _handed_over(infra, ids[0], "sending", 150)  # orphaned: claimed 2.5 hours ago
    await _handed_over(infra, ids[1], "sending", 30)  # its batch may still come back
    await _handed_over(infra, ids[2], "sent", 20)
    stubborn = _Stubborn()
    core = Stages(infra.pool, infra.bus, stubborn)

    assert await core.reconcile(older_than_s=600) == 2
    assert stubborn.asked == [sorted([ids[0], ids[2]])]
    held_by = await infra.pool.fetchval("SELECT sent_at FROM messages WHERE id = $1", ids[1])
    assert await _floor(infra) == held_by  # the young claim holds it, the orphan no longer
    # and asked again later, as any open message
    assert await core.reconcile(older_than_s=0) == 2


async def _floor(infra: bootstrap.Infra) -> datetime:
    floor: datetime = await infra.pool.fetchval("SELECT floor FROM reconcile_floor")
    return floor


class _TwoHoursBehind:
    """A worker's clock whose wall seconds are two hours behind; its decisions run at
    `daytime`, so the gate lets the batch through."""

    def now(self) -> datetime:
        return daytime.now()

    def monotonic(self) -> float:
        return time.monotonic()

    def epoch(self) -> float:
        return time.time() - 7200


class _Accepting(_Stubborn):
    """Takes every message (its carrier unknown); asked later, says `sent`."""

    async def send(self, sender: str, messages: Sequence[OutboundMessage]) -> list[SendResult]:
        return [
            SendResult(message_id=m.message_id, accepted=True, provider_message_id=f"P{i}")
            for i, m in enumerate(messages)
        ]

    async def lookup_carriers(self, numbers: Sequence[str]) -> dict[str, str]:
        return {}


async def test_a_worker_whose_clock_is_behind_hands_over_on_the_database_clock(
    infra: bootstrap.Infra,
) -> None:
    """Reconciliation reads hand-overs by `sent_at` on the database's clock, from a floor it
    moves on. A message claimed by the send stage carries the database's time of the claim,
    not the worker's: a worker two hours behind would otherwise write its hand-overs below
    the floor (and past the maximum age), never to be asked about."""
    batch = await rendered_batch(infra, 8, seed=1106, key="behind")
    assert batch.campaign_id is not None
    await infra.pool.execute(
        "UPDATE campaigns SET status = 'sending' WHERE id = $1", batch.campaign_id
    )
    accepting = _Accepting()
    core = Stages(infra.pool, infra.bus, accepting, clock=_TwoHoursBehind())
    await core.reconcile(older_than_s=0, max_age_s=3600)  # the floor: now
    accepting.asked.clear()

    assert await core.send(batch) == len(batch.messages)
    claimed = await infra.pool.fetch(
        "SELECT id::text AS id, extract(epoch FROM now() - sent_at) AS age_s FROM messages"
        " WHERE campaign_id = $1 AND sent_at IS NOT NULL",
        batch.campaign_id,
    )
    assert claimed  # the gate let some through
    assert all(abs(r["age_s"]) < 60 for r in claimed)
    ids = sorted(r["id"] for r in claimed)
    await infra.pool.execute(  # as the fold leaves them when the final report never comes
        "UPDATE messages SET status = 'sent', status_rank = $2 WHERE id = ANY($1::uuid[])",
        ids, rank("sent"),
    )  # fmt: skip
    await core.reconcile(older_than_s=0, max_age_s=3600)
    asked = sorted(mid for call in accepting.asked for mid in call if mid in set(ids))
    assert asked == ids


async def test_the_floor_is_kept_in_postgres_and_a_sweeper_far_behind_catches_up_a_window_at_a_time(
    infra: bootstrap.Infra,
) -> None:
    """The floor outlives the sweeper: each run, in its own transaction and with nothing
    in memory, goes on from where the last stopped (a newly elected sweeper no longer reads
    everything since the maximum age in one statement). A run far behind reads a window of
    hand-overs at a time and goes on to the next only while it has time left, so no run's
    cost is the history's."""
    batch = await stored_batch(infra, 3, seed=1107, key="windows")
    ids = [m.message_id for m in batch.messages]
    for age_min, mid in zip((150, 90, 30), ids, strict=True):
        await _handed_over(infra, mid, "sent", age_min)
    assert await infra.pool.fetchval("SELECT floor FROM reconcile_floor") is None  # never run

    async def run(budget_s: float) -> list[str]:
        async with infra.pool.acquire() as conn, conn.transaction():
            rows = await messages.to_reconcile(
                conn, older_than_s=600, max_age_s=3 * 3600, limit=1000, window_s=3600,
                budget_s=budget_s,
            )  # fmt: skip
        return [r[0] for r in rows]

    # No time for a second window: an hour of hand-overs a run, from three hours ago.
    assert await run(budget_s=0) == [ids[0]]
    assert await _floor_age_min(infra) == pytest.approx(120, abs=1)
    assert await run(budget_s=0) == [ids[1]]
    assert await _floor_age_min(infra) == pytest.approx(60, abs=1)
    assert await run(budget_s=0) == [ids[2]]
    assert await _floor_age_min(infra) == pytest.approx(10, abs=1)  # up to the last run's end
    assert await run(budget_s=0) == []

    # With time enough, one run reads window after window up to its end.
    await infra.pool.execute("UPDATE reconcile_floor SET floor = NULL")
    await infra.pool.execute("UPDATE messages SET reconciled_at = NULL")
    assert await run(budget_s=60) == ids


async def _floor_age_min(infra: bootstrap.Infra) -> float:
    age: float = await infra.pool.fetchval(
        "SELECT extract(epoch FROM now() - floor) / 60 FROM reconcile_floor"
    )
    return age


async def test_settled_messages_and_those_too_old_leave_the_record_of_the_asked(
    infra: bootstrap.Infra,
) -> None:
    """A message asked about leaves the record of the asked (the partial index the sweep
    reads) once it has settled, or once it was handed over longer ago than messages are
    asked about; one still open stays and is asked again."""
    batch = await stored_batch(infra, 3, seed=1105, key="settled")
    ids = [m.message_id for m in batch.messages]
    for mid, status, age_min in ((ids[0], "delivered", 60), (ids[1], "sent", 60),
                                 (ids[2], "sent", 5 * 24 * 60)):  # fmt: skip
        await _handed_over(infra, mid, status, age_min)
    await infra.pool.execute("UPDATE messages SET reconciled_at = now() - interval '30 minutes'")
    stubborn = _Stubborn()
    core = Stages(infra.pool, infra.bus, stubborn)

    assert await core.reconcile(older_than_s=600, max_age_s=3 * 86_400) == 1
    assert stubborn.asked == [[ids[1]]]
    asked = await infra.pool.fetch(
        "SELECT id::text AS id FROM messages WHERE reconciled_at IS NOT NULL"
    )
    assert [r["id"] for r in asked] == [ids[1]]


async def test_reconciliation_reads_a_window_of_messages_never_the_whole_table(
    infra: bootstrap.Infra,
) -> None:
    """On a table of many messages handed over across three days, the messages not asked
    about yet are found through the BRIN index on `sent_at` for a recent window, and those
    asked before through the partial index on `reconciled_at`: a run's cost follows the
    traffic since the floor, not the table's history."""
    await infra.pool.execute(
        "INSERT INTO messages (id, brand_id, subscriber_id, to_address, status, status_rank,"
        " provider, sent_at, created_at)"
        " SELECT gen_random_uuid(), 1, n, '+15005550006', 'delivered', $1, 'sim', t, t"
        " FROM generate_series(1, 60000) AS n,"
        " LATERAL (SELECT now() - make_interval(secs => (60000 - n) * 4.32)) AS at(t)",
        rank("delivered"),
    )
    upto, floor = await infra.pool.fetchrow(
        "SELECT now() - interval '10 minutes', now() - interval '20 minutes'"
    )

    # (statement, its arguments, the index it must read through, whether the planner needs
    # the table's statistics for that): before the first statistics the planner has no idea
    # of `sent_at`'s order and reads the window by a scan (as a restart's first read, of
    # everything since the max age, does anyway); the record of the asked is read in index
    # order whatever it knows.
    reads = (
        (messages._ASK_FRESH, (floor, upto, 1000, floor), "messages_sent_at_brin", True),
        (messages._OLDEST_UNASKED, (floor, upto), "messages_sent_at_brin", True),
        (messages._SETTLED, (floor, 4000), "messages_reasking", False),
        (messages._ASK_AGAIN, (upto, floor, 1000, floor), "messages_reasking", False),
    )
    for analysed in (False, True):
        if analysed:
            await infra.pool.execute("ANALYZE messages")
        for sql, args, index, needs_statistics in reads:
            if needs_statistics and not analysed:
                continue
            text = "\n".join(r[0] for r in await infra.pool.fetch("EXPLAIN " + sql, *args))
            assert index in text, text
            assert "Seq Scan on messages" not in text, text
    # Read for real (once autovacuum has summarised the ranges, as autosummarize asks): the
    # ten minutes of hand-overs are a few ranges of pages out of the table's.
    await infra.pool.execute("SELECT brin_summarize_new_values('messages_sent_at_brin')")
    executed = await infra.pool.fetchval(
        "EXPLAIN (ANALYZE, FORMAT JSON) " + messages._OLDEST_UNASKED, floor, upto
    )
    read = _heap_blocks(json.loads(executed)[0]["Plan"])
    pages = await infra.pool.fetchval(
        "SELECT pg_relation_size('messages') / current_setting('block_size')::int"
    )
    assert 0 < read < pages / 20, (read, pages)


def _heap_blocks(node: dict[str, Any]) -> int:
    own = int(node.get("Exact Heap Blocks", 0)) + int(node.get("Lossy Heap Blocks", 0))
    return own + sum(_heap_blocks(child) for child in node.get("Plans", []))


async def test_a_run_summarises_new_pages_and_waits_for_no_vacuum(infra: bootstrap.Infra) -> None:
    """A run gives the pages written since the last one their BRIN summaries (else every
    query of the index reads them whole); while a vacuum holds the lock that needs, the run
    goes on without, and still asks."""
    batch = await stored_batch(infra, 2, seed=1106, key="summaries")
    ids = [m.message_id for m in batch.messages]
    await infra.pool.execute(
        "INSERT INTO messages (id, brand_id, subscriber_id, to_address, status, status_rank,"
        " provider, sent_at) SELECT gen_random_uuid(), 1, n, '+15005550006', 'delivered', $1,"
        " 'sim', now() - interval '2 hours' FROM generate_series(1, 20000) AS n",
        rank("delivered"),
    )
    await _handed_over(infra, ids[0], "sent", 60)
    # a sweeper ran three hours ago (a first run ever reads from the maximum age, a window
    # at a time, and on a table without statistics that takes it more than one run)
    await infra.pool.execute("UPDATE reconcile_floor SET floor = now() - interval '3 hours'")
    stubborn = _Stubborn()
    core = Stages(infra.pool, infra.bus, stubborn)

    assert await core.reconcile(older_than_s=600) == 1
    summarise = "SELECT brin_summarize_new_values('messages_sent_at_brin')"
    assert await infra.pool.fetchval(summarise) == 0  # the run left nothing to summarise

    await infra.pool.execute(
        "INSERT INTO messages (id, brand_id, subscriber_id, to_address, status, status_rank,"
        " provider, sent_at) SELECT gen_random_uuid(), 1, n, '+15005550006', 'delivered', $1,"
        " 'sim', now() - interval '8 minutes' FROM generate_series(1, 20000) AS n",
        rank("delivered"),
    )
    await _handed_over(infra, ids[1], "sent", 5)  # after the floor the first run left
    async with infra.pool.acquire() as vacuum, vacuum.transaction():
        # the lock a vacuum holds on the table
        await vacuum.execute("LOCK TABLE messages IN SHARE UPDATE EXCLUSIVE MODE")
        asked = await asyncio.wait_for(core.reconcile(older_than_s=60), timeout=5)
    assert asked == 1
    assert stubborn.asked == [[ids[0]], [ids[1]]]
    assert await infra.pool.fetchval(summarise) > 0  # left for later
