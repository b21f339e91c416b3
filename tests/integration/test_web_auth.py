"""The web UI's sign-in, sessions and CSRF checks, and that a user sees only their brand:
httpx against the HTTP app `clarion run` serves, on real Postgres."""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass
from datetime import timedelta

import httpx
import pytest
from starlette.applications import Starlette

from clarion import bootstrap, service
from clarion.domain.clock import PinnedClock
from clarion.errors import Duplicate, InvalidInput
from clarion.web import Web
from tests.integration.helpers import campaign, daytime, stored_batch

PASSWORD = "correct horse battery"


@dataclass
class Site:
    client: httpx.AsyncClient
    app: Starlette
    clock: PinnedClock
    web: Web
    brand_id: int
    other_brand_id: int


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "the page has no form with a CSRF token"
    return found.group(1)


async def sign_in(
    client: httpx.AsyncClient, email: str, password: str, *, next_path: str = "/"
) -> httpx.Response:
    """Open the sign-in page (as a browser does, for its form's token) and send the form."""
    page = await client.get("/signin", params={"next": next_path})
    assert page.status_code == 200
    return await client.post(
        "/signin",
        data={"email": email, "password": password, "csrf_token": csrf_of(page.text),
              "next": next_path},
    )  # fmt: skip


async def test_a_page_sends_a_visitor_who_is_not_signed_in_to_the_sign_in_page(site: Site) -> None:
    resp = await site.client.get("/campaigns?before=9")
    assert resp.status_code == 303
    assert resp.headers["location"] == "/signin?next=%2Fcampaigns%3Fbefore%3D9"
    page = await site.client.get(resp.headers["location"])
    assert 'name="next" value="/campaigns?before=9"' in page.text
    assert '<label for="email">' in page.text
    assert '<label for="password">' in page.text


async def test_the_right_password_signs_in_with_an_httponly_samesite_cookie(site: Site) -> None:
    resp = await sign_in(site.client, "ADA@northwind.example", PASSWORD, next_path="/campaigns")
    assert resp.status_code == 303
    assert resp.headers["location"] == "/campaigns"
    cookie = next(
        c for c in resp.headers.get_list("set-cookie") if c.startswith("clarion_session=")
    )
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie
    assert "Max-Age=43200" in cookie
    assert "Secure" not in cookie  # the public URL is http in tests
    dashboard = await site.client.get("/")
    assert dashboard.status_code == 200
    assert "ada@northwind.example" in dashboard.text
    assert "Northwind" in dashboard.text
    assert "No campaigns yet" in dashboard.text
    assert dashboard.headers["cache-control"] == "no-store"
    assert "frame-ancestors 'none'" in dashboard.headers["content-security-policy"]


async def test_a_wrong_password_or_address_is_refused_alike(site: Site) -> None:
    for email, password in (
        ("ada@northwind.example", "not the password"),
        ("nobody@northwind.example", PASSWORD),
    ):
        resp = await sign_in(site.client, email, password)
        assert resp.status_code == 401
        assert "wrong email or password" in resp.text
        assert "clarion_session" not in resp.headers.get("set-cookie", "")
    assert (await site.client.get("/")).status_code == 303


async def test_five_wrong_passwords_lock_the_account_for_fifteen_minutes(site: Site) -> None:
    for _ in range(4):
        assert (
            "wrong email or password"
            in (await sign_in(site.client, "ada@northwind.example", "guess guess guess")).text
        )
    fifth = await sign_in(site.client, "ada@northwind.example", "guess guess guess")
    assert fifth.status_code == 401
    assert "locked until" in fifth.text
    # locked: the right password too is refused, and says why
    right = await sign_in(site.client, "ada@northwind.example", PASSWORD)
    assert right.status_code == 401
    assert "locked until" in right.text
    site.clock.at += timedelta(minutes=14, seconds=59)
    assert (await sign_in(site.client, "ada@northwind.example", PASSWORD)).status_code == 401
    site.clock.at += timedelta(seconds=2)
    assert (await sign_in(site.client, "ada@northwind.example", PASSWORD)).status_code == 303
    # another user's account was never locked
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=site.app), base_url="http://clarion"
    ) as other:
        assert (await sign_in(other, "bob@contoso.example", PASSWORD)).status_code == 303


async def test_a_post_without_the_csrf_token_is_refused(site: Site) -> None:
    await sign_in(site.client, "ada@northwind.example", PASSWORD)
    token = csrf_of((await site.client.get("/")).text)
    refused = await site.client.post("/signout", data={})
    assert refused.status_code == 403
    assert "did not come from Clarion" in refused.text
    wrong = await site.client.post("/signout", data={"csrf_token": token + "0"})
    assert wrong.status_code == 403
    assert (await site.client.get("/")).status_code == 200  # still signed in
    # htmx sends the token as a header (set once in the layout by hx-headers)
    assert f'hx-headers=\'{{"X-CSRF-Token": "{token}"}}\'' in (await site.client.get("/")).text
    assert (await site.client.post("/signout", headers={"X-CSRF-Token": token})).status_code == 303


async def test_the_sign_in_form_needs_its_own_token(site: Site) -> None:
    resp = await site.client.post(
        "/signin", data={"email": "ada@northwind.example", "password": PASSWORD}
    )
    assert resp.status_code == 403
    await site.client.get("/signin")  # the cookie, but a form without the token
    resp = await site.client.post(
        "/signin", data={"email": "ada@northwind.example", "password": PASSWORD, "csrf_token": "x"}
    )
    assert resp.status_code == 403


async def test_signing_out_revokes_the_session_itself(site: Site) -> None:
    await sign_in(site.client, "ada@northwind.example", PASSWORD)
    stolen = site.client.cookies["clarion_session"]
    token = csrf_of((await site.client.get("/")).text)
    out = await site.client.post("/signout", data={"csrf_token": token})
    assert out.status_code == 303
    assert out.headers["location"] == "/signin"
    assert "clarion_session" not in site.client.cookies
    # a copy of the old cookie signs no one in
    site.client.cookies.set("clarion_session", stolen)
    replay = await site.client.get("/")
    assert replay.status_code == 303
    assert replay.headers["location"].startswith("/signin")


async def test_a_session_ends_after_twelve_hours(site: Site) -> None:
    await sign_in(site.client, "ada@northwind.example", PASSWORD)
    site.clock.at += timedelta(hours=11, minutes=59)
    assert (await site.client.get("/")).status_code == 200
    site.clock.at += timedelta(minutes=2)
    assert (await site.client.get("/")).status_code == 303


async def test_another_brands_campaign_is_not_found(site: Site, infra: bootstrap.Infra) -> None:
    mine = await campaign(infra.pool, site.brand_id, name="Spring sale")
    theirs = await campaign(infra.pool, site.other_brand_id, name="Contoso secret")
    await sign_in(site.client, "ada@northwind.example", PASSWORD)
    assert (await site.client.get(f"/campaigns/{mine}")).status_code == 200
    resp = await site.client.get(f"/campaigns/{theirs}")
    assert resp.status_code == 404
    assert "Contoso secret" not in resp.text
    listed = (await site.client.get("/campaigns")).text
    assert "Spring sale" in listed
    assert "Contoso secret" not in listed
    assert (await site.client.get("/campaigns/abc")).status_code == 400


@pytest.mark.parametrize(
    ("asked", "landed"),
    [
        ("/campaigns?before=3", "/campaigns?before=3"),
        ("https://evil.example/", "/"),
        ("//evil.example/", "/"),
        ("/\\evil.example", "/"),
        ("javascript:alert(1)", "/"),
    ],
)
async def test_after_sign_in_only_a_local_path_is_followed(
    site: Site, asked: str, landed: str
) -> None:
    resp = await sign_in(site.client, "ada@northwind.example", PASSWORD, next_path=asked)
    assert resp.status_code == 303
    assert resp.headers["location"] == landed


async def test_the_dashboard_shows_counted_figures_newest_first(
    site: Site, infra: bootstrap.Infra
) -> None:
    draft = await campaign(infra.pool, site.brand_id, name="Draft for later")
    batch = await stored_batch(infra, 40, seed=931, key="web-figures")
    sent = batch.campaign_id
    await infra.pool.execute(
        "UPDATE campaigns SET brand_id = $2, status = 'sending', launched_at = now(),"
        " audience_count = 40, name = 'Black Friday' WHERE id = $1",
        sent, site.brand_id,
    )  # fmt: skip
    await infra.pool.execute(
        "UPDATE messages SET brand_id = $2, sent_at = now(),"
        " status = CASE WHEN subscriber_id % 4 = 0 THEN 'sent' ELSE 'delivered' END"
        " WHERE campaign_id = $1",
        sent, site.brand_id,
    )  # fmt: skip
    delivered = await infra.pool.fetchval(
        "SELECT count(*) FROM messages WHERE campaign_id = $1 AND status = 'delivered'", sent
    )
    # the carrier stage's counts of the final outcomes, which an SMS campaign's figures read
    # (the messages still in flight are not sent yet, for the figures: a second behind)
    await infra.pool.execute(
        "INSERT INTO carrier_stats (brand_id, campaign_id, carrier, delivered, undelivered)"
        " VALUES ($1, $2, 'AT&T', $3, 2), ($1, $2, 'Verizon', 0, 1)",
        site.brand_id, sent, delivered,
    )  # fmt: skip
    await sign_in(site.client, "ada@northwind.example", PASSWORD)
    first = (await site.client.get("/")).text
    assert first.index("Black Friday") < first.index("Draft for later")  # newest first
    assert "Counting…" in first
    await site.web.counter.settle()
    counted = (await site.client.get("/")).text
    assert "Counting…" not in counted
    row = counted[counted.index("Black Friday") :].split("</tr>")[0]
    cells = re.findall(r'<td class="num">([^<]*)</td>', row)
    assert cells == ["40", str(delivered + 3), str(delivered), "0.0 %", "0.00"]
    assert f'href="/campaigns/{draft}"' in counted


async def test_static_files_are_cached_for_a_year(site: Site) -> None:
    await sign_in(site.client, "ada@northwind.example", PASSWORD)
    page = (await site.client.get("/")).text
    href = re.search(r'href="(/static/clarion\.css\?v=[0-9a-f]+)"', page)
    assert href
    css = await site.client.get(href.group(1))
    assert css.status_code == 200
    assert css.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert (await site.client.get("/static/vendor/htmx/htmx.min.js")).status_code == 200


async def test_a_user_needs_a_real_address_and_a_long_password(infra: bootstrap.Infra) -> None:
    brand_id = await service.brands.create(infra, slug="b", name="B", sender="+15125550100")
    with pytest.raises(InvalidInput, match="at least 12"):
        await service.users.create(infra, brand_id, "eve@b.example", "short")
    with pytest.raises(InvalidInput, match="email"):
        await service.users.create(infra, brand_id, "not-an-address", PASSWORD)
    await service.users.create(infra, brand_id, "eve@b.example", PASSWORD)
    with pytest.raises(Duplicate):
        await service.users.create(infra, brand_id, "EVE@b.example", PASSWORD)


async def test_the_dashboard_of_a_hundred_sent_campaigns_renders_in_under_200_ms(
    site: Site, infra: bootstrap.Infra
) -> None:
    """A page reads one row per campaign (its figures as last counted), never the messages:
    its time does not grow with the campaigns' size."""
    ids = [await campaign(infra.pool, site.brand_id, name=f"Campaign {i}") for i in range(100)]
    await infra.pool.execute(
        "UPDATE campaigns SET status = 'sending', launched_at = now(), audience_count = 1000000"
        " WHERE id = ANY($1::bigint[])",
        ids,
    )
    await site.web.counter.count_now(site.brand_id, ids)
    await sign_in(site.client, "ada@northwind.example", PASSWORD)
    times_s = []
    for _ in range(7):
        started = time.perf_counter()
        page = await site.client.get("/")
        times_s.append(time.perf_counter() - started)
        assert page.status_code == 200
    assert page.text.count("1,000,000") == 25  # a page of 25
    assert 'href="/?before=' in page.text
    assert sorted(times_s)[3] < 0.2, times_s
    older = await site.client.get(f"/?before={ids[75]}")
    assert older.text.count("1,000,000") == 25
    assert "Campaign 74<" in older.text


async def test_the_sweeper_forgets_sessions_a_day_after_they_ended(
    infra: bootstrap.Infra,
) -> None:
    brand_id = await service.brands.create(
        infra, slug="sessions-swept", name="Northwind", sender="+15125550100"
    )
    user = await service.users.create(infra, brand_id, "old@northwind.example", PASSWORD)
    now = daytime.now()
    await infra.pool.execute(
        "INSERT INTO web_sessions (token_hash, user_id, csrf_token, expires_at) VALUES"
        " ('\\x01', $1, 'a', $2), ('\\x02', $1, 'b', $3)",
        user.id, now - timedelta(days=3), now + timedelta(hours=1),
    )  # fmt: skip
    async with bootstrap.running(infra, bootstrap.build_provider(infra.settings), clock=daytime):
        deadline = time.monotonic() + 10
        while (
            await infra.pool.fetchval(
                "SELECT count(*) FROM web_sessions WHERE user_id = $1", user.id
            )
            > 1
        ):
            assert time.monotonic() < deadline, "the ended session was never forgotten"
            await asyncio.sleep(0.1)
    kept = await infra.pool.fetch("SELECT csrf_token FROM web_sessions WHERE user_id = $1", user.id)
    assert [r["csrf_token"] for r in kept] == ["b"]  # the live one stays
