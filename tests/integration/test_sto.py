"""Send-time optimisation over real Postgres: a model learnt from the deliveries and clicks
Clarion recorded, versioned and pruned; a best-time campaign holds each message until its
subscriber's best hour (the compliance window still governs) and records the model."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from clarion import bootstrap, service
from clarion.domain.contacts import new_subscriber
from clarion.domain.ids import campaign_message_id
from clarion.errors import InvalidInput
from clarion.harness.seed import synthetic_rows
from clarion.intelligence import sto as model
from clarion.sim.process import SimProcess
from clarion.store import brands, campaigns, history, models, send_hours
from clarion.store.history import PastMessage
from tests.conftest import wait_for_campaign
from tests.integration.helpers import (
    api_client,
    brand_key,
    brand_with_subscribers,
    campaign,
    daytime,
)

NEW_YORK = ZoneInfo("America/New_York")
LINK = "https://shop.example/sale"


async def _history(
    infra: bootstrap.Infra, brand_id: int, peak_of: dict[int, int], *, campaigns_n: int = 24
) -> None:
    """Past campaigns at hours 8..20 (New York), each subscriber clicking only at their
    `peak_of` hour (and at no other)."""
    people = await history.recipients(infra.pool, brand_id)
    await infra.pool.execute(
        "UPDATE subscribers SET timezone = 'America/New_York' WHERE brand_id = $1", brand_id
    )
    day = daytime.now().date() - timedelta(days=campaigns_n + 1)  # the gate's clock
    for k in range(campaigns_n):
        hour = 8 + k % 13
        cid = await campaign(infra.pool, brand_id, f"Sale {LINK} STOP to end", name=f"Past {k}")
        uid = str((await campaigns.get_campaign(infra.pool, cid)).uid)
        sent = datetime.combine(day + timedelta(days=k), time(hour, 5), tzinfo=NEW_YORK)
        past = [
            PastMessage(
                campaign_message_id(uid, "a", p.id), p.id, p.phone, sent.astimezone(UTC),
                sent + timedelta(minutes=3) if peak_of.get(p.id) == hour else None,
            )
            for p in people
        ]  # fmt: skip
        await history.past_campaign(infra.pool, brand_id, cid, LINK, past)
    await history.analyze(infra.pool)


async def test_a_model_learns_each_subscribers_hour_and_is_versioned(
    infra: bootstrap.Infra,
) -> None:
    audience = await brand_with_subscribers(infra.pool, 12, seed=801)
    brand_id = audience.brand_id
    ids = [p.id for p in await history.recipients(infra.pool, brand_id)]
    peak_of = {sid: (10 if i % 2 else 19) for i, sid in enumerate(ids[:-2])}  # two never click
    await _history(infra, brand_id, peak_of)
    now = datetime.now(UTC)
    first = await service.intelligence.train(infra.pool, brand_id, "sto", now=now)
    assert first is not None
    assert first.version == 1
    assert first.summary["messages"] == 24 * len(ids)
    sent_at = [8 + k % 13 for k in range(24)]  # the campaigns' hours
    assert first.summary["clicks"] == sum(sent_at.count(h) for h in peak_of.values())
    hours = await send_hours.read(infra.pool, first.id, ids)
    for sid, peak in peak_of.items():
        assert hours[sid][0] == peak, (sid, hours[sid][:3])
    # those who never clicked at any hour tried (08-20): their peak is likelier outside it
    for sid in ids[-2:]:
        assert hours[sid][0] not in range(8, 21), hours[sid][:3]
    # versions: each fit a new one; the output of all but the newest two is pruned
    for version in (2, 3):
        again = await service.intelligence.train(infra.pool, brand_id, "sto", now=now)
        assert again is not None
        assert again.version == version
    kept = {m.version: m.pruned_at for m in await models.listed(infra.pool, brand_id, "sto")}
    assert kept[1] is not None  # pruned
    assert (kept[2], kept[3]) == (None, None)
    assert await send_hours.read(infra.pool, first.id, ids) == {}
    with pytest.raises(InvalidInput):
        await service.intelligence.train(infra.pool, brand_id, "horoscope", now=now)


async def test_nothing_to_learn_from_is_no_model(infra: bootstrap.Infra) -> None:
    audience = await brand_with_subscribers(infra.pool, 3, seed=802)
    assert await service.sto.train(infra.pool, audience.brand_id, now=datetime.now(UTC)) is None
    assert await models.latest(infra.pool, audience.brand_id, "sto") is None


async def test_the_worker_role_trains_brands_that_have_something_new(
    infra: bootstrap.Infra,
) -> None:
    audience = await brand_with_subscribers(infra.pool, 4, seed=803)
    first = (await history.recipients(infra.pool, audience.brand_id))[0].id
    await _history(infra, audience.brand_id, {first: 12}, campaigns_n=3)
    await infra.pool.execute(
        "UPDATE campaigns SET launched_at = now() WHERE brand_id = $1", audience.brand_id
    )
    now = datetime.now(UTC)
    assert audience.brand_id in await models.due(infra.pool, "sto", now)
    assert await service.intelligence.train_due(infra.pool, now=now) >= 1
    assert (await models.latest(infra.pool, audience.brand_id, "sto")) is not None
    # trained just now: not due again before RETRAIN_AFTER
    assert audience.brand_id not in await models.due(
        infra.pool, "sto", now - service.intelligence.RETRAIN_AFTER
    )


async def test_a_best_time_campaign_holds_each_message_for_its_hour(
    infra: bootstrap.Infra, sim: SimProcess
) -> None:
    audience = await brand_with_subscribers(infra.pool, 10, seed=804)
    brand_id = audience.brand_id
    ids = [p.id for p in await history.recipients(infra.pool, brand_id)]
    peak_of = {sid: (9 if i % 2 else 20) for i, sid in enumerate(ids)}
    await _history(infra, brand_id, peak_of, campaigns_n=26)
    trained = await service.sto.train(infra.pool, brand_id, now=daytime.now())
    assert trained is not None

    planned = await campaign(infra.pool, brand_id, f"Sale now: {LINK} Reply STOP to end")
    now = daytime.now()
    with pytest.raises(InvalidInput) as wide:
        await service.campaigns.schedule(infra, planned, now=now, best_time_h=100)
    assert wide.value.field == "best_time_h"
    done = await service.campaigns.schedule(infra, planned, now=now, best_time_h=48)
    assert (done.best_time_h, done.sto_model_version) == (48, trained.version)
    async with bootstrap.running(infra, bootstrap.build_provider(infra.settings), clock=daytime):
        deadline = asyncio.get_running_loop().time() + 10
        while (await campaigns.get_campaign(infra.pool, planned)).status == "scheduled":
            assert asyncio.get_running_loop().time() < deadline, "not launched"
            await asyncio.sleep(0.05)
        await wait_for_campaign(infra.pool, planned, sim)
    c = await campaigns.get_campaign(infra.pool, planned)
    assert c.sto_model_id == trained.id  # the version that chose the times
    report = await service.campaigns.report(infra, planned)
    assert report.models["sto"] is not None
    assert report.models["sto"]["version"] == trained.version
    assert report.models["recs"] is None
    rows = await infra.pool.fetch(
        "SELECT subscriber_id, status, error_code, not_before FROM messages"
        " WHERE campaign_id = $1 AND status <> 'suppressed'",
        planned,
    )
    everything = await infra.pool.fetch(
        "SELECT status, error_code, count(*) FROM messages WHERE campaign_id = $1 GROUP BY 1, 2",
        planned,
    )
    assert rows, [tuple(r) for r in everything]
    start = c.scheduled_at
    assert start is not None
    for r in rows:
        if r["status"] == "deferred":
            assert r["error_code"] == "best_time"
            local = r["not_before"].astimezone(NEW_YORK)
            assert local.hour == peak_of[r["subscriber_id"]]
            assert start <= r["not_before"] < start + timedelta(hours=48)
        else:  # their hour was now: sent at once
            assert r["status"] in ("delivered", "undelivered")
            assert daytime.now().astimezone(NEW_YORK).hour == peak_of[r["subscriber_id"]]
    assert any(r["status"] == "deferred" for r in rows)


def test_the_chosen_moment_keeps_to_the_window_and_the_compliance_window() -> None:
    start = datetime(2026, 12, 8, 6, 0, tzinfo=UTC)  # 01:00 in New York
    ranked = [22, 6, 19, *range(24)]  # 22:00 and 06:00 are quiet hours: 19:00 it is
    at = model.best_moment(ranked, NEW_YORK, start, 24, subscriber_id=7)
    assert at.astimezone(NEW_YORK).hour == 19
    assert start <= at < start + timedelta(hours=24)
    # a window too short for any allowed hour: at the start (the gate then holds it)
    assert model.best_moment(ranked, NEW_YORK, start, 2, subscriber_id=7) == start
    # no zone known: at the start
    assert model.best_moment(ranked, None, start, 24, subscriber_id=7) == start
    # within the hour, a minute of the subscriber's own, the same every time
    minutes = {model.best_moment([19], NEW_YORK, start, 24, sid).minute for sid in range(50)}
    assert len(minutes) > 10
    assert model.best_moment([19], NEW_YORK, start, 24, 3) == model.best_moment(
        [19], NEW_YORK, start, 24, 3
    )
    rng = random.Random(1)
    for _ in range(200):  # whatever the ranking, start and window
        hours = rng.sample(range(24), 24)
        begin = start + timedelta(minutes=rng.randrange(0, 3000))
        window = rng.randrange(1, 73)
        at = model.best_moment(hours, NEW_YORK, begin, window, rng.randrange(1, 10**6))
        assert begin <= at <= begin + timedelta(hours=window)
        assert at == begin or 8 <= at.astimezone(NEW_YORK).hour < 21


async def test_the_api_lists_and_trains_a_brands_models_and_no_other_brands(
    infra: bootstrap.Infra,
) -> None:
    brand_id, auth = await brand_key(infra, "models-api")
    _, other = await brand_key(infra, "models-api-other")
    await brands.import_subscribers(
        infra.pool, brand_id, [new_subscriber(r) for r in synthetic_rows(5, seed=805)],
        source="test",
    )  # fmt: skip
    async with api_client(infra) as client:
        nothing = await client.post("/v1/models/train", headers=auth, json={"kind": "sto"})
        assert nothing.status_code == 409
        assert nothing.json()["field"] == "kind"
        first = (await history.recipients(infra.pool, brand_id))[0].id
        await _history(infra, brand_id, {first: 11}, campaigns_n=4)
        made = await client.post("/v1/models/train", headers=auth, json={"kind": "sto"})
        assert made.status_code == 201, made.text
        assert made.json()["version"] == 1
        assert made.json()["summary"]["messages"] > 0
        listed = await client.get("/v1/models", headers=auth, params={"kind": "sto"})
        assert [m["version"] for m in listed.json()["data"]] == [1]
        assert (await client.get("/v1/models", headers=other)).json()["data"] == []
        bad = await client.post("/v1/models/train", headers=auth, json={"kind": "horoscope"})
        assert bad.status_code == 422
