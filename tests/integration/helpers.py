"""Factories for integration tests: a brand with subscribers, a campaign, a rendered batch
(stored or not)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

import httpx

from clarion import bootstrap, service
from clarion.api.app import create_app
from clarion.api.v1 import V1
from clarion.domain.clock import SystemClock
from clarion.domain.contacts import new_subscriber
from clarion.domain.ports import Clock
from clarion.domain.records import OutboundMessage, RenderedBatch
from clarion.harness.seed import synthetic_rows
from clarion.pipeline import send
from clarion.service.progress import Progress
from clarion.sim.process import SimProcess
from clarion.store import api_keys, brands, campaigns, messages
from clarion.store.db import Pool
from tests.conftest import DAYTIME, wait_for_campaign

BODY = (
    "{{ brand.name }}: Hi {{ first_name | default('there') }}! 20% off today."
    " Reply STOP to opt out."
)


@dataclass
class Audience:
    brand_id: int
    consented: list[str]
    not_consented: list[str]


async def brand_with_subscribers(
    pool: Pool, n: int, *, seed: int, extra_rows: Sequence[dict[str, str]] = ()
) -> Audience:
    brand_id = await brands.create_brand(
        pool, slug=f"brand-{seed}", name="Northwind", sender="+15125550100"
    )
    rows = [*synthetic_rows(n, seed=seed), *extra_rows]
    await brands.import_subscribers(
        pool, brand_id, [new_subscriber(r) for r in rows], source="test"
    )
    consented = [r["phone"] for r in rows if r.get("sms_consent") == "yes"]
    others = [r["phone"] for r in rows if r.get("sms_consent") != "yes"]
    return Audience(brand_id, consented, others)


async def campaign(pool: Pool, brand_id: int, body: str = BODY, *, name: str = "Test") -> int:
    return await campaigns.create_campaign(pool, brand_id=brand_id, name=name, body=body)


async def send_campaign(infra: bootstrap.Infra, sim: SimProcess, campaign_id: int) -> Progress:
    """Run every stage in this process at DAYTIME, launch the campaign, wait until done."""
    async with bootstrap.running(infra, bootstrap.build_provider(infra.settings), clock=daytime):
        await service.campaigns.launch(infra, campaign_id, at=DAYTIME)
        return await wait_for_campaign(infra.pool, campaign_id, sim)


# The workers' clock in tests: DAYTIME (every US zone in its window) when the session
# started, running on from there, so waits and backoffs come due.
daytime = SystemClock.starting_at(DAYTIME)


async def rendered_batch(infra: bootstrap.Infra, n: int, *, seed: int, key: str) -> RenderedBatch:
    """A rendered batch of one message to each of `n` new subscribers of a new brand's new
    campaign (subscribers in id order)."""
    audience = await brand_with_subscribers(infra.pool, n, seed=seed)
    campaign_id = await campaign(infra.pool, audience.brand_id)
    subs = await infra.pool.fetch(
        "SELECT id, phone FROM subscribers WHERE brand_id = $1 ORDER BY id", audience.brand_id
    )
    return RenderedBatch(
        batch_id=key, brand_id=audience.brand_id, campaign_id=campaign_id,
        sender="+15125550100", channel="sms",
        messages=[
            OutboundMessage(
                message_id=f"00000000-0000-4000-8000-{r['id']:012d}", subscriber_id=r["id"],
                to=r["phone"], body="hi", segments=1,
            )
            for r in subs
        ],
    )  # fmt: skip


async def stored_batch(infra: bootstrap.Infra, n: int, *, seed: int, key: str) -> RenderedBatch:
    """`rendered_batch`, its messages stored as the send stage's general way stores them
    (queued)."""
    batch = await rendered_batch(infra, n, seed=seed, key=key)
    async with infra.pool.acquire() as conn, conn.transaction():
        await messages.persist(conn, send.rows_to_persist(batch, expires_at=None))
    return batch


@contextlib.asynccontextmanager
async def api_client(
    infra: bootstrap.Infra, *, clock: Clock | None = None
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the `/v1` app in this process (keys limited to 1,000 requests a second,
    so that no test meets the rate limit by accident)."""
    v1 = V1(infra, clock=clock or SystemClock(), rate_per_s=1000)
    app = create_app(infra.bus, {}, api=v1)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://clarion"
    ) as client:
        yield client


async def brand_key(infra: bootstrap.Infra, slug: str) -> tuple[int, dict[str, str]]:
    """A new brand and the `Authorization` header of a key with every scope."""
    brand_id = await brands.create_brand(
        infra.pool, slug=slug, name="Northwind", sender="+15125550100"
    )
    return brand_id, {"Authorization": f"Bearer {await api_keys.create_key(infra.pool, brand_id)}"}
