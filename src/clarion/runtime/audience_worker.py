"""The audience stage's worker: a launch command becomes recipient batches, a page per
partition, read from each partition's cursor (kept in Postgres) a few reads a turn."""

from __future__ import annotations

from dataclasses import dataclass

from clarion.domain.ids import PARTITIONS
from clarion.domain.records import LaunchCampaign
from clarion.domain.rows import CampaignRow
from clarion.domain.variants import in_sample, round_of
from clarion.errors import Held
from clarion.pipeline import audience
from clarion.runtime.context import WorkerContext
from clarion.store import ab_rounds, brands, campaigns

# Reads (a page per partition each) one audience turn publishes before yielding to other
# campaigns (a continuation command carries the rest; the cursors are in Postgres).
READS_PER_TURN = 3


@dataclass
class AudienceWorker:
    ctx: WorkerContext
    page_size: int = 2000  # recipients per batch

    async def __call__(self, cmd: LaunchCampaign) -> int:
        pool, bus = self.ctx.pool, self.ctx.bus
        c = await campaigns.get_campaign(pool, cmd.campaign_id, brand_id=cmd.brand_id)
        if c.launch_count != cmd.attempt or c.audience_done:
            return 0  # superseded by a relaunch, finished earlier, or cancelled
        if c.status == "paused":
            raise Held(f"campaign {cmd.campaign_id} is paused", retry_after_s=0.5)
        # Each partition has its own cursor (-1: done). A read takes the next contiguous
        # range of subscribers from the lowest open cursor and publishes a page per partition
        # from it (`audience.split_pages`).
        cursors, published = list(c.audience_cursors), 0
        size = PARTITIONS * self.page_size
        # A test-then-winner campaign goes out twice: its sample first, then (the launch
        # that sends the winner) everyone else. The first launch and the winner's count.
        ab, uid = c.ab_test(), str(c.uid)
        testing = ab is not None and ab.mode == "test"
        rest = testing and c.ab_attempt == cmd.attempt
        counted = cmd.attempt == 1 or rest
        # An adaptive campaign goes out in rounds, each release its own launch (counted);
        # a relaunch sends again (not counted) every round released so far.
        rounds: tuple[int, int] | None = None
        if ab is not None and ab.mode == "adaptive":
            rounds, counted = await self._rounds(c, cmd.attempt)
        for _ in range(READS_PER_TURN):
            status = await campaigns.status_of(pool, cmd.campaign_id)
            if status == "paused":  # redelivered later; the cursors are in Postgres
                raise Held(f"campaign {cmd.campaign_id} is paused", retry_after_s=0.5)
            if status != "sending":  # cancelled since this turn began
                return published
            open_cursors = [x for x in cursors if x >= 0]
            if not open_cursors:
                await campaigns.finish_audience(pool, cmd.campaign_id, cmd.attempt)
                return published
            after = min(open_cursors)
            if not c.targeted:
                rows = await brands.audience_range(pool, cmd.brand_id, after, size)
            else:  # resolved at the launch
                rows = await brands.campaign_audience_range(
                    pool, cmd.brand_id, cmd.campaign_id, after, size
                )
            pages, moved = audience.split_pages(
                rows, cursors, page_size=self.page_size, exhausted=len(rows) < size
            )
            added = 0
            for part, page in pages:
                if testing:  # the sample, or the rest
                    page = [r for r in page if in_sample(uid, r.id, ab) != rest]
                elif rounds is not None and ab is not None:  # this release's rounds
                    lo, hi = rounds
                    page = [r for r in page if lo <= round_of(uid, r.id, ab) <= hi]
                batch = audience.recipient_batch(
                    brand_id=cmd.brand_id, campaign_id=cmd.campaign_id, attempt=cmd.attempt,
                    rows=page, partition=part, channel=c.channel,
                )  # fmt: skip
                if batch.recipients:
                    await bus.publish("audience", batch, msg_id=batch.batch_id)
                # the audience counts messages: a recipient on both channels counts twice
                added += audience.messages_for(batch, c.channel)
            await campaigns.advance_audience(
                pool, cmd.campaign_id, before=cursors, after=moved, added=added,
                attempt=cmd.attempt, counted=counted,
            )  # fmt: skip
            cursors = moved
            published += added
            if all(x < 0 for x in cursors):
                await campaigns.finish_audience(pool, cmd.campaign_id, cmd.attempt)
                return published
        turn = ":".join(map(str, cursors))
        await bus.publish("launch", cmd, msg_id=f"{cmd.command_id}:{turn}")
        return published

    async def _rounds(self, c: CampaignRow, attempt: int) -> tuple[tuple[int, int], bool]:
        """The subscriber rounds (first, last) an adaptive campaign's launch `attempt`
        sends, and whether it is a release (its messages counted). The first release is
        recorded by the first launch's first turn: round 0, by the variants' weights."""
        released = await ab_rounds.releases(self.ctx.pool, c.id)
        if not released and attempt == 1:
            weights = {v.key: v.weight / 100 for v in c.variant_list()}
            released = await ab_rounds.open_first(self.ctx.pool, c.id, weights, attempt)
        for r in released:
            if r.attempt == attempt:
                return (r.round, r.last_round), True
        return (0, max((r.last_round for r in released), default=-1)), False
