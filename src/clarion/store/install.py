"""What an install keeps about itself: the secrets it generated."""

from __future__ import annotations

import secrets

from clarion.store.db import Pool


async def install_secret(pool: Pool, name: str) -> str:
    """The install's secret `name`, made at random by whichever process asks first."""
    await pool.execute(
        "INSERT INTO install_secrets (name, value) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        name,
        secrets.token_urlsafe(32),
    )
    value: str = await pool.fetchval("SELECT value FROM install_secrets WHERE name = $1", name)
    return value
