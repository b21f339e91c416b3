"""`/v1/campaigns`: drafts created to the whole list, a segment or a definition, listed in
pages, changed and deleted while they are drafts (409 after), launched, paused, resumed and
cancelled (each refusal a 409 or a 422, never a 500), bad bodies named by field, and
another brand's ids 404."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, get_args

import httpx
import pytest

from clarion import bootstrap
from clarion.api.campaigns import Status
from clarion.domain.clock import PinnedClock
from clarion.domain.rows import CAMPAIGN_STATUSES
from clarion.store import api_keys
from tests.conftest import DAYTIME
from tests.integration.helpers import BODY, api_client, brand_key, brand_with_subscribers

VIPS = {"attribute": "vip", "op": "eq", "value": True}
BOSTON = {"attribute": "city", "op": "eq", "value": "Boston"}


@pytest.fixture
async def client(infra: bootstrap.Infra) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(infra, clock=PinnedClock(DAYTIME)) as c:
        yield c


async def _key(infra: bootstrap.Infra, slug: str) -> dict[str, str]:
    return (await brand_key(infra, slug))[1]


async def _segment(
    client: httpx.AsyncClient, auth: dict[str, str], definition: dict[str, Any]
) -> int:
    made = await client.post(
        "/v1/segments", headers=auth, json={"name": "s", "definition": definition}
    )
    assert made.status_code == 201, made.text
    return int(made.json()["id"])


async def _draft(client: httpx.AsyncClient, auth: dict[str, str], **more: Any) -> dict[str, Any]:
    made = await client.post(
        "/v1/campaigns", headers=auth, json={"name": "Winter sale", "body": BODY, **more}
    )
    assert made.status_code == 201, made.text
    return dict(made.json())


def _error(resp: httpx.Response, status: int) -> dict[str, Any]:
    assert resp.status_code == status, (resp.status_code, resp.text)
    return dict(resp.json())


async def test_a_campaign_is_created_to_the_whole_list_a_segment_or_a_definition(
    infra: bootstrap.Infra, client: httpx.AsyncClient
) -> None:
    auth = await _key(infra, "camp-create")
    vips, boston = await _segment(client, auth, VIPS), await _segment(client, auth, BOSTON)

    whole = await _draft(client, auth)
    assert whole["status"] == "draft"
    assert (whole["name"], whole["channel"], whole["body"]) == ("Winter sale", "sms", BODY)
    assert (whole["subject"], whole["email_body"], whole["launched_at"]) == (None, None, None)
    assert whole["targeting"] == {"segment_id": None, "definition": None, "exclude_segment_ids": []}

    to_segment = await _draft(
        client, auth, channel="both", subject="{{ brand.name }} news", email_body="Hi!",
        audience={"segment_id": vips, "exclude_segment_ids": [boston]},
    )  # fmt: skip
    assert to_segment["channel"] == "both"
    assert (to_segment["subject"], to_segment["email_body"]) == ("{{ brand.name }} news", "Hi!")
    assert to_segment["targeting"] == {
        "segment_id": vips, "definition": None, "exclude_segment_ids": [boston]
    }  # fmt: skip

    own = await _draft(client, auth, audience={"definition": {"all": [VIPS, BOSTON]}})
    assert own["targeting"]["definition"] == {"all": [VIPS, BOSTON]}

    # one campaign: what it is, and its progress under the keys it always had
    got = await client.get(f"/v1/campaigns/{to_segment['id']}", headers=auth)
    assert got.status_code == 200, got.text
    body = got.json()
    assert {k: body[k] for k in to_segment} == to_segment
    assert body["audience"] == 0  # the progress' count of recipients: none yet
    assert body["complete"] is False
    assert body["plan_vs_actual"] is None
    for key in ("eligible", "by_status", "suppressed_by_reason", "deferred_by_reason"):
        assert key in body


async def test_a_bad_body_is_422_naming_the_field_and_another_brands_segment_is_404(
    infra: bootstrap.Infra, client: httpx.AsyncClient
) -> None:
    auth = await _key(infra, "camp-bad")
    theirs = await _segment(client, await _key(infra, "camp-bad-other"), VIPS)
    mine = await _segment(client, auth, VIPS)
    good = {"name": "x", "body": BODY}
    bad_op = {"all": [VIPS, {"attribute": "city", "op": "like", "value": "B"}]}
    cases: list[tuple[dict[str, Any], str]] = [
        ({**good, "colour": "red"}, "colour"),
        ({**good, "audience": {"segment_id": mine, "size": 3}}, "audience.size"),
        ({**good, "channel": "fax"}, "channel"),
        ({**good, "name": ""}, "name"),
        ({**good, "name": "   "}, "name"),
        ({**good, "body": "Hi {{ first_name"}, "body"),
        ({**good, "subject": "{% for %}"}, "subject"),
        ({**good, "email_body": "{{ 10**5000 }}"}, "email_body"),
        ({**good, "audience": {"definition": bad_op}}, "audience.definition.all[1].op"),
        ({**good, "audience": {"segment_id": mine, "definition": VIPS}}, "audience.definition"),
        ({**good, "audience": {"exclude_segment_ids": [mine]}}, "audience.exclude_segment_ids"),
        ({**good, "audience": {"segment_id": 2**63}}, "audience.segment_id"),
    ]
    for body, field in cases:
        error = _error(await client.post("/v1/campaigns", headers=auth, json=body), 422)
        assert (error["code"], error["field"]) == ("invalid", field), (body, error)
        assert error["message"].startswith(f"{field}: "), error
    template = await client.post("/v1/campaigns", headers=auth, json={**good, "body": "{{ x"})
    assert "line 1" in template.json()["message"]

    for audience in ({"segment_id": theirs}, {"segment_id": mine, "exclude_segment_ids": [theirs]}):
        error = _error(
            await client.post("/v1/campaigns", headers=auth, json={**good, "audience": audience}),
            404,
        )
        assert error["message"] == f"segment {theirs} not found"
    listed = await client.get("/v1/campaigns", headers=auth)
    assert listed.json()["data"] == []  # nothing was made


async def test_the_list_pages_by_id_oldest_first_and_filters_by_status(
    infra: bootstrap.Infra, client: httpx.AsyncClient
) -> None:
    assert set(get_args(Status)) == set(CAMPAIGN_STATUSES)  # the query's choices: every status
    auth = await _key(infra, "camp-list")
    made = [(await _draft(client, auth, name=f"c{i}"))["id"] for i in range(5)]
    assert made == sorted(made)
    launched = await client.post(f"/v1/campaigns/{made[1]}/launch", headers=auth)
    assert launched.status_code == 202, launched.text
    assert (await client.post(f"/v1/campaigns/{made[3]}/cancel", headers=auth)).status_code == 200

    seen, cursor, pages = [], None, 0
    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/v1/campaigns", headers=auth, params=params)).json()
        pages += 1
        seen += page["data"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert [c["id"] for c in seen] == made
    assert [c["status"] for c in seen] == ["draft", "sending", "draft", "cancelled", "draft"]
    assert seen[1]["launched_at"] is not None
    assert set(seen[0]) == {
        "id", "name", "status", "channel", "created_at", "launched_at", "scheduled_at",
        "targeting",
    }  # fmt: skip

    drafts = await client.get("/v1/campaigns", headers=auth, params={"status": "draft"})
    assert [c["id"] for c in drafts.json()["data"]] == [made[0], made[2], made[4]]
    error = _error(await client.get("/v1/campaigns?status=done", headers=auth), 422)
    assert error["field"] == "status"
    others = await client.get("/v1/campaigns", headers=await _key(infra, "camp-list-other"))
    assert others.json() == {"data": [], "next_cursor": None}


async def test_a_draft_is_changed_field_by_field_until_it_is_launched(
    infra: bootstrap.Infra, client: httpx.AsyncClient
) -> None:
    auth = await _key(infra, "camp-patch")
    vips = await _segment(client, auth, VIPS)
    draft = await _draft(client, auth, subject="News", audience={"segment_id": vips})
    url = f"/v1/campaigns/{draft['id']}"
    assert (await client.post(f"{url}/plan", headers=auth)).status_code == 200

    renamed = await client.patch(url, headers=auth, json={"name": "Spring sale"})
    assert renamed.status_code == 200, renamed.text
    assert renamed.json() == {**draft, "name": "Spring sale"}
    assert (await client.get(f"{url}/plan", headers=auth)).status_code == 200  # kept

    changed = await client.patch(
        url, headers=auth,
        json={"subject": None, "channel": "both", "audience": {"definition": BOSTON}},
    )  # fmt: skip
    assert changed.status_code == 200, changed.text
    after = changed.json()
    assert (after["name"], after["body"], after["subject"]) == ("Spring sale", BODY, None)
    assert after["channel"] == "both"
    assert after["targeting"] == {
        "segment_id": None,
        "definition": BOSTON,
        "exclude_segment_ids": [],
    }
    # the plan was for the campaign as it was
    assert (await client.get(f"{url}/plan", headers=auth)).status_code == 404
    whole = await client.patch(url, headers=auth, json={"audience": None})
    assert whole.json()["targeting"]["definition"] is None

    for body, field in [
        ({"title": "x"}, "title"),
        ({"name": None}, "name"),
        ({"body": "{% if %}"}, "body"),
        (
            {"audience": {"definition": {"all": [{"consent": "fax"}]}}},
            "audience.definition.all[0].consent",
        ),
    ]:
        error = _error(await client.patch(url, headers=auth, json=body), 422)
        assert error["field"] == field, (body, error)
    assert (await client.get(url, headers=auth)).json()["name"] == "Spring sale"  # unchanged

    assert (await client.post(f"{url}/launch", headers=auth)).status_code == 202
    error = _error(await client.patch(url, headers=auth, json={"name": "Too late"}), 409)
    assert error["code"] == "conflict"
    assert "is sending; only a draft (never launched) can be changed" in error["message"]
    # refused whatever the change: a bad one too
    _error(await client.patch(url, headers=auth, json={"body": "{% if %}"}), 409)
    assert (await client.get(url, headers=auth)).json()["name"] == "Spring sale"


async def test_only_a_draft_is_deleted_with_the_audience_its_plan_resolved(
    infra: bootstrap.Infra, client: httpx.AsyncClient
) -> None:
    audience = await brand_with_subscribers(infra.pool, 30, seed=811)
    auth = {"Authorization": f"Bearer {await api_keys.create_key(infra.pool, audience.brand_id)}"}
    city = await _segment(client, auth, {"attribute": "city", "op": "exists"})
    draft = await _draft(client, auth, audience={"segment_id": city})
    url = f"/v1/campaigns/{draft['id']}"
    assert (await client.post(f"{url}/plan", headers=auth)).status_code == 200
    chunks = "SELECT count(*) FROM campaign_audience_chunks WHERE campaign_id = $1"
    assert await infra.pool.fetchval(chunks, draft["id"]) > 0  # rows that name the campaign

    deleted = await client.delete(url, headers=auth)
    assert deleted.status_code == 204, deleted.text
    assert (await client.get(url, headers=auth)).status_code == 404
    assert await infra.pool.fetchval(chunks, draft["id"]) == 0
    assert (await client.delete(url, headers=auth)).status_code == 404
    # its segment is no campaign's audience any more
    assert (await client.delete(f"/v1/segments/{city}", headers=auth)).status_code == 204

    launched, cancelled = (await _draft(client, auth))["id"], (await _draft(client, auth))["id"]
    assert (await client.post(f"/v1/campaigns/{launched}/launch", headers=auth)).status_code == 202
    assert (await client.post(f"/v1/campaigns/{cancelled}/cancel", headers=auth)).status_code == 200
    for campaign_id, status in ((launched, "sending"), (cancelled, "cancelled")):
        error = _error(await client.delete(f"/v1/campaigns/{campaign_id}", headers=auth), 409)
        assert f"is {status}; only a draft (never launched) can be deleted" in error["message"]
        got = await client.get(f"/v1/campaigns/{campaign_id}", headers=auth)
        assert got.json()["status"] == status


async def test_a_campaign_is_launched_paused_resumed_and_cancelled_each_only_in_its_turn(
    infra: bootstrap.Infra, client: httpx.AsyncClient
) -> None:
    brand_id, auth = await brand_key(infra, "camp-control")
    url = f"/v1/campaigns/{(await _draft(client, auth))['id']}"

    async def act(verb: str, status: int, **body: Any) -> dict[str, Any]:
        resp = await client.post(f"{url}/{verb}", headers=auth, json=body or None)
        assert resp.status_code == status, (verb, resp.status_code, resp.text)
        return dict(resp.json())

    assert (await act("resume", 409))["message"].endswith("is draft; it cannot be sending")
    assert (await act("pause", 409))["code"] == "conflict"
    launched = await act("launch", 202)
    assert (launched["status"], launched["attempt"]) == ("sending", 1)
    assert "launched already" in (await act("launch", 409))["message"]
    assert (await act("launch", 202, relaunch=True))["attempt"] == 2
    assert (await act("pause", 200))["status"] == "paused"
    await act("pause", 409)
    assert (await client.get(url, headers=auth)).json()["status"] == "paused"
    assert (await act("resume", 200))["status"] == "sending"
    await act("resume", 409)
    cancelled = await act("cancel", 200)
    assert (cancelled["status"], cancelled["messages_cancelled"]) == ("cancelled", 0)
    await act("cancel", 409)
    await act("launch", 409)
    assert (await act("launch", 422, relaunch="sometimes"))["field"] == "relaunch"
    assert (await act("launch", 422, again=True))["field"] == "again"

    # launching takes the send scope; changing a draft takes write
    draft = (await _draft(client, auth))["id"]
    for scopes, verb, method in [
        (["read", "write"], "launch", "POST"),
        (["read", "write"], "cancel", "POST"),
        (["read", "send"], "", "DELETE"),
    ]:
        key = await api_keys.create_key(infra.pool, brand_id, "scoped", scopes=scopes)
        path = f"/v1/campaigns/{draft}/{verb}".rstrip("/")
        resp = await client.request(method, path, headers={"Authorization": f"Bearer {key}"})
        assert _error(resp, 403)["code"] == "insufficient_scope"
    assert (await client.get(f"/v1/campaigns/{draft}", headers=auth)).json()["status"] == "draft"


async def test_a_campaign_that_fails_its_checks_is_422_and_stays_a_draft(
    infra: bootstrap.Infra, client: httpx.AsyncClient
) -> None:
    audience = await brand_with_subscribers(infra.pool, 3, seed=812)  # never messaged yet
    auth = {"Authorization": f"Bearer {await api_keys.create_key(infra.pool, audience.brand_id)}"}
    draft = await _draft(client, auth, body="Hi {{ first_name | default('there') }}: 20% off!")
    url = f"/v1/campaigns/{draft['id']}"
    error = _error(await client.post(f"{url}/launch", headers=auth), 422)
    assert error["code"] == "invalid"
    assert "must name the brand" in error["message"]
    assert "must say how to opt out" in error["message"]
    assert (await client.get(url, headers=auth)).json()["status"] == "draft"
    # fixed, it launches
    fixed = await client.patch(url, headers=auth, json={"body": BODY})
    assert fixed.status_code == 200, fixed.text
    assert (await client.post(f"{url}/launch", headers=auth)).status_code == 202


async def test_another_brands_campaign_is_404_to_every_campaign_route(
    infra: bootstrap.Infra, client: httpx.AsyncClient
) -> None:
    mine = await _draft(client, await _key(infra, "camp-mine"))
    theirs = await _key(infra, "camp-theirs")
    url = f"/v1/campaigns/{mine['id']}"
    for method, path, body in [
        ("GET", url, None), ("PATCH", url, {"name": "Mallory"}), ("DELETE", url, None),
        ("POST", f"{url}/launch", None), ("POST", f"{url}/pause", None),
        ("POST", f"{url}/resume", None), ("POST", f"{url}/cancel", None),
        ("POST", f"{url}/plan", None), ("GET", f"{url}/plan", None),
    ]:  # fmt: skip
        resp = await client.request(method, path, headers=theirs, json=body)
        error = _error(resp, 404)
        assert error["message"] == f"campaign {mine['id']} not found", (method, path)
