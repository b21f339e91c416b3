"""Segments: every kind of condition counted against a small brand whose answer is known,
definitions refused by the path of their bad part, saved segments scoped to their brand."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from clarion import bootstrap
from tests.integration.helpers import api_client, brand_key


@pytest.fixture
async def client(infra: bootstrap.Infra) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(infra) as c:  # the real clock: events are timed from now
        yield c


async def _brand(infra: bootstrap.Infra, slug: str) -> dict[str, str]:
    return (await brand_key(infra, slug))[1]


def _ago(days: float) -> str:
    return (datetime.now(UTC) - timedelta(days=days)).isoformat()


SMS = {"sms": {"source": "checkout"}}
PEOPLE = [
    {"phone": "+13125550001", "consent": SMS,
     "attributes": {"vip": True, "orders": 5, "since": "2024-03-01", "city": "Austin"}},
    {"phone": "+12125550002", "consent": SMS,
     "attributes": {"vip": False, "orders": 1, "since": "2023-12-01", "city": "Boston"}},
    {"phone": "+15125550003", "attributes": {"orders": 12, "city": "austin"}},
    {"email": "d@x.co", "consent": {"email": {"source": "footer"}}, "attributes": {"vip": True}},
]  # fmt: skip


async def _seed(client: httpx.AsyncClient, auth: dict[str, str]) -> list[int]:
    ids = []
    for p in PEOPLE:
        made = await client.post("/v1/subscribers", headers=auth, json=p)
        assert made.status_code == 201, made.text
        ids.append(made.json()["id"])
    s1, s2, s3, _ = ids

    def event(i: str, kind: str, who: int, days: float, **more: Any) -> dict[str, Any]:
        return {"id": i, "type": kind, "occurred_at": _ago(days), "subscriber": {"id": who}, **more}

    events = [
        event("o1", "ordered", s1, 3, value=20), event("o2", "ordered", s1, 10, value=35),
        event("o3", "ordered", s2, 5, value=12),
        event("o4", "ordered", s3, 200), event("o5", "ordered", s3, 210),
        event("o6", "ordered", s3, 220),
        event("v1", "viewed_product", s1, 1, properties={"category": "mugs", "price": 12}),
        event("v2", "viewed_product", s2, 1, properties={"category": "tea", "price": 30}),
    ]  # fmt: skip
    stored = await client.post("/v1/events", headers=auth, json={"events": events})
    assert stored.json()["stored"] == len(events), stored.text
    return ids


CASES: list[tuple[dict[str, Any], int]] = [
    ({"attribute": "vip", "op": "eq", "value": True}, 2),
    ({"attribute": "vip", "op": "ne", "value": True}, 2),  # false, and never set
    ({"attribute": "orders", "op": "gt", "value": 4}, 2),
    ({"attribute": "orders", "op": "lte", "value": 5}, 2),
    ({"attribute": "since", "op": "gte", "value": "2024-01-01"}, 1),  # as dates
    ({"attribute": "since", "op": "lt", "value": "2024-01-01T00:00:00Z"}, 1),
    ({"attribute": "city", "op": "contains", "value": "AUS"}, 2),
    ({"attribute": "city", "op": "starts_with", "value": "bo"}, 1),
    ({"attribute": "city", "op": "in", "value": ["Boston", "Denver"]}, 1),
    ({"attribute": "city", "op": "not_in", "value": ["Boston"]}, 3),
    ({"attribute": "vip", "op": "exists"}, 3),
    ({"attribute": "vip", "op": "not_exists"}, 1),
    ({"field": "state", "op": "eq", "value": "TX"}, 1),
    ({"field": "state", "op": "in", "value": ["NY", "IL"]}, 2),
    ({"field": "email", "op": "exists"}, 1),
    ({"field": "phone", "op": "starts_with", "value": "+1312"}, 1),
    ({"consent": "sms"}, 2),
    ({"consent": "email"}, 1),
    ({"not": {"consent": "sms"}}, 2),
    ({"subscribed_within_days": 1}, 4),
    ({"event": "ordered"}, 3),
    ({"event": "ordered", "count": {"gte": 2}, "within_days": 90}, 1),
    ({"event": "ordered", "count": {"eq": 0}, "within_days": 90}, 2),
    ({"event": "ordered", "count": {"lt": 2}}, 2),  # s2 (1) and s4 (none)
    ({"event": "ordered", "count": {"eq": 3}}, 1),
    ({"event": "viewed_product",
      "where": [{"property": "category", "op": "eq", "value": "mugs"}]}, 1),
    ({"event": "viewed_product", "where": [{"property": "price", "op": "gte", "value": 20}]}, 1),
    ({"message": "sent", "count": {"eq": 0}}, 4),
    ({"all": [{"attribute": "orders", "op": "gt", "value": 2},
              {"event": "ordered", "count": {"gte": 2}, "within_days": 90}]}, 1),
    ({"any": [{"field": "state", "op": "eq", "value": "TX"}, {"consent": "email"}]}, 2),
]  # fmt: skip


async def test_every_kind_of_condition_counts_what_it_says(
    infra: bootstrap.Infra, client: httpx.AsyncClient
) -> None:
    auth = await _brand(infra, "segments-count")
    await _seed(client, auth)
    other = await _brand(infra, "segments-other")  # the same people elsewhere count nowhere
    await _seed(client, other)
    wrong = []
    for definition, expected in CASES:
        resp = await client.post(
            "/v1/segments/count", headers=auth, json={"definition": definition}
        )
        assert resp.status_code == 200, (definition, resp.text)
        if resp.json()["count"] != expected:
            wrong.append((definition, resp.json()["count"], expected))
    assert wrong == []


@pytest.mark.parametrize(
    ("definition", "path"),
    [
        ({"all": [{"attribute": "a", "op": "eq", "value": 1},
                  {"attribute": "b", "op": "bogus", "value": 1}]}, "definition.all[1].op"),
        ({"colour": "red"}, "definition"),
        ({"attribute": "1bad", "op": "eq", "value": 1}, "definition.attribute"),
        ({"attribute": "a", "op": "in", "value": 3}, "definition.value"),
        ({"attribute": "a", "op": "gt", "value": True}, "definition.value"),
        ({"field": "zip", "op": "eq", "value": "x"}, "definition.field"),
        ({"field": "state", "op": "gt", "value": "TX"}, "definition.op"),
        ({"any": []}, "definition.any"),
        ({"not": {"consent": "fax"}}, "definition.not.consent"),
        ({"event": "Ordered"}, "definition.event"),
        ({"event": "ordered", "count": {"most": 2}}, "definition.count.most"),
        ({"event": "ordered", "within_days": 0}, "definition.within_days"),
        ({"event": "ordered", "where": [{"property": "p", "op": "eq"}]},
         "definition.where[0].value"),
        ({"message": "clicked"}, "definition.message"),
        ({"all": [{"not": {"not": {"not": {"not": {"not": {"not": {"not": {"not":
            {"consent": "sms"}}}}}}}}}]}, "definition.all[0].not.not.not.not.not.not.not"),
    ],
)  # fmt: skip
async def test_a_bad_definition_is_refused_by_the_path_of_its_bad_part(
    infra: bootstrap.Infra, client: httpx.AsyncClient, definition: dict[str, Any], path: str
) -> None:
    auth = await _brand(infra, f"segments-bad-{abs(hash(path)) % 10**8}")
    resp = await client.post("/v1/segments/count", headers=auth, json={"definition": definition})
    assert resp.status_code == 422, resp.text
    assert resp.json()["field"] == path, resp.text


async def test_a_saved_segment_counts_live_and_belongs_to_its_brand(
    infra: bootstrap.Infra, client: httpx.AsyncClient
) -> None:
    auth = await _brand(infra, "segments-saved")
    other = await _brand(infra, "segments-saved-other")
    ids = await _seed(client, auth)
    vip = {"attribute": "vip", "op": "eq", "value": True}
    made = await client.post("/v1/segments", headers=auth, json={"name": "VIPs", "definition": vip})
    assert made.status_code == 201, made.text
    segment = made.json()
    url = f"/v1/segments/{segment['id']}"
    assert (await client.get(f"{url}/count", headers=auth)).json()["count"] == 2
    await client.patch(
        f"/v1/subscribers/{ids[1]}", headers=auth, json={"attributes": {"vip": True}}
    )
    assert (await client.get(f"{url}/count", headers=auth)).json()["count"] == 3  # live
    listed = (await client.get("/v1/segments", headers=auth)).json()["data"]
    assert [s["name"] for s in listed] == ["VIPs"]
    for method, path in (("GET", url), ("GET", f"{url}/count"), ("DELETE", url)):
        assert (await client.request(method, path, headers=other)).status_code == 404
    assert (await client.delete(url, headers=auth)).status_code == 204
    assert (await client.get(url, headers=auth)).status_code == 404
    bad = await client.post(
        "/v1/segments", headers=auth, json={"name": "x", "definition": {"consent": "fax"}}
    )
    assert bad.status_code == 422
    assert bad.json()["field"] == "definition.consent"
