"""The simulator as one ASGI app: its state (`state`), each front end's routes (the batch
HTTP API, the Twilio-compatible API, the SendGrid-compatible API, the simulator's own
endpoints), the SMPP SMSC when a port is configured, and the receipt dispatcher. Wiring
only: each front end imports `state`, and none imports this module.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator

from starlette.applications import Starlette

from clarion.httpclient import AsyncClient
from clarion.sim import batch_api, control, sendgrid_api, twilio_api
from clarion.sim.batch_api import RECEIPTS_PER_POST, decode_request, encode
from clarion.sim.dispatch import dispatch_receipts
from clarion.sim.smsc import serve_smsc
from clarion.sim.state import SimConfig, SimState, Throughput

# The simulator's public names (the CLI builds a `SimConfig`; bench/hot_paths.py also drives
# the batch API's codec and a `SimState` directly, through this module).
__all__ = [
    "RECEIPTS_PER_POST",
    "SimConfig",
    "SimState",
    "create_app",
    "decode_request",
    "encode",
]


def create_app(config: SimConfig) -> Starlette:
    """The simulator, configured by `config`; its state is `app.state.sim`."""
    state = SimState(config=config, rng=random.Random(config.seed))
    throughput = Throughput(config.max_mps)  # one account: shared by both SMS HTTP APIs

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        stop = asyncio.Event()
        async with AsyncClient(timeout=30) as client, serve_smsc(state):
            state.channels["sim"] = batch_api.channel(state, client)
            state.channels["twilio"] = twilio_api.channel(state, client)
            task = asyncio.create_task(dispatch_receipts(state, stop))
            people = asyncio.create_task(_shoppers(state, client, stop))
            yield
            stop.set()
            await asyncio.gather(task, people)

    app = Starlette(
        routes=[
            *batch_api.routes(state, over_limit=throughput.wait_s),
            *control.routes(state),
            *sendgrid_api.routes(state, config),  # SendGrid v3 email front end
            *twilio_api.routes(state, over_limit=throughput.wait_s),
        ],
        lifespan=lifespan,
    )
    app.state.sim = state
    return app


async def _shoppers(state: SimState, client: AsyncClient, stop: asyncio.Event) -> None:
    """The people's clicks and orders, once configured (replaced when configured again)."""
    while not stop.is_set():
        people = state.shoppers
        if people is None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.1)
            continue
        done = asyncio.Event()
        runner = asyncio.create_task(people.run(client, done))
        while not stop.is_set() and state.shoppers is people:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.1)
        done.set()
        await runner
