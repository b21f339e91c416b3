"""`clarion run` as a benchmark runs it: its own process beside the harness, on the
harness's servers, answering ready before a measure starts."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import httpx

from clarion import bootstrap
from clarion.config import Settings


def server_settings(root: Path, port: int, namespace: str) -> Settings:
    """The settings of a bench script's servers and of the `clarion run` it starts on them:
    data in `root`, HTTP on `port`, its own bus namespace."""
    return replace(
        Settings.from_env(), data_dir=root, http_port=port,
        public_url=f"http://127.0.0.1:{port}", bus_namespace=f"{namespace}{port}",
    )  # fmt: skip


def server_env(infra: bootstrap.Infra, port: int) -> dict[str, str]:
    """The environment of a `clarion run` on `infra`'s Postgres, NATS and data directory."""
    s = infra.settings
    return {
        **os.environ,
        "CLARION_DATA_DIR": str(s.data_dir),
        "CLARION_DATABASE_URL": infra.database_url,
        "CLARION_NATS_URL": infra.nats_url,
        "CLARION_BUS_NAMESPACE": s.bus_namespace,
        "CLARION_PUBLIC_URL": f"http://127.0.0.1:{port}",
    }


def run_server(
    env: dict[str, str], port: int, log: Path, *, timeout_s: float = 60
) -> subprocess.Popen[bytes]:
    """`clarion run --port PORT`, its output in `log`, once `/readyz` answers 200."""
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "clarion", "run", "--port", str(port)],
            env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"clarion run exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"clarion run not ready in {timeout_s:.0f} s: {log.read_text()[-2000:]}")
