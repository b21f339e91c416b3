"""Issue 24, fault 9: with no secret configured, Clarion used published development ones —
anyone could mint an unsubscribe link for any (sequential) subscriber id, or sign a receipt.
Now an install makes its own, once, and refuses the published ones."""

from __future__ import annotations

import asyncio
import os
import stat
import time
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from clarion import bootstrap
from clarion.config import Settings, file_secret
from clarion.email.unsubscribe import make_token
from clarion.errors import ConfigurationError
from clarion.sim.wire import signed_headers
from tests.integration.helpers import brand_with_subscribers

PUBLISHED = {"sim": "clarion-sim-secret", "unsubscribe": "clarion-unsubscribe-dev"}


async def test_an_install_without_secrets_refuses_tokens_and_receipts_made_with_the_old_defaults(
    settings: Settings,
) -> None:
    settings = replace(settings, sim_secret=None, unsubscribe_secret=None)
    async with bootstrap.infrastructure(settings) as infra:
        made = infra.settings
        assert made.unsubscribe_secret
        assert made.unsubscribe_secret not in PUBLISHED.values()
        assert made.sim_secret
        assert made.sim_secret not in PUBLISHED.values()
        audience = await brand_with_subscribers(infra.pool, 2, seed=2409)
        sub_id = await infra.pool.fetchval(
            "SELECT id FROM subscribers WHERE brand_id = $1 ORDER BY id LIMIT 1",
            audience.brand_id,
        )
        provider = bootstrap.build_provider(made)
        base = made.public_url
        async with bootstrap.running(infra, provider, stages=()), httpx.AsyncClient() as client:
            for _ in range(100):
                try:
                    await client.get(f"{base}/livez")
                    break
                except httpx.ConnectError:
                    await asyncio.sleep(0.05)
            minted = make_token(PUBLISHED["unsubscribe"], audience.brand_id, sub_id)
            one_click = {"List-Unsubscribe": "One-Click"}
            assert (await client.post(f"{base}/u/{minted}", data=one_click)).status_code == 404
            real = make_token(made.unsubscribe_secret, audience.brand_id, sub_id)
            assert (await client.post(f"{base}/u/{real}", data=one_click)).status_code == 200
            body = b'{"batch_id": "b1", "receipts": []}'
            forged = signed_headers(PUBLISHED["sim"], "b1", body, time.time())
            url = f"{base}/webhooks/sim/status"
            assert (await client.post(url, content=body, headers=forged)).status_code == 403
            signed = signed_headers(made.sim_secret, "b1", body, time.time())
            assert (await client.post(url, content=body, headers=signed)).status_code == 200
        await provider.aclose()
    async with bootstrap.infrastructure(settings) as again:  # the same install: the same ones
        assert again.settings.unsubscribe_secret == made.unsubscribe_secret
        assert again.settings.sim_secret == made.sim_secret


@pytest.mark.parametrize(
    ("var", "value", "why"),
    [
        ("CLARION_UNSUBSCRIBE_SECRET", "clarion-unsubscribe-dev", "published"),
        ("CLARION_SIM_SECRET", "clarion-sim-secret", "published"),
        ("CLARION_SIM_SECRET", "short", "at least 16"),
        ("CLARION_SIM_SECRET", "CHANGE-ME-to-another-long-random-string", "placeholder"),
    ],
)
def test_a_published_or_short_secret_is_refused_at_start(
    monkeypatch: pytest.MonkeyPatch, var: str, value: str, why: str
) -> None:
    monkeypatch.setenv(var, value)
    with pytest.raises(ConfigurationError, match=why):
        Settings.from_env()


def test_a_generated_secret_is_random_owner_only_and_kept(tmp_path: Path) -> None:
    first = file_secret(tmp_path / "secrets" / "sim")
    assert len(first) >= 32
    assert file_secret(tmp_path / "secrets" / "sim") == first
    assert file_secret(tmp_path / "other" / "sim") != first
    mode = stat.S_IMODE(os.stat(tmp_path / "secrets" / "sim").st_mode)
    assert mode == 0o600
