"""Reconciliation: messages whose receipts never came are asked about, and the provider's
answer becomes their final status."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from clarion import bootstrap
from clarion.domain.records import OutboundMessage, Receipt
from clarion.domain.status import rank
from clarion.pipeline import send
from clarion.pipeline.send import SendResult
from clarion.providers import accounts
from clarion.runtime.stages import Stages
from clarion.sim.process import SimProcess
from clarion.store import messages
from tests.conftest import DAYTIME, wait_for_campaign
from tests.integration.helpers import brand_with_subscribers, campaign, daytime, rendered_batch


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
            await bootstrap.launch(quick, campaign_id, at=DAYTIME)
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
            await bootstrap.launch(quick, campaign_id, at=DAYTIME)
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
    batch = await rendered_batch(infra, 3, seed=1103, key="stubborn")
    ids = [m.message_id for m in batch.messages]
    async with infra.pool.acquire() as conn, conn.transaction():
        await messages.persist(conn, send.rows_to_persist(batch, expires_at=None))
    # handed over an hour ago, the first message longest ago; `sent` is all that came
    for age_min, mid in zip((90, 80, 70), ids, strict=True):
        await infra.pool.execute(
            "UPDATE messages SET status = 'sent', status_rank = $3, provider = 'stubborn',"
            " updated_at = now() - make_interval(mins => $2) WHERE id = $1::uuid",
            mid, age_min, rank("sent"),
        )  # fmt: skip
    stubborn = _Stubborn()
    core = Stages(infra.pool, infra.bus, stubborn)

    assert await core.reconcile(older_than_s=600, limit=2) == 2
    assert await core.reconcile(older_than_s=600, limit=2) == 1
    # all asked a moment ago: none again before `older_than_s` has passed once more
    assert await core.reconcile(older_than_s=600, limit=2) == 0

    assert stubborn.asked == [sorted(ids[:2]), [ids[2]]]
    assert await core.reconcile(older_than_s=0, limit=2) == 2  # the first asked come back first
    assert stubborn.asked[-1] == sorted(ids[:2])
