"""Settings and conversations in a real browser (Debian's Chromium, headless, driven by
Playwright): a user signs in, creates an API key and reads its secret once, opens a
webhook endpoint, reads a subscriber's reply and answers it. The vendored axe-core runs on
every page visited (no serious or critical violation), and the README's screenshots of
these pages are written to docs/screenshots/."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from clarion import bootstrap, service
from clarion.domain.records import InboundBatch, InboundMessage
from clarion.runtime.context import WorkerContext
from clarion.runtime.inbound_worker import InboundWorker
from tests.conftest import DAYTIME
from tests.e2e.test_web_browser import (
    PASSWORD,
    SCREENSHOTS,
    browser_page,
    no_serious_violations,
    served,  # noqa: F401 (a fixture)
    sign_in_at,
)

SENDER = "+15125550100"


async def replies(infra: bootstrap.Infra, texts: list[tuple[str, str]]) -> None:
    """Handsets text the brand's number; the inbound stage takes the messages in."""
    worker = InboundWorker(
        WorkerContext(infra.pool, infra.bus, bootstrap.build_provider(infra.settings))
    )
    await worker(
        InboundBatch(
            batch_id="browser-replies", provider="sim",
            messages=[
                InboundMessage(provider_message_id=f"browser-{i}", from_=phone, to=SENDER,
                               body=body, received_at=DAYTIME + timedelta(minutes=i))
                for i, (phone, body) in enumerate(texts)
            ],
        )
    )  # fmt: skip


async def test_a_user_makes_a_key_and_answers_a_conversation_in_chromium(
    infra: bootstrap.Infra,
    served: tuple[str, Any],  # noqa: F811
) -> None:

    base_url, _ = served
    brand_id = await service.brands.create(
        infra, slug="northwind", name="Northwind Outfitters", sender=SENDER
    )
    await service.users.create(infra, brand_id, "ada@northwind.example", PASSWORD)
    await service.brands.add_provider(
        infra, "twilio-main", "twilio", {"account_sid": "AC0123", "auth_token": "env:TW_TOKEN"}
    )
    await service.brands.route(infra, brand_id, "sms", ["twilio-main", "sim"])
    hook, _ = await service.hooks.create(
        infra, brand_id, "https://shop.northwind.example/clarion", ["message.delivered"]
    )
    people = {"+15125551001": "Grace", "+15125551002": "Linus", "+15125551003": "Margaret"}
    for phone, first in people.items():
        await service.subscribers.create(
            infra, brand_id,
            {"phone": phone, "first_name": first, "consent": {"sms": {"source": "checkout"}}},
        )  # fmt: skip
    await replies(
        infra,
        [
            ("+15125551002", "HELP"),
            ("+15125551002", "What time do you open on Sunday?"),
            ("+15125551003", "Loved the boots, thanks!"),
            ("+15125551001", "Do you have the trail boots in blue, size 9?"),
        ],
    )
    async with browser_page(height=800) as page:
        await sign_in_at(page, f"{base_url}/settings", "ada@northwind.example")
        assert await page.get_by_role("heading", level=1).inner_text() == "Settings"
        await no_serious_violations(page)

        # a key, by keyboard: type the name, Enter submits the form
        await page.get_by_label("Name", exact=True).fill("Shopify sync")
        await page.get_by_label("write").uncheck()
        async with page.expect_navigation():
            await page.get_by_label("Name", exact=True).press("Enter")
        secret = await page.get_by_label("Secret of “Shopify sync”").input_value()
        assert len(secret) >= 40
        row = page.get_by_role("row", name="Shopify sync")
        assert "read, send" in await row.inner_text()
        assert f"…{secret[-4:]}" in await row.inner_text()
        await no_serious_violations(page)
        await page.screenshot(path=str(SCREENSHOTS / "settings.png"), full_page=True)
        # shown once: the next visit lists the key without its secret
        await page.goto(f"{base_url}/settings")
        assert secret not in await page.content()

        # the endpoint's recent deliveries
        async with page.expect_navigation():
            await page.get_by_role("link", name=hook.url).click()
        assert await page.get_by_role("heading", level=1).inner_text() == (
            f"Webhook endpoint {hook.id}"
        )
        await no_serious_violations(page)

        # the inbox: three threads, the latest reply first
        await page.get_by_role("link", name="Conversations").click()
        await page.wait_for_url(f"{base_url}/conversations")
        rows = page.get_by_role("table").get_by_role("row")
        assert await rows.count() == 4  # a header and three threads
        assert "Grace" in await rows.nth(1).inner_text()
        await no_serious_violations(page)
        await page.screenshot(path=str(SCREENSHOTS / "conversations.png"), full_page=True)

        async with page.expect_navigation():
            await page.get_by_role("link", name="Grace").click()
        assert await page.get_by_role("heading", level=1).inner_text() == "Grace"
        thread = page.get_by_role("list", name="Messages")
        assert "trail boots in blue" in await thread.inner_text()
        await page.get_by_label("Your answer").fill(
            "Yes! The trail boots come in navy, size 9 is in stock. Want us to hold a pair?"
        )
        await page.get_by_role("button", name="Send answer").click()
        await page.wait_for_url(f"{base_url}/conversations/*?sent=1")
        assert "Your answer is queued" in await page.get_by_role("status").inner_text()
        assert "Want us to hold a pair?" in await thread.inner_text()
        assert "answered by ada@northwind.example" in await thread.inner_text()
        await no_serious_violations(page)
        await page.screenshot(path=str(SCREENSHOTS / "conversation.png"), full_page=True)
