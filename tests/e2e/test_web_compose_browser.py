"""The composer, the segment builder and the launch page in a real browser (Debian's
Chromium, headless, driven by Playwright): the live counter and preview as one types, the
fix of a UCS-2 character, a segment's count following its conditions, a plan and a launch.
axe-core runs on every page (no serious or critical violation); the README's screenshots
are written to docs/screenshots/."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import uvicorn

from clarion import bootstrap, service
from clarion.api.app import create_app
from clarion.api.v1 import V1
from clarion.bus.embedded import free_port
from clarion.domain.contacts import new_subscriber
from clarion.store import brands
from tests.e2e.test_web_browser import (
    PASSWORD,
    SCREENSHOTS,
    browser_page,
    no_serious_violations,
    sign_in_at,
)

SUBSCRIBERS = [
    {"phone": "+15125550101", "first_name": "Ada", "email": "ada@example.com",
     "sms_consent": "yes", "tier": "gold"},
    {"phone": "+15125550102", "first_name": "Grace", "email": "grace@example.com",
     "sms_consent": "yes", "tier": "silver"},
    {"phone": "+15125550103", "first_name": "Linus", "sms_consent": "yes", "tier": "gold"},
]  # fmt: skip


@pytest.fixture
async def site(infra: bootstrap.Infra) -> AsyncIterator[str]:
    """The HTTP app `clarion run` serves, on a port of its own, for a brand with three
    subscribers and a user: its URL."""
    brand_id = await service.brands.create(
        infra, slug="northwind", name="Northwind Outfitters", sender="+15125550100"
    )
    await brands.import_subscribers(
        infra.pool, brand_id, [new_subscriber(r) for r in SUBSCRIBERS], source="test"
    )
    await service.users.create(infra, brand_id, "ada@northwind.example", PASSWORD)
    app = create_app(infra.bus, {}, api=V1(infra))
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        assert not task.done(), "the HTTP server did not start"
        await asyncio.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    await app.state.web.counter.settle()
    server.should_exit = True
    await task


async def test_a_marketer_composes_builds_a_segment_plans_and_launches_in_chromium(
    infra: bootstrap.Infra, site: str
) -> None:
    try:
        from playwright.async_api import expect
    except ImportError:
        pytest.fail("playwright is missing: `make test` installs the dev dependencies")
    async with browser_page(height=900) as page:
        await sign_in_at(page, f"{site}/segments/new", "ada@northwind.example")

        # a segment: its count follows the conditions
        await no_serious_violations(page)
        count = page.locator("#count")
        await expect(count).to_contain_text("Add a condition")
        await page.get_by_label("Segment name").fill("Gold members")
        await page.get_by_label("Name (attribute", exact=False).fill("tier")
        await page.get_by_label("Value (a list", exact=False).fill("gold")
        await expect(count).to_contain_text("2 subscribers")
        await page.get_by_label("Value (a list", exact=False).fill("silver")
        await expect(count).to_contain_text("1 subscriber")
        await page.get_by_label("Value (a list", exact=False).fill("gold")
        await expect(count).to_contain_text("2 subscribers")
        await no_serious_violations(page)
        await page.screenshot(path=str(SCREENSHOTS / "segments.png"), full_page=True)
        await page.get_by_role("button", name="Save segment").first.click()
        await page.wait_for_url("**/segments/*?saved=1")
        await page.get_by_role("link", name="Audience").first.click()
        await page.wait_for_url(f"{site}/segments")
        assert "Gold members" in await page.get_by_role("table").inner_text()
        await no_serious_violations(page)

        # the composer: the live counter names the UCS-2 character; the fix replaces it
        await page.goto(f"{site}/campaigns/new")
        await page.get_by_label("Campaign name").fill("Winter boots")
        await page.get_by_label("Send to").select_option(label="Segment: Gold members")
        body = page.get_by_label("SMS text", exact=True)
        await body.fill(
            "{{ brand.name }}: Hi {{ first_name | default('there') }}, it\u2019s boot"
            " season: https://shop.example/boots Reply STOP to opt out."
        )
        live = page.locator("#live")
        await expect(live).to_contain_text("UCS-2")
        await expect(live).to_contain_text("Right Single Quotation Mark")
        await expect(live).to_contain_text("/l/")  # the link as it will be shortened
        async with page.expect_navigation():
            await page.get_by_role("button", name="Replace with GSM-7 equivalents").click()
        assert "it's boot season" in await page.get_by_label("SMS text", exact=True).input_value()
        await expect(page.locator("#counter-0")).to_contain_text("GSM-7")
        await page.get_by_label("Preview for", exact=False).fill("+15125550102")
        await expect(live).to_contain_text("Hi Grace, it's boot season")
        await expect(live).to_contain_text("Passes the launch's checks")
        await no_serious_violations(page)
        await page.screenshot(path=str(SCREENSHOTS / "composer.png"), full_page=True)
        await page.get_by_role("button", name="Save draft").first.click()
        await page.wait_for_url("**/edit?saved=1")
        await expect(page.get_by_role("status")).to_contain_text("Draft saved")
        await no_serious_violations(page)

        # plan and launch, each step confirmed
        await page.get_by_role("link", name="Plan and launch").first.click()
        await page.wait_for_url("**/launch")
        await no_serious_violations(page)
        await page.get_by_role("button", name="Compute the send plan", exact=False).click()
        await page.wait_for_url("**/launch?done=planned")
        await expect(page.locator("#plan-title + p")).to_contain_text("Computed")
        await page.get_by_role("button", name="Launch…").click()
        await expect(page.get_by_role("heading", name="Launch this campaign?")).to_be_visible()
        await no_serious_violations(page)
        await page.screenshot(path=str(SCREENSHOTS / "launch.png"), full_page=True)
        await page.get_by_role("button", name="Yes, launch").click()
        await page.wait_for_url("**/launch?done=launched")
        await expect(page.locator(".facts").first).to_contain_text("sending")
        await page.get_by_role("button", name="Pause…").click()
        await page.get_by_role("button", name="Yes, pause").click()
        await page.wait_for_url("**/launch?done=paused")
        await no_serious_violations(page)
