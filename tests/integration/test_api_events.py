"""`/v1/events` and `/v1/products`: each event or product accepted or rejected on its own,
an event stored once per client id, events tied to the brand's own subscribers only."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from clarion import bootstrap
from clarion.domain.clock import PinnedClock
from tests.conftest import DAYTIME
from tests.integration.helpers import api_client, brand_key


@pytest.fixture
async def client(infra: bootstrap.Infra) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(infra, clock=PinnedClock(DAYTIME)) as c:
        yield c


async def _key(infra: bootstrap.Infra, slug: str) -> dict[str, str]:
    return (await brand_key(infra, slug))[1]


def _order(client_id: str, **subscriber: object) -> dict[str, object]:
    return {
        "id": client_id,
        "type": "ordered",
        "occurred_at": "2026-11-24T18:30:00Z",
        "subscriber": subscriber,
        "value": 59.5,
        "items": [{"product_id": "mug-1", "quantity": 2, "price": 29.75}],
        "properties": {"coupon": "WINTER", "first_order": True},
    }


async def test_events_are_stored_once_and_bad_ones_are_named_by_index(
    infra: bootstrap.Infra, client: httpx.AsyncClient
) -> None:
    auth = await _key(infra, "events-one")
    ava = (
        await client.post(
            "/v1/subscribers", headers=auth, json={"phone": "+15125550142", "email": "ava@x.co"}
        )
    ).json()
    batch = [
        _order("o-1", phone="(512) 555-0142"),
        _order("o-2", email="AVA@x.co"),
        {**_order("v-1", id=ava["id"]), "type": "viewed_product", "value": None},
        _order("o-3", phone="+15125559999"),  # nobody's
        {**_order("o-4", id=ava["id"]), "occurred_at": "2026-11-24T18:30:00"},  # no offset
        {**_order("o-5", id=ava["id"]), "subscriber": {"id": ava["id"], "email": "a@x.co"}},
        {**_order("o-6", id=ava["id"]), "type": "Bad Type"},
        {**_order("o-7", id=ava["id"]), "items": [{"product_id": "m", "quantity": 0}]},
        {**_order("o-8", id=ava["id"]), "colour": "red"},
        _order("o-1", phone="+15125550142"),  # the same id again, in the same request
        {**_order("c-1", id=ava["id"]), "type": "loyalty.points_earned", "value": None},
    ]
    resp = await client.post("/v1/events", headers=auth, json={"events": batch})
    assert resp.status_code == 200, resp.text
    out = resp.json()
    assert (out["stored"], out["duplicates"]) == (4, 1)
    assert [(r["index"], r["field"]) for r in out["rejected"]] == [
        (3, "subscriber.phone"),
        (4, "occurred_at"),
        (5, "subscriber"),
        (6, "type"),
        (7, "items[0].quantity"),
        (8, "colour"),
    ]
    again = await client.post("/v1/events", headers=auth, json={"events": batch[:3]})
    assert again.json()["stored"] == 0
    assert again.json()["duplicates"] == 3
    rows = await infra.pool.fetch(
        "SELECT client_id, subscriber_id, type, value::float8 AS value, items, properties"
        " FROM events WHERE subscriber_id = $1 ORDER BY client_id",
        ava["id"],
    )
    assert [r["client_id"] for r in rows] == ["c-1", "o-1", "o-2", "v-1"]
    order = rows[1]
    assert order["value"] == 59.5
    assert order["items"] == [{"product_id": "mug-1", "quantity": 2, "price": 29.75}]
    assert order["properties"] == {"coupon": "WINTER", "first_order": True}


async def test_events_never_reach_another_brands_subscriber(
    infra: bootstrap.Infra, client: httpx.AsyncClient
) -> None:
    mine = await _key(infra, "events-mine")
    theirs = await _key(infra, "events-theirs")
    their = (
        await client.post("/v1/subscribers", headers=theirs, json={"phone": "+15125550143"})
    ).json()
    resp = await client.post(
        "/v1/events",
        headers=mine,
        json={"events": [_order("x-1", id=their["id"]), _order("x-2", phone="+15125550143")]},
    )
    assert resp.json()["stored"] == 0
    assert [r["field"] for r in resp.json()["rejected"]] == ["subscriber.id", "subscriber.phone"]
    assert await infra.pool.fetchval("SELECT count(*) FROM events WHERE client_id LIKE 'x-%'") == 0


async def test_a_malformed_or_oversized_request_is_a_clear_422(
    infra: bootstrap.Infra, client: httpx.AsyncClient
) -> None:
    auth = await _key(infra, "events-bad")
    cases = [
        (b"not json", "body"),
        (b'{"events": []}', "events"),
        (b'{"events": [], "extra": 1}', "extra"),
        (b'{"events": {}}', "events"),
    ]
    for raw, field in cases:
        resp = await client.post(
            "/v1/events", headers={**auth, "Content-Type": "application/json"}, content=raw
        )
        assert resp.status_code == 422, raw
        assert resp.json()["field"] == field, (raw, resp.text)
    too_many = {"events": [_order(f"e{i}", id=1) for i in range(1001)]}
    assert (await client.post("/v1/events", headers=auth, json=too_many)).status_code == 422


async def test_products_are_upserted_listed_and_read_by_the_shops_id(
    infra: bootstrap.Infra, client: httpx.AsyncClient
) -> None:
    auth = await _key(infra, "catalog")
    products = [
        {"id": "mug-1", "name": "Mug", "url": "https://shop.example/mug", "price": 29.75,
         "categories": ["kitchen", "gifts"]},
        {"id": "tea-1", "name": "Tea", "price": 9, "in_stock": False},
        {"id": "bad-1", "name": "Bad", "price": -1},
        {"id": "bad-2", "url": "ftp://x"},
        {"id": "mug-1", "name": "Mug (blue)", "price": 31.0},  # the last one wins
        {"id": "cup-1", "name": "Cup", "categories": ["kitchen", "gifts"]},
    ]  # fmt: skip
    resp = await client.post("/v1/products/batch", headers=auth, json={"products": products})
    assert resp.status_code == 200, resp.text
    assert resp.json()["written"] == 3
    assert [(r["index"], r["field"]) for r in resp.json()["rejected"]] == [
        (2, "price"), (3, "name"),
    ]  # fmt: skip
    mug = (await client.get("/v1/products/mug-1", headers=auth)).json()
    assert (mug["name"], mug["price"], mug["in_stock"]) == ("Mug (blue)", 31.0, True)
    assert mug["categories"] == []  # replaced whole
    tea = (await client.get("/v1/products/tea-1", headers=auth)).json()
    assert tea["in_stock"] is False
    listed = (await client.get("/v1/products", headers=auth, params={"limit": 1})).json()
    assert [p["id"] for p in listed["data"]] == ["mug-1"]
    rest = await client.get("/v1/products", headers=auth, params={"cursor": listed["next_cursor"]})
    assert [p["id"] for p in rest.json()["data"]] == ["tea-1", "cup-1"]
    assert rest.json()["data"][1]["categories"] == ["kitchen", "gifts"]
    other = await _key(infra, "catalog-other")
    assert (await client.get("/v1/products/mug-1", headers=other)).status_code == 404
