"""Receipts that name only the provider's id (as SMPP's do), including one that arrives
before the send answer that names that id: kept, matched when the answer lands, folded into
the one delivery record of its message."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

import msgspec

from clarion import bootstrap, service
from clarion.domain.messages import SendResult
from clarion.domain.ports import Provider
from clarion.domain.records import OutboundMessage, Receipt, ReceiptBatch
from clarion.sim.process import SimProcess
from tests.conftest import DAYTIME, wait_for_campaign
from tests.integration.helpers import brand_with_subscribers, campaign, daytime


class ByProviderId:
    """The simulator adapter, but its receipts carry only the provider's id, and for the
    first call a `delivered` receipt reaches Clarion before the send answer does."""

    reports_by_provider_id = True

    def __init__(self, inner: Provider, infra: bootstrap.Infra) -> None:
        self.inner, self.infra = inner, infra
        self.name, self.max_batch, self.idempotent = inner.name, inner.max_batch, True
        self.early: str | None = None

    async def send(self, sender: str, messages: Sequence[OutboundMessage]) -> list[SendResult]:
        results = await self.inner.send(sender, messages)
        if self.early is None:
            first = next(r for r in results if r.accepted)
            self.early = first.provider_message_id
            receipt = Receipt(
                message_id="", status="delivered", occurred_at=datetime.now(UTC),
                provider_message_id=self.early,
            )  # fmt: skip
            batch = ReceiptBatch(batch_id="early-1", provider=self.name, receipts=[receipt])
            await self.infra.bus.publish("receipts", batch, msg_id=batch.batch_id)
            while not await self.infra.pool.fetchval(
                "SELECT count(*) FROM early_receipts WHERE provider_message_id = $1", self.early
            ):
                await asyncio.sleep(0.02)  # kept, waiting for this answer
        return results

    async def lookup_carriers(self, numbers: Sequence[str]) -> dict[str, str]:
        return await self.inner.lookup_carriers(numbers)

    def parse_status_webhook(
        self, url: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[str, list[Receipt]]:
        key, receipts = self.inner.parse_status_webhook(url, headers, body)
        return key, [msgspec.structs.replace(r, message_id="") for r in receipts]

    def parse_inbound_webhook(self, url: str, headers: Mapping[str, str], body: bytes) -> object:
        return self.inner.parse_inbound_webhook(url, headers, body)

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_receipts_by_provider_id_and_one_before_its_send_answer_are_all_folded(
    infra: bootstrap.Infra, sim: SimProcess
) -> None:
    audience = await brand_with_subscribers(infra.pool, 300, seed=901)
    campaign_id = await campaign(infra.pool, audience.brand_id)
    provider = ByProviderId(bootstrap.build_provider(infra.settings), infra)
    async with bootstrap.running(infra, provider, clock=daytime):  # type: ignore[arg-type]
        await service.campaigns.launch(infra, campaign_id, at=DAYTIME)
        done = await wait_for_campaign(infra.pool, campaign_id, sim, timeout_s=60)

    assert done.delivered + done.failed == len(audience.consented)
    assert provider.early is not None
    early = await infra.pool.fetchrow(
        "SELECT m.status, (SELECT count(*) FROM message_events e WHERE e.message_id = m.id"
        " AND e.status = 'delivered') AS delivered_events"
        " FROM messages m JOIN provider_refs r ON r.message_id = m.id"
        " WHERE r.provider_message_id = $1",
        provider.early,
    )
    assert early is not None
    assert early["status"] == "delivered"
    assert early["delivered_events"] == 1  # the early one and the simulator's: one event
    assert await infra.pool.fetchval("SELECT count(*) FROM early_receipts") == 0


class NoReports(ByProviderId):
    """The simulator adapter, but every status report it posts is lost on the way."""

    async def send(self, sender: str, messages: Sequence[OutboundMessage]) -> list[SendResult]:
        return await self.inner.send(sender, messages)

    def parse_status_webhook(
        self, url: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[str, list[Receipt]]:
        key, _ = self.inner.parse_status_webhook(url, headers, body)
        return key, []


async def test_send_answers_alone_are_folded_to_accepted_without_events(
    infra: bootstrap.Infra, sim: SimProcess
) -> None:
    audience = await brand_with_subscribers(infra.pool, 120, seed=902)
    campaign_id = await campaign(infra.pool, audience.brand_id)
    provider = NoReports(bootstrap.build_provider(infra.settings), infra)
    async with bootstrap.running(infra, provider, clock=daytime):  # type: ignore[arg-type]
        await service.campaigns.launch(infra, campaign_id, at=DAYTIME)
        deadline = asyncio.get_running_loop().time() + 30
        while await infra.pool.fetchval(
            "SELECT count(*) FROM messages WHERE campaign_id = $1 AND status = 'accepted'",
            campaign_id,
        ) < len(audience.consented):
            assert asyncio.get_running_loop().time() < deadline, "answers not folded in 30 s"
            await asyncio.sleep(0.1)
    rows = await infra.pool.fetch(
        "SELECT status, provider_message_id, sent_at FROM messages WHERE campaign_id = $1"
        " AND status NOT IN ('suppressed')",
        campaign_id,
    )
    assert len(rows) == len(audience.consented)
    assert all(r["provider_message_id"] and r["sent_at"] for r in rows)
    # the answers moved the status; they are not provider reports, so no event was recorded
    assert await infra.pool.fetchval("SELECT count(*) FROM message_events") == 0


async def test_a_messages_answer_and_reports_are_written_to_its_row_once(
    infra: bootstrap.Infra, sim: SimProcess
) -> None:
    """The send answer, `sent` and the final report come in different bus messages; held
    until the final one is in, they move the row once: from `sending` to its outcome. Every
    report is still an event, and every bus message is acknowledged."""
    await infra.pool.execute(
        """
        CREATE TABLE status_writes (message_id uuid, old text, new text);
        CREATE FUNCTION note_status_write() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO status_writes VALUES (NEW.id, OLD.status, NEW.status);
            RETURN NEW;
        END $$;
        CREATE TRIGGER status_writes AFTER UPDATE OF status ON messages
            FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status)
            EXECUTE FUNCTION note_status_write();
        """
    )
    audience = await brand_with_subscribers(infra.pool, 300, seed=903)
    campaign_id = await campaign(infra.pool, audience.brand_id)
    holding = dataclasses.replace(
        infra, settings=dataclasses.replace(infra.settings, receipt_hold_s=10.0)
    )
    async with bootstrap.running(holding, bootstrap.build_provider(infra.settings), clock=daytime):
        await service.campaigns.launch(infra, campaign_id, at=DAYTIME)
        done = await wait_for_campaign(infra.pool, campaign_id, sim, timeout_s=60)
        while await infra.bus.pending("receipts"):
            await asyncio.sleep(0.05)

    assert done.delivered + done.failed == len(audience.consented)
    writes = await infra.pool.fetch(
        "SELECT old, new, count(*) AS n FROM status_writes w JOIN messages m"
        " ON m.id = w.message_id WHERE m.campaign_id = $1 AND w.old <> 'queued'"
        " GROUP BY old, new",
        campaign_id,
    )
    # no stop at accepted or sent: each message's row moved once after its claim
    assert {(w["old"], w["new"]) for w in writes} <= {
        ("sending", "delivered"),
        ("sending", "undelivered"),
        ("sending", "failed"),
    }
    assert sum(w["n"] for w in writes) == len(audience.consented)
    # and the reports are all recorded: `sent` and the outcome for each message
    events = await infra.pool.fetchval(
        "SELECT count(*) FROM message_events e JOIN messages m ON m.id = e.message_id"
        " WHERE m.campaign_id = $1",
        campaign_id,
    )
    assert events == 2 * len(audience.consented)
