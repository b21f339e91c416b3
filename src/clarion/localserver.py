"""Sharing an embedded server between the processes of one data directory.

`clarion run` in one shell and `clarion campaign launch` in another both find no
`CLARION_DATABASE_URL`: the second must use the servers the first started, and must not stop
them when it exits. Each process that uses a server holds a *lease*: a file named after its
pid (and the process's start time, so a reused pid is not mistaken for it). The server is
started by the first process and stopped by the last one to leave; a process that died
without leaving is pruned by the next one that looks. A file lock serialises the decisions,
so two processes starting at once do not both start a server.
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import psutil

_holders = itertools.count()


def _started_at(pid: int) -> str | None:
    """The process's start time as text, or None when no such process runs."""
    try:
        return f"{psutil.Process(pid).create_time():.3f}"
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return None


class Leases:
    """The leases on one server, one file per holder in `root`. Use `join`/`leave` inside
    `locked()`."""

    def __init__(self, root: Path) -> None:
        self._dir = root
        # one lease per holder: a process may hold several (tests start two in one process)
        self._name = f"{os.getpid()}-{next(_holders)}"

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the lock on this server's start/stop decisions (blocks until free)."""
        self._dir.mkdir(parents=True, exist_ok=True)
        with (self._dir / ".lock").open("a") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def holders(self) -> list[int]:
        """Pids of the live processes holding leases; the leases of dead ones are removed."""
        live = []
        for lease in self._dir.glob("[0-9]*-*"):
            pid = int(lease.name.split("-")[0])
            if _started_at(pid) == lease.read_text().strip():
                live.append(pid)
            else:
                lease.unlink(missing_ok=True)
        return sorted(live)

    def join(self) -> None:
        """Record that this process uses the server."""
        (self._dir / self._name).write_text(_started_at(os.getpid()) or "")

    def leave(self) -> bool:
        """Drop this process's lease; True when no live process holds one any more (the
        caller should then stop the server)."""
        (self._dir / self._name).unlink(missing_ok=True)
        return not self.holders()
