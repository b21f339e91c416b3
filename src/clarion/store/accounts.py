"""Provider accounts (settings with environment references, never secrets)."""

from __future__ import annotations

from typing import Any

from clarion.domain import accounts
from clarion.store.db import Pool


async def add_account(pool: Pool, name: str, kind: str, settings: dict[str, str]) -> None:
    accounts.check(name, kind, settings)
    await pool.execute(
        "INSERT INTO provider_accounts (name, kind, settings) VALUES ($1, $2, $3)"
        " ON CONFLICT (name) DO UPDATE SET kind = excluded.kind, settings = excluded.settings",
        name,
        kind,
        settings,
    )


async def list_accounts(pool: Pool) -> list[dict[str, Any]]:
    rows = await pool.fetch("SELECT name, kind, settings FROM provider_accounts ORDER BY name")
    return [dict(r) for r in rows]
