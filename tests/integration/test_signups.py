"""`POST /v1/signups`: double opt-in by text or email. The visitor is texted "Reply Y to
confirm" (or emailed a link to a page whose button confirms) on the transactional path,
receives nothing marketing until the answer, and every step is in the consent ledger with
its evidence."""

from __future__ import annotations

import asyncio
import dataclasses
import email
import re
import time
from collections.abc import Awaitable, Callable

import httpx

from clarion import bootstrap, service
from clarion.api.app import create_app
from clarion.api.v1 import V1
from clarion.bus.embedded import free_port
from clarion.domain.clock import PinnedClock
from clarion.providers import accounts
from clarion.sim.process import SimProcess
from clarion.store import api_keys, lanes
from tests.conftest import DAYTIME, wait_for_campaign
from tests.integration.helpers import brand_with_subscribers, campaign, daytime
from tests.integration.test_email import RecordingHandler, SmtpServer

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
            "channels": {"sms": {"status": "pending", "confirmation_id": None}},
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


LINKS = "https://clarion.example"


async def test_an_email_signup_is_confirmed_by_the_button_its_link_leads_to(
    infra: bootstrap.Infra, sim: SimProcess
) -> None:
    """The confirmation email's link leads to a page; following it (as a link scanner
    does) confirms nothing; its button does, once, with the visit's evidence."""
    audience = await brand_with_subscribers(infra.pool, 3, seed=313)
    brand_id = audience.brand_id
    auth = {"Authorization": f"Bearer {await api_keys.create_key(infra.pool, brand_id)}"}
    linked = dataclasses.replace(
        infra, settings=dataclasses.replace(infra.settings, links_url=LINKS)
    )
    secret = infra.settings.unsubscribe_secret
    app = create_app(
        infra.bus, {}, api=V1(linked, clock=PinnedClock(DAYTIME)), unsubscribe_secret=secret
    )
    server = SmtpServer(RecordingHandler(), free_port())
    server.start()
    smtp = accounts.build(
        "mail", "smtp", {"host": "127.0.0.1", "port": str(server.port), "tls": "off"},
        infra.settings,
    )  # fmt: skip
    await lanes.set_route(infra.pool, brand_id, "email", ["mail"])
    try:
        async with (
            bootstrap.running(
                linked, bootstrap.build_provider(infra.settings), clock=daytime,
                more_providers=[smtp],
            ),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app, client=("198.51.100.9", 4711)),
                base_url="http://c",
            ) as client,
        ):  # fmt: skip
            signed = await client.post(
                "/v1/signups", headers=auth, json={**FORM, "email": "Ava@Example.NET"}
            )
            assert signed.status_code == 202, signed.text
            body = signed.json()
            assert body["status"] == "pending"
            assert body["channels"]["email"]["status"] == "pending"
            subscriber_id = body["subscriber_id"]
            await _until(lambda: _received(server, 1))
            mail = email.message_from_bytes(server.handler.received[0][3])
            assert server.handler.received[0][2] == ["ava@example.net"]
            assert mail["Subject"] == "Confirm your subscription to Northwind"
            text = mail.get_payload(decode=True).decode()
            link = re.search(rf"{LINKS}(/confirm/\S+)", text)
            assert link is not None, text
            path = link.group(1)

            async def consent() -> str | None:
                got = await client.get(f"/v1/subscribers/{subscriber_id}", headers=auth)
                return got.json()["consent"]["email"]

            shown = await client.get(path)  # a scanner, or the person, opens the page
            assert shown.status_code == 200
            assert 'name="confirm"' in shown.text
            assert await consent() == "pending"
            assert (await client.post(path, data={"confirm": "no"})).status_code == 400
            assert (
                await client.post(path[:-3] + "AAA", data={"confirm": "yes"})
            ).status_code == 404
            pressed = await client.post(
                path, data={"confirm": "yes"}, headers={"User-Agent": "Firefox/140"}
            )
            assert pressed.status_code == 200, pressed.text
            assert "confirmed" in pressed.text
            assert await consent() == "opted_in"
            assert (await client.post(path, data={"confirm": "yes"})).status_code == 200
            count = await client.post(
                "/v1/segments/count", headers=auth, json={"definition": {"consent": "email"}}
            )
            assert count.json()["count"] == 1

            # an unsubscribe replaces the link: pressing it again cannot undo the opt-out
            await service.subscribers.unsubscribe_email(infra, brand_id, subscriber_id, "page")
            assert (await client.post(path, data={"confirm": "yes"})).status_code == 410
            # the unsubscribe link of another purpose is no confirmation link
            unsub = mail["List-Unsubscribe"].split("/u/")[1].split(">")[0]
            assert (
                await client.post(f"/confirm/{unsub}", data={"confirm": "yes"})
            ).status_code == 404

            # a phone and an email of two different subscribers: refused, nothing written
            other = await client.post(
                "/v1/signups", headers=auth,
                json={**FORM, "email": "ava@example.net", "phone": audience.consented[0]},
            )  # fmt: skip
            assert other.status_code == 409, other.text
            assert other.json()["field"] == "email"
        await smtp.aclose()
    finally:
        server.stop()
    ledger = await infra.pool.fetch(
        "SELECT status, source, disclosure, evidence FROM consents"
        " WHERE subscriber_id = $1 AND channel = 'email' ORDER BY id",
        subscriber_id,
    )
    assert [(r["status"], r["source"]) for r in ledger] == [
        ("pending", "signup form"), ("opted_in", "signup form: email link"),
        ("opted_out", "email_unsubscribe:page"),
    ]  # fmt: skip
    assert ledger[1]["disclosure"] == FORM["disclosure"]
    assert ledger[1]["evidence"]["ip"] == "198.51.100.9"
    assert ledger[1]["evidence"]["user_agent"] == "Firefox/140"


async def _received(server: SmtpServer, n: int) -> bool:
    return len(server.handler.received) >= n
