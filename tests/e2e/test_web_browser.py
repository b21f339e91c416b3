"""The web UI in a real browser: Debian's Chromium, headless, driven by Playwright (never a
browser Playwright downloads). Signs in as a user the `clarion user create` command made,
sees the dashboard, runs the vendored axe-core on every page it visits (no serious or
critical violation), and writes the README's screenshots to docs/screenshots/."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from clarion import bootstrap, service
from clarion.api.app import create_app
from clarion.api.v1 import V1
from clarion.bus.embedded import free_port
from tests.integration.helpers import stored_batch
from tests.processes import clarion

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "docs" / "screenshots"
AXE = ROOT / "src" / "clarion" / "web" / "static" / "vendor" / "axe-core" / "axe.min.js"
CHROMIUM = "/usr/bin/chromium"
PASSWORD = "correct horse battery"
SERIOUS = frozenset({"serious", "critical"})


def chromium() -> str:
    """Debian's Chromium; a clear failure (never a skip) when it is missing."""
    found = CHROMIUM if os.access(CHROMIUM, os.X_OK) else shutil.which("chromium")
    if found is None:
        pytest.fail(
            f"{CHROMIUM} is missing: `make test` installs Debian's chromium package"
            " (as root: apt-get install -y chromium)"
        )
    return found


@contextlib.asynccontextmanager
async def browser_page(height: int = 800) -> AsyncIterator[Any]:
    """A page of Debian's Chromium, headless, 1280 pixels wide (the pages' CSP bypassed:
    a test adds axe-core to each page); screenshots' directory made."""
    executable = chromium()
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        pytest.fail("playwright is missing: `make test` installs the dev dependencies")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=executable, headless=True, args=["--no-sandbox"]
        )
        try:
            context = await browser.new_context(
                bypass_csp=True, viewport={"width": 1280, "height": height}
            )
            yield await context.new_page()
        finally:
            await browser.close()


async def sign_in_at(page: Any, url: str, email: str) -> None:
    """Open `url`, sign in on the page it sends a visitor to, and land on `url`."""
    await page.goto(url)
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(url)


async def sent_campaign(infra: bootstrap.Infra, brand_id: int, name: str, *, seed: int) -> int:
    """A campaign of the brand that sent to 60 subscribers, three in four delivered."""
    batch = await stored_batch(infra, 60, seed=seed, key=f"browser-{seed}")
    await infra.pool.execute(
        "UPDATE campaigns SET brand_id = $2, status = 'sending', launched_at = now(),"
        " audience_count = 60, name = $3 WHERE id = $1",
        batch.campaign_id, brand_id, name,
    )  # fmt: skip
    await infra.pool.execute(
        "UPDATE messages SET brand_id = $2, sent_at = now(),"
        " status = CASE WHEN subscriber_id % 4 = 0 THEN 'sent' ELSE 'delivered' END"
        " WHERE campaign_id = $1",
        batch.campaign_id, brand_id,
    )  # fmt: skip
    return batch.campaign_id


@pytest.fixture
async def served(infra: bootstrap.Infra) -> AsyncIterator[tuple[str, Any]]:
    """The HTTP app `clarion run` serves, on a port of its own: (its URL, its `Web`)."""
    app = create_app(infra.bus, {}, api=V1(infra))
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        assert not task.done(), "the HTTP server did not start"
        await asyncio.sleep(0.05)
    yield f"http://127.0.0.1:{port}", app.state.web
    server.should_exit = True
    await task


async def no_serious_violations(page: Any) -> None:
    await page.add_script_tag(path=str(AXE))
    result = await page.evaluate("async () => await axe.run(document)")
    found = [
        f"{v['id']} ({v['impact']}): {v['help']} — {[n['target'] for n in v['nodes']][:3]}"
        for v in result["violations"]
        if v["impact"] in SERIOUS
    ]
    assert not found, f"axe-core on {page.url}:\n" + "\n".join(found)


async def test_a_user_signs_in_and_sees_the_dashboard_in_chromium(
    infra: bootstrap.Infra, served: tuple[str, Any]
) -> None:
    base_url, web = served
    brand_id = await service.brands.create(
        infra, slug="northwind", name="Northwind Outfitters", sender="+15125550100"
    )
    # the user, made as an operator makes one
    env = {
        **os.environ, "CLARION_DATABASE_URL": infra.database_url,
        "CLARION_NATS_URL": infra.nats_url, "CLARION_DATA_DIR": str(infra.settings.data_dir),
        "CLARION_BUS_NAMESPACE": infra.settings.bus_namespace,
    }  # fmt: skip
    made = await asyncio.to_thread(
        subprocess.run,
        clarion("user", "create", str(brand_id), "ada@northwind.example", "--password-stdin"),
        input=PASSWORD + "\n", capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert made.stdout.strip().isdigit()
    for seed, name in ((951, "Autumn boots: 20% off"), (952, "Black Friday early access")):
        await sent_campaign(infra, brand_id, name, seed=seed)
    await service.campaigns.create(
        infra, brand_id=brand_id, name="Holiday gift guide (draft)",
        body="{{ brand.name }}: our gift guide is out. Reply STOP to opt out.",
    )  # fmt: skip
    rows = await service.figures.page(infra, brand_id)
    await web.counter.count_now(brand_id, service.figures.stale(rows, web.now()))

    async with browser_page(height=800) as page:
        await page.goto(f"{base_url}/campaigns")
        assert page.url == f"{base_url}/signin?next=%2Fcampaigns"
        await no_serious_violations(page)
        await page.screenshot(path=str(SCREENSHOTS / "signin.png"), full_page=True)

        # keyboard first: the skip link, then the form
        await page.keyboard.press("Tab")
        focused = await page.evaluate("document.activeElement.textContent")
        assert focused.strip() == "Skip to content"
        await page.get_by_label("Email").fill("ada@northwind.example")
        await page.get_by_label("Password").fill("not the password")
        async with page.expect_navigation():
            await page.get_by_label("Password").press("Enter")
        assert await page.get_by_role("alert").inner_text() == "wrong email or password"
        await no_serious_violations(page)

        await page.get_by_label("Password").fill(PASSWORD)
        await page.get_by_role("button", name="Sign in").click()
        await page.wait_for_url(f"{base_url}/campaigns")
        await page.get_by_role("link", name="Dashboard").click()
        await page.wait_for_url(f"{base_url}/")
        assert await page.get_by_role("heading", level=1).inner_text() == "Dashboard"
        table = page.get_by_role("table")
        assert await table.get_by_role("row").count() == 4  # a header and three campaigns
        first = await table.get_by_role("row").nth(1).inner_text()
        assert "Holiday gift guide" in first  # newest first
        assert "Northwind Outfitters" in await page.locator("header").inner_text()
        await no_serious_violations(page)
        await page.screenshot(path=str(SCREENSHOTS / "dashboard.png"), full_page=True)

        async with page.expect_navigation():
            await page.get_by_role("link", name="Black Friday early access").click()
        assert "Black Friday" in await page.get_by_role("heading", level=1).inner_text()
        await no_serious_violations(page)
        await page.goto(f"{base_url}/campaigns/999999")
        assert await page.get_by_role("heading", level=1).inner_text() == "Not found"
        await no_serious_violations(page)
        await page.goto(f"{base_url}/settings")
        await no_serious_violations(page)

        await page.get_by_role("button", name="Sign out").click()
        await page.wait_for_url(f"{base_url}/signin")
        await page.goto(f"{base_url}/")
        assert page.url.startswith(f"{base_url}/signin")
