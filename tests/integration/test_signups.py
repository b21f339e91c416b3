"""`POST /v1/signups`: double opt-in by text. The visitor is texted "Reply Y to confirm" on
the transactional path, receives nothing marketing until the reply, and every step is in the
consent ledger with its evidence."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import httpx

from clarion import bootstrap, service
from clarion.api.app import create_app
from clarion.api.v1 import V1
from clarion.domain.clock import PinnedClock
from clarion.sim.process import SimProcess
from clarion.store import api_keys
from tests.conftest import DAYTIME, wait_for_campaign
from tests.integration.helpers import brand_with_subscribers, campaign, daytime

SENDER = "+15125550100"  # the helpers' brand's number
FORM = {
    "page": "https://northwind.example/join",
    "disclosure": "By submitting you agree to receive recurring marketing texts from Northwind"
    " at the number provided. Consent is not a condition of purchase. Reply STOP to cancel.",
    "ip": "203.0.113.7",
    "user_agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X)",
}


async def _until(check: Callable[[], Awaitable[bool]], timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while not await check():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


def _inbox(sim: SimProcess, number: str) -> Callable[[], Awaitable[list[str]]]:
    async def read() -> list[str]:
        return [m["body"] for m in await asyncio.to_thread(sim.handset, number)]

    return read


async def test_a_signup_is_sendable_only_after_it_replies_y(
    infra: bootstrap.Infra, sim: SimProcess
) -> None:
    audience = await brand_with_subscribers(infra.pool, 5, seed=311)
    auth = {"Authorization": f"Bearer {await api_keys.create_key(infra.pool, audience.brand_id)}"}
    app = create_app(infra.bus, {}, api=V1(infra, clock=PinnedClock(DAYTIME)))
    visitor = "+13125557101"
    inbox = _inbox(sim, visitor)
    async with (
        bootstrap.running(infra, bootstrap.build_provider(infra.settings), clock=daytime),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://c") as client,
    ):
        signed = await client.post(
            "/v1/signups", headers=auth, json={**FORM, "phone": "(312) 555-7101"}
        )
        assert signed.status_code == 202, signed.text
        first = signed.json()
        assert first["status"] == "pending"
        assert first["confirmation_id"]
        await _until(lambda: _has(inbox, 1))
        assert "Reply Y to confirm" in (await inbox())[0]

        again = await client.post("/v1/signups", headers=auth, json={**FORM, "phone": visitor})
        assert again.json() == {
            "subscriber_id": first["subscriber_id"], "status": "pending", "confirmation_id": None,
        }  # fmt: skip

        before = await campaign(infra.pool, audience.brand_id)
        await service.campaigns.launch(infra, before, at=DAYTIME)
        await wait_for_campaign(infra.pool, before, sim)
        assert len(await inbox()) == 1  # nothing marketing before the reply

        await asyncio.to_thread(
            httpx.post, f"{sim.url}/handsets/{visitor}/reply", json={"to": SENDER, "body": "Y"}
        )
        await _until(lambda: _has(inbox, 2))
        assert "You are subscribed" in (await inbox())[1]

        after = await campaign(infra.pool, audience.brand_id)
        await service.campaigns.launch(infra, after, at=DAYTIME)
        await wait_for_campaign(infra.pool, after, sim)
        await _until(lambda: _has(inbox, 3))
        confirmed = await client.post("/v1/signups", headers=auth, json={**FORM, "phone": visitor})
        assert confirmed.status_code == 200
        assert confirmed.json()["status"] == "confirmed"
    assert len(await inbox()) == 3

    ledger = await infra.pool.fetch(
        "SELECT status, source, keyword, disclosure, evidence FROM consents"
        " WHERE subscriber_id = $1 ORDER BY id",
        first["subscriber_id"],
    )
    assert [(r["status"], r["source"]) for r in ledger] == [
        ("pending", "signup form"), ("opted_in", "sms_keyword"),
    ]  # fmt: skip
    assert ledger[0]["disclosure"] == FORM["disclosure"]
    assert {k: ledger[0]["evidence"][k] for k in ("page", "ip", "user_agent")} == {
        k: FORM[k] for k in ("page", "ip", "user_agent")
    }
    assert ledger[1]["keyword"] == "Y"


async def _has(read: Callable[[], Awaitable[list[str]]], n: int) -> bool:
    return len(await read()) >= n


async def test_a_signup_is_refused_clearly_when_it_cannot_be_taken(
    infra: bootstrap.Infra,
) -> None:
    audience = await brand_with_subscribers(infra.pool, 3, seed=312)
    auth = {"Authorization": f"Bearer {await api_keys.create_key(infra.pool, audience.brand_id)}"}
    stopped = audience.consented[0]
    await infra.pool.execute(
        "INSERT INTO consents (brand_id, subscriber_id, channel, status, source, keyword)"
        " SELECT brand_id, id, 'sms', 'opted_out', 'sms_keyword', 'STOP' FROM subscribers"
        " WHERE phone = $1",
        stopped,
    )
    app = create_app(infra.bus, {}, api=V1(infra, clock=PinnedClock(DAYTIME)))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://c"
    ) as client:
        cases = [
            ({**FORM, "phone": stopped}, 409, "phone"),
            ({**FORM, "phone": "+13125557102", "ip": "not-an-ip"}, 422, "ip"),
            ({**FORM, "phone": "+13125557102", "page": "javascript:alert(1)"}, 422, "page"),
            ({**FORM, "phone": "12"}, 422, "phone"),
            ({k: v for k, v in FORM.items() if k != "disclosure"} | {"phone": "+13125557102"},
             422, "disclosure"),
            ({**FORM, "phone": "+13125557102", "referrer": "x"}, 422, "referrer"),
        ]  # fmt: skip
        for body, status, field in cases:
            resp = await client.post("/v1/signups", headers=auth, json=body)
            assert resp.status_code == status, (body, resp.text)
            assert resp.json()["field"] == field, (body, resp.text)
    assert (
        await infra.pool.fetchval("SELECT count(*) FROM subscribers WHERE phone = '+13125557102'")
        == 0
    )
