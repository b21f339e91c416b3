"""One-click unsubscribe (RFC 8058) on the API app: a POST ends the subscriber's email
consent (once, however often it is said), a GET never does, a forged link does nothing."""

from __future__ import annotations

import httpx

from clarion import bootstrap
from clarion.api.app import create_app
from clarion.api.v1 import V1
from clarion.email.unsubscribe import make_token
from clarion.sim.process import SimProcess
from tests.integration.helpers import brand_with_subscribers

SECRET = "unsubscribe-test-secret"


async def test_one_click_post_unsubscribes_once_and_get_never_does(
    infra: bootstrap.Infra, sim: SimProcess
) -> None:
    audience = await brand_with_subscribers(infra.pool, 3, seed=1301)
    sub_id = await infra.pool.fetchval(
        "SELECT id FROM subscribers WHERE brand_id = $1 ORDER BY id LIMIT 1", audience.brand_id
    )
    provider = bootstrap.build_provider(infra.settings)
    app = create_app(infra.bus, {}, api=V1(infra), unsubscribe_secret=SECRET)
    token = make_token(SECRET, audience.brand_id, sub_id)

    async def email_ledger() -> list[tuple[str, str]]:
        rows = await infra.pool.fetch(
            "SELECT status, source FROM consents WHERE subscriber_id = $1 AND channel = 'email'"
            " ORDER BY id",
            sub_id,
        )
        return [(r["status"], r["source"]) for r in rows]

    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="https://clarion.example"
        ) as client:
            page = await client.get(f"/u/{token}")
            assert page.status_code == 200
            assert "<form" in page.text
            assert await email_ledger() == []  # a GET (a mail scanner following links) never
            forged = await client.post(f"/u/{token[:-1]}x", data={"List-Unsubscribe": "One-Click"})
            assert forged.status_code in (400, 404)
            assert await email_ledger() == []
            for _ in range(2):  # mail clients may post twice
                done = await client.post(f"/u/{token}", data={"List-Unsubscribe": "One-Click"})
                assert done.status_code == 200
    finally:
        await provider.aclose()
    assert await email_ledger() == [("opted_out", "email_unsubscribe:one-click")]
