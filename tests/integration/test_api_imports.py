"""`/v1/imports`: a CSV streamed in the body, imported in the background; progress and the
rejected rows (row number, field, reason) at `GET /v1/imports/{id}`; values typed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from clarion import bootstrap
from clarion.domain.clock import PinnedClock
from clarion.service.imports import PARALLEL_AFTER
from tests.conftest import DAYTIME
from tests.integration.helpers import api_client, brand_key

CSV = (
    "phone,email,first_name,sms_consent,orders,vip,since,zip,ltv\n"
    "(512) 555-0101,ava@x.co,Ava,yes,3,true,2024-03-01,02139,120.50\n"
    "not a number,,Bob,yes,1,false,2024-01-01,10001,1\n"
    "+1 512 555 0102,,Cy,no,0,FALSE,2023-12-31,73301,0.5\n"
    "5125550101,,Ava again,yes,9,true,2020-01-01,1,1\n"
    ",,Nobody,yes,,,,,\n"
    "512-555-0103,,Di,yes,7,,,,\n"
)


@pytest.fixture
async def client(infra: bootstrap.Infra) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(infra, clock=PinnedClock(DAYTIME)) as c:
        yield c


_key = brand_key


async def _finished(client: httpx.AsyncClient, url: str, auth: dict[str, str]) -> dict[str, object]:
    for _ in range(1200):
        got = (await client.get(url, headers=auth)).json()
        if got["status"] != "running":
            return got
        await asyncio.sleep(0.05)
    raise AssertionError(f"import still running: {got}")


async def test_an_import_runs_in_the_background_and_names_each_rejected_row(
    infra: bootstrap.Infra, client: httpx.AsyncClient
) -> None:
    brand_id, auth = await _key(infra, "imports-one")
    started = await client.post(
        "/v1/imports",
        headers={**auth, "Content-Type": "text/csv"},
        params={"source": "spring popup"},
        content=CSV.encode(),
    )
    assert started.status_code == 202, started.text
    url = started.headers["location"]
    assert url == f"/v1/imports/{started.json()['id']}"
    done = await _finished(client, url, auth)
    assert done["status"] == "done", done
    assert (done["rows_read"], done["created"], done["rejected"]) == (6, 3, 3)
    assert done["existing"] == 0  # in-file repeats are rejected by the reader
    rejections = (await client.get(f"{url}/rejections", headers=auth)).json()["data"]
    assert [(r["row"], r["field"]) for r in rejections] == [
        (3, "phone"),
        (5, "phone"),
        (6, "phone"),
    ]
    assert "seen in row 2" in rejections[1]["reason"] or "row 2" in rejections[1]["reason"]

    ava = await infra.pool.fetchrow(
        "SELECT attributes FROM subscribers WHERE brand_id = $1 AND phone = '+15125550101'",
        brand_id,
    )
    assert ava["attributes"] == {
        "orders": 3, "vip": True, "since": "2024-03-01", "zip": "02139", "ltv": 120.5,
    }  # fmt: skip
    ledger = await infra.pool.fetch(
        "SELECT c.source FROM consents c JOIN subscribers s ON s.id = c.subscriber_id"
        " WHERE s.brand_id = $1",
        brand_id,
    )
    assert [r["source"] for r in ledger] == ["spring popup", "spring popup"]  # Ava, Di

    again = await client.post(
        "/v1/imports", headers={**auth, "Content-Type": "text/csv"}, content=CSV.encode()
    )
    second = await _finished(client, again.headers["location"], auth)
    assert (second["created"], second["existing"], second["rejected"]) == (0, 3, 3)
    listed = (await client.get("/v1/imports", headers=auth)).json()["data"]
    assert [i["id"] for i in listed] == [done["id"], second["id"]]


async def test_a_file_that_cannot_be_imported_is_a_422_at_once(
    infra: bootstrap.Infra, client: httpx.AsyncClient
) -> None:
    _, auth = await _key(infra, "imports-bad")
    for body, field in (
        (b"name,city\nAva,Austin\n", "body"),
        (b"", "body"),
        (b"PK\x03\x04zip", "body"),
    ):
        resp = await client.post(
            "/v1/imports", headers={**auth, "Content-Type": "text/csv"}, content=body
        )
        assert resp.status_code == 422, (body, resp.text)
        assert resp.json()["code"] == "invalid"
        assert resp.json()["field"] == field
    unknown = await client.post(
        "/v1/imports",
        headers={**auth, "Content-Type": "text/csv"},
        params={"encoding": "klingon"},
        content=b"phone\n5125550101\n",
    )
    assert unknown.status_code == 422
    assert unknown.json()["field"] == "encoding"
    assert (await client.get("/v1/imports", headers=auth)).json()["data"] == []


async def test_another_brands_import_is_404(
    infra: bootstrap.Infra, client: httpx.AsyncClient
) -> None:
    _, mine = await _key(infra, "imports-mine")
    _, theirs = await _key(infra, "imports-theirs")
    started = await client.post(
        "/v1/imports", headers={**theirs, "Content-Type": "text/csv"}, content=CSV.encode()
    )
    url = started.headers["location"]
    await _finished(client, url, theirs)
    assert (await client.get(url, headers=mine)).status_code == 404
    assert (await client.get(f"{url}/rejections", headers=mine)).status_code == 404


async def test_a_big_file_is_checked_in_worker_processes_with_the_same_outcomes(
    infra: bootstrap.Infra, client: httpx.AsyncClient
) -> None:
    """Past `PARALLEL_AFTER` rows the rows are checked in a process pool: rejections come
    back from the workers with their row, field and reason, and repeats across batches are
    still caught."""
    brand_id, auth = await _key(infra, "imports-big")
    n = PARALLEL_AFTER + 5_000
    lines = ["phone,orders"]
    for i in range(n):
        lines.append(f"+1512{200 + i // 10000:03d}{i % 10000:04d},{i}")
    lines[PARALLEL_AFTER + 100] = "12345,1"  # bad, in a batch the workers check
    lines.append(lines[2])  # a repeat of row 3, in the last batch
    started = await client.post(
        "/v1/imports", headers={**auth, "Content-Type": "text/csv"},
        content=("\n".join(lines) + "\n").encode(),
    )  # fmt: skip
    done = await _finished(client, started.headers["location"], auth)
    assert done["status"] == "done", done
    assert (done["rows_read"], done["created"], done["rejected"]) == (n + 1, n - 1, 2)
    rejections = (
        await client.get(f"{started.headers['location']}/rejections", headers=auth)
    ).json()["data"]
    assert [(r["row"], r["field"]) for r in rejections] == [
        (PARALLEL_AFTER + 101, "phone"), (n + 2, "phone"),
    ]  # fmt: skip
    assert "duplicate of row 3" in rejections[1]["reason"]
    orders = await infra.pool.fetchval(
        "SELECT attributes->'orders' FROM subscribers WHERE brand_id = $1 AND phone = $2",
        brand_id, "+15122020000",
    )  # fmt: skip
    assert orders == 20000
