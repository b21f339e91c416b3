"""Tracked short links: a campaign's URLs become per-recipient short links on the brand's
link domain; `GET /l/{code}` redirects and records the click once per recipient and link
(counted), HEAD requests and bots apart; another brand's domain or a made-up code is a 404."""

from __future__ import annotations

import re

import httpx
import pytest

from clarion import bootstrap, service
from clarion.api.app import create_app
from clarion.domain.clock import PinnedClock
from clarion.errors import InvalidInput, Refused
from clarion.service.links import Clicks, Redirects
from clarion.sim.process import SimProcess
from clarion.store import brands
from tests.conftest import DAYTIME
from tests.integration.helpers import brand_with_subscribers, campaign, send_campaign

SALE = "https://northwind.example/sale?utm_source=sms"
BODY = (
    "{{ brand.name }}: Hi {{ first_name | default('there') }}, 40% off: " + SALE + " - and"
    " your cart: https://northwind.example/cart/{{ phone[-4:] }}."
    " Reply STOP to opt out."
)
IPHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 Mobile"


async def test_a_campaigns_links_are_short_per_recipient_and_count_clicks(
    infra: bootstrap.Infra, sim: SimProcess
) -> None:
    audience = await brand_with_subscribers(infra.pool, 30, seed=361)
    brand_id = audience.brand_id
    assert await service.links.set_link_domain(infra, brand_id, "Go.Northwind.Example") == (
        "go.northwind.example"
    )
    campaign_id = await campaign(infra.pool, brand_id, body=BODY)
    check = await service.campaigns.check(infra, campaign_id)  # counted as it will be sent
    assert SALE not in check.sample
    assert re.search(r"https://go\.northwind\.example/l/[A-Za-z0-9_-]{22} ", check.sample)

    await send_campaign(infra, sim, campaign_id)
    sent = await infra.pool.fetch(
        "SELECT subscriber_id, body FROM messages WHERE campaign_id = $1 AND sent_at IS NOT NULL",
        campaign_id,
    )
    assert len(sent) >= 10
    codes = {}
    for row in sent:
        found = re.findall(r"https://go\.northwind\.example/l/([A-Za-z0-9_-]{22})", row["body"])
        assert len(found) == 1, row["body"]  # the sale link; the per-subscriber cart URL stays
        assert SALE not in row["body"]
        assert "https://northwind.example/cart/" in row["body"]
        codes[row["subscriber_id"]] = found[0]
    assert len(set(codes.values())) == len(codes)  # one per recipient

    other = await brand_with_subscribers(infra.pool, 1, seed=362)
    await service.links.set_link_domain(infra, other.brand_id, "go.other.example")
    secret = infra.settings.unsubscribe_secret
    assert secret is not None
    clicks = Clicks(infra)
    app = create_app(
        infra.bus, {}, redirects=Redirects(infra, secret, clicks, PinnedClock(DAYTIME))
    )
    first, second = list(codes.items())[:2]
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="https://go.northwind.example"
    ) as client:
        for _ in range(3):  # the same person, three times
            r = await client.get(f"/l/{first[1]}", headers={"User-Agent": IPHONE})
            assert r.status_code == 302
            assert r.headers["location"] == SALE
            assert r.headers["cache-control"] == "no-store"
        r = await client.get(f"/l/{second[1]}", headers={"User-Agent": IPHONE})
        assert r.status_code == 302
        assert (await client.head(f"/l/{second[1]}")).status_code == 302  # a link checker
        unfurl = {"User-Agent": "facebookexternalhit/1.1 Facebot Twitterbot/1.0"}
        assert (await client.get(f"/l/{second[1]}", headers=unfurl)).status_code == 302
        # another brand's domain, a changed character, garbage: nothing, and nothing counted
        elsewhere = await client.get(
            f"https://go.other.example/l/{first[1]}", headers={"User-Agent": IPHONE}
        )
        assert elsewhere.status_code == 404
        assert SALE not in elsewhere.text
        forged = first[1][:-1] + ("A" if first[1][-1] != "A" else "B")
        assert (await client.get(f"/l/{forged}")).status_code == 404
        assert (await client.get("/l/" + "é" * 22)).status_code == 404
        assert (await client.get("/l/short")).status_code == 404
    await clicks.flush()

    rows = await infra.pool.fetch(
        "SELECT subscriber_id, kind, clicks, message_id::text FROM clicks WHERE campaign_id = $1"
        " ORDER BY subscriber_id, kind",
        campaign_id,
    )
    got = {(r["subscriber_id"], r["kind"]): r["clicks"] for r in rows}
    assert got == {
        (first[0], "human"): 3, (second[0], "human"): 1, (second[0], "head"): 1,
        (second[0], "bot"): 1,
    }  # fmt: skip
    messages = {
        r["subscriber_id"]: r["id"]
        for r in await infra.pool.fetch(
            "SELECT subscriber_id, id::text FROM messages WHERE campaign_id = $1", campaign_id
        )
    }
    assert all(r["message_id"] == messages[r["subscriber_id"]] for r in rows)
    (link,) = await service.links.campaign_links(infra, brand_id, campaign_id)
    assert (link.url, link.unique_clicks, link.total_clicks, link.bot_fetches) == (SALE, 2, 4, 2)
    with pytest.raises(Exception, match="campaign"):
        await service.links.campaign_links(infra, other.brand_id, campaign_id)


async def test_a_link_domain_is_a_host_name_and_one_brands_only(infra: bootstrap.Infra) -> None:
    mine = await brand_with_subscribers(infra.pool, 1, seed=363)
    theirs = await brand_with_subscribers(infra.pool, 1, seed=364)
    await service.links.set_link_domain(infra, theirs.brand_id, "go.theirs.example")
    with pytest.raises(Refused, match="another brand"):
        await service.links.set_link_domain(infra, mine.brand_id, "GO.theirs.example")
    for bad in ("not a domain", "https://go.example/x", "localhost", "a" * 300 + ".com"):
        with pytest.raises(InvalidInput) as caught:
            await service.links.set_link_domain(infra, mine.brand_id, bad)
        assert caught.value.field == "link_domain"
    assert (await brands.get_brand(infra.pool, mine.brand_id)).link_domain is None
