"""Web UI users and their sessions. A session's token is never stored: only its SHA-256."""

from __future__ import annotations

import hashlib
from datetime import datetime

import asyncpg

from clarion.domain.users import Credentials, User, WebSession
from clarion.errors import Duplicate, NotFound
from clarion.store.db import Pool

_USER = "u.id, u.brand_id, u.email, u.created_at, u.last_sign_in_at"


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def _user(r: asyncpg.Record) -> User:
    return User(
        id=r["id"], brand_id=r["brand_id"], email=r["email"], created_at=r["created_at"],
        last_sign_in_at=r["last_sign_in_at"],
    )  # fmt: skip


async def create(pool: Pool, brand_id: int, email: str, password_hash: str) -> User:
    """A new user of the brand; `Duplicate` when the address (any case) is taken."""
    try:
        row = await pool.fetchrow(
            "INSERT INTO users AS u (brand_id, email, password_hash) VALUES ($1, $2, $3)"
            f" RETURNING {_USER}",
            brand_id, email, password_hash,
        )  # fmt: skip
    except asyncpg.UniqueViolationError:
        existing = await pool.fetchval("SELECT id FROM users WHERE lower(email) = lower($1)", email)
        raise Duplicate("user", "email", existing or 0) from None
    assert row is not None
    return _user(row)


async def credentials(pool: Pool, email: str) -> Credentials | None:
    row = await pool.fetchrow(
        f"SELECT {_USER}, u.password_hash, u.failed_attempts, u.locked_until FROM users u"
        " WHERE lower(u.email) = lower($1)",
        email,
    )
    if row is None:
        return None
    return Credentials(
        user=_user(row), password_hash=row["password_hash"],
        failed_attempts=row["failed_attempts"], locked_until=row["locked_until"],
    )  # fmt: skip


async def record_failure(pool: Pool, user_id: int, *, limit: int, lock_until: datetime) -> int:
    """Count a wrong password; the `limit`-th in a row locks the account until `lock_until`
    (and the count starts again). Returns the count after it (0: it locked)."""
    count: int = await pool.fetchval(
        """
        UPDATE users SET
            failed_attempts = CASE WHEN failed_attempts + 1 >= $2 THEN 0
                                   ELSE failed_attempts + 1 END,
            locked_until = CASE WHEN failed_attempts + 1 >= $2 THEN $3 ELSE locked_until END
        WHERE id = $1 RETURNING failed_attempts
        """,
        user_id, limit, lock_until,
    )  # fmt: skip
    return count


async def record_success(
    pool: Pool, user_id: int, password_hash: str | None, now: datetime
) -> None:
    """A sign-in: the failures forgotten; a new hash when the old one's parameters aged."""
    await pool.execute(
        "UPDATE users SET failed_attempts = 0, locked_until = NULL, last_sign_in_at = $2,"
        " password_hash = coalesce($3, password_hash) WHERE id = $1",
        user_id, now, password_hash,
    )  # fmt: skip


async def set_password(pool: Pool, user_id: int, password_hash: str) -> None:
    """A new password; every session of the user ends."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            "UPDATE users SET password_hash = $2, failed_attempts = 0, locked_until = NULL"
            " WHERE id = $1",
            user_id, password_hash,
        )  # fmt: skip
        await conn.execute("UPDATE web_sessions SET revoked = true WHERE user_id = $1", user_id)


async def list_users(pool: Pool, brand_id: int) -> list[User]:
    rows = await pool.fetch(
        f"SELECT {_USER} FROM users u WHERE u.brand_id = $1 ORDER BY u.id", brand_id
    )
    return [_user(r) for r in rows]


async def get(pool: Pool, brand_id: int, user_id: int) -> User:
    row = await pool.fetchrow(
        f"SELECT {_USER} FROM users u WHERE u.id = $1 AND u.brand_id = $2", user_id, brand_id
    )
    if row is None:
        raise NotFound("user", user_id)
    return _user(row)


async def create_session(
    pool: Pool, user_id: int, token: str, csrf_token: str, *, now: datetime, expires_at: datetime
) -> None:
    await pool.execute(
        "INSERT INTO web_sessions (token_hash, user_id, csrf_token, created_at, expires_at)"
        " VALUES ($1, $2, $3, $4, $5)",
        token_hash(token), user_id, csrf_token, now, expires_at,
    )  # fmt: skip


async def session(pool: Pool, token: str, now: datetime) -> WebSession | None:
    """The live session whose token this is (None: unknown, revoked or expired)."""
    row = await pool.fetchrow(
        f"SELECT {_USER}, s.csrf_token, s.expires_at, b.name AS brand_name"
        " FROM web_sessions s JOIN users u ON u.id = s.user_id JOIN brands b ON b.id = u.brand_id"
        " WHERE s.token_hash = $1 AND NOT s.revoked AND s.expires_at > $2",
        token_hash(token), now,
    )  # fmt: skip
    if row is None:
        return None
    return WebSession(
        user=_user(row), brand_name=row["brand_name"], csrf_token=row["csrf_token"],
        expires_at=row["expires_at"],
    )  # fmt: skip


async def revoke_session(pool: Pool, token: str) -> None:
    await pool.execute(
        "UPDATE web_sessions SET revoked = true WHERE token_hash = $1", token_hash(token)
    )


async def forget_expired(pool: Pool, before: datetime) -> int:
    """Delete sessions that ended before `before`; how many."""
    done: str = await pool.execute("DELETE FROM web_sessions WHERE expires_at < $1", before)
    return int(done.split()[-1])
