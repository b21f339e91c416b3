"""A brand's global macros: its own `{{ brand.NAME }}` values in every campaign; a template
that reads one the brand does not have is refused before launch, naming it."""

from __future__ import annotations

import pytest

from clarion import bootstrap, service
from clarion.errors import CampaignInvalid, InvalidInput
from clarion.sim.process import SimProcess
from tests.conftest import DAYTIME
from tests.integration.helpers import brand_with_subscribers, campaign, send_campaign

BODY = "{{ brand.name }}: use {{ brand.code }} for 20% off. Reply STOP to opt out."


async def test_macros_fill_every_message_and_an_unknown_one_is_named(
    infra: bootstrap.Infra, sim: SimProcess
) -> None:
    audience = await brand_with_subscribers(infra.pool, 5, seed=381)
    brand_id = audience.brand_id
    unknown = await campaign(infra.pool, brand_id, body=BODY)
    check = await service.campaigns.check(infra, unknown)
    assert any("unknown macro brand.code" in e for e in check.errors), check.errors
    with pytest.raises(CampaignInvalid, match=r"brand\.code"):
        await service.campaigns.launch(infra, unknown, at=DAYTIME)

    assert await service.brands.set_macros(infra, brand_id, {"code": "FALL20"}) == {
        "code": "FALL20"
    }
    c = await campaign(infra.pool, brand_id, body=BODY)
    assert (await service.campaigns.check(infra, c)).errors == ()
    await send_campaign(infra, sim, c)
    bodies = [
        r["body"]
        for r in await infra.pool.fetch(
            "SELECT body FROM messages WHERE campaign_id = $1 AND sent_at IS NOT NULL", c
        )
    ]
    assert bodies
    assert all("use FALL20 for 20% off" in b for b in bodies)

    bad = [
        ({"name": "x"}, "macros.name"),
        ({"Code": "x"}, "macros.Code"),
        ({"code": 5}, "macros.code"),
        ({"code": "x" * 501}, "macros.code"),
        (["code"], "macros"),
    ]
    for raw, field in bad:
        with pytest.raises(InvalidInput) as caught:
            await service.brands.set_macros(infra, brand_id, raw)
        assert caught.value.field == field
    assert await service.brands.macros(infra, brand_id) == {"code": "FALL20"}
