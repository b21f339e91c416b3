"""The singletons a worker runs when elected (bootstrap holds the advisory lock): deferred
messages whose moment has come, early receipts whose send answer has landed, and
reconciliation of messages whose final receipt never came."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

import msgspec

from clarion.config import RECONCILE_MAX_AGE_S
from clarion.domain.ids import batch_id, campaign_message_id, partition_of
from clarion.domain.messages import DueMessage
from clarion.domain.records import OutboundMessage, Receipt, RenderedBatch
from clarion.domain.rows import CampaignRow
from clarion.domain.variants import ArmStats, decide, message_variant
from clarion.errors import ProviderError
from clarion.intelligence.adaptive import ArmData, allocate, exposures, round_seed
from clarion.pipeline.campaign import launch_command
from clarion.runtime.context import WorkerContext
from clarion.store import ab_rounds, abtests, attribution, campaigns, compliance, messages, segments

log = logging.getLogger(__name__)

# Messages a republished deferred batch carries at most.
_DEFERRED_PER_BATCH = 1000


# Orders recorded this recently are attributed again (a delivery receipt that came after the
# order may change it); receipts come within seconds or minutes of the send.
REATTRIBUTE_WITHIN_S = 3600.0


@dataclass
class Sweeps:
    ctx: WorkerContext

    async def launch_scheduled(self) -> int:
        """Launch the scheduled campaigns whose moment has come; how many. Once each: the
        launch is counted only while the campaign is still scheduled, by one process; a
        launch counted but never published (a process stopped between) is published again
        half a minute later (the bus drops a repeat of the command)."""
        pool, now = self.ctx.pool, self.ctx.clock.now()
        launched = 0
        for c in await campaigns.due_schedules(pool, now):
            await segments.resolve_campaign(pool, c, launched=True)
            attempt = await campaigns.launch_scheduled(pool, c.id, now)
            if attempt is None:
                continue  # launched by another process, or unscheduled meanwhile
            await self._launch(c.brand_id, c.id, attempt, now)
            launched += 1
        for c in await campaigns.stalled_launches(pool, 30.0):
            await segments.resolve_campaign(pool, c, launched=True)
            await self._launch(c.brand_id, c.id, c.launch_count, now)
        return launched

    async def decide_tests(self) -> int:
        """Decide the test-then-winner campaigns whose wait is over and launch each winner
        to the rest of its audience; how many were decided. Once per campaign: the decision
        is recorded with the launch it counts, and only one process's record takes."""
        pool, now = self.ctx.pool, self.ctx.clock.now()
        decided = 0
        for c in await abtests.tests_due(pool):
            ab = c.ab_test()
            assert ab is not None
            variants = c.variant_list()
            prefixes, names = _variant_ids(c)
            got = await abtests.arms(pool, c.id, prefixes, names)
            arms = [
                ArmStats(v.key, a.delivered, a.clickers, a.revenue, a.revenue_sq)
                for v in variants
                for a in [got.get(v.key, abtests.Arm())]
            ]
            decision = decide(arms, ab)
            attempt = await abtests.decide(
                pool, c.id, decision.winner, msgspec.to_builtins(decision)
            )
            if attempt is None:
                continue  # decided by another process
            log.info("campaign %s: test decided: %s", c.id, decision.reason)
            await self._launch(c.brand_id, c.id, attempt, now)
            decided += 1
        for c in await abtests.undelivered_decisions(pool, 60.0):
            await self._launch(c.brand_id, c.id, c.launch_count, now)
        return decided

    async def adapt_tests(self) -> int:
        """Release the next round of each adaptive campaign whose wait is over, split by
        what its rounds so far did (`intelligence.adaptive`), and launch it; how many were
        released. Once per round: the release is recorded with the launch it counts, and
        only one process's record takes."""
        pool, now = self.ctx.pool, self.ctx.clock.now()
        released = 0
        for c in await ab_rounds.rounds_due(pool):
            ab = c.ab_test()
            assert ab is not None
            done = await ab_rounds.releases(pool, c.id)
            if not done or done[-1].last_round >= ab.rounds - 1:
                continue  # every round is out
            prefixes, names = _variant_ids(c)
            got = await abtests.arms(pool, c.id, prefixes, names)
            ages = await ab_rounds.delivered_ages(pool, c.id, prefixes)
            delay = ab.click_delay_minutes
            arms = [
                ArmData(v.key, a.delivered, a.clickers, exposures(ages.get(v.key, []), delay))
                for v in c.variant_list()
                for a in [got.get(v.key, abtests.Arm())]
            ]
            nxt = done[-1].last_round + 1
            a = allocate(
                arms, floor=ab.floor, confidence=ab.confidence, last=nxt == ab.rounds - 1,
                seed=round_seed(str(c.uid), nxt),
            )  # fmt: skip
            decision = {"winner": a.leader, "metric": ab.metric, **msgspec.to_builtins(a)}
            row = ab_rounds.NextRound(
                round=nxt, last_round=ab.rounds - 1 if a.final else nxt, weights=a.weights,
                delivered={x.key: x.delivered for x in arms},
                clicks={x.key: x.clicks for x in arms},
                exposures={x.key: round(x.exposures, 2) for x in arms},
                p_best=a.p_best, decision=decision,
            )  # fmt: skip
            attempt = await ab_rounds.release(
                pool, c.id, after_attempt=c.launch_count, row=row,
                winner=a.leader if a.final else None,
            )  # fmt: skip
            if attempt is None:
                continue  # released by another process, or the campaign moved on
            log.info("campaign %s: round %d released: %s", c.id, nxt, a.reason)
            await self._launch(c.brand_id, c.id, attempt, now)
            released += 1
        for c in await ab_rounds.undelivered_releases(pool, 60.0):
            await self._launch(c.brand_id, c.id, c.launch_count, now)
        return released

    async def _launch(self, brand_id: int, campaign_id: int, attempt: int, now: datetime) -> None:
        cmd = launch_command(brand_id=brand_id, campaign_id=campaign_id, attempt=attempt, now=now)
        await self.ctx.bus.publish("launch", cmd, msg_id=cmd.command_id)

    async def reattribute(self, within_s: float = REATTRIBUTE_WITHIN_S) -> int:
        """Attribute the recent orders again; how many attributions were made or changed."""
        after, changed = 0, 0
        while ids := await attribution.recent_orders(self.ctx.pool, within_s, after, 5000):
            changed += await attribution.attribute(self.ctx.pool, ids)
            after = ids[-1]
        return changed

    async def deferred(self, limit: int = 5000) -> int:
        """Republish deferred messages whose moment has come, oldest first, to their
        subscriber's partition. A batch id is derived from its messages and their moments,
        so a repeat before the send stage has taken them is dropped by the bus."""
        async with self.ctx.pool.acquire() as conn:
            rows = await compliance.due_deferred(conn, self.ctx.clock.now(), limit)
        groups: dict[tuple[str, int, int | None, str, int], list[DueMessage]] = {}
        for r in rows:
            part = partition_of(r.subscriber_id, r.to)
            key = (r.kind, r.brand_id, r.campaign_id, r.sender, part)
            groups.setdefault(key, []).append(r)
        for (kind, brand_id, campaign_id, sender, part), group in groups.items():
            for i in range(0, len(group), _DEFERRED_PER_BATCH):
                chunk = group[i : i + _DEFERRED_PER_BATCH]
                out = RenderedBatch(
                    batch_id=batch_id(
                        "deferred", *(f"{r.message_id}@{r.not_before}" for r in chunk)
                    ),
                    brand_id=brand_id,
                    campaign_id=campaign_id,
                    sender=sender,
                    messages=[
                        OutboundMessage(
                            message_id=r.message_id,
                            subscriber_id=r.subscriber_id,
                            to=r.to,
                            body=r.body,
                            segments=r.segments,
                            timezone=r.timezone,
                            carrier=r.carrier,
                        )
                        for r in chunk
                    ],
                    kind=kind,
                    partition=part,
                    stored=True,
                )
                hop = "transactional" if kind == "transactional" else "rendered"
                await self.ctx.bus.publish(hop, out, msg_id=out.batch_id)
        return len(rows)

    async def early_receipts(self) -> int:
        """Early receipts whose send answer has landed since: back on the receipts hop.
        Catches the race where a receipt was kept by one transaction while another recorded
        its answer."""
        async with self.ctx.pool.acquire() as conn, conn.transaction():
            found = await messages.matched_early(conn)
            by_provider: dict[str, list[Receipt]] = {}
            for provider, receipt in found:
                by_provider.setdefault(provider, []).append(receipt)
            for provider, receipts in by_provider.items():
                await self.ctx.publish_receipts("early", provider, receipts)
        return len(found)

    async def reconcile(
        self, older_than_s: float, limit: int = 1000, *, max_age_s: float = RECONCILE_MAX_AGE_S
    ) -> int:
        """Ask each provider about messages handed over more than `older_than_s` ago (and
        less than `max_age_s`) that still have no final status (their receipts lost, or
        their fate unknown after a crash); what it says goes onto the receipts hop like any
        receipt. It reads hand-overs from the floor below which every message has been asked
        about or has settled, kept in Postgres, so a newly elected sweeper goes on from
        where the last one stopped (`messages.to_reconcile`). Those never asked come first,
        in hand-over order; then those asked before, the longest-asked first, so a message
        the provider keeps calling `sent` goes to the back of the line."""
        async with self.ctx.pool.acquire() as conn, conn.transaction():
            rows = await messages.to_reconcile(
                conn, older_than_s=older_than_s, max_age_s=max_age_s, limit=limit
            )
        by_provider: dict[str, list[tuple[str, str | None]]] = {}
        for message_id, provider_name, provider_id in rows:
            by_provider.setdefault(provider_name, []).append((message_id, provider_id))
        found = 0
        for name, refs in by_provider.items():
            provider = self.ctx.providers.get(name)
            fetch = getattr(provider, "fetch_status", None)
            if fetch is None:
                continue  # this provider cannot be asked
            try:
                receipts: list[Receipt] = await fetch(refs)
            except ProviderError as exc:
                log.warning("reconciliation with %s failed: %s", name, exc)
                continue
            if receipts:
                await self.ctx.publish_receipts("reconcile", name, receipts)
                found += len(receipts)
        return found


def _variant_ids(c: CampaignRow) -> tuple[dict[str, str], dict[str, str]]:
    """How a campaign's variants are known: the first 19 characters of a variant's message
    ids → its key, and a link's variant → its key."""
    uid = str(c.uid)
    channels = ["sms", "email"] if c.channel == "both" else [c.channel]
    prefixes, names = {}, {}
    for v in c.variant_list():
        for ch in channels:
            mv = message_variant(ch, v.key)
            prefixes[campaign_message_id(uid, mv, 0)[:19]] = v.key
            names[mv] = v.key
    return prefixes, names
