"""How long does a CSV of a million subscribers take to import, and in how much memory?

Writes a CSV of N rows (phones in several formats, emails, names, and typed attribute
columns: a count, a flag, a date, a ZIP code, an amount; one row in a thousand bad), then
imports it into a fresh install, either with `clarion subscribers import` (`--via cli`, its
own process, as an operator runs it) or through `POST /v1/imports` on a running `clarion
run` (`--via api`, polling `GET /v1/imports/{id}` until done). Prints one JSON line: rows,
seconds from the start of the import to its end, rows a second, the importing process's
peak RSS, and the import's counts.

    .venv/bin/python bench/import_csv.py --rows 1000000 --via cli
    .venv/bin/python bench/import_csv.py --rows 1000000 --via api
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil

from clarion.bus.embedded import free_port
from clarion.harness.seed import AREA_CODES, CITIES, FIRST_NAMES
from clarion.harness.serving import run_server


def write_csv(path: Path, rows: int, seed: int = 11) -> int:
    """The file; returns how many rows are bad on purpose."""
    rnd = random.Random(seed)
    bad = 0
    seen: set[int] = set()
    with path.open("w", encoding="utf-8", newline="") as f:
        f.write("phone,email,first_name,sms_consent,orders,vip,signed_up,zip,ltv,city\n")
        i = 0
        while i < rows:
            area, exchange, line = (
                rnd.choice(AREA_CODES),
                rnd.randint(200, 999),
                rnd.randint(0, 9999),
            )
            if exchange % 100 == 11 or exchange == 555:
                continue
            key = int(f"{area}{exchange}{line:04d}")
            if key in seen:
                continue
            seen.add(key)
            i += 1
            style = i % 4
            phone = (
                f"+1{area}{exchange}{line:04d}" if style == 0
                else f"({area}) {exchange}-{line:04d}" if style == 1
                else f"{area}.{exchange}.{line:04d}" if style == 2
                else f"1{area}{exchange}{line:04d}"
            )  # fmt: skip
            if i % 1000 == 0:
                phone, bad = "12345", bad + 1
            email = f"user{i}@example.com" if i % 3 == 0 else ""
            f.write(
                f"{phone},{email},{rnd.choice(FIRST_NAMES)},{'yes' if i % 20 else 'no'},"
                f"{rnd.randint(0, 40)},{'true' if i % 7 == 0 else 'false'},"
                f"2024-{rnd.randint(1, 12):02d}-{rnd.randint(1, 28):02d},"
                f"{rnd.randint(501, 99950):05d},{rnd.uniform(0, 900):.2f},{rnd.choice(CITIES)}\n"
            )
    return bad


def _env(root: Path) -> dict[str, str]:
    return {**os.environ, "CLARION_DATA_DIR": str(root / "data")}


def _clarion(*args: str, env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "clarion", *args], env=env, capture_output=True, text=True,
        check=True, timeout=600,
    )  # fmt: skip
    return done.stdout.strip()


def via_cli(csv_path: Path, root: Path) -> dict[str, object]:
    env = _env(root)
    brand = _clarion("brand", "create", "bench", "Northwind", "+15125550100", env=env)
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "clarion", "subscribers", "import", brand, str(csv_path)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    watched = psutil.Process(proc.pid)
    peak = 0.0
    while proc.poll() is None:
        try:
            peak = max(peak, watched.memory_info().rss / 2**20)
        except psutil.NoSuchProcess:
            break
        time.sleep(0.1)
    elapsed = time.monotonic() - started
    out = (proc.stdout.read() if proc.stdout else "").strip()
    counts = dict(
        zip(
            ("created", "rejected", "existing"),
            map(int, re.findall(r"(\d+) (?:new|rows|were)", out)),
            strict=False,
        )
    )
    return {"seconds": elapsed, "peak_rss_mb": round(peak), "output": out, "counts": counts}


def via_api(csv_path: Path, root: Path) -> dict[str, object]:
    env = _env(root)
    brand = _clarion("brand", "create", "bench", "Northwind", "+15125550100", env=env)
    key = _clarion("brand", "api-key", brand, env=env)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = run_server({**env, "CLARION_PUBLIC_URL": url}, port, root / "clarion.log")
    try:
        watched = psutil.Process(server.pid)
        base_rss = watched.memory_info().rss / 2**20
        auth = {"Authorization": f"Bearer {key}", "Content-Type": "text/csv"}
        started = time.monotonic()
        with csv_path.open("rb") as body, httpx.Client(base_url=url, timeout=600) as client:
            resp = client.post("/v1/imports", headers=auth, content=body)
            resp.raise_for_status()
            location = resp.headers["location"]
            peak = base_rss
            while True:
                peak = max(peak, watched.memory_info().rss / 2**20)
                state = client.get(location, headers=auth).json()
                if state["status"] != "running":
                    break
                time.sleep(0.2)
        elapsed = time.monotonic() - started
        return {
            "seconds": elapsed, "peak_rss_mb": round(peak), "rss_before_mb": round(base_rss),
            "import": state,
        }  # fmt: skip
    finally:
        server.terminate()
        server.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--via", choices=("cli", "api"), default="cli")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="clarion-import-"))
    try:
        csv_path = root / "subscribers.csv"
        bad = write_csv(csv_path, args.rows)
        result = (via_cli if args.via == "cli" else via_api)(csv_path, root)
        seconds = float(result["seconds"])  # type: ignore[arg-type]
        print(json.dumps({
            "rows": args.rows, "bad_rows": bad, "via": args.via,
            "file_mb": round(csv_path.stat().st_size / 2**20, 1),
            **result, "seconds": round(seconds, 1), "rows_per_s": round(args.rows / seconds),
        }))  # fmt: skip
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
