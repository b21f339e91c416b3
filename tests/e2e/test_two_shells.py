"""The README's workflow in two shells: `clarion run` in one, CLI commands in the other, on
the same data directory. A CLI command used to stop the running server's Postgres at its exit
(and started a second nats-server of its own, so a launch never reached the workers)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import httpx

from clarion.bus.embedded import free_port
from tests.processes import clarion, wait_until_ready


def test_cli_commands_beside_clarion_run_share_its_servers_and_leave_them_running(
    tmp_path: Path,
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "CLARION_DATA_DIR": str(tmp_path / "data"),
        "CLARION_PUBLIC_URL": base,
        "CLARION_SIM_URL": "http://127.0.0.1:9",  # no simulator: the launch only resolves
    }
    for var in ("CLARION_DATABASE_URL", "CLARION_NATS_URL"):
        env.pop(var, None)
    server = subprocess.Popen(
        [*clarion("run"), "--port", str(port)], env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        wait_until_ready(server, base, timeout_s=90, output=lambda: server.stderr.read().decode())

        def run(*args: str) -> str:
            done = subprocess.run(clarion(*args), capture_output=True, text=True, env=env,
                                  timeout=120)  # fmt: skip
            assert done.returncode == 0, done.stderr
            return done.stdout.strip()

        brand = run("brand", "create", "x", "X", "+15125550111")
        key = run("brand", "api-key", brand)
        auth = {"Authorization": f"Bearer {key}"}
        # the command's exit left the server's database up
        assert httpx.get(f"{base}/v1/alerts", headers=auth, timeout=5).status_code == 200
        assert httpx.get(f"{base}/readyz", timeout=5).json()["checks"] == {
            "postgres": "ok",
            "nats": "ok",
        }
        csv_path = tmp_path / "subscribers.csv"
        csv_path.write_text("phone,sms_consent\n(212) 555-7788,yes\n(415) 555-2671,yes\n")
        run("subscribers", "import", brand, str(csv_path))
        body = "X: hello. Reply STOP to opt out."
        campaign_id = run("campaign", "create", brand, "Hello", body).split()[-1]
        run("campaign", "launch", campaign_id)
        # the launch went onto the server's own bus: its audience stage resolved it
        deadline = time.monotonic() + 30
        while True:
            got = httpx.get(f"{base}/v1/campaigns/{campaign_id}", headers=auth, timeout=5)
            assert got.status_code == 200, got.text
            if got.json()["eligible"] == 2:
                break
            assert time.monotonic() < deadline, got.json()
            time.sleep(0.2)
    finally:
        server.send_signal(signal.SIGINT)
        assert server.wait(60) == 0
    # the last one out stopped both servers
    assert not (tmp_path / "data" / "pg" / "postmaster.pid").exists()
    assert not (tmp_path / "data" / "nats" / "running").exists()
