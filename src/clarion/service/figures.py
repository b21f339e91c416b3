"""Campaigns with their headline figures, for the web UI's lists: one query a page, however
large the campaigns are. Counting a campaign's messages costs time in proportion to them, so
a page shows the figures as last counted (and when) and asks a `Counter` to count the stale
ones again in the background: the next page shows them fresh."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from clarion.service.context import Services
from clarion.store import figures
from clarion.store.figures import Headline

log = logging.getLogger(__name__)

__all__ = ["Counter", "Headline", "page", "stale"]

# How old a campaign's figures may be before a page asks for them again: while it sends
# they move every second; after, clicks and orders still come in, more slowly.
FRESH_WHILE_SENDING = timedelta(seconds=10)
FRESH_AFTER = timedelta(minutes=5)
# Never counted: nothing was sent (the figures are all 0).
_UNSENT = frozenset({"draft", "scheduled"})
MAX_PAGE = 100


async def page(
    svc: Services, brand_id: int, *, before_id: int | None = None, limit: int = 25
) -> list[Headline]:
    """The brand's campaigns, newest first (older than `before_id`, when given)."""
    return await figures.page(svc.pool, brand_id, before_id=before_id, limit=min(limit, MAX_PAGE))


def stale(rows: Sequence[Headline], now: datetime) -> list[int]:
    """The campaigns among `rows` whose figures are due to be counted again."""
    due = []
    for r in rows:
        if r.status in _UNSENT and r.launched_at is None:
            continue
        fresh_for = FRESH_WHILE_SENDING if r.status in ("sending", "paused") else FRESH_AFTER
        if r.counted_at is None or now - r.counted_at >= fresh_for:
            due.append(r.id)
    return due


@dataclass
class Counter:
    """Counts campaigns' figures in the background, one brand's batch at a time; a campaign
    already being counted is not asked again."""

    svc: Services
    _counting: set[int] = field(default_factory=set)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def ask(self, brand_id: int, campaign_ids: Sequence[int]) -> None:
        """Count these of the brand's campaigns soon (now returns)."""
        wanted = [c for c in campaign_ids if c not in self._counting]
        if not wanted:
            return
        self._counting.update(wanted)
        task = asyncio.create_task(self._count(brand_id, wanted))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _count(self, brand_id: int, campaign_ids: list[int]) -> None:
        try:
            await figures.count(self.svc.pool, brand_id, campaign_ids)
        except Exception:  # a page shows the old figures; the next one asks again
            log.exception("counting campaigns %s failed", campaign_ids)
        finally:
            self._counting.difference_update(campaign_ids)

    async def settle(self) -> None:
        """Wait for the counts under way (tests; a clean stop)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def count_now(self, brand_id: int, campaign_ids: Sequence[int]) -> None:
        await figures.count(self.svc.pool, brand_id, campaign_ids)
