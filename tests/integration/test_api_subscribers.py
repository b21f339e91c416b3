"""`/v1/subscribers`: one, a batch (each accepted or rejected by index), look-up by phone in
any format or by email, changes (attributes merged, keeping their JSON types), duplicates
named, erasure that keeps the consent ledger's legal record, and another brand's ids 404."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from clarion import bootstrap
from clarion.domain.clock import PinnedClock
from tests.conftest import DAYTIME
from tests.integration.helpers import api_client, brand_key

DISCLOSURE = "Northwind: up to 4 msgs/mo. Msg & data rates may apply. Reply STOP to cancel."


@pytest.fixture
async def client(infra: bootstrap.Infra) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(infra, clock=PinnedClock(DAYTIME)) as c:
        yield c


async def _key(infra: bootstrap.Infra, slug: str) -> dict[str, str]:
    return (await brand_key(infra, slug))[1]


async def test_a_subscriber_is_created_found_by_phone_in_any_format_and_changed(
    infra: bootstrap.Infra, client: httpx.AsyncClient
) -> None:
    auth = await _key(infra, "subs-one")
    made = await client.post(
        "/v1/subscribers",
        headers=auth,
        json={
            "phone": "(512) 555-0142",
            "email": "Ava@Example.com",
            "first_name": "Ava",
            "attributes": {"vip": True, "orders": 3, "ltv": 120.5, "since": "2024-03-01"},
            "consent": {"sms": {"source": "checkout form", "disclosure": DISCLOSURE}},
        },
    )
    assert made.status_code == 201, made.text
    ava = made.json()
    assert ava["phone"] == "+15125550142"
    assert ava["email"] == "ava@example.com"
    assert ava["timezone"] == "America/Chicago"  # from the number
    assert ava["attributes"] == {"vip": True, "orders": 3, "ltv": 120.5, "since": "2024-03-01"}
    assert ava["consent"] == {"sms": "opted_in", "email": None}

    for phone in ("+1 512 555 0142", "512.555.0142", "15125550142"):
        found = await client.get("/v1/subscribers", headers=auth, params={"phone": phone})
        assert [s["id"] for s in found.json()["data"]] == [ava["id"]], phone
    by_email = await client.get(
        "/v1/subscribers", headers=auth, params={"email": "AVA@example.com"}
    )
    assert [s["id"] for s in by_email.json()["data"]] == [ava["id"]]

    changed = await client.patch(
        f"/v1/subscribers/{ava['id']}",
        headers=auth,
        json={"last_name": "Lee", "attributes": {"orders": 4, "vip": None, "tier": "gold"}},
    )
    assert changed.status_code == 200, changed.text
    after = changed.json()
    assert after["last_name"] == "Lee"
    assert after["first_name"] == "Ava"  # not given: unchanged
    assert after["attributes"] == {"orders": 4, "ltv": 120.5, "since": "2024-03-01", "tier": "gold"}
    stored = await infra.pool.fetchval(
        "SELECT jsonb_typeof(attributes->'orders') FROM subscribers WHERE id = $1", ava["id"]
    )
    assert stored == "number"  # JSON types are kept, not turned into text

    ledger = await infra.pool.fetch(
        "SELECT channel, status, source, disclosure, evidence FROM consents"
        " WHERE subscriber_id = $1",
        ava["id"],
    )
    assert [(r["channel"], r["status"], r["source"]) for r in ledger] == [
        ("sms", "opted_in", "checkout form")
    ]
    assert ledger[0]["disclosure"] == DISCLOSURE
    assert "api_key_id" in ledger[0]["evidence"]


async def test_a_duplicate_phone_or_email_is_409_naming_the_existing_subscriber(
    infra: bootstrap.Infra, client: httpx.AsyncClient
) -> None:
    auth = await _key(infra, "subs-dup")
    first = (
        await client.post(
            "/v1/subscribers", headers=auth, json={"phone": "+15125550143", "email": "a@b.co"}
        )
    ).json()
    again = await client.post("/v1/subscribers", headers=auth, json={"phone": "512-555-0143"})
    assert again.status_code == 409
    assert again.json()["code"] == "duplicate"
    assert again.json()["existing_id"] == first["id"]
    assert again.json()["field"] == "phone"
    by_email = await client.post("/v1/subscribers", headers=auth, json={"email": "A@B.CO"})
    assert by_email.status_code == 409
    assert by_email.json()["field"] == "email"
    other = (
        await client.post("/v1/subscribers", headers=auth, json={"phone": "+15125550144"})
    ).json()
    taken = await client.patch(
        f"/v1/subscribers/{other['id']}", headers=auth, json={"email": "a@b.co"}
    )
    assert taken.status_code == 409
    assert taken.json()["existing_id"] == first["id"]


async def test_a_batch_accepts_the_good_and_names_each_bad_one_by_index(
    infra: bootstrap.Infra, client: httpx.AsyncClient
) -> None:
    auth = await _key(infra, "subs-batch")
    batch = [
        {"phone": "+15125550150", "first_name": "Noah"},
        {"phone": "not a number"},
        {"email": "mia@example.com", "attributes": {"bad name!": 1}},
        {"phone": "5125550150"},  # the first one again
        {"phone": "+15125550151", "consent": {"sms": {"disclosure": "no source"}}},
        {"phone": "+15125550152", "colour": "red"},
        {"email": "liam@example.com", "timezone": "Mars/Olympus"},
        {"email": "zoe@example.com", "consent": {"email": {"source": "footer form"}}},
    ]
    resp = await client.post("/v1/subscribers/batch", headers=auth, json={"subscribers": batch})
    assert resp.status_code == 200, resp.text
    out = resp.json()
    assert (out["created"], out["rejected"]) == (2, 6)
    results = out["results"]
    assert [r["index"] for r in results] == list(range(8))
    assert [r["status"] for r in results] == [
        "created", "rejected", "rejected", "rejected", "rejected", "rejected", "rejected",
        "created",
    ]  # fmt: skip
    assert results[1]["error"]["field"] == "phone"
    assert results[2]["error"]["field"] == "attributes.bad name!"
    assert results[3]["existing_id"] == results[0]["id"]
    assert results[4]["error"]["field"] == "consent.sms.source"
    assert results[5]["error"]["field"] == "colour"
    assert results[6]["error"]["field"] == "timezone"
    count = await infra.pool.fetchval(
        "SELECT count(*) FROM subscribers s JOIN brands b ON b.id = s.brand_id"
        " WHERE b.slug = 'subs-batch'"
    )
    assert count == 2
    too_many = await client.post(
        "/v1/subscribers/batch",
        headers=auth,
        json={"subscribers": [{"phone": "+15125550100"}] * 1001},
    )
    assert too_many.status_code == 422
    assert too_many.json()["field"] == "subscribers"


async def test_erasure_removes_personal_data_and_keeps_the_ledgers_record(
    infra: bootstrap.Infra, client: httpx.AsyncClient
) -> None:
    auth = await _key(infra, "subs-erase")
    made = (
        await client.post(
            "/v1/subscribers",
            headers=auth,
            json={
                "phone": "+15125550160",
                "first_name": "Eve",
                "attributes": {"city": "Austin"},
                "consent": {"sms": {"source": "keyword JOIN", "disclosure": DISCLOSURE}},
            },
        )
    ).json()
    gone = await client.delete(f"/v1/subscribers/{made['id']}", headers=auth)
    assert gone.status_code == 204
    assert (await client.get(f"/v1/subscribers/{made['id']}", headers=auth)).status_code == 404
    row = await infra.pool.fetchrow("SELECT * FROM subscribers WHERE id = $1", made["id"])
    assert (row["phone"], row["email"], row["first_name"], row["attributes"]) == (
        None, None, None, {},
    )  # fmt: skip
    assert row["erased_at"] is not None
    assert row["phone_hash"] is not None
    ledger = await infra.pool.fetch(
        "SELECT status, source, disclosure FROM consents WHERE subscriber_id = $1 ORDER BY id",
        made["id"],
    )
    assert [r["status"] for r in ledger] == ["opted_in", "opted_out"]
    assert ledger[0]["disclosure"] == DISCLOSURE  # the legal record stays
    # the number can sign up again as someone new
    again = await client.post("/v1/subscribers", headers=auth, json={"phone": "+15125550160"})
    assert again.status_code == 201
    assert (await client.delete(f"/v1/subscribers/{made['id']}", headers=auth)).status_code == 404


async def test_another_brands_subscriber_is_404_to_every_route(
    infra: bootstrap.Infra, client: httpx.AsyncClient
) -> None:
    mine = await _key(infra, "subs-mine")
    theirs = await _key(infra, "subs-theirs")
    their = (
        await client.post("/v1/subscribers", headers=theirs, json={"phone": "+15125550170"})
    ).json()
    for method, kwargs in (
        ("GET", {}),
        ("PATCH", {"json": {"first_name": "Mallory"}}),
        ("DELETE", {}),
    ):
        resp = await client.request(
            method, f"/v1/subscribers/{their['id']}", headers=mine, **kwargs
        )
        assert resp.status_code == 404, (method, resp.text)
    found = await client.get("/v1/subscribers", headers=mine, params={"phone": "+15125550170"})
    assert found.json()["data"] == []
    listed = await client.get("/v1/subscribers", headers=mine)
    assert listed.json()["data"] == []
    still = await client.get(f"/v1/subscribers/{their['id']}", headers=theirs)
    assert still.json()["first_name"] is None
    assert still.json()["phone"] == "+15125550170"
