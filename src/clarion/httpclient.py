"""The HTTP client every provider adapter and the simulator's webhook senders use: httpx's,
with each response freed as soon as its caller drops it.

httpx 0.28 wraps every response's body stream in an object that refers back to the
response (to stamp `elapsed` when the stream closes), so each response, its request and
both bodies form a reference cycle that only the cyclic garbage collector frees
(encode/httpx#3733). Workers run that collector rarely (`cli._server_gc`), and a send
process making a thousand-message call every few milliseconds then held hundreds of dead
request and response bodies: 180 of its 260 MB at peak in a 1,000,000-recipient bench
(memray; BENCHMARKS.md's history, eighth pass). A response read in full no longer needs its
stream, so the cycle is cut there."""

from __future__ import annotations

from typing import Any

import httpx

# What a fully read response's stream is replaced by: its body is in `response.content`.
_READ = httpx.ByteStream(b"")


class AsyncClient(httpx.AsyncClient):
    async def send(
        self, request: httpx.Request, *, stream: bool = False, **kwargs: Any
    ) -> httpx.Response:
        response = await super().send(request, stream=stream, **kwargs)
        if not stream:  # read and closed: `elapsed` is stamped, the bound stream is spent
            response.stream = _READ
        return response
