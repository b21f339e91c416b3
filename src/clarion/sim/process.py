"""Run `clarion sim` as its own OS process (for the demo, the benchmark and the tests)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from clarion.errors import ConfigurationError


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (the simulator's own: it imports nothing of Clarion's
    servers)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class SimProcess:
    def __init__(
        self,
        *,
        secret: str,
        failure_rate: float = 0.02,
        latency_scale: float = 1.0,
        seed: int | None = None,
        max_mps: float | None = None,
        carrier_failure: dict[str, float] | None = None,
        receipt_loss: float = 0.0,
        log_path: Path | None = None,
        twilio_account_sid: str | None = None,
        twilio_auth_token: str | None = None,
        smpp_port: int | None = None,
        smpp_system_id: str = "clarion",
        smpp_password: str = "clarion",
    ) -> None:
        self.port = free_port()
        # The SMSC's port when asked for one (0: any free port); kept across restarts.
        self.smpp_port = (smpp_port or free_port()) if smpp_port is not None else None
        self.smpp_system_id, self.smpp_password = smpp_system_id, smpp_password
        self.url = f"http://127.0.0.1:{self.port}"
        self._args = [
            sys.executable, "-m", "clarion", "sim",
            "--port", str(self.port),
            "--failure-rate", str(failure_rate),
            "--latency-scale", str(latency_scale),
        ]  # fmt: skip
        if seed is not None:
            self._args += ["--seed", str(seed)]
        if max_mps is not None:
            self._args += ["--max-mps", str(max_mps)]
        if receipt_loss:
            self._args += ["--receipt-loss", str(receipt_loss)]
        for carrier, rate in (carrier_failure or {}).items():
            self._args += ["--carrier-failure", f"{carrier}={rate}"]
        if twilio_account_sid is not None:
            self._args += ["--twilio-account-sid", twilio_account_sid]
        if twilio_auth_token is not None:
            self._args += ["--twilio-auth-token", twilio_auth_token]
        if self.smpp_port is not None:
            self._args += [
                "--smpp-port", str(self.smpp_port),
                "--smpp-system-id", smpp_system_id,
                "--smpp-password", smpp_password,
            ]  # fmt: skip
        # the secret by the environment: a command line is visible to every user of the machine
        self._env = {**os.environ, "CLARION_SIM_SECRET": secret}
        self._log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 20.0) -> SimProcess:
        out = self._log_path.open("ab") if self._log_path else subprocess.DEVNULL
        self.proc = subprocess.Popen(self._args, stdout=out, stderr=out, env=self._env)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ConfigurationError(f"the simulator exited with code {self.proc.returncode}")
            try:
                httpx.get(f"{self.url}/stats", timeout=0.5).raise_for_status()
                return self
            except httpx.HTTPError:
                time.sleep(0.05)
        self.stop()
        raise ConfigurationError(f"the simulator did not answer within {timeout_s} s")

    def stats(self) -> dict[str, Any]:
        result: dict[str, Any] = httpx.get(f"{self.url}/stats", timeout=10).json()
        return result

    def handset(self, number: str) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = httpx.get(
            f"{self.url}/handsets/{number}", timeout=10
        ).json()["messages"]
        return messages

    def shoppers(self, config: dict[str, Any] | None = None) -> dict[str, Any]:
        """What the people did (their clicks and orders); with `config`, they start over as
        configured (`sim.shoppers.ShopConfig`)."""
        url = f"{self.url}/admin/shoppers"
        r = httpx.post(url, json=config, timeout=10) if config else httpx.get(url, timeout=10)
        r.raise_for_status()
        result: dict[str, Any] = r.json()
        return result

    def handsets(self) -> dict[str, int]:
        counts: dict[str, int] = httpx.get(f"{self.url}/handsets", timeout=30).json()
        return counts

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def __enter__(self) -> SimProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
