"""A campaign by SMS and email: each subscriber gets a message on each channel they consented
to (SMS through the simulator, email through a real SMTP server, aiosmtpd), with the
one-click unsubscribe headers; a hard bounce fails that address and suppresses it."""

from __future__ import annotations

import dataclasses
import email
from collections import Counter

from clarion import bootstrap, service
from clarion.bus.embedded import free_port
from clarion.domain.contacts import new_subscriber
from clarion.providers import accounts
from clarion.sim.process import SimProcess
from clarion.store import brands, campaigns, lanes
from tests.conftest import DAYTIME, wait_for_campaign
from tests.integration.helpers import daytime
from tests.integration.test_email import RecordingHandler, SmtpServer

LINKS = "https://clarion.example"


async def test_a_campaign_by_sms_and_email_follows_each_channels_consent(
    infra: bootstrap.Infra, sim: SimProcess
) -> None:
    brand = await brands.create_brand(
        infra.pool, slug="both", name="Northwind", sender="+15125550100"
    )
    rows = [
        {"phone": f"+1212{500 + i:03d}{2000 + i:04d}", "email": f"person{i}@example.net",
         "first_name": f"P{i}", "sms_consent": "yes" if i % 3 else "no"}
        for i in range(30)
    ]  # fmt: skip
    rows.append({"phone": "+12125559999", "email": "hard@example.net", "sms_consent": "no"})
    await brands.import_subscribers(
        infra.pool, brand, [new_subscriber(r) for r in rows], source="test"
    )
    subs = {r["email"]: r["id"] for r in await infra.pool.fetch(
        "SELECT id, email FROM subscribers WHERE brand_id = $1", brand)}  # fmt: skip
    email_ok = [f"person{i}@example.net" for i in range(30) if i % 2 == 0] + ["hard@example.net"]
    for address in email_ok:
        await brands.record_consent(
            infra.pool, brand_id=brand, subscriber_id=subs[address], channel="email",
            status="opted_in", source="test",
        )  # fmt: skip
    campaign_id = await campaigns.create_campaign(
        infra.pool, brand_id=brand, name="Spring", channel="both",
        body="{{ brand.name }}: Hi {{ first_name | default('there') }}. Reply STOP to opt out.",
        subject="Spring sale, {{ first_name | default('friend') }}",
        email_body="Hi {{ first_name | default('there') }}, 20% off this week.",
        email_html=(
            '<p>Hi {{ first_name | default("there") }},'
            ' <a href="https://northwind.example/spring">20% off</a> this week.</p>'
        ),
    )  # fmt: skip
    server = SmtpServer(RecordingHandler(), free_port())
    server.start()
    try:
        smtp = accounts.build(
            "mail", "smtp", {"host": "127.0.0.1", "port": str(server.port), "tls": "off"},
            infra.settings,
        )  # fmt: skip
        await lanes.set_route(infra.pool, brand, "email", ["mail"])
        # links in messages are the https address subscribers reach (RFC 8058 one-click)
        linked = dataclasses.replace(
            infra, settings=dataclasses.replace(infra.settings, links_url=LINKS)
        )
        async with bootstrap.running(
            linked, bootstrap.build_provider(infra.settings), clock=daytime, more_providers=[smtp]
        ):
            await service.campaigns.launch(infra, campaign_id, at=DAYTIME)
            done = await wait_for_campaign(infra.pool, campaign_id, sim, timeout_s=60)
        await smtp.aclose()
    finally:
        server.stop()

    sms_ok = [r["phone"] for r in rows if r["sms_consent"] == "yes"]
    by_channel = Counter(
        (r["channel"], r["status"])
        for r in await infra.pool.fetch(
            "SELECT channel, status FROM messages WHERE campaign_id = $1", campaign_id
        )
    )
    delivered_sms = by_channel[("sms", "delivered")] + by_channel[("sms", "undelivered")]
    assert delivered_sms == len(sms_ok)
    assert by_channel[("email", "delivered")] == len(email_ok) - 1
    assert by_channel[("email", "failed")] == 1  # the hard bounce
    assert done.audience == 2 * 31  # every subscriber has a number and an address
    received = {
        rcpts[0]: email.message_from_bytes(raw) for _, _, rcpts, raw in server.handler.received
    }
    assert sorted(received) == sorted(a for a in email_ok if a != "hard@example.net")
    first = received["person0@example.net"]
    assert first["Subject"] == "Spring sale, P0"
    assert first["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert f"<{LINKS}/u/" in first["List-Unsubscribe"]
    parts = {p.get_content_type(): p.get_payload(decode=True).decode() for p in first.walk()
             if not p.is_multipart()}  # fmt: skip
    assert "Hi P0, 20% off" in parts["text/plain"]
    markup = parts["text/html"]
    assert '<p>Hi P0, <a href="https://clarion.example/l/' in markup  # its link tracked
    assert "northwind.example/spring" not in markup
    suppressed = await infra.pool.fetch(
        "SELECT channel, address, reason FROM suppressions WHERE address LIKE '%@%'"
    )
    assert [tuple(r) for r in suppressed] == [("email", "hard@example.net", "hard_bounce")]
