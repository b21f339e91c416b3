"""Which provider a send batch goes through and what its lanes let through now, for the send
stage: the brand's route and each provider's circuit breaker, lane limits and sender pools
(data, re-read every few seconds), the shared lane state, and carrier lookups."""

from __future__ import annotations

import asyncio
import math
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import msgspec

from clarion.domain.lanes import Lane, LaneLimit
from clarion.domain.ports import Provider
from clarion.domain.records import OutboundMessage, RenderedBatch
from clarion.domain.schedule import LocalWave
from clarion.pipeline.breaker import Breaker
from clarion.pipeline.lanes import Admission, admit, demand, pacific_day, resolve_limit
from clarion.pipeline.send_decision import senders_and_lanes
from clarion.runtime.context import WorkerContext
from clarion.store import brands, campaigns, messages
from clarion.store import lanes as lane_store

# Campaigns whose send context one process keeps.
_CONTEXTS_KEPT = 256


@dataclass
class Routing:
    """Provider routes, breakers, lane limits and admission for the send stage."""

    ctx: WorkerContext
    new_breaker: Callable[[], Breaker] = Breaker
    # (expires_at, smart sending hours, local-time wave, best time) per campaign
    _send_context: OrderedDict[int, tuple[datetime | None, float, LocalWave | None, bool]] = field(
        default_factory=OrderedDict
    )
    # each brand's route per channel: provider names in order of preference
    _routes: dict[tuple[int, str], list[str]] = field(default_factory=dict)
    _breakers: dict[str, Breaker] = field(default_factory=dict)
    _limits: dict[Lane, LaneLimit] = field(default_factory=dict)
    _resolved: dict[Lane, LaneLimit | None] = field(default_factory=dict)
    _sender_pools: dict[int, list[str]] = field(default_factory=dict)
    _limits_read_at: float = -math.inf  # on the clock's monotonic seconds
    _limits_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def campaign_send_context(
        self, brand_id: int, campaign_id: int
    ) -> tuple[datetime | None, float]:
        """(expires_at, smart sending hours) of a campaign, read once per campaign (and its
        local-time wave: `local_wave`)."""
        cached = self._send_context.get(campaign_id)
        if cached is None:
            c = await campaigns.get_campaign(self.ctx.pool, campaign_id, brand_id=brand_id)
            b = await brands.get_brand(self.ctx.pool, brand_id)
            cached = (c.expires_at, b.smart_sending_h, c.local_wave(), c.best_time_h is not None)
            self._send_context[campaign_id] = cached
            while len(self._send_context) > _CONTEXTS_KEPT:
                self._send_context.popitem(last=False)
        return cached[0], cached[1]

    def local_wave(self, campaign_id: int | None) -> LocalWave | None:
        """The day and local time a campaign goes out at in each subscriber's zone (None:
        at once), once `campaign_send_context` has read it."""
        cached = self._send_context.get(campaign_id) if campaign_id is not None else None
        return None if cached is None else cached[2]

    def best_time(self, campaign_id: int | None) -> bool:
        """Whether a campaign sends each subscriber at their best time (each message then
        carries its moment), once `campaign_send_context` has read it."""
        cached = self._send_context.get(campaign_id) if campaign_id is not None else None
        return cached is not None and cached[3]

    async def refresh_limits(self, every_s: float = 5.0) -> None:
        """Lane limits and sender pools are data: re-read them every few seconds."""
        if self.ctx.clock.monotonic() - self._limits_read_at < every_s:
            return
        async with self._limits_lock:  # concurrent batches wait for the first read
            if self.ctx.clock.monotonic() - self._limits_read_at < every_s:
                return
            limits, pools = await lane_store.load_limits(self.ctx.pool)
            self._limits, self._sender_pools = limits, pools
            self._resolved = {}
            self._routes = {
                (brand_id, channel): names
                for channel in ("sms", "email")
                for brand_id, names in (
                    await lane_store.load_routes(self.ctx.pool, channel)
                ).items()
            }
            self._limits_read_at = self.ctx.clock.monotonic()

    def idempotent(self, provider_name: str | None) -> bool:
        """Whether the provider a message was claimed for honours our id as idempotency key."""
        provider = self.ctx.providers.get(provider_name or "", self.ctx.provider)
        return provider.idempotent

    def route(self, brand_id: int, channel: str = "sms") -> tuple[Provider | None, float]:
        """The provider to use now: the first of the brand's route for the channel whose
        circuit breaker lets a call through; else (None, seconds until one may be tried)."""
        names = self._routes.get((brand_id, channel)) or [
            name
            for name, p in self.ctx.providers.items()
            if hasattr(p, "send_emails") == (channel == "email")
        ]
        now_s = self.ctx.clock.monotonic()
        waits = []
        for name in names:
            provider = self.ctx.providers.get(name)
            if provider is None:
                continue
            breaker = self.breaker(name)
            if breaker.allow(now_s):
                return provider, 0.0
            waits.append(breaker.retry_in_s(now_s))
        return None, max(0.5, min(waits, default=1.0))

    def breaker(self, provider_name: str) -> Breaker:
        """The provider's circuit breaker (one per provider and process)."""
        breaker = self._breakers.get(provider_name)
        if breaker is None:
            breaker = self._breakers[provider_name] = self.new_breaker()
        return breaker

    async def lookup_carriers(
        self, provider: Provider, todo: list[OutboundMessage]
    ) -> list[OutboundMessage]:
        """Fill in unknown carriers with the provider's lookup (remembered on the subscriber),
        so carrier lanes apply from a number's first message."""
        unknown = sorted({m.to for m in todo if m.carrier is None})
        if not unknown:
            return todo
        found = await provider.lookup_carriers(unknown)
        if found:
            async with self.ctx.pool.acquire() as conn:
                await messages.set_carriers(
                    conn,
                    sorted(
                        {
                            (m.subscriber_id, found[m.to])
                            for m in todo
                            if m.carrier is None and m.subscriber_id is not None and m.to in found
                        }
                    ),
                )
        return [
            m
            if m.carrier is not None or m.to not in found
            else msgspec.structs.replace(m, carrier=found[m.to])
            for m in todo
        ]

    async def take_lanes(
        self, provider: Provider, batch: RenderedBatch, todo: list[OutboundMessage], at: datetime
    ) -> tuple[list[str], Admission]:
        """Each message's sender (sticky within the brand's pool) and which of them the lanes
        admit now."""
        pool_of = self._sender_pools.get(batch.brand_id) if batch.channel == "sms" else None
        senders, lanes_of = senders_and_lanes(
            provider.name, todo, sender_pool=pool_of or [batch.sender], brand_id=batch.brand_id,
            campaign_id=batch.campaign_id, channel=batch.channel,
            transactional=batch.kind == "transactional",
        )  # fmt: skip
        return senders, await self.admit(lanes_of, [m.segments for m in todo], at)

    async def admit(
        self, lanes_of: list[tuple[Lane, ...]], segments: list[int], at: datetime
    ) -> Admission:
        """Take tokens from every lane the batch uses, from the lane state all send processes
        share; admit in order; give back what was not used."""
        want = demand(lanes_of, segments, self.limit_of)
        if not want:  # no lane of this batch has a limit
            return admit(lanes_of, segments, self.limit_of, {})
        today = pacific_day(at)
        async with self.ctx.pool.acquire() as conn:
            grants = await lane_store.lease(
                conn, want, self.limit_of, now_s=self.ctx.clock.epoch(), today=today
            )
            admission = admit(lanes_of, segments, self.limit_of, grants)
            await lane_store.refund(conn, admission.unused, today=today)
        return admission

    def limit_of(self, lane: Lane) -> LaneLimit | None:
        """A lane's limit (wildcards resolved once per lane until the limits are re-read:
        every message asks for each of its lanes)."""
        try:
            return self._resolved[lane]
        except KeyError:
            limit = self._resolved[lane] = resolve_limit(self._limits, lane)
            return limit
