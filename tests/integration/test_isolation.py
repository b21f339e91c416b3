"""Every `/v1` route, walked with another brand's key over one brand's records: each route
that names a record answers 404 (and the record is unchanged), and every list leaves the
other brand's records out. Routes are read from the app, so a new route is walked too — and
one naming a record this walk cannot fill fails it until the walk knows how."""

from __future__ import annotations

import asyncio
import time

import httpx

from clarion import bootstrap, service
from clarion.api.app import create_app
from clarion.api.v1 import V1
from clarion.domain.clock import PinnedClock
from clarion.sim.process import SimProcess
from clarion.store import api_keys, brands
from tests.conftest import DAYTIME
from tests.integration.helpers import brand_with_subscribers, campaign, daytime

MARKERS = ("Secret Mug", "A-only VIPs", "a-only@example.com", "A-only Winter Sale")
# A body for the routes that need one to get past validation to the record's look-up.
BODIES = {
    ("PATCH", "/v1/subscribers/{subscriber_id}"): {"first_name": "Mallory"},
    ("PATCH", "/v1/campaigns/{campaign_id}"): {"name": "Mallory"},
    ("POST", "/v1/campaigns/{campaign_id}/schedule"): {"at": "2030-01-01T10:00:00Z"},
}


async def test_another_brands_key_gets_404_for_every_record_and_none_in_any_list(
    infra: bootstrap.Infra, sim: SimProcess
) -> None:
    a = await brand_with_subscribers(infra.pool, 3, seed=331)
    b_id = await brands.create_brand(infra.pool, slug="iso-b", name="Other", sender="+15125550199")
    key_a = await api_keys.create_key(infra.pool, a.brand_id, "a")
    key_b = await api_keys.create_key(infra.pool, b_id, "b")
    auth_a, auth_b = ({"Authorization": f"Bearer {k}"} for k in (key_a, key_b))
    app = create_app(infra.bus, {}, api=V1(infra, clock=PinnedClock(DAYTIME), rate_per_s=1000))
    campaign_id = await campaign(infra.pool, a.brand_id, name=MARKERS[3])
    async with (
        bootstrap.running(infra, bootstrap.build_provider(infra.settings), clock=daytime),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://c") as c,
    ):
        # one of every record, brand A's
        await c.post(f"/v1/campaigns/{campaign_id}/plan", headers=auth_a)
        sent = await c.post(
            "/v1/messages", headers=auth_a, json={"to": a.consented[0], "body": "Code 1"}
        )
        message_id = sent.json()["id"]
        subscriber = await c.post("/v1/subscribers", headers=auth_a, json={"email": MARKERS[2]})
        await c.post(
            "/v1/products/batch",
            headers=auth_a,
            json={"products": [{"id": "mug", "name": MARKERS[0]}]},
        )
        segment = await c.post(
            "/v1/segments", headers=auth_a,
            json={"name": MARKERS[1], "definition": {"attribute": "vip", "op": "exists"}},
        )  # fmt: skip
        started = await c.post(
            "/v1/imports", headers={**auth_a, "Content-Type": "text/csv"},
            content=b"phone\n+13125550777\n",
        )  # fmt: skip
        spare_key = (await c.post("/v1/keys", headers=auth_a, json={"name": "spare"})).json()["id"]
        hook = await c.post(
            "/v1/webhooks", headers=auth_a,
            json={"url": "https://hooks.a.example/clarion", "event_types": ["message.clicked"]},
        )  # fmt: skip
        ids = {
            "campaign_id": campaign_id, "message_id": message_id,
            "subscriber_id": subscriber.json()["id"], "product_id": "mug",
            "segment_id": segment.json()["id"], "import_id": started.json()["id"],
            "key_id": spare_key, "endpoint_id": hook.json()["id"],
        }  # fmt: skip
        deadline = time.monotonic() + 20
        while (await c.get(f"/v1/messages/{message_id}", headers=auth_a)).status_code != 200:
            assert time.monotonic() < deadline, "A's message was never stored"
            await asyncio.sleep(0.1)

        walked, lists = [], []
        for route, operations in app.openapi()["paths"].items():
            if not route.startswith("/v1/"):
                continue
            for method, op in operations.items():
                names = [p["name"] for p in op.get("parameters", []) if p["in"] == "path"]
                unknown = [n for n in names if n not in ids]
                assert not unknown, f"{route}: the walk cannot fill {unknown}"
                path = route.format(**{n: ids[n] for n in names})
                if not names:
                    if method == "get":
                        lists.append(path)
                    continue
                body = BODIES.get((method.upper(), route))
                theirs = await c.request(method.upper(), path, headers=auth_b, json=body)
                assert theirs.status_code == 404, (method, path, theirs.status_code, theirs.text)
                assert not any(m in theirs.text for m in MARKERS)
                walked.append((method, route))
        assert len(walked) >= 15  # every route naming a record
        for path in lists:
            theirs = await c.get(path, headers=auth_b)
            assert theirs.status_code == 200, (path, theirs.text)
            assert not any(m in theirs.text for m in MARKERS), (path, theirs.text)
            assert a.consented[0] not in theirs.text
        # the records are A's still, unchanged
        mine = await c.get(f"/v1/subscribers/{ids['subscriber_id']}", headers=auth_a)
        assert mine.json()["first_name"] is None
        assert (await c.get(f"/v1/keys/{spare_key}", headers=auth_a)).json()["revoked_at"] is None
        assert (await c.get(f"/v1/segments/{ids['segment_id']}", headers=auth_a)).status_code == 200
        hook_a = await c.get(f"/v1/webhooks/{ids['endpoint_id']}", headers=auth_a)
        assert hook_a.json()["enabled"] is True
    status = await service.campaigns.status(infra, campaign_id, brand_id=a.brand_id)
    assert (status.campaign.status, status.campaign.name) == ("draft", MARKERS[3])
