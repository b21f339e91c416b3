"""Schemathesis over `/openapi.json`: every operation of the `/v1` API, called with generated
parameters and bodies (valid and invalid ones), never answers with a server error — with a
brand's key, without a key, and with another brand's key (which must never see a record).

Clarion runs as operators run it, `clarion run` in its own process (its asyncpg pool belongs
to its own event loop, so it is not called in-process through a sync test client), against a
fresh database seeded with two brands, subscribers, a campaign with a stored plan and a
sent message, and drafts a case may delete, so that generated ids sometimes name records that
exist. Its log (`--verbose`) is attached to a failure: a 5xx comes with the server's
traceback."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from clarion.api.app import create_app
from clarion.api.v1 import V1
from clarion.bus.embedded import free_port
from clarion.domain.catalog import Product
from clarion.domain.keys import SCOPES, ApiKey
from clarion.sim.process import SimProcess
from clarion.store import api_keys, brands, catalog
from clarion.store.db import create_pool, migrate
from tests.conftest import SIM_SECRET, fresh_database
from tests.integration.helpers import brand_with_subscribers, campaign
from tests.processes import wait_until_ready

# Per operation, besides schemathesis' coverage phase (the boundary values of every
# parameter, each method the path does not allow): enough generated cases to mix valid and
# invalid parts, few enough that the module runs in seconds.
FUZZ = settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
SENDER = "+15125550100"
PRODUCT = "mug-1"  # brand A's

# How a request may come without the brand's key: none, a malformed one, another scheme,
# a key that was never issued; and with the other brand's key (the test adds it).
NOT_THE_BRANDS_KEY = [
    "no key",
    "Authorization: Bearer",
    "Authorization: Bearer clk_never-issued",
    "Authorization: Basic YWRtaW46YWRtaW4=",
]


@dataclass
class RunningApi:
    url: str
    key: str  # brand A's
    other_key: str  # brand B's: no campaign, no message of its own
    campaign_id: int  # brand A's, with a stored plan
    message_id: str  # brand A's
    subscriber_phone: str  # brand A's, consented
    log: Path
    fuzzers: frozenset[int]  # the ids of the two keys above: never revoked by a case
    spare_key_ids: list[int]  # brand A's keys a case may revoke or rotate
    subscriber_id: int  # brand A's (not the one `subscriber_phone` names: a case may erase it)
    spare_campaign_ids: list[int]  # brand A's drafts a case may delete (never `campaign_id`)

    def log_tail(self, n_chars: int = 6000) -> str:
        return "clarion run's log (tail):\n" + self.log.read_text(errors="replace")[-n_chars:]


async def _seed(
    database_url: str,
) -> tuple[int, tuple[ApiKey, str], tuple[ApiKey, str], str, list[int], int, list[int]]:
    """Brand A (subscribers, a campaign, spare keys and drafts) and brand B (subscribers
    only), a key each: (A's campaign id, A's key and its secret, B's, a phone number of A's
    consented subscribers, the ids of A's spare keys, one of A's subscribers, the ids of A's
    spare drafts)."""
    await migrate(database_url)
    pool = await create_pool(database_url, min_size=1, max_size=2)
    try:
        a = await brand_with_subscribers(pool, 20, seed=241)
        # brand B owns nothing but its key: whatever id it names is another's
        b_id = await brands.create_brand(pool, slug="brand-242", name="Other", sender=SENDER)
        campaign_id = await campaign(pool, a.brand_id)
        key = await api_keys.create(pool, a.brand_id, "fuzz", SCOPES)
        other = await api_keys.create(pool, b_id, "fuzz", SCOPES)
        subscriber_id = await pool.fetchval(
            "SELECT id FROM subscribers WHERE phone = $1", a.consented[1]
        )
        await catalog.upsert(pool, a.brand_id, [Product(id=PRODUCT, name="Mug")])
        # keys of brand A's that the fuzzer may revoke and rotate (never its own two)
        spare = [
            (await api_keys.create(pool, a.brand_id, f"spare {i}", ["read"]))[0] for i in range(3)
        ]
        # drafts of brand A's that the fuzzer may delete (never the campaign above)
        drafts = [await campaign(pool, a.brand_id, name=f"spare {i}") for i in range(3)]
        return (
            campaign_id,
            key,
            other,
            a.consented[0],
            [k.id for k in spare],
            subscriber_id,
            drafts,
        )
    finally:
        await pool.close()


@pytest.fixture(scope="module")
def running_api(
    servers: tuple[str, str], sim: SimProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningApi]:
    database_url, nats_url = servers
    database_url = asyncio.run(fresh_database(database_url))
    seeded = asyncio.run(_seed(database_url))
    campaign_id, (key, secret), (other, other_secret), phone, spare, subscriber_id, drafts = seeded
    tmp = tmp_path_factory.mktemp("fuzz-api")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "CLARION_DATABASE_URL": database_url,
        "CLARION_NATS_URL": nats_url,
        "CLARION_BUS_NAMESPACE": f"f{uuid.uuid4().hex[:10]}",
        "CLARION_SIM_URL": sim.url,
        "CLARION_SIM_SECRET": SIM_SECRET,
        "CLARION_PUBLIC_URL": url,
        "CLARION_DATA_DIR": str(tmp / "data"),
    }
    log = tmp / "clarion.log"
    with log.open("wb") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "clarion", "run", "--port", str(port), "--verbose"],
            env=env, stdout=log_file, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        wait_until_ready(proc, url, output=lambda: log.read_text()[-4000:])
        auth = {"Authorization": f"Bearer {secret}"}
        with httpx.Client(base_url=url, headers=auth, timeout=30) as client:
            planned = client.post(f"/v1/campaigns/{campaign_id}/plan")
            assert planned.status_code == 200, planned.text
            sent = client.post("/v1/messages", json={"to": phone, "body": "Code 123"})
            assert sent.status_code == 202, sent.text
            message_id = sent.json()["id"]
            deadline = time.monotonic() + 30
            while client.get(f"/v1/messages/{message_id}").status_code != 200:
                assert time.monotonic() < deadline, "the seeded message was never stored"
                time.sleep(0.1)
            assert client.get("/openapi.json").json() == schema.raw_schema
        yield RunningApi(
            url, secret, other_secret, campaign_id, message_id, phone, log,
            fuzzers=frozenset({key.id, other.id}), spare_key_ids=spare,
            subscriber_id=subscriber_id, spare_campaign_ids=drafts,
        )  # fmt: skip
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _openapi() -> dict[str, Any]:
    """The document `/openapi.json` serves, made without a server: routes and their types
    only, nothing reaches a database or a bus (the fixture checks the served one is equal)."""
    v1 = V1(svc=SimpleNamespace(pool=None))  # type: ignore[arg-type]
    return create_app(None, {}, api=v1).openapi()  # type: ignore[arg-type]


# Loaded when the tests are collected, for one test per operation: schemathesis' loader from
# a fixture (`schemathesis.pytest.from_fixture`) fails on pytest 9.2 (it sets
# `Function._nodeid`, which pytest no longer has).
schema = schemathesis.openapi.from_dict(_openapi())


def _as_number(value: Any) -> float | None:
    """A path parameter as the number the API may read it as ("02", " 2", "2.0" are 2)."""
    try:
        return float(str(value).strip())
    except ValueError:
        return None


def _seeded(case: schemathesis.Case, api: RunningApi) -> None:
    """In half the cases, name brand A's records instead of the generated ids, and send to
    one of its subscribers (a random `to` is almost never a phone number: nothing past it
    would be reached). Which half is decided by the case itself, so a replayed case is the
    same request (drawing it with `@schema.given` would turn schemathesis' coverage phase,
    the boundary cases, off). A case never names the keys the test calls with (revoking
    them would leave every later case a 401): it names one of A's spare keys instead. Nor
    does a DELETE name the seeded campaign (the later cases would find none): it names one of
    A's spare drafts."""
    params = case.path_parameters or {}
    if "key_id" in params and _as_number(params["key_id"]) in api.fuzzers:
        case.path_parameters = {**params, "key_id": api.spare_key_ids[0]}
    deleting = case.method.upper() == "DELETE"
    if deleting and _as_number(params.get("campaign_id")) == api.campaign_id:
        case.path_parameters = {**params, "campaign_id": api.spare_campaign_ids[0]}
    if zlib.crc32(repr((case.path_parameters, case.query, case.body)).encode()) % 2:
        return
    drafts = api.spare_campaign_ids
    spare_draft = drafts[zlib.crc32(repr(case.path_parameters).encode()) % len(drafts)]
    known = {
        "campaign_id": spare_draft if deleting else api.campaign_id,
        "message_id": api.message_id,
        "subscriber_id": api.subscriber_id,
        "product_id": PRODUCT,
        "key_id": api.spare_key_ids[zlib.crc32(repr(case.body).encode()) % len(api.spare_key_ids)],
    }
    if case.path_parameters:
        case.path_parameters = {k: known.get(k, v) for k, v in case.path_parameters.items()}
    if isinstance(case.body, dict) and "to" in case.body:
        case.body = {**case.body, "to": api.subscriber_phone}


def _call(case: schemathesis.Case, api: RunningApi, headers: dict[str, str], *checks: Any) -> int:
    """The case's request; its response passes `checks`, or the failure carries the log."""
    try:
        return case.call_and_validate(
            base_url=api.url, headers=headers, checks=list(checks), timeout=30
        ).status_code
    except BaseException as exc:
        exc.add_note(api.log_tail())
        raise


@schema.parametrize()
@FUZZ
def test_no_operation_answers_the_brands_own_key_with_a_server_error(
    case: schemathesis.Case, running_api: RunningApi
) -> None:
    _seeded(case, running_api)
    auth = {"Authorization": f"Bearer {running_api.key}"}
    _call(case, running_api, auth, not_a_server_error)


@schema.include(path_regex=r"\{").parametrize()
@pytest.mark.parametrize("who", [*NOT_THE_BRANDS_KEY, "other brand"])
@FUZZ
def test_a_request_without_the_brands_key_gets_no_record_and_no_server_error(
    case: schemathesis.Case, who: str, running_api: RunningApi
) -> None:
    _seeded(case, running_api)
    headers = {"Authorization": f"Bearer {running_api.other_key}"} if who == "other brand" else {}
    if who.startswith("Authorization: "):
        headers = {"Authorization": who.removeprefix("Authorization: ")}
    status = _call(case, running_api, headers, not_a_server_error)
    # Brand B has no campaign, message, subscriber or product, and no key but its own (never
    # named: `_seeded`): whatever id it names is not its own.
    assert not 200 <= status < 300, f"{case.method} {case.formatted_path} answered {status}"
