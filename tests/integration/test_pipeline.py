"""The whole pipeline on real PostgreSQL, NATS JetStream and the simulator process."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Sequence

import pytest

from clarion import bootstrap, service
from clarion.domain.ids import PARTITIONS
from clarion.domain.messages import SendResult
from clarion.domain.ports import Provider
from clarion.domain.records import OutboundMessage
from clarion.errors import CampaignStateError, ProviderError
from clarion.service.progress import campaign_progress
from clarion.sim.process import SimProcess
from tests.conftest import DAYTIME, wait_for_campaign
from tests.integration.helpers import brand_with_subscribers, campaign, daytime, send_campaign


async def test_a_campaign_reaches_every_consented_subscriber_exactly_once_and_nobody_else(
    infra: bootstrap.Infra, sim: SimProcess
) -> None:
    audience = await brand_with_subscribers(infra.pool, 2000, seed=101)
    campaign_id = await campaign(infra.pool, audience.brand_id)
    progress = await send_campaign(infra, sim, campaign_id)

    inbox = await asyncio.to_thread(sim.handsets)
    assert len(audience.consented) > 1800
    assert {n: inbox.get(n, 0) for n in audience.consented} == dict.fromkeys(audience.consented, 1)
    assert not any(inbox.get(n) for n in audience.not_consented)
    assert progress.eligible == len(audience.consented)
    assert progress.delivered == len(audience.consented)
    # every receipt is recorded (sent + delivered per message), and the carrier of every message
    events = await infra.pool.fetchval(
        "SELECT count(*) FROM message_events e JOIN messages m ON m.id = e.message_id"
        " WHERE m.campaign_id = $1",
        campaign_id,
    )
    assert events == 2 * len(audience.consented)
    assert (
        await infra.pool.fetchval(
            "SELECT count(*) FROM messages WHERE campaign_id = $1 AND status = 'delivered'"
            " AND carrier IS NULL",
            campaign_id,
        )
        == 0
    )
    assert sum(c.delivered for c in progress.carriers) == len(audience.consented)
    sample = (await asyncio.to_thread(sim.handset, audience.consented[0]))[0]
    assert sample["body"].startswith("Northwind: Hi ")
    assert sample["body"].endswith("Reply STOP to opt out.")


async def test_launching_the_same_campaign_again_sends_nothing_more(
    infra: bootstrap.Infra, sim: SimProcess
) -> None:
    audience = await brand_with_subscribers(infra.pool, 300, seed=102)
    campaign_id = await campaign(infra.pool, audience.brand_id)
    provider = bootstrap.build_provider(infra.settings)
    async with bootstrap.running(infra, provider, clock=daytime):
        await service.campaigns.launch(infra, campaign_id, at=DAYTIME)
        await wait_for_campaign(infra.pool, campaign_id, sim)
        before = await asyncio.to_thread(sim.stats)

        with pytest.raises(CampaignStateError, match="launched already"):
            await service.campaigns.launch(infra, campaign_id)
        await service.campaigns.launch(infra, campaign_id, relaunch=True, at=DAYTIME)
        await wait_for_campaign(infra.pool, campaign_id, sim)
        for hop in ("launch", "audience", "rendered"):
            while await infra.bus.pending(hop):
                await asyncio.sleep(0.05)

    after = await asyncio.to_thread(sim.stats)
    assert after["accepted"] == before["accepted"]
    assert after["handset_messages"] == before["handset_messages"]
    inbox = await asyncio.to_thread(sim.handsets)
    assert all(inbox[n] == 1 for n in audience.consented)


class Crash(BaseException):
    """Stands for the worker process dying: not an error the consume loop handles."""


class CrashingProvider:
    """Wraps the real provider; the first call dies before (or right after) the provider call."""

    def __init__(self, inner: Provider, *, after_call: bool, idempotent: bool = True) -> None:
        self.inner = inner
        self.name = inner.name
        self.max_batch = inner.max_batch
        self.idempotent = idempotent
        self.after_call = after_call
        self.crashed = asyncio.Event()
        self.crashed_ids: list[str] = []

    async def send(self, sender: str, messages: Sequence[OutboundMessage]) -> list[SendResult]:
        if not self.crashed.is_set():
            self.crashed.set()
            self.crashed_ids = [m.message_id for m in messages]
            if self.after_call:
                await self.inner.send(sender, messages)  # handed over; the answer is lost
            raise Crash
        return await self.inner.send(sender, messages)

    async def lookup_carriers(self, numbers: Sequence[str]) -> dict[str, str]:
        return await self.inner.lookup_carriers(numbers)

    def parse_status_webhook(self, url: str, headers: object, body: bytes) -> object:
        return self.inner.parse_status_webhook(url, headers, body)  # type: ignore[arg-type]

    def parse_inbound_webhook(self, url: str, headers: object, body: bytes) -> object:
        return self.inner.parse_inbound_webhook(url, headers, body)  # type: ignore[arg-type]

    async def aclose(self) -> None:
        await self.inner.aclose()


@pytest.mark.parametrize("after_call", [False, True], ids=["before-provider", "after-provider"])
async def test_a_worker_killed_around_the_provider_call_finishes_with_no_loss_and_no_duplicate(
    infra: bootstrap.Infra, sim: SimProcess, after_call: bool
) -> None:
    audience = await brand_with_subscribers(infra.pool, 1000, seed=103 + after_call)
    campaign_id = await campaign(infra.pool, audience.brand_id)
    provider = bootstrap.build_provider(infra.settings)
    crashing = CrashingProvider(provider, after_call=after_call)
    accepted_before = (await asyncio.to_thread(sim.stats))["accepted"]

    async with bootstrap.running(infra, crashing, clock=daytime) as workers:  # type: ignore[arg-type]
        await service.campaigns.launch(infra, campaign_id, at=DAYTIME)
        await asyncio.wait_for(crashing.crashed.wait(), 30)
        await asyncio.sleep(0.2)
    assert workers.stop.is_set()
    if not after_call:  # the crashed batch was persisted but never handed over
        queued = await infra.pool.fetchval(
            "SELECT count(*) FROM messages WHERE campaign_id = $1"
            " AND status IN ('queued', 'sending')",
            campaign_id,
        )
        assert queued > 0

    async with bootstrap.running(infra, provider, clock=daytime):  # the restarted worker
        progress = await wait_for_campaign(infra.pool, campaign_id, sim)

    inbox = await asyncio.to_thread(sim.handsets)
    assert {n: inbox.get(n, 0) for n in audience.consented} == dict.fromkeys(audience.consented, 1)
    assert progress.delivered == len(audience.consented)
    # the network accepted each message once: a resend after the crash, if any, was
    # recognised by its idempotency key
    accepted = (await asyncio.to_thread(sim.stats))["accepted"] - accepted_before
    assert accepted == len(audience.consented)


async def test_a_template_error_fails_only_its_recipient_and_says_why(
    infra: bootstrap.Infra, sim: SimProcess
) -> None:
    vip = {"phone": "+12125557788", "first_name": "Vera", "sms_consent": "yes", "coupon": "VIP10"}
    audience = await brand_with_subscribers(infra.pool, 40, seed=105, extra_rows=[vip])
    campaign_id = await campaign(
        infra.pool, audience.brand_id, "Northwind: use {{ coupon }}. STOP to end"
    )
    progress = await send_campaign(infra, sim, campaign_id)

    assert progress.delivered == 1
    assert await asyncio.to_thread(sim.handset, vip["phone"]) != []
    failed = await infra.pool.fetch(
        "SELECT error_code, error_detail FROM messages"
        " WHERE campaign_id = $1 AND status = 'failed'",
        campaign_id,
    )
    # every other recipient failed to render (those without consent too: rendering comes
    # before the gate), each with the reason
    assert len(failed) == len(audience.consented) + len(audience.not_consented) - 1
    assert all(r["error_code"] == "template_error" for r in failed)
    assert "coupon" in failed[0]["error_detail"]


async def test_a_number_the_network_rejects_fails_alone_with_the_carrier_error_code(
    infra: bootstrap.Infra, sim: SimProcess
) -> None:
    fictional = {"phone": "+12125550123", "first_name": "Nobody", "sms_consent": "yes"}
    audience = await brand_with_subscribers(infra.pool, 60, seed=106, extra_rows=[fictional])
    campaign_id = await campaign(infra.pool, audience.brand_id)
    progress = await send_campaign(infra, sim, campaign_id)

    assert progress.by_status == {
        "delivered": len(audience.consented) - 1,
        "failed": 1,
        "suppressed": len(audience.not_consented),
    }
    assert progress.suppressed_by_reason == {"no_consent": len(audience.not_consented)}
    suppressed = await infra.pool.fetchval(
        "SELECT reason FROM suppressions WHERE address = $1 AND brand_id IS NULL",
        fictional["phone"],
    )
    assert suppressed == "invalid_number"  # a hard failure is suppressed for every brand
    row = await infra.pool.fetchrow(
        "SELECT error_code, error_detail FROM messages WHERE to_address = $1", fictional["phone"]
    )
    assert row is not None
    assert row["error_code"] == "21211"
    assert "Invalid" in row["error_detail"]


@pytest.mark.parametrize("after_call", [False, True], ids=["before-provider", "after-provider"])
async def test_without_idempotency_keys_an_interrupted_call_is_never_repeated_but_reported(
    infra: bootstrap.Infra, sim: SimProcess, after_call: bool
) -> None:
    audience = await brand_with_subscribers(infra.pool, 1000, seed=107 + after_call)
    campaign_id = await campaign(infra.pool, audience.brand_id)
    real = bootstrap.build_provider(infra.settings)
    accepted_before = (await asyncio.to_thread(sim.stats))["accepted"]
    crashing = CrashingProvider(real, after_call=after_call, idempotent=False)
    async with bootstrap.running(infra, crashing, clock=daytime):  # type: ignore[arg-type]
        await service.campaigns.launch(infra, campaign_id, at=DAYTIME)
        await asyncio.wait_for(crashing.crashed.wait(), 30)
        await asyncio.sleep(0.2)
    crashed = set(crashing.crashed_ids)
    restarted = CrashingProvider(real, after_call=after_call, idempotent=False)
    restarted.crashed.set()  # no more crashes
    async with bootstrap.running(infra, restarted, clock=daytime):  # type: ignore[arg-type]
        deadline = time.monotonic() + 60
        while True:
            p = await campaign_progress(infra.pool, campaign_id)
            settled = p.final + p.unknown == p.audience and p.audience_done
            if settled and (await asyncio.to_thread(sim.stats))["receipts_pending"] == 0:
                break
            assert time.monotonic() < deadline, p
            await asyncio.sleep(0.1)

    inbox = await asyncio.to_thread(sim.handsets)
    accepted = (await asyncio.to_thread(sim.stats))["accepted"] - accepted_before
    assert all(inbox.get(n, 0) <= 1 for n in audience.consented)  # never twice
    if after_call:
        # handed over once, never repeated; receipts reconciled every one of them
        assert accepted == len(audience.consented)
        assert p.unknown == 0
        assert p.delivered == len(audience.consented)
    else:
        # never handed over and never resent: reported, not silently dropped
        assert p.unknown == len(crashed)
        assert accepted == len(audience.consented) - len(crashed)
        codes = await infra.pool.fetch(
            "SELECT DISTINCT error_code FROM messages WHERE status = 'unknown'"
        )
        assert [r["error_code"] for r in codes] == ["fate_unknown"]


class FailingProvider(CrashingProvider):
    """A provider whose every call fails with a transient error (HTTP 503)."""

    async def send(self, sender: str, messages: Sequence[OutboundMessage]) -> list[SendResult]:
        self.calls += 1
        raise ProviderError(self.name, "HTTP 503")


async def test_transient_failures_retry_with_backoff_then_dead_letter_with_the_reason(
    infra: bootstrap.Infra, sim: SimProcess
) -> None:
    audience = await brand_with_subscribers(infra.pool, 40, seed=109)
    campaign_id = await campaign(infra.pool, audience.brand_id)
    quick = dataclasses.replace(
        infra,
        # no circuit breaker here: this is about retries of a provider that keeps failing
        settings=dataclasses.replace(
            infra.settings, retry_base_s=0.05, send_max_attempts=3, breaker_min_calls=10**6
        ),
    )
    failing = FailingProvider(bootstrap.build_provider(infra.settings), after_call=False)
    failing.calls = 0
    async with bootstrap.running(quick, failing, clock=daytime):  # type: ignore[arg-type]
        await service.campaigns.launch(quick, campaign_id, at=DAYTIME)
        progress = await wait_for_campaign(infra.pool, campaign_id, sim, timeout_s=30)

    assert progress.by_status == {
        "failed": len(audience.consented),
        "suppressed": len(audience.not_consented),
    }
    rows = await infra.pool.fetch(
        "SELECT DISTINCT error_code, error_detail, attempts FROM messages WHERE status = 'failed'"
    )
    assert [tuple(r) for r in rows] == [("dead_letter", "sim: HTTP 503", 3)]
    # one batch per partition, three attempts each, then it stopped
    batches = await infra.pool.fetchval(
        "SELECT count(DISTINCT subscriber_id % $2) FROM messages WHERE campaign_id = $1"
        " AND status = 'failed'",
        campaign_id,
        PARTITIONS,
    )
    assert failing.calls == 3 * batches
