"""Provider accounts (settings with environment references, never secrets)."""

from __future__ import annotations

import msgspec

from clarion.domain import accounts
from clarion.domain.rows import AccountRow
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


async def list_accounts(pool: Pool) -> list[AccountRow]:
    """Every provider account, in name order."""
    rows = await pool.fetch("SELECT name, kind, settings FROM provider_accounts ORDER BY name")
    return [msgspec.convert(dict(r), AccountRow) for r in rows]
