"""The connection pool hands back connections without asyncpg's per-release reset query:
what that relies on (no transaction and no lock stays behind) holds against real Postgres."""

from __future__ import annotations

import asyncpg
import pytest

from clarion import bootstrap
from clarion.store.db import release_session_lock

KEY = 0x0C1A_7E57
# What asyncpg raises on a connection whose server process has gone.
BROKEN = (asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError, OSError)


async def test_a_connection_back_in_the_pool_has_no_transaction_open(
    infra: bootstrap.Infra,
) -> None:
    pool = infra.pool
    async with pool.acquire() as conn:
        pid = await conn.fetchval("SELECT pg_backend_pid()")
        await conn.execute("BEGIN")
        await conn.execute("CREATE TEMP TABLE left_open (x int)")
    # the same connection again (the pool is LIFO when idle): its transaction was rolled back
    for _ in range(pool.get_size()):
        async with pool.acquire() as conn:
            assert not conn.is_in_transaction()
            if await conn.fetchval("SELECT pg_backend_pid()") == pid:
                assert await conn.fetchval("SELECT to_regclass('left_open')") is None
                return
    pytest.fail("the connection that had a transaction open never came back from the pool")


async def test_a_session_lock_is_free_once_released_and_its_connection_closed_if_it_cannot_be(
    infra: bootstrap.Infra,
) -> None:
    pool = infra.pool
    other = await asyncpg.connect(infra.database_url)
    try:
        async with pool.acquire() as conn:
            assert await conn.fetchval("SELECT pg_try_advisory_lock($1)", KEY)
            assert not await other.fetchval("SELECT pg_try_advisory_lock($1)", KEY)
            await release_session_lock(conn, KEY)
        assert await other.fetchval("SELECT pg_try_advisory_lock($1)", KEY)
        assert await other.fetchval("SELECT pg_advisory_unlock($1)", KEY)

        async with pool.acquire() as conn:
            assert await conn.fetchval("SELECT pg_try_advisory_lock($1)", KEY)
            pid = await conn.fetchval("SELECT pg_backend_pid()")
            await other.execute("SELECT pg_terminate_backend($1)", pid)
            with pytest.raises(BROKEN):
                await release_session_lock(conn, KEY)
        assert await other.fetchval("SELECT pg_try_advisory_lock($1)", KEY)
        assert await pool.fetchval("SELECT 1") == 1  # the pool goes on with a new connection
    finally:
        await other.close()
