"""API keys: a bearer key belongs to one brand; only its SHA-256 is stored."""

from __future__ import annotations

import hashlib
import secrets

from clarion.store.db import Pool

PREFIX = "clk_"


def _hash(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


async def create_key(pool: Pool, brand_id: int, name: str = "default") -> str:
    """A new key for the brand; returned once, never stored in the clear."""
    key = PREFIX + secrets.token_urlsafe(32)
    await pool.execute(
        "INSERT INTO api_keys (brand_id, name, key_hash) VALUES ($1, $2, $3)",
        brand_id,
        name,
        _hash(key),
    )
    return key


async def brand_of(pool: Pool, key: str) -> int | None:
    """The brand a live key belongs to (None: unknown or revoked)."""
    if not key.startswith(PREFIX):
        return None
    brand_id: int | None = await pool.fetchval(
        "SELECT brand_id FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL", _hash(key)
    )
    return brand_id
