"""Responses are freed when their caller drops them, without the cyclic garbage collector
(workers run it rarely; httpx's own client leaves each response in a reference cycle)."""

from __future__ import annotations

import gc
import re
import weakref
from pathlib import Path

import httpx
import pytest

from clarion.httpclient import AsyncClient

SRC = Path(__file__).resolve().parents[2] / "src" / "clarion"


def _echo(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, content=b"x" * 100_000 + request.content)


async def _dropped_response_alive(client: httpx.AsyncClient) -> tuple[bool, bytes]:
    """Post, read the answer, drop it: is the response still alive (cycle collector off)?"""
    gc.disable()
    try:
        resp = await client.post("http://peer/v1/messages", content=b"body")
        content = resp.content
        alive = weakref.ref(resp)
        del resp
        return alive() is not None, content
    finally:
        gc.enable()


async def test_a_read_response_is_freed_when_dropped() -> None:
    async with AsyncClient(transport=httpx.MockTransport(_echo)) as client:
        alive, content = await _dropped_response_alive(client)
    assert not alive, "the response outlived its last reference: a reference cycle holds it"
    assert content == b"x" * 100_000 + b"body"


async def test_httpx_own_client_still_needs_the_collector() -> None:
    # What the wrapper is for. When this fails, httpx frees responses by itself
    # (encode/httpx#3733 landed) and `clarion.httpclient` can go.
    async with httpx.AsyncClient(transport=httpx.MockTransport(_echo)) as client:
        alive, _ = await _dropped_response_alive(client)
    assert alive


async def test_a_streamed_response_keeps_its_stream_until_read() -> None:
    async with AsyncClient(transport=httpx.MockTransport(_echo)) as client:
        req = client.build_request("POST", "http://peer/", content=b"abc")
        resp = await client.send(req, stream=True)
        try:
            assert (await resp.aread()).endswith(b"abc")
        finally:
            await resp.aclose()


@pytest.mark.parametrize("package", ["providers", "sim"])
def test_adapters_and_the_simulator_use_the_clarion_client(package: str) -> None:
    direct = [
        str(p.relative_to(SRC))
        for p in sorted((SRC / package).rglob("*.py"))
        if re.search(r"httpx\.AsyncClient\(", p.read_text())
    ]
    assert direct == [], f"{direct} build httpx.AsyncClient directly: use clarion.httpclient"
