"""API keys: a bearer key belongs to one brand; only its SHA-256 is stored."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence

from clarion.domain.keys import SCOPES, ApiKey
from clarion.errors import NotFound
from clarion.store.db import Pool

PREFIX = "clk_"
_COLUMNS = "id, brand_id, name, scopes, hint, created_at, last_used_at, revoked_at, rate_per_s"


def _hash(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def _secret() -> str:
    return PREFIX + secrets.token_urlsafe(32)


async def create_key(
    pool: Pool,
    brand_id: int,
    name: str = "default",
    scopes: Sequence[str] = SCOPES,
    *,
    rate_per_s: float | None = None,
) -> str:
    """A new key for the brand; returned once, never stored in the clear."""
    return (await create(pool, brand_id, name, scopes, rate_per_s=rate_per_s))[1]


async def create(
    pool: Pool,
    brand_id: int,
    name: str,
    scopes: Sequence[str],
    *,
    rate_per_s: float | None = None,
) -> tuple[ApiKey, str]:
    """A new key for the brand: (the key as listed, its secret, shown this once)."""
    secret = _secret()
    row = await pool.fetchrow(
        f"INSERT INTO api_keys (brand_id, name, key_hash, scopes, hint, rate_per_s)"
        f" VALUES ($1, $2, $3, $4, $5, $6) RETURNING {_COLUMNS}",
        brand_id, name, _hash(secret), list(scopes), secret[-4:], rate_per_s,
    )  # fmt: skip
    assert row is not None
    return ApiKey(**dict(row)), secret


async def authenticate(pool: Pool, secret: str) -> ApiKey | None:
    """The live key whose secret this is (None: unknown or revoked)."""
    if not secret.startswith(PREFIX):
        return None
    row = await pool.fetchrow(
        f"SELECT {_COLUMNS} FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL",
        _hash(secret),
    )
    return None if row is None else ApiKey(**dict(row))


async def touch(pool: Pool, key_ids: Sequence[int]) -> None:
    """Record that these keys were used now."""
    if key_ids:
        await pool.execute(
            "UPDATE api_keys SET last_used_at = now() WHERE id = ANY($1::bigint[])", list(key_ids)
        )


async def list_keys(pool: Pool, brand_id: int, *, after_id: int, limit: int) -> list[ApiKey]:
    """The brand's keys, revoked ones included, in id order after `after_id`."""
    rows = await pool.fetch(
        f"SELECT {_COLUMNS} FROM api_keys WHERE brand_id = $1 AND id > $2 ORDER BY id LIMIT $3",
        brand_id, after_id, limit,
    )  # fmt: skip
    return [ApiKey(**dict(r)) for r in rows]


async def get_key(pool: Pool, brand_id: int, key_id: int) -> ApiKey:
    row = await pool.fetchrow(
        f"SELECT {_COLUMNS} FROM api_keys WHERE brand_id = $1 AND id = $2", brand_id, key_id
    )
    if row is None:
        raise NotFound("API key", key_id)
    return ApiKey(**dict(row))


async def revoke(pool: Pool, brand_id: int, key_id: int) -> ApiKey:
    """Revoke the brand's key (at once: its next request is refused); revoking twice keeps
    the first time."""
    row = await pool.fetchrow(
        f"UPDATE api_keys SET revoked_at = coalesce(revoked_at, now())"
        f" WHERE brand_id = $1 AND id = $2 RETURNING {_COLUMNS}",
        brand_id, key_id,
    )  # fmt: skip
    if row is None:
        raise NotFound("API key", key_id)
    return ApiKey(**dict(row))


async def rotate(pool: Pool, brand_id: int, key_id: int) -> tuple[ApiKey, str]:
    """Replace a live key with a new one of the same name, scopes and rate, in one
    transaction: the old secret stops working as the new one starts."""
    async with pool.acquire() as conn, conn.transaction():
        old = await conn.fetchrow(
            "UPDATE api_keys SET revoked_at = now()"
            " WHERE brand_id = $1 AND id = $2 AND revoked_at IS NULL"
            " RETURNING name, scopes, rate_per_s",
            brand_id, key_id,
        )  # fmt: skip
        if old is None:
            raise NotFound("API key", key_id)
        secret = _secret()
        row = await conn.fetchrow(
            f"INSERT INTO api_keys (brand_id, name, key_hash, scopes, hint, rate_per_s)"
            f" VALUES ($1, $2, $3, $4, $5, $6) RETURNING {_COLUMNS}",
            brand_id, old["name"], _hash(secret), old["scopes"], secret[-4:], old["rate_per_s"],
        )  # fmt: skip
    assert row is not None
    return ApiKey(**dict(row)), secret
