"""A marketer's whole journey in a real browser (Debian's Chromium, headless, driven by
Playwright), against the running pipeline and the simulator: sign in, build a segment,
compose a campaign with a link, plan it, launch it, and watch it finish on its page with the
simulator's people's clicks and the revenue of their orders. axe-core runs on the pages it
passes through; the finished campaign's funnel and revenue are the README's `journey.png`."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import pytest

from clarion import bootstrap, service
from clarion.harness.seed import CITIES
from clarion.sim.process import SimProcess
from clarion.store import api_keys
from clarion.web import watch
from tests.conftest import wait_for_campaign
from tests.e2e.test_web_browser import (
    PASSWORD,
    SCREENSHOTS,
    browser_page,
    no_serious_violations,
    sign_in_at,
)
from tests.integration.helpers import brand_with_subscribers, daytime

USER = "maya@northwind.example"


async def _step(page: object, step: str) -> int:
    """The number of people at a step of the campaign page's funnel."""
    cell = page.locator(f'#funnel td[data-step="{step}"]')  # type: ignore[attr-defined]
    text = await cell.inner_text() if await cell.count() else "0"
    return int(text.replace(",", "") or 0)


async def test_a_marketer_launches_a_campaign_and_watches_it_earn(
    infra: bootstrap.Infra, sim: SimProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    try:
        from playwright.async_api import expect
    except ImportError:
        pytest.fail("playwright is missing: `make test` installs the dev dependencies")
    monkeypatch.setattr(watch, "REPORT_FRESH_S", 0.5)  # the report as fresh as the test needs
    audience = await brand_with_subscribers(infra.pool, 60, seed=951)
    brand_id = audience.brand_id
    await service.users.create(infra, brand_id, USER, PASSWORD)
    key = await api_keys.create_key(infra.pool, brand_id)
    await asyncio.to_thread(
        sim.shoppers,
        {
            "events_url": f"{infra.settings.public_url}/v1/events", "api_key": key,
            "click_rate": 0.5, "order_rate": 0.6, "click_delay_s": [0.01, 0.2],
            "order_delay_s": [0.01, 0.2], "seed": 5,
            "clock_offset_s": (daytime.now() - datetime.now(UTC)).total_seconds(),
        },
    )  # fmt: skip
    site = infra.settings.public_url
    async with (
        bootstrap.running(infra, bootstrap.build_provider(infra.settings), clock=daytime),
        browser_page(height=900) as page,
    ):
        await sign_in_at(page, f"{site}/", USER)

        # a segment: everyone in one of the list's cities
        await page.goto(f"{site}/segments/new")
        await page.get_by_label("Segment name").fill("Our cities")
        await page.get_by_label("Name (attribute", exact=False).fill("city")
        await page.get_by_label("Operator").select_option(label="is one of")
        await page.get_by_label("Value (a list", exact=False).fill(", ".join(CITIES))
        await expect(page.locator("#count")).to_contain_text("60 subscribers")
        await page.get_by_role("button", name="Save segment").first.click()
        await page.wait_for_url("**/segments/*?saved=1")

        # the campaign, to that segment, with a link the people follow
        await page.goto(f"{site}/campaigns/new")
        await page.get_by_label("Campaign name").fill("Winter sale")
        await page.get_by_label("Send to").select_option(label="Segment: Our cities")
        await page.get_by_label("SMS text", exact=True).fill(
            "{{ brand.name }}: Hi {{ first_name | default('there') }}, winter sale:"
            " https://shop.example/winter Reply STOP to opt out."
        )
        await expect(page.locator("#live")).to_contain_text("Passes the launch's checks")
        await page.get_by_role("button", name="Save draft").first.click()
        await page.wait_for_url("**/edit?saved=1")
        campaign_id = int(page.url.split("/campaigns/")[1].split("/")[0])

        # planned, launched
        await page.get_by_role("link", name="Plan and launch").first.click()
        await page.wait_for_url("**/launch")
        await page.get_by_role("button", name="Compute the send plan", exact=False).click()
        await page.wait_for_url("**/launch?done=planned")
        await page.get_by_role("button", name="Launch…").click()
        await page.get_by_role("button", name="Yes, launch").click()
        await page.wait_for_url("**/launch?done=launched")

        # watched until it has delivered to everyone and earned
        await wait_for_campaign(infra.pool, campaign_id, sim)
        consented = len(audience.consented)
        deadline = time.monotonic() + 60
        while True:
            await page.goto(f"{site}/campaigns/{campaign_id}")
            await expect(page.locator("#funnel")).to_be_visible()
            delivered = await _step(page, "delivered")
            clicked = await _step(page, "clicked")
            ordered = await _step(page, "ordered")
            if delivered >= consented * 0.9 and clicked > 0 and ordered > 0:
                break
            assert time.monotonic() < deadline, (delivered, clicked, ordered, consented)
            await asyncio.sleep(1)
        revenue = page.locator("dt:has-text('Revenue') + dd").first
        assert float((await revenue.inner_text()).replace(",", "")) > 0
        await expect(page.locator("canvas, .uplot").first).to_be_visible()  # the chart
        await no_serious_violations(page)
        # the funnel and the revenue (the test's clock is pinned to a weekday afternoon
        # and Postgres's is not, so its chart and timings span both: left out)
        heading = await page.get_by_role("heading", name="Funnel").bounding_box()
        funnel = await page.locator("#funnel").bounding_box()
        assert heading is not None
        assert funnel is not None
        top = heading["y"] - 16
        await page.screenshot(
            path=str(SCREENSHOTS / "journey.png"), full_page=True,
            clip={"x": 0, "y": top, "width": 1280, "height": funnel["y"] + funnel["height"]
                  + 24 - top},
        )  # fmt: skip
    report = await service.campaigns.report(infra, campaign_id, brand_id=brand_id)
    assert report.totals["unique_clicks"] >= clicked  # people still clicking after the page
    assert report.totals["orders"] >= ordered
