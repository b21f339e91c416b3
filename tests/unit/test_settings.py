"""Settings from the environment, as a deployment sets them."""

from __future__ import annotations

from types import SimpleNamespace

import httpx
import pytest

from clarion.api.app import create_app
from clarion.config import Settings


def test_deployment_settings_are_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for var, value in {
        "CLARION_HTTP_HOST": "0.0.0.0",
        "CLARION_HTTP_PORT": "9000",
        "CLARION_BUS_REPLICAS": "3",
        "CLARION_MAX_INFLIGHT_BATCHES": "6",
        "CLARION_RECONCILE_EVERY_S": "12.5",
        "CLARION_SEND_MAX_ATTEMPTS": "5",
        "CLARION_CARRIER_ALERT_WINDOW_MIN": "15",
    }.items():
        monkeypatch.setenv(var, value)
    s = Settings.from_env()
    assert (s.http_host, s.http_port, s.bus_replicas) == ("0.0.0.0", 9000, 3)
    assert (s.max_inflight_batches, s.reconcile_every_s, s.send_max_attempts) == (6, 12.5, 5)
    assert s.carrier_alert_window_min == 15


@pytest.mark.parametrize(
    ("connected", "closed", "ready", "live"),
    [(True, False, 200, 200), (False, False, 503, 200), (False, True, 503, 503)],
)
async def test_readiness_needs_the_bus_connected_and_liveness_only_not_closed_for_good(
    connected: bool, closed: bool, ready: int, live: int
) -> None:
    """Reconnecting (not connected, not closed) takes the process out of service without
    restarting it; a client closed for good never comes back: restart."""

    async def account_info() -> object:
        return object()

    bus = SimpleNamespace(
        nc=SimpleNamespace(is_connected=connected, is_closed=closed),
        js=SimpleNamespace(account_info=account_info),
    )
    app = create_app(bus, {})  # type: ignore[arg-type]
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        for path in ("/readyz", "/healthz"):
            r = await client.get(path)
            assert r.status_code == ready
            assert (r.json()["checks"]["nats"] == "ok") is connected
        assert (await client.get("/livez")).status_code == live
