"""Recommendations end to end: a brand's shop events train a model (`service.recs.train`), and
a campaign whose body reads `recommendations[0].name` and `.url` sends each subscriber their
own product, in stock, with a short link of theirs that redirects to it; a subscriber with
no events gets the popular product."""

from __future__ import annotations

import re
from datetime import timedelta

import httpx

from clarion import bootstrap
from clarion.api.app import create_app
from clarion.domain.catalog import Product
from clarion.domain.clock import PinnedClock
from clarion.service import recs as service_recs
from clarion.service.links import Clicks, Redirects
from clarion.sim.process import SimProcess
from clarion.store import catalog, events
from tests.conftest import DAYTIME
from tests.integration.helpers import brand_with_subscribers, campaign, send_campaign

BODY = "{{ brand.name }}: {{ recommendations[0].name }} {{ recommendations[0].url }} Reply STOP"
SHORT = re.compile(r"(http://[^ ]+/l/)([A-Za-z0-9_-]{22})")
KINDS = 8  # products with fans; a ninth sells out; fans of none are newcomers


async def test_each_subscriber_is_sent_their_own_product_with_a_short_link_to_it(
    infra: bootstrap.Infra, sim: SimProcess
) -> None:
    audience = await brand_with_subscribers(infra.pool, 40, seed=881)
    brand_id, pool = audience.brand_id, infra.pool
    products = [
        Product(id=f"sku-{k}", name=f"Lamp {k}", url=f"https://northwind.example/p/{k}",
                price=20.0 + k)
        for k in range(KINDS + 1)
    ]  # fmt: skip
    await catalog.upsert(pool, brand_id, products)
    subs = await pool.fetch("SELECT id FROM subscribers WHERE brand_id = $1 ORDER BY id", brand_id)
    fans = {r["id"]: k % KINDS for k, r in enumerate(subs[:32])}  # four fans a product
    newcomers = [r["id"] for r in subs[32:]]
    at = DAYTIME - timedelta(days=3)
    rows: list[events.EventCopy] = []
    for sid, k in fans.items():
        item = [{"product_id": f"sku-{k}", "quantity": 1}]
        for n, kind in enumerate(("viewed_product", "added_to_cart", "ordered")):
            rows.append((f"{sid}-{n}", sid, kind, at, None, item))
        # and everyone looked at the product that sells out
        rows.append((f"{sid}-x", sid, "viewed_product", at, None, [{"product_id": f"sku-{KINDS}"}]))
    await events.copy_events(pool, brand_id, rows)
    await catalog.upsert(pool, brand_id, [Product(id=f"sku-{KINDS}", name="Gone", in_stock=False)])

    model = await service_recs.train(pool, brand_id, now=DAYTIME)
    assert model is not None
    assert (model.kind, model.version) == ("recs", 1)
    assert model.summary["subscribers"] == 32
    assert f"sku-{KINDS}" not in model.summary["popular"]

    campaign_id = await campaign(pool, brand_id, BODY)
    await send_campaign(infra, sim, campaign_id)
    sent = await pool.fetch(
        "SELECT subscriber_id, body FROM messages WHERE campaign_id = $1 AND sent_at IS NOT NULL",
        campaign_id,
    )
    assert len(sent) >= 30
    popular_name = next(p.name for p in products if p.id == model.summary["popular"][0])
    secret = infra.settings.unsubscribe_secret
    assert secret is not None
    app = create_app(
        infra.bus, {}, redirects=Redirects(infra, secret, Clicks(infra), PinnedClock(DAYTIME))
    )
    codes = set()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as client:
        for row in sent:
            sid, body = row["subscriber_id"], row["body"]
            k = fans.get(sid)
            name = f"Lamp {k}" if k is not None else popular_name
            assert f"Northwind: {name} " in body, (sid, body)
            assert "Gone" not in body
            found = SHORT.search(body)
            assert found is not None, body
            codes.add(found[2])
            r = await client.get(f"{found[1]}{found[2]}", headers={"User-Agent": "Mozilla/5.0"})
            assert r.status_code == 302
            want = k if k is not None else int(model.summary["popular"][0].split("-")[1])
            assert r.headers["location"] == f"https://northwind.example/p/{want}"
    assert len(codes) == len(sent)  # one link per recipient
    assert any(row["subscriber_id"] in newcomers for row in sent)
    registered = await pool.fetchval(
        "SELECT count(*) FROM links WHERE campaign_id = $1", campaign_id
    )
    assert 1 <= registered <= KINDS  # each product's link once, not once per recipient


async def test_a_brand_without_events_trains_nothing(infra: bootstrap.Infra) -> None:
    audience = await brand_with_subscribers(infra.pool, 3, seed=882)
    assert await service_recs.train(infra.pool, audience.brand_id, now=DAYTIME) is None
