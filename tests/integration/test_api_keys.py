"""`/v1/keys` and what a key may do: several keys a brand, scopes (read, write, send), listed
without secrets, rotated and revoked (refused at once), a rate per key (429 with
Retry-After), errors as `{"code", "message"}`, lists by cursor."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from clarion import bootstrap
from clarion.domain.clock import PinnedClock
from clarion.store import api_keys, brands
from tests.conftest import DAYTIME
from tests.integration.helpers import api_client


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


@pytest.fixture
async def client(infra: bootstrap.Infra) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(infra, clock=PinnedClock(DAYTIME)) as c:
        yield c


async def _brand(infra: bootstrap.Infra, slug: str) -> int:
    """A brand without a key yet."""
    return await brands.create_brand(infra.pool, slug=slug, name="Northwind", sender="+15125550100")


async def test_keys_are_listed_without_secrets_and_a_revoked_key_is_refused_at_once(
    infra: bootstrap.Infra, client: httpx.AsyncClient
) -> None:
    brand_id = await _brand(infra, "keys-list")
    admin = await api_keys.create_key(infra.pool, brand_id, "admin")
    made = await client.post(
        "/v1/keys", headers=bearer(admin), json={"name": "shop", "scopes": ["read"]}
    )
    assert made.status_code == 201, made.text
    shop = made.json()
    assert shop["scopes"] == ["read"]
    assert shop["hint"] == shop["secret"][-4:]
    listed = await client.get("/v1/keys", headers=bearer(admin))
    assert listed.status_code == 200
    page = listed.json()
    assert [k["name"] for k in page["data"]] == ["admin", "shop"]
    assert page["next_cursor"] is None
    assert shop["secret"] not in listed.text
    assert all("secret" not in k for k in page["data"])

    assert (await client.get("/v1/keys", headers=bearer(shop["secret"]))).status_code == 200
    revoked = await client.delete(f"/v1/keys/{shop['id']}", headers=bearer(admin))
    assert revoked.status_code == 200
    assert revoked.json()["revoked_at"] is not None
    after = await client.get("/v1/keys", headers=bearer(shop["secret"]))
    assert after.status_code == 401
    assert after.json()["code"] == "unauthorized"
    assert after.headers["www-authenticate"] == "Bearer"


async def test_a_key_does_only_what_its_scopes_allow_and_cannot_mint_a_stronger_one(
    infra: bootstrap.Infra, client: httpx.AsyncClient
) -> None:
    brand_id = await _brand(infra, "keys-scopes")
    reader = await api_keys.create_key(infra.pool, brand_id, "reader", ["read"])
    writer = await api_keys.create_key(infra.pool, brand_id, "writer", ["read", "write"])

    assert (await client.get("/v1/keys", headers=bearer(reader))).status_code == 200
    wrote = await client.post("/v1/keys", headers=bearer(reader), json={"name": "x"})
    assert wrote.status_code == 403
    assert wrote.json()["code"] == "insufficient_scope"
    assert "'write'" in wrote.json()["message"]
    sent = await client.post(
        "/v1/messages", headers=bearer(writer), json={"to": "+15125550123", "body": "hi"}
    )
    assert sent.status_code == 403
    assert "'send'" in sent.json()["message"]

    stronger = await client.post(
        "/v1/keys", headers=bearer(writer), json={"name": "x", "scopes": ["read", "send"]}
    )
    assert stronger.status_code == 403
    assert "send" in stronger.json()["message"]
    weaker = await client.post(
        "/v1/keys", headers=bearer(writer), json={"name": "x", "scopes": ["read"]}
    )
    assert weaker.status_code == 201


async def test_rotation_replaces_the_secret_and_keeps_name_and_scopes(
    infra: bootstrap.Infra, client: httpx.AsyncClient
) -> None:
    brand_id = await _brand(infra, "keys-rotate")
    admin = await api_keys.create_key(infra.pool, brand_id, "admin")
    made = (
        await client.post(
            "/v1/keys", headers=bearer(admin), json={"name": "shop", "scopes": ["read", "write"]}
        )
    ).json()
    rotated = await client.post(f"/v1/keys/{made['id']}/rotate", headers=bearer(admin))
    assert rotated.status_code == 200, rotated.text
    new = rotated.json()
    assert new["id"] != made["id"]
    assert (new["name"], new["scopes"]) == ("shop", ["read", "write"])
    assert (await client.get("/v1/keys", headers=bearer(made["secret"]))).status_code == 401
    assert (await client.get("/v1/keys", headers=bearer(new["secret"]))).status_code == 200
    again = await client.post(f"/v1/keys/{made['id']}/rotate", headers=bearer(admin))
    assert again.status_code == 404  # a revoked key is not rotated


async def test_another_brands_key_ids_are_404(
    infra: bootstrap.Infra, client: httpx.AsyncClient
) -> None:
    mine = await api_keys.create_key(infra.pool, await _brand(infra, "keys-mine"), "mine")
    theirs_brand = await _brand(infra, "keys-theirs")
    theirs, _ = await api_keys.create(infra.pool, theirs_brand, "theirs", ["read"])
    for method, path in (
        ("GET", f"/v1/keys/{theirs.id}"),
        ("POST", f"/v1/keys/{theirs.id}/rotate"),
        ("DELETE", f"/v1/keys/{theirs.id}"),
    ):
        resp = await client.request(method, path, headers=bearer(mine))
        assert resp.status_code == 404, (method, path, resp.text)
        assert resp.json()["code"] == "not_found"
    still = await api_keys.get_key(infra.pool, theirs_brand, theirs.id)
    assert still.revoked_at is None


async def test_lists_are_paged_by_cursor(infra: bootstrap.Infra, client: httpx.AsyncClient) -> None:
    brand_id = await _brand(infra, "keys-pages")
    admin = await api_keys.create_key(infra.pool, brand_id, "admin")
    for i in range(6):
        await api_keys.create_key(infra.pool, brand_id, f"k{i}", ["read"])
    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/v1/keys", headers=bearer(admin), params=params)).json()
        seen += [k["name"] for k in page["data"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ["admin", "k0", "k1", "k2", "k3", "k4", "k5"]
    assert pages == 3
    bad = await client.get("/v1/keys", headers=bearer(admin), params={"cursor": "nonsense"})
    assert bad.status_code == 422
    assert bad.json()["field"] == "cursor"


async def test_errors_name_the_bad_field(infra: bootstrap.Infra, client: httpx.AsyncClient) -> None:
    admin = await api_keys.create_key(infra.pool, await _brand(infra, "keys-errors"), "admin")
    unknown = await client.post("/v1/keys", headers=bearer(admin), json={"name": "x", "colour": 1})
    assert unknown.status_code == 422
    assert unknown.json()["code"] == "invalid"
    assert unknown.json()["field"] == "colour"
    assert "unknown field" in unknown.json()["message"]
    scope = await client.post(
        "/v1/keys", headers=bearer(admin), json={"name": "x", "scopes": ["admin"]}
    )
    assert scope.status_code == 422
    assert scope.json()["field"] == "scopes"
    assert "'admin' is no scope" in scope.json()["message"]
    limit = await client.get("/v1/keys", headers=bearer(admin), params={"limit": 0})
    assert limit.status_code == 422
    assert limit.json()["field"] == "limit"


async def test_a_key_over_its_rate_gets_429_with_retry_after(
    infra: bootstrap.Infra, client: httpx.AsyncClient
) -> None:
    brand_id = await _brand(infra, "keys-rate")
    slow = await api_keys.create_key(infra.pool, brand_id, "slow", ["read"], rate_per_s=1)
    other = await api_keys.create_key(infra.pool, brand_id, "other", ["read"])
    codes = [(await client.get("/v1/keys", headers=bearer(slow))).status_code for _ in range(4)]
    assert codes[:2] == [200, 200]  # two seconds' worth at once
    assert codes[2:] == [429, 429]
    limited = await client.get("/v1/keys", headers=bearer(slow))
    assert limited.json()["code"] == "rate_limited"
    assert int(limited.headers["retry-after"]) >= 1
    assert (await client.get("/v1/keys", headers=bearer(other))).status_code == 200
