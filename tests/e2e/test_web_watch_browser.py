"""The campaign watch page, a subscriber's timeline and a CSV import in Debian's Chromium
(headless, driven by Playwright): the chart is drawn, the import shows its progress and its
rejected rows, axe-core finds no serious or critical violation, and the README's
screenshots are written to docs/screenshots/."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from clarion import bootstrap, service
from tests.e2e.test_web_browser import (
    PASSWORD,
    SCREENSHOTS,
    browser_page,
    no_serious_violations,
    sent_campaign,
    served,
    sign_in_at,
)

__all__ = ["served"]  # the fixture, shared with the dashboard's browser test

ADA = "ada@northwind.example"


async def test_a_user_watches_a_campaign_finds_a_subscriber_and_imports_a_csv(
    infra: bootstrap.Infra, served: tuple[str, Any], tmp_path: Path
) -> None:

    base_url, web = served
    brand_id = await service.brands.create(
        infra, slug="northwind", name="Northwind Outfitters", sender="+15125550100"
    )
    await service.users.create(infra, brand_id, ADA, PASSWORD)
    campaign_id = await sent_campaign(infra, brand_id, "Autumn boots: 20% off", seed=961)
    # the messages went out over three minutes, and some failed at the carrier
    await infra.pool.execute(
        "UPDATE messages SET sent_at = date_trunc('minute', now())"
        " - (subscriber_id % 3) * interval '1 minute' + interval '10 s',"
        " updated_at = date_trunc('minute', now())"
        " - (subscriber_id % 3) * interval '1 minute' + interval '15 s',"
        " carrier = CASE WHEN subscriber_id % 2 = 0 THEN 'Verizon' ELSE 'T-Mobile' END,"
        " status = CASE WHEN subscriber_id % 10 = 0 THEN 'undelivered' ELSE status END,"
        " error_code = CASE WHEN subscriber_id % 10 = 0 THEN '30003' END WHERE campaign_id = $1",
        campaign_id,
    )  # fmt: skip
    await infra.pool.execute(
        "UPDATE subscribers SET brand_id = $1 WHERE id IN"
        " (SELECT subscriber_id FROM messages WHERE campaign_id = $2)",
        brand_id, campaign_id,
    )  # fmt: skip
    await web.counter.count_now(brand_id, [campaign_id])
    subscriber = await infra.pool.fetchrow(
        "SELECT id, phone FROM subscribers WHERE brand_id = $1 ORDER BY id LIMIT 1", brand_id
    )
    csv = tmp_path / "customers.csv"
    csv.write_text(
        "phone,first_name,sms_consent\n+15125550401,Ana,yes\nnot-a-phone,Bad,yes\n"
        "+15125550402,Ben,yes\n+15125550401,Ana again,yes\n"
    )
    async with browser_page(height=900) as page:
        await sign_in_at(page, f"{base_url}/campaigns/{campaign_id}", ADA)

        # the report comes in by htmx, and the chart is drawn from it
        chart = page.locator(".chart canvas")
        await chart.wait_for(state="visible", timeout=15_000)
        assert await page.locator(".chart").get_attribute("data-drawn") == "3"
        funnel = page.locator("#funnel")
        assert "Delivered" in await funnel.inner_text()
        assert "30003" in await page.locator("#failed-by-error").inner_text()
        assert "Verizon" in await page.locator("#by-carrier").inner_text()
        await no_serious_violations(page)
        await page.screenshot(path=str(SCREENSHOTS / "campaign.png"), full_page=True)

        # find the subscriber by the start of their phone, by keyboard
        await page.get_by_role("link", name="Subscribers").click()
        await page.wait_for_url(f"{base_url}/subscribers")
        await page.get_by_label("Phone or email").fill(subscriber["phone"][:7])
        async with page.expect_navigation():
            await page.get_by_label("Phone or email").press("Enter")
        results = page.locator("#results")
        assert await results.get_by_role("row").count() >= 2
        await no_serious_violations(page)
        await page.screenshot(path=str(SCREENSHOTS / "subscribers.png"), full_page=True)
        async with page.expect_navigation():
            await page.locator(f'a[href="/subscribers/{subscriber["id"]}"]').click()
        timeline = page.locator("#timeline")
        assert "Autumn boots" in await timeline.inner_text()
        await no_serious_violations(page)
        await page.screenshot(path=str(SCREENSHOTS / "subscriber.png"), full_page=True)

        # import a CSV with bad rows: its progress, then the rejected rows
        await page.goto(f"{base_url}/imports/new")
        await no_serious_violations(page)
        await page.get_by_label("Where consent was collected").fill("spring-fair")
        await page.get_by_label("CSV file").set_input_files(str(csv))
        async with page.expect_navigation():
            await page.get_by_role("button", name="Import").click()
        assert "/imports/" in page.url
        await page.get_by_role("heading", name="Rejected rows").wait_for(timeout=15_000)
        rejected = await page.locator("#rejected").inner_text()
        assert "not-a-phone" in rejected or "phone" in rejected
        assert "duplicate of row 2" in rejected
        assert await page.locator("#import-bar").get_attribute("value") == "1"
        await no_serious_violations(page)
        await page.screenshot(path=str(SCREENSHOTS / "import.png"), full_page=True)
