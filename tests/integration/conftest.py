"""Fixtures the web UI's integration tests share (a module may define its own `site`)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from clarion import bootstrap, service
from clarion.api.app import create_app
from clarion.api.v1 import V1
from clarion.domain.clock import PinnedClock
from tests.conftest import DAYTIME
from tests.integration.test_web_auth import PASSWORD, Site


@pytest.fixture
async def site(infra: bootstrap.Infra) -> AsyncIterator[Site]:
    """The web UI in process, for two brands each with a user (Ada of Northwind, Bob of
    Contoso), on a clock pinned to a weekday afternoon."""
    brand_id = await service.brands.create(
        infra, slug="northwind", name="Northwind", sender="+15125550100"
    )
    other = await service.brands.create(
        infra, slug="contoso", name="Contoso", sender="+15125550199"
    )
    await service.users.create(infra, brand_id, "ada@northwind.example", PASSWORD)
    await service.users.create(infra, other, "bob@contoso.example", PASSWORD)
    clock = PinnedClock(DAYTIME)
    app = create_app(infra.bus, {}, api=V1(infra, clock=clock))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://clarion"
    ) as client:
        yield Site(client, app, clock, app.state.web, brand_id, other)
        await app.state.web.counter.settle()
