"""The compliance gate and the keyword replies, on the real servers and the simulator."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import httpx
import pytest

from clarion import bootstrap, service
from clarion.compliance.ledger import ledger_csv
from clarion.domain.clock import PinnedClock
from clarion.errors import CampaignInvalid
from clarion.sim.process import SimProcess
from clarion.store import campaigns
from clarion.store import compliance as store_compliance
from tests.conftest import DAYTIME, wait_for_campaign
from tests.integration.helpers import brand_with_subscribers, campaign, daytime

SENDER = "+15125550100"


def reply(sim: SimProcess, number: str, body: str) -> dict[str, object]:
    """The handset at `number` texts the brand's number through the simulator."""
    resp = httpx.post(f"{sim.url}/handsets/{number}/reply", json={"to": SENDER, "body": body})
    resp.raise_for_status()
    result: dict[str, object] = resp.json()
    return result


async def wait_for(predicate: object, timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while not await predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def test_a_stop_mid_campaign_blocks_every_later_message_and_is_confirmed(
    infra: bootstrap.Infra, sim: SimProcess
) -> None:
    audience = await brand_with_subscribers(infra.pool, 20_000, seed=301)
    # the subscriber the audience reaches last
    last = await infra.pool.fetchval(
        "SELECT s.phone FROM subscribers s JOIN consents c ON c.subscriber_id = s.id"
        " WHERE c.status = 'opted_in' ORDER BY s.id DESC LIMIT 1"
    )
    first_campaign = await campaign(infra.pool, audience.brand_id)
    provider = bootstrap.build_provider(infra.settings)
    async with bootstrap.running(infra, provider, clock=daytime):
        # the simulator learns the brand number's inbound webhook from its first send
        await service.campaigns.launch(infra, first_campaign, at=DAYTIME)
        await wait_for(lambda: _handed_over_any(infra, first_campaign))
        answer = await asyncio.to_thread(reply, sim, last, "Stop")
        assert answer["webhook_status"] == 200
        progress = await wait_for_campaign(infra.pool, first_campaign, sim, timeout_s=120)

        second_campaign = await campaign(infra.pool, audience.brand_id)
        await service.campaigns.launch(infra, second_campaign, at=DAYTIME)
        await wait_for_campaign(infra.pool, second_campaign, sim, timeout_s=120)

    inbox = await asyncio.to_thread(sim.handset, last)
    assert [m["body"] for m in inbox] == [
        "Northwind: You are unsubscribed and will receive no more messages."
        " Reply START to resubscribe."
    ]
    reasons = await infra.pool.fetch(
        "SELECT campaign_id, status, error_code FROM messages WHERE to_address = $1"
        " AND kind = 'marketing' ORDER BY campaign_id",
        last,
    )
    assert [(r["status"], r["error_code"]) for r in reasons] == [
        ("suppressed", "opted_out"),
        ("suppressed", "opted_out"),
    ]
    assert progress.suppressed_by_reason["opted_out"] == 1
    assert progress.delivered == len(audience.consented) - 1
    ledger = await infra.pool.fetch(
        "SELECT c.status, c.source, c.keyword FROM consents c JOIN subscribers s"
        " ON s.id = c.subscriber_id WHERE s.phone = $1 ORDER BY c.id",
        last,
    )
    assert [tuple(r) for r in ledger] == [
        ("opted_in", "test", None),
        ("opted_out", "sms_keyword", "Stop"),
    ]


async def _handed_over_any(infra: bootstrap.Infra, campaign_id: int) -> bool:
    n = await infra.pool.fetchval(
        "SELECT count(*) FROM messages WHERE campaign_id = $1"
        " AND status IN ('accepted', 'sent', 'delivered')",
        campaign_id,
    )
    return bool(n)


async def test_keywords_help_unknown_numbers_and_double_opt_in(
    infra: bootstrap.Infra, sim: SimProcess
) -> None:
    audience = await brand_with_subscribers(infra.pool, 20, seed=302)
    first = await campaign(infra.pool, audience.brand_id)
    stranger, joiner = "+13125557001", "+13125557002"
    async with bootstrap.running(infra, bootstrap.build_provider(infra.settings), clock=daytime):
        await service.campaigns.launch(infra, first, at=DAYTIME)
        await wait_for_campaign(infra.pool, first, sim)
        for number, body in ((stranger, "HELP"), (stranger, "stop"), (joiner, "START")):
            await asyncio.to_thread(reply, sim, number, body)
        await wait_for(lambda: _inbox_size(sim, joiner, 1))
        await asyncio.to_thread(reply, sim, joiner, "Y")
        await wait_for(lambda: _inbox_size(sim, joiner, 2))
        await wait_for(lambda: _inbox_size(sim, stranger, 2))

    stranger_inbox = [m["body"] for m in await asyncio.to_thread(sim.handset, stranger)]
    assert any("Msg&data rates may apply" in b and "STOP" in b for b in stranger_inbox)
    assert any("unsubscribed" in b for b in stranger_inbox)
    joiner_inbox = [m["body"] for m in await asyncio.to_thread(sim.handset, joiner)]
    assert "Reply Y to confirm" in joiner_inbox[0]
    assert "You are subscribed" in joiner_inbox[1]
    ledger = await infra.pool.fetch(
        "SELECT c.status FROM consents c JOIN subscribers s ON s.id = c.subscriber_id"
        " WHERE s.phone = $1 ORDER BY c.id",
        joiner,
    )
    assert [r["status"] for r in ledger] == ["pending", "opted_in"]
    # a stranger's STOP is answered but creates no subscriber
    assert (
        await infra.pool.fetchval("SELECT count(*) FROM subscribers WHERE phone = $1", stranger)
        == 0
    )
    intents = await infra.pool.fetch(
        "SELECT intent FROM inbound_messages WHERE from_address = $1 ORDER BY id", stranger
    )
    assert [r["intent"] for r in intents] == ["help", "opt_out"]


async def _inbox_size(sim: SimProcess, number: str, n: int) -> bool:
    return len(await asyncio.to_thread(sim.handset, number)) >= n


async def test_a_message_outside_the_window_is_deferred_then_sent_when_it_opens(
    infra: bootstrap.Infra, sim: SimProcess
) -> None:
    audience = await brand_with_subscribers(infra.pool, 30, seed=303)
    campaign_id = await campaign(infra.pool, audience.brand_id)
    night = datetime(2026, 11, 25, 7, 0, tzinfo=UTC)  # 02:00 in New York, 23:00 in LA
    clock = PinnedClock(night)
    async with bootstrap.running(infra, bootstrap.build_provider(infra.settings), clock=clock):
        await service.campaigns.launch(infra, campaign_id, at=night)
        night_progress = await wait_for_campaign(infra.pool, campaign_id, sim)
        assert night_progress.deferred == len(audience.consented)
        assert night_progress.handed_over == 0
        clock.at = DAYTIME  # the morning comes: the sweeper hands them back
        await wait_for(lambda: _all_delivered(infra, campaign_id, len(audience.consented)))
    not_before = await infra.pool.fetch(
        "SELECT DISTINCT error_detail FROM messages WHERE campaign_id = $1 AND not_before"
        " IS NOT NULL",
        campaign_id,
    )
    assert not_before  # the window rule that deferred them is recorded


async def _all_delivered(infra: bootstrap.Infra, campaign_id: int, n: int) -> bool:
    delivered = await infra.pool.fetchval(
        "SELECT count(*) FROM messages WHERE campaign_id = $1 AND status = 'delivered'",
        campaign_id,
    )
    return bool(delivered == n)


async def test_launch_refuses_a_first_message_without_brand_name_or_opt_out_instructions(
    infra: bootstrap.Infra,
) -> None:
    audience = await brand_with_subscribers(infra.pool, 5, seed=304)
    bare = await campaign(infra.pool, audience.brand_id, "Hi {{ first_name }}, 50% off today!")
    with pytest.raises(CampaignInvalid) as refused:
        await service.campaigns.launch(infra, bare, at=DAYTIME)
    assert any("Northwind" in p for p in refused.value.problems)
    assert any("opt out" in p for p in refused.value.problems)
    assert (await campaigns.get_campaign(infra.pool, bare)).launch_count == 0

    curly = await campaign(
        infra.pool, audience.brand_id, "Northwind: it’s 50% off — today. Reply STOP to opt out"
    )
    check = await service.campaigns.check(infra, curly)
    assert check.errors == ()
    assert check.segments.encoding == "UCS-2"
    assert check.segments.non_gsm == ("’", "—")
    described = check.describe()
    assert "UCS-2" in described
    assert "suggested fix (GSM-7, 1 segment(s)): Northwind: it's 50% off - today." in described


async def test_the_consent_ledger_exports_every_change_with_source_and_keyword(
    infra: bootstrap.Infra,
) -> None:
    audience = await brand_with_subscribers(infra.pool, 3, seed=305)
    sub_id = await infra.pool.fetchval(
        "SELECT id FROM subscribers WHERE phone = $1", audience.consented[0]
    )
    async with infra.pool.acquire() as conn:
        await store_compliance.append_consent(
            conn, audience.brand_id, sub_id, "opted_out", keyword="STOP", disclosure=None
        )
    rows = await store_compliance.consent_ledger(infra.pool, audience.brand_id, sub_id)
    assert [(r.status, r.source, r.keyword) for r in rows] == [
        ("opted_in", "test", None),
        ("opted_out", "sms_keyword", "STOP"),
    ]
    text = ledger_csv(rows)
    assert text.splitlines()[0].startswith("id,subscriber_id,phone")
    assert audience.consented[0] in text
    whole_brand = await store_compliance.consent_ledger(infra.pool, audience.brand_id)
    assert len(whole_brand) == len(audience.consented) + 1
