"""The campaign watch page, the subscriber pages and the CSV import in the web UI: httpx
against the HTTP app `clarion run` serves, on real Postgres (a campaign sent against the
simulator)."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest

from clarion import bootstrap, service
from clarion.api.app import create_app
from clarion.api.v1 import V1
from clarion.domain.clock import SystemClock
from clarion.harness import web_brand
from clarion.sim.process import SimProcess
from clarion.store.timeline import prefix_bounds
from clarion.web import Web, watch
from tests.integration.helpers import brand_with_subscribers, campaign, send_campaign, stored_batch
from tests.integration.test_web_auth import PASSWORD, csrf_of, sign_in

ADA = "ada@northwind.example"
BOB = "bob@contoso.example"


@dataclass
class Site:
    client: httpx.AsyncClient
    web: Web
    brand_id: int
    other_brand_id: int


@pytest.fixture
async def site(infra: bootstrap.Infra) -> AsyncIterator[Site]:
    """Ada of a brand with 30 subscribers (their consent from a CSV import), signed in; Bob
    of another brand."""
    audience = await brand_with_subscribers(infra.pool, 30, seed=4101)
    other = await service.brands.create(
        infra, slug="contoso", name="Contoso", sender="+15125550199"
    )
    await service.users.create(infra, audience.brand_id, ADA, PASSWORD)
    await service.users.create(infra, other, BOB, PASSWORD)
    app = create_app(infra.bus, {}, api=V1(infra, clock=SystemClock()))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://clarion"
    ) as client:
        assert (await sign_in(client, ADA, PASSWORD)).status_code == 303
        yield Site(client, app.state.web, audience.brand_id, other)
        await app.state.web.counter.settle()


def polls(html: str, path: str) -> bool:
    """Whether the fragment at `path` asks htmx to fetch it again."""
    found = re.search(rf'hx-get="{re.escape(path)}"\s+hx-trigger="every \d+s"', html)
    return found is not None


async def test_a_sent_campaigns_page_shows_its_delivered_count_funnel_and_failures(
    site: Site, infra: bootstrap.Infra, sim: SimProcess
) -> None:
    campaign_id = await campaign(infra.pool, site.brand_id, name="Spring sale")
    progress = await send_campaign(infra, sim, campaign_id)
    assert progress.delivered > 0
    page = await site.client.get(f"/campaigns/{campaign_id}")
    assert page.status_code == 200
    assert "Spring sale" in page.text
    assert f'hx-get="/campaigns/{campaign_id}/report" hx-trigger="load"' in page.text
    report = await site.client.get(f"/campaigns/{campaign_id}/report")
    assert report.status_code == 200
    funnel = dict(re.findall(r'data-step="(\w+)">([\d,]+)<', report.text))
    assert funnel["delivered"] == f"{progress.delivered:,}"
    assert funnel["eligible"] == f"{progress.eligible:,}"
    assert funnel["sent"] == f"{progress.handed_over:,}"
    assert 'id="failed-by-error"' in report.text
    assert 'id="by-carrier"' in report.text
    assert 'id="suppressed-by-reason"' in report.text
    for reason, n in progress.suppressed_by_reason.items():
        assert re.search(rf"<code>{reason}</code></th><td class=\"num\">{n:,}<", report.text)
    assert "chart-data-" in report.text  # the per-minute figures the chart draws
    assert not polls(report.text, f"/campaigns/{campaign_id}/report")  # settled
    # the headline, from the stored figures once counted
    await site.web.counter.count_now(site.brand_id, [campaign_id])
    live = await site.client.get(f"/campaigns/{campaign_id}/live")
    assert f'data-figure="delivered">{progress.delivered:,}<' in live.text
    assert not polls(live.text, f"/campaigns/{campaign_id}/live")
    again = await site.client.get(f"/campaigns/{campaign_id}")  # the report is at hand now
    assert 'id="funnel"' in again.text
    assert "Plan versus actual" in again.text


async def test_the_headline_polls_while_the_campaign_sends_and_stops_after(
    site: Site, infra: bootstrap.Infra, monkeypatch: pytest.MonkeyPatch
) -> None:
    batch = await stored_batch(infra, 20, seed=4102, key="watch-live")
    cid = batch.campaign_id
    await infra.pool.execute(
        "UPDATE campaigns SET brand_id = $2, status = 'sending', launched_at = now(),"
        " audience_count = 20, audience_done = true WHERE id = $1",
        cid, site.brand_id,
    )  # fmt: skip
    await infra.pool.execute(
        "UPDATE messages SET brand_id = $2 WHERE campaign_id = $1", cid, site.brand_id
    )
    page = (await site.client.get(f"/campaigns/{cid}")).text
    assert polls(page, f"/campaigns/{cid}/live")
    report = (await site.client.get(f"/campaigns/{cid}/report")).text
    assert polls(report, f"/campaigns/{cid}/report")  # 20 queued: still sending
    assert polls((await site.client.get(f"/campaigns/{cid}/live")).text, f"/campaigns/{cid}/live")
    # every message settles, and the next report says so
    await infra.pool.execute(
        "UPDATE messages SET status = 'failed', error_code = 'E30007' WHERE campaign_id = $1", cid
    )
    monkeypatch.setattr(watch, "REPORT_FRESH_S", 0.0)  # not a minute: counted again now
    monkeypatch.setattr(watch, "REPORT_COST_SHARE", 0)
    report = (await site.client.get(f"/campaigns/{cid}/report")).text
    assert not polls(report, f"/campaigns/{cid}/report")
    assert re.search(r"<code>E30007</code></th><td class=\"num\">20<", report)
    assert not polls(
        (await site.client.get(f"/campaigns/{cid}/live")).text, f"/campaigns/{cid}/live"
    )


async def test_another_brands_campaign_subscriber_and_import_are_not_found(
    site: Site, infra: bootstrap.Infra
) -> None:
    theirs = await campaign(infra.pool, site.other_brand_id, name="Contoso secret")
    subscriber_id = await infra.pool.fetchval(
        "SELECT min(id) FROM subscribers WHERE brand_id = $1", site.brand_id
    )
    import_id = await service.imports.start(infra, site.brand_id, source="test")
    for path in (f"/campaigns/{theirs}", f"/campaigns/{theirs}/live",
                 f"/campaigns/{theirs}/report"):  # fmt: skip
        resp = await site.client.get(path)
        assert resp.status_code == 404, path
        assert "Contoso secret" not in resp.text
    async with httpx.AsyncClient(
        transport=site.client._transport, base_url="http://clarion"
    ) as bob:
        await sign_in(bob, BOB, PASSWORD)
        for path in (f"/subscribers/{subscriber_id}", f"/imports/{import_id}",
                     f"/imports/{import_id}/progress"):  # fmt: skip
            assert (await bob.get(path)).status_code == 404, path
        assert (await bob.get(f"/subscribers/{subscriber_id}")).status_code == 404
        found = await bob.get("/subscribers", params={"q": "+1"})
        assert 'id="results"' not in found.text


async def test_subscribers_are_found_by_phone_or_email_and_show_their_timeline(
    site: Site, infra: bootstrap.Infra, sim: SimProcess
) -> None:
    s = await infra.pool.fetchrow(
        "SELECT id, phone FROM subscribers WHERE brand_id = $1 AND phone IS NOT NULL"
        " ORDER BY id LIMIT 1",
        site.brand_id,
    )
    exact = await site.client.get("/subscribers", params={"q": s["phone"]})
    assert f'href="/subscribers/{s["id"]}"' in exact.text
    prefix = s["phone"][:8]
    by_prefix = (await site.client.get("/subscribers", params={"q": prefix})).text
    assert f'href="/subscribers/{s["id"]}"' in by_prefix
    shown = set(re.findall(r'href="/subscribers/(\d+)"', by_prefix))
    matching = await infra.pool.fetchval(
        "SELECT count(*) FROM subscribers WHERE brand_id = $1 AND phone LIKE $2",
        site.brand_id, prefix + "%",
    )  # fmt: skip
    assert len(shown) == min(matching, 25)
    none = await site.client.get("/subscribers", params={"q": "nobody@nowhere.example"})
    assert "No subscriber" in none.text
    campaign_id = await campaign(infra.pool, site.brand_id, name="Timeline sale")
    await send_campaign(infra, sim, campaign_id)
    await infra.pool.execute(
        "INSERT INTO events (brand_id, client_id, subscriber_id, type, occurred_at, value)"
        " VALUES ($1, 'ev-1', $2, 'ordered', now(), 42.5)",
        site.brand_id, s["id"],
    )  # fmt: skip
    page = await site.client.get(f"/subscribers/{s['id']}")
    assert page.status_code == 200
    entries = re.findall(r'<li class="entry-(\w+)">', page.text)
    assert entries[0] == "event"  # newest first
    assert "consent" in entries
    assert "message" in entries  # every subscriber with a phone got one (sent or suppressed)
    assert f'<a href="/campaigns/{campaign_id}">Timeline sale</a>' in page.text
    assert "value 42.50" in page.text


async def test_an_import_with_a_bad_row_shows_its_progress_and_the_rejected_row(
    site: Site, infra: bootstrap.Infra
) -> None:
    form = await site.client.get("/imports/new")
    assert form.status_code == 200
    csv = (
        "phone,first_name,sms_consent\n"
        "+15125550301,Ana,yes\n"
        "not-a-phone,Bad,yes\n"
        "+15125550302,Ben,yes\n"
    )
    resp = await site.client.post(
        "/imports",
        data={"csrf_token": csrf_of(form.text), "source": "web-test"},
        files={"file": ("people.csv", csv.encode(), "text/csv")},
    )
    assert resp.status_code == 303, resp.text
    path = resp.headers["location"]
    import_id = int(path.rsplit("/", 1)[1])
    first = await site.client.get(path)
    assert first.status_code == 200
    assert 'id="import-bar"' in first.text
    deadline = time.monotonic() + 30
    while (await service.imports.get(infra, site.brand_id, import_id)).status == "running":
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    done = (await site.client.get(f"{path}/progress")).text
    assert not polls(done, f"{path}/progress")
    rejected = re.findall(r'<th scope="row" class="num">(\d+)</th><td>(\w+)</td>', done)
    assert rejected == [("3", "phone")]
    assert "New subscribers</dt><dd>2<" in done


async def test_an_upload_without_the_forms_token_is_refused(site: Site) -> None:
    resp = await site.client.post(
        "/imports", data={"source": "x"}, files={"file": ("a.csv", b"phone\n+15125550303\n")}
    )
    assert resp.status_code == 403


async def test_an_upload_that_is_not_a_csv_of_subscribers_shows_the_form_again(
    site: Site,
) -> None:
    form = await site.client.get("/imports/new")
    resp = await site.client.post(
        "/imports",
        data={"csrf_token": csrf_of(form.text), "source": "web-test"},
        files={"file": ("a.csv", b"name,age\nAna,3\n", "text/csv")},
    )
    assert resp.status_code == 400
    assert 'id="import-error"' in resp.text


@pytest.mark.parametrize(
    "prefix", ["+1512555", "+1559", "+19", "+1999", "ada", "jo.s", "z9", "az", "+"]
)
def test_a_prefix_bounds_every_value_that_starts_with_it(prefix: str) -> None:
    low, high = prefix_bounds(prefix)
    for tail in ("", "0", "9", "a", "z", "zz", ".x@y", "999", "~"):
        value = prefix + tail
        assert value >= low
        assert high is None or value < high, (prefix, value, high)


async def test_each_page_renders_in_under_200_ms_for_a_large_brand(infra: bootstrap.Infra) -> None:
    """50,000 subscribers and 100 campaigns, the newest with 50,000 messages: every page
    reads aggregates, stored figures or bounded index ranges, so its time does not grow with
    the brand (`bench/web_pages.py` measures it at a million)."""
    b = await web_brand.seed(infra.pool, subscribers=50_000, campaigns=100, messages=50_000)
    await service.users.create(infra, b.brand_id, ADA, PASSWORD)
    app = create_app(infra.bus, {}, api=V1(infra, clock=SystemClock()))
    web = app.state.web
    big = b.campaign_ids[-1]
    await web.counter.count_now(b.brand_id, b.campaign_ids)
    import_id = await service.imports.start(infra, b.brand_id, source="test")
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://clarion"
    ) as client:
        await sign_in(client, ADA, PASSWORD)
        assert (await client.get(f"/campaigns/{big}/report")).status_code == 200  # counted
        for path in (
            f"/campaigns/{big}", f"/campaigns/{big}/live", f"/campaigns/{big}/report",
            f"/campaigns/{b.campaign_ids[0]}", "/subscribers", f"/subscribers?q={b.phone}",
            "/subscribers?q=%2B15122000", "/subscribers?q=user1234",
            f"/subscribers/{b.first_subscriber_id}", "/imports/new", f"/imports/{import_id}",
        ):  # fmt: skip
            times_s = []
            for _ in range(5):
                started = time.perf_counter()
                resp = await client.get(path)
                times_s.append(time.perf_counter() - started)
                assert resp.status_code == 200, path
            assert sorted(times_s)[2] < 0.2, (path, times_s)
        found = (await client.get("/subscribers?q=%2B15122000")).text
        assert len(re.findall(r'href="/subscribers/\d+"', found)) == 25  # bounded
    await web.counter.settle()
