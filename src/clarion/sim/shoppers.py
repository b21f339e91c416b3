"""The simulator's people: a handset that receives a message with a link may follow it, and
a person who followed one may buy, reported to Clarion as the brand's shop would
(`POST /v1/events`, an `ordered` event with its value).

Who does what is drawn, seeded: each number has a propensity (a log-normal factor of mean
1, fixed by the seed and the number: some people click much more than others), a message's
chance of a click is `click_rate` × that × the boost of any configured text the message
contains (how a test makes one variant better than another), and a click's chance of an
order is `order_rate`. Clicks go to the link as a phone's browser would (a GET with a
phone's User-Agent, not following the redirect further); orders are posted in batches.
Clarion reads none of this: it sees only the clicks on its links and the shop's orders.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import heapq
import logging
import math
import random
import re
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from statistics import NormalDist
from typing import Any

import msgspec

from clarion.httpclient import AsyncClient

log = logging.getLogger(__name__)

PHONE_AGENT = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15"
    " (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1"
)
_LINK = re.compile(r"https?://[^\s<>\"']+")
_CLICKS_AT_ONCE = 32
_ORDERS_PER_POST = 1000
_NORMAL = NormalDist()


class ShopConfig(msgspec.Struct, frozen=True, kw_only=True):
    """What the people do, set by `POST /admin/shoppers`."""

    events_url: str = ""  # the brand's Clarion `/v1/events` ("": orders are only counted)
    api_key: str = ""
    click_rate: float = 0.1
    order_rate: float = 0.2
    order_value: tuple[float, float] = (20.0, 150.0)  # uniform, in the shop's currency
    # seconds from delivery to the click, and from the click to the order (uniform)
    click_delay_s: tuple[float, float] = (0.05, 0.5)
    order_delay_s: tuple[float, float] = (0.5, 2.0)
    boosts: dict[str, float] = {}  # a text a message contains → its click rate's factor
    spread: float = 0.5  # the log-normal sigma of people's propensity
    # the shop's clock against the simulator's (an order's `occurred_at`): a Clarion run "as
    # if at" another time is told orders in its time
    clock_offset_s: float = 0.0
    seed: int = 0


def _counts() -> dict[str, Any]:
    return {
        "clicks": 0, "click_failures": 0, "orders": 0, "revenue": 0.0,
        "order_post_failures": 0, "clicks_by_boost": {}, "orders_by_boost": {},
    }  # fmt: skip


@dataclass
class Shoppers:
    config: ShopConfig
    rng: random.Random
    # what comes due: (monotonic time, a tie-breaker, "click:" or "order:" + boost text,
    # number, link)
    due: list[tuple[float, int, str, str, str]] = field(default_factory=list)
    _n: int = 0
    counts: dict[str, Any] = field(default_factory=_counts)
    _orders: list[dict[str, Any]] = field(default_factory=list)

    def propensity(self, number: str) -> float:
        """The number's own factor: log-normal, mean 1, fixed by the seed and the number."""
        h = hashlib.blake2b(f"{self.config.seed}:{number}".encode(), digest_size=8).digest()
        u = (int.from_bytes(h, "big") + 0.5) / 2**64
        z = _NORMAL.inv_cdf(u)
        s = self.config.spread
        return math.exp(s * z - s * s / 2)

    def delivered(self, number: str, body: str) -> None:
        """A message reached `number`: the person may follow its link, later."""
        found = _LINK.search(body)
        if found is None:
            return
        c = self.config
        boost, which = 1.0, ""
        for text, factor in c.boosts.items():
            if text in body:
                boost, which = factor, text
                break
        if self.rng.random() >= min(1.0, c.click_rate * self.propensity(number) * boost):
            return
        at = time.monotonic() + self.rng.uniform(*c.click_delay_s)
        self._n += 1
        heapq.heappush(self.due, (at, self._n, "click:" + which, number, found.group(0)))

    async def run(self, client: AsyncClient, stop: asyncio.Event) -> None:
        """Follow the links and post the orders as they come due, until `stop`."""
        limit = asyncio.Semaphore(_CLICKS_AT_ONCE)
        pending: set[asyncio.Task[None]] = set()
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.02)
            now = time.monotonic()
            while self.due and self.due[0][0] <= now:
                _, _, kind, number, url = heapq.heappop(self.due)
                if kind.startswith("click:"):
                    task = asyncio.create_task(self._click(client, limit, kind[6:], number, url))
                    pending.add(task)
                    task.add_done_callback(pending.discard)
                else:
                    self._order(kind[6:], number)
            if self._orders:  # what came due this turn, in one request
                await self._post_orders(client)
        await asyncio.gather(*pending, return_exceptions=True)
        if self._orders:
            await self._post_orders(client)

    async def _click(
        self, client: AsyncClient, limit: asyncio.Semaphore, which: str, number: str, url: str
    ) -> None:
        async with limit:
            try:
                r = await client.get(url, headers={"User-Agent": PHONE_AGENT})
                ok = r.status_code < 400
            except Exception:
                ok = False
        if not ok:
            self.counts["click_failures"] += 1
            return
        self.counts["clicks"] += 1
        by = self.counts["clicks_by_boost"]
        by[which] = by.get(which, 0) + 1
        c = self.config
        if self.rng.random() < c.order_rate:
            at = time.monotonic() + self.rng.uniform(*c.order_delay_s)
            self._n += 1
            heapq.heappush(self.due, (at, self._n, "order:" + which, number, url))

    def _order(self, which: str, number: str) -> None:
        value = round(self.rng.uniform(*self.config.order_value), 2)
        self._orders.append(
            {
                "id": f"sim-{uuid.uuid4().hex}",
                "type": "ordered",
                "occurred_at": (
                    datetime.now(UTC) + timedelta(seconds=self.config.clock_offset_s)
                ).isoformat(),
                "subscriber": {"phone": number},
                "value": value,
            }
        )
        self.counts["orders"] += 1
        self.counts["revenue"] = round(self.counts["revenue"] + value, 2)
        by = self.counts["orders_by_boost"]
        by[which] = by.get(which, 0) + 1

    async def _post_orders(self, client: AsyncClient) -> None:
        batch, self._orders = self._orders[:_ORDERS_PER_POST], self._orders[_ORDERS_PER_POST:]
        c = self.config
        if not c.events_url:
            return
        try:
            r = await client.post(
                c.events_url, json={"events": batch},
                headers={"Authorization": f"Bearer {c.api_key}"},
            )  # fmt: skip
            ok = r.status_code < 300
        except Exception:
            ok = False
        if not ok:
            self.counts["order_post_failures"] += 1
            log.warning("posting %d orders to %s failed", len(batch), c.events_url)
