"""A campaign whose audience is a segment, less exclusion segments: resolved at the first
launch and sent in keyset pages like the whole list; the plan counts the same audience."""

from __future__ import annotations

import pytest

from clarion import bootstrap, service
from clarion.errors import InvalidInput, NotFound, Refused
from clarion.sim.process import SimProcess
from clarion.store import brands, segments
from tests.conftest import DAYTIME
from tests.integration.helpers import BODY, brand_with_subscribers, send_campaign


async def test_a_campaign_goes_to_its_segment_less_its_exclusions(
    infra: bootstrap.Infra, sim: SimProcess
) -> None:
    audience = await brand_with_subscribers(infra.pool, 400, seed=341)
    brand_id = audience.brand_id
    cities = await segments.create(
        infra.pool, brand_id, "Austin and Boston",
        {"attribute": "city", "op": "in", "value": ["Austin", "Boston"]},
    )  # fmt: skip
    austin = await segments.create(
        infra.pool, brand_id, "Austin", {"attribute": "city", "op": "eq", "value": "Austin"}
    )
    campaign_id = await service.campaigns.create(
        infra, brand_id=brand_id, name="Boston only", body=BODY, segment_id=cities.id,
        exclude_segment_ids=[austin.id],
    )  # fmt: skip
    boston = {
        r["id"]
        for r in await infra.pool.fetch(
            "SELECT id FROM subscribers WHERE brand_id = $1 AND attributes->>'city' = 'Boston'",
            brand_id,
        )
    }
    assert 20 < len(boston) < 200
    plan = await service.campaigns.plan(infra, campaign_id, at=DAYTIME)
    assert plan.audience == len(boston)

    progress = await send_campaign(infra, sim, campaign_id)
    assert progress.audience == len(boston)
    sent_to = {
        r["subscriber_id"]
        for r in await infra.pool.fetch(
            "SELECT subscriber_id FROM messages WHERE campaign_id = $1 AND sent_at IS NOT NULL",
            campaign_id,
        )
    }
    consented_boston = {
        r["id"]
        for r in await infra.pool.fetch(
            "SELECT s.id FROM subscribers s JOIN consents c ON c.subscriber_id = s.id"
            " WHERE s.brand_id = $1 AND s.attributes->>'city' = 'Boston'"
            " AND c.channel = 'sms' AND c.status = 'opted_in'",
            brand_id,
        )
    }
    assert sent_to == consented_boston  # every consented Bostonian, nobody else

    with pytest.raises(Refused, match="audience of campaign"):
        await service.segments.delete(infra, brand_id, austin.id)


async def test_a_campaign_cannot_target_another_brands_segment(infra: bootstrap.Infra) -> None:
    mine = await brand_with_subscribers(infra.pool, 3, seed=342)
    theirs = await brand_with_subscribers(infra.pool, 3, seed=343)
    their_segment = await segments.create(infra.pool, theirs.brand_id, "x", {"consent": "sms"})
    with pytest.raises(NotFound):
        await service.campaigns.create(
            infra, brand_id=mine.brand_id, name="x", body=BODY, segment_id=their_segment.id
        )
    my_segment = await segments.create(infra.pool, mine.brand_id, "y", {"consent": "sms"})
    with pytest.raises(NotFound):
        await service.campaigns.create(
            infra, brand_id=mine.brand_id, name="x", body=BODY, segment_id=my_segment.id,
            exclude_segment_ids=[their_segment.id],
        )  # fmt: skip


async def test_a_resolved_audience_reads_in_order_across_its_chunks(
    infra: bootstrap.Infra, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The audience is kept in sorted chunks of ids: pages that start inside a chunk, span
    several and end past the last give every member once, in order, and nobody else."""
    monkeypatch.setattr(segments, "AUDIENCE_CHUNK", 7)
    monkeypatch.setattr(brands, "AUDIENCE_CHUNK", 7)
    audience = await brand_with_subscribers(infra.pool, 120, seed=344)
    with_city = await segments.create(
        infra.pool, audience.brand_id, "with a city", {"attribute": "city", "op": "exists"}
    )
    campaign_id = await service.campaigns.create(
        infra, brand_id=audience.brand_id, name="x", body=BODY, segment_id=with_city.id
    )
    members = [
        r["id"]
        for r in await infra.pool.fetch(
            "SELECT id FROM subscribers WHERE brand_id = $1 AND attributes ? 'city' ORDER BY id",
            audience.brand_id,
        )
    ]
    assert len(members) > 30
    c = await service.campaigns.get(infra, campaign_id)
    assert await service.campaigns.resolve_audience(infra, c, launched=False) == len(members)
    chunks = await infra.pool.fetchval(
        "SELECT count(*) FROM campaign_audience_chunks WHERE campaign_id = $1", campaign_id
    )
    assert chunks == -(-len(members) // 7)
    for limit in (1, 5, 7, 16):
        read, after = [], members[2] - 1  # begins inside the first chunk
        while page := await brands.campaign_audience_range(
            infra.pool, audience.brand_id, campaign_id, after, limit
        ):
            assert len(page) <= limit
            read += [r.id for r in page]
            after = page[-1].id
        assert read == members[2:], limit
    # another brand's id reads nothing, even with the campaign's id
    other = await brand_with_subscribers(infra.pool, 1, seed=345)
    assert (
        await brands.campaign_audience_range(infra.pool, other.brand_id, campaign_id, 0, 50) == []
    )


async def test_a_campaign_may_target_a_definition_of_its_own(infra: bootstrap.Infra) -> None:
    audience = await brand_with_subscribers(infra.pool, 60, seed=346)
    brand_id = audience.brand_id
    boston = {"attribute": "city", "op": "eq", "value": "Boston"}
    campaign_id = await service.campaigns.create(
        infra, brand_id=brand_id, name="Boston", body=BODY, definition=boston
    )
    expected = await infra.pool.fetchval(
        "SELECT count(*) FROM subscribers WHERE brand_id = $1 AND attributes->>'city' = 'Boston'",
        brand_id,
    )
    assert expected > 0
    c = await service.campaigns.get(infra, campaign_id)
    assert c.targeted
    assert c.segment_id is None
    assert await service.campaigns.resolve_audience(infra, c, launched=False) == expected
    saved = await segments.create(infra.pool, brand_id, "s", boston)
    bad = [
        ({"all": [boston, {"attribute": "city", "op": "like", "value": "B"}]},
         None, "definition.all[1].op"),
        (boston, saved.id, "definition"),
    ]  # fmt: skip
    for definition, segment_id, field in bad:
        with pytest.raises(InvalidInput) as caught:
            await service.campaigns.create(
                infra, brand_id=brand_id, name="x", body=BODY, definition=definition,
                segment_id=segment_id,
            )  # fmt: skip
        assert caught.value.field == field
