"""Clarion as a user runs it: the command line of a `clarion` process, and the wait until
its HTTP server is ready."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable

import httpx


def clarion(*args: str) -> list[str]:
    return [sys.executable, "-m", "clarion", *args]


def wait_until_ready(
    proc: subprocess.Popen[bytes],
    base_url: str,
    *,
    timeout_s: float = 60,
    output: Callable[[], str] = lambda: "",
) -> None:
    """Poll `base_url`/readyz until it answers 200; fail with the process's `output` when it
    exits first or the time runs out."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if httpx.get(f"{base_url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        assert proc.poll() is None, f"clarion exited with {proc.returncode}:\n{output()}"
        assert time.monotonic() < deadline, f"clarion was not ready in {timeout_s} s:\n{output()}"
        time.sleep(0.1)
