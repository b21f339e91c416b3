"""Revenue attribution: an order goes to the last message the subscriber clicked within the
brand's click window, else the last one delivered within its view window; once, never to two
messages; judged by what happened before it, however late or out of order it arrives."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from clarion import bootstrap, service
from clarion.domain.clock import PinnedClock
from clarion.pipeline import links
from clarion.service.links import Clicks, Redirects
from clarion.sim.process import SimProcess
from clarion.store import attribution
from tests.integration.helpers import brand_with_subscribers, campaign, send_campaign

URL = "https://northwind.example/sale"
BODY = "{{ brand.name }}: 40% off today: " + URL + " Reply STOP to opt out."
IPHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 Mobile"


async def _click(infra: bootstrap.Infra, code: str, at: datetime, ua: str = IPHONE) -> None:
    secret = infra.settings.unsubscribe_secret
    assert secret is not None
    clicks = Clicks(infra)
    redirects = Redirects(infra, secret, clicks, PinnedClock(at))
    assert await redirects.follow(code, "clarion.example", "GET", ua) == URL
    await clicks.flush()


async def test_orders_go_to_the_last_click_else_the_last_delivery_once(
    infra: bootstrap.Infra, sim: SimProcess
) -> None:
    audience = await brand_with_subscribers(infra.pool, 20, seed=371)
    brand_id = audience.brand_id
    # two campaigns an hour apart may both reach a subscriber
    await infra.pool.execute("UPDATE brands SET smart_sending_h = 0 WHERE id = $1", brand_id)
    first = await campaign(infra.pool, brand_id, body=BODY)
    await send_campaign(infra, sim, first)
    second = await campaign(infra.pool, brand_id, body=BODY)
    await send_campaign(infra, sim, second)
    delivered = await infra.pool.fetch(
        "SELECT m.subscriber_id, m.campaign_id, m.id::text AS message_id, m.body,"
        " ev.occurred_at FROM messages m JOIN message_events ev ON ev.message_id = m.id"
        " AND ev.status = 'delivered' WHERE m.brand_id = $1"
        " ORDER BY m.subscriber_id, ev.occurred_at",
        brand_id,
    )
    by_sub: dict[int, list[dict[str, Any]]] = {}
    for r in delivered:
        by_sub.setdefault(r["subscriber_id"], []).append(dict(r))
    both = [s for s, ms in by_sub.items() if {m["campaign_id"] for m in ms} == {first, second}]
    assert len(both) >= 4, by_sub
    a, b, c, d = both[:4]
    last_delivery = max(m["occurred_at"] for ms in by_sub.values() for m in ms)

    def code(sub: int, campaign_id: int) -> str:
        (m,) = [m for m in by_sub[sub] if m["campaign_id"] == campaign_id]
        found = links.find_urls(m["body"])
        return found[0].rsplit("/", 1)[1]

    # A clicked the first campaign's link after both were delivered: the click wins over the
    # later delivery of the second
    await _click(infra, code(a, first), last_delivery + timedelta(minutes=5))
    # D's click was a link scanner's: no click for attribution
    await _click(infra, code(d, first), last_delivery + timedelta(minutes=5), ua="Barracuda/1")
    t = last_delivery + timedelta(hours=1)
    orders = [
        {"id": "o-a", "subscriber": {"id": a}, "occurred_at": t, "value": 120.0},
        # B clicked nothing: the last delivery (the second campaign's) within 24 hours
        {"id": "o-b", "subscriber": {"id": b}, "occurred_at": t, "value": 80.0},
        # C ordered three days later: outside both windows
        {"id": "o-c", "subscriber": {"id": c}, "occurred_at": t + timedelta(days=3), "value": 5},
        # A's earlier order, sent late and out of order: before the click, so a view
        {"id": "o-a0", "subscriber": {"id": a},
         "occurred_at": last_delivery + timedelta(minutes=1), "value": 10.0},
        {"id": "o-d", "subscriber": {"id": d}, "occurred_at": t, "value": 7.0},
    ]  # fmt: skip
    raw = [{**o, "type": "ordered", "occurred_at": o["occurred_at"].isoformat()} for o in orders]
    now = t + timedelta(days=3, minutes=1)
    assert (await service.events.ingest(infra, brand_id, raw, now=now)).stored == 5
    # a retry of the same orders changes nothing
    assert (await service.events.ingest(infra, brand_id, raw, now=now)).duplicates == 5

    got = {
        r["client_id"]: (r["campaign_id"], r["how"], r["subscriber_id"], float(r["value"]))
        for r in await infra.pool.fetch(
            "SELECT e.client_id, a.campaign_id, a.how, a.subscriber_id, a.value"
            " FROM attributions a JOIN events e ON e.id = a.event_id WHERE a.brand_id = $1",
            brand_id,
        )
    }
    assert got == {
        "o-a": (first, "click", a, 120.0),
        "o-b": (second, "view", b, 80.0),
        "o-a0": (second, "view", a, 10.0),
        "o-d": (second, "view", d, 7.0),
    }
    # looking again changes nothing; a brand that narrows its click window to nothing
    # has A's order go to the last delivery instead
    ids = [r["id"] for r in await infra.pool.fetch(
        "SELECT id FROM events WHERE brand_id = $1", brand_id)]  # fmt: skip
    assert await attribution.attribute(infra.pool, ids) == 0
    await service.brands.set_attribution_windows(infra, brand_id, 0.0, 24.0)
    assert await attribution.attribute(infra.pool, ids) == 1
    how = await infra.pool.fetchrow(
        "SELECT a.campaign_id, a.how FROM attributions a JOIN events e ON e.id = a.event_id"
        " WHERE e.client_id = 'o-a' AND e.brand_id = $1",
        brand_id,
    )
    assert tuple(how) == (second, "view")
    assert await infra.pool.fetchval(
        "SELECT count(*) FROM attributions WHERE brand_id = $1", brand_id
    ) == 4  # fmt: skip
