"""Connection pool and schema migrations."""

from __future__ import annotations

import logging
import re
from importlib import resources
from typing import TYPE_CHECKING, Any, TypeAlias

import asyncpg
import msgspec

from clarion.errors import ClarionError, InvalidInput, NotFound

log = logging.getLogger(__name__)

Pool = asyncpg.Pool
if TYPE_CHECKING:
    # A connection the store's functions take: one of its own, or one acquired from the pool.
    Conn: TypeAlias = asyncpg.Connection[Any] | asyncpg.pool.PoolConnectionProxy[Any]

_json_encode = msgspec.json.Encoder().encode
_json_decode = msgspec.json.Decoder().decode
# Serialises concurrent `migrate()` calls from several processes starting at once.
_MIGRATION_LOCK_KEY = 0x0C1A_0001


async def _init_connection(conn: asyncpg.Connection[Any]) -> None:
    # Binary format (a version byte, then the JSON text) so COPY can carry jsonb too.
    await conn.set_type_codec(
        "jsonb",
        encoder=lambda v: b"\x01" + _json_encode(v),
        decoder=lambda b: _json_decode(b[1:]),
        schema="pg_catalog",
        format="binary",
    )


async def _keep_session(conn: asyncpg.Connection[Any]) -> None:
    """What a connection going back to the pool needs beyond asyncpg's own rollback of an
    open transaction: nothing. asyncpg's default sends `SELECT pg_advisory_unlock_all();
    CLOSE ALL; UNLISTEN *; RESET ALL` on every release, a round trip and a statement for
    each of the many short acquisitions on the hot path. Clarion leaves no session state on
    a pooled connection: no SET outside a transaction, no LISTEN, no cursor outside a
    transaction; its one session-level advisory lock (the deferred sweep's) is released
    by its holder, which closes the connection if it cannot (`release_session_lock`)."""


async def release_session_lock(conn: Conn, key: int) -> None:
    """Release a session-level advisory lock taken on a pooled connection; if that fails,
    the connection is closed, so the lock can never stay behind in the pool."""
    try:
        await conn.execute("SELECT pg_advisory_unlock($1)", key)
    except BaseException:
        conn.terminate()
        raise


async def create_pool(dsn: str, *, min_size: int = 2, max_size: int = 10) -> Pool:
    pool = await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        init=_init_connection,
        reset=_keep_session,
        command_timeout=120,
    )
    assert pool is not None
    return pool


def migration_files() -> list[tuple[str, str]]:
    """(version, sql) of every packaged migration, in order."""
    root = resources.files("clarion.store") / "migrations"
    files = sorted((p for p in root.iterdir() if p.name.endswith(".sql")), key=lambda p: p.name)
    return [(p.name.removesuffix(".sql"), p.read_text()) for p in files]


async def migrate(dsn: str) -> list[str]:
    """Apply every migration not applied yet; returns the versions applied. Idempotent."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", _MIGRATION_LOCK_KEY)
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
        applied = []
        for version, sql in migration_files():
            if version in done:
                continue
            async with conn.transaction():
                await conn.execute(sql)
                await conn.execute("INSERT INTO schema_migrations (version) VALUES ($1)", version)
            log.info("applied migration %s", version)
            applied.append(version)
        return applied
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _MIGRATION_LOCK_KEY)
        await conn.close()


_KEY_DETAIL = re.compile(r"Key \((?P<column>[^)]*)\)=\((?P<value>.*)\)")


# What Postgres refuses of a value a user gave: a rule of the schema, or data it cannot hold.
Refused = (asyncpg.IntegrityConstraintViolationError, asyncpg.DataError)


def constraint_error(exc: asyncpg.PostgresError) -> ClarionError:
    """What a user should read for a write Postgres refused (one of `Refused`): a reference
    to something that does not exist (`NotFound`), a value that must be unique and is taken,
    text it cannot store (a NUL character), or another rule of the schema (`InvalidInput`,
    naming the column where Postgres does)."""
    if isinstance(
        exc, asyncpg.CharacterNotInRepertoireError | asyncpg.UntranslatableCharacterError
    ):
        return InvalidInput("text with a NUL character or invalid UTF-8 cannot be stored")
    detail = getattr(exc, "detail", None) or ""
    match = _KEY_DETAIL.search(detail)
    column, value = (match["column"], match["value"]) if match else (None, None)
    if isinstance(exc, asyncpg.ForeignKeyViolationError) and column is not None:
        return NotFound(column.removesuffix("_id"), value)
    if isinstance(exc, asyncpg.UniqueViolationError) and column is not None:
        return InvalidInput(f"{value!r} is taken", field=column)
    column = column or getattr(exc, "column_name", None)
    return InvalidInput(f"refused by the schema ({exc.__class__.__name__})", field=column)


async def ping(pool: Pool) -> None:
    """One round trip to the database (raises what the connection raises)."""
    await pool.fetchval("SELECT 1")


async def try_session_lock(conn: Conn, key: int) -> bool:
    """Take the session-level advisory lock `key` if it is free (release it with
    `release_session_lock`)."""
    taken: bool = await conn.fetchval("SELECT pg_try_advisory_lock($1)", key)
    return taken
