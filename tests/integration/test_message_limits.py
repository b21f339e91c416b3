"""A message's length is bounded: POST /v1/messages refuses a body over the providers' 1,600
characters or over the brand's max segments (422, naming the limit); a campaign over the
brand's max segments fails validation; a brand allows 1 to 10 segments."""

from __future__ import annotations

import asyncpg
import httpx
import pytest

from clarion import bootstrap, service
from clarion.api.app import create_app
from clarion.api.v1 import V1
from clarion.domain.contacts import new_subscriber
from clarion.store import api_keys, brands
from tests.integration.helpers import campaign

TO = "(917) 555-2142"


async def brand(infra: bootstrap.Infra, slug: str, **limits: int) -> int:
    brand_id = await brands.create_brand(
        infra.pool, slug=slug, name="Northwind", sender="+15125550100", **limits
    )
    row = {"phone": "(212) 555-7788", "first_name": "Ava", "sms_consent": "yes"}
    await brands.import_subscribers(infra.pool, brand_id, [new_subscriber(row)], source="test")
    return brand_id


async def test_the_api_refuses_a_body_over_1600_characters_or_the_brands_segments(
    infra: bootstrap.Infra,
) -> None:
    default = await brand(infra, "default-limit")
    strict = await brand(infra, "two-segments", max_segments=2)
    provider = bootstrap.build_provider(infra.settings)
    app = create_app(infra.bus, {}, api=V1(infra))
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://clarion"
        ) as client:

            async def post(brand_id: int, **message: str) -> httpx.Response:
                key = await api_keys.create_key(infra.pool, brand_id)
                auth = {"Authorization": f"Bearer {key}"}
                return await client.post("/v1/messages", headers=auth, json=message)

            huge = await post(default, to=TO, body="x" * 200_000)
            assert huge.status_code == 422
            assert "1600" in huge.text
            assert (await post(default, to="1" * 65, body="Hi")).status_code == 422
            assert (await post(default, to=TO, body="Hi", sender="1" * 65)).status_code == 422

            eleven = await post(default, to=TO, body="x" * 1531)  # 10 parts carry 1,530
            assert eleven.status_code == 422
            assert eleven.json()["message"] == "body: 11 segments; the brand's limit is 10"
            ten = await post(default, to=TO, body="x" * 1530)
            assert (ten.status_code, ten.json()["segments"]) == (202, 10)

            three = await post(strict, to=TO, body="’" * 135)  # UCS-2: 67 per part
            assert three.status_code == 422
            assert three.json()["message"] == "body: 3 segments; the brand's limit is 2"
            two = await post(strict, to=TO, body="’" * 134)
            assert (two.status_code, two.json()["segments"]) == (202, 2)
    finally:
        await provider.aclose()


async def test_validation_refuses_a_campaign_over_the_brands_segments(
    infra: bootstrap.Infra,
) -> None:
    brand_id = await brand(infra, "one-segment", max_segments=1)
    body = "{{ brand.name }}: " + "x" * 150 + " Reply STOP to opt out."
    check = await service.campaigns.check(infra, await campaign(infra.pool, brand_id, body))
    assert check.errors == ("the message is 2 segments; the brand's limit is 1",)


@pytest.mark.parametrize("max_segments", [0, 11])
async def test_a_brand_allows_one_to_ten_segments(
    infra: bootstrap.Infra, max_segments: int
) -> None:
    with pytest.raises(asyncpg.CheckViolationError):
        await brand(infra, f"limit-{max_segments}", max_segments=max_segments)
    assert (await brands.get_brand(infra.pool, await brand(infra, "ok"))).max_segments == 10
