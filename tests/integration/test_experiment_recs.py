"""`clarion experiment recs --json`: the world's histories written into Clarion, a model
trained, each held-out order looked for; one JSON object as the last line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"


def test_the_recs_experiment_reports_its_lift_interval_and_training(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(SRC), "CLARION_DATA_DIR": str(tmp_path)}
    env.pop("CLARION_DATABASE_URL", None)
    env.pop("CLARION_NATS_URL", None)
    done = subprocess.run(
        [sys.executable, "-m", "clarion", "experiment", "recs", "--subscribers", "2000",
         "--seed", "5", "--json"],
        capture_output=True, text=True, env=env, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    r = json.loads(done.stdout.strip().splitlines()[-1])
    assert {"lift", "ci_low", "ci_high", "baseline", "treatment", "n", "fit_s", "subscribers",
            "events", "ceiling"} <= set(r)  # fmt: skip
    assert r["subscribers"] == 2000
    assert 1600 < r["n"] < 1950  # about 90 % of people ordered at least once
    assert r["events"] > 8000
    assert 0 < r["baseline"] < 1
    assert r["ci_low"] <= r["lift"] <= r["ci_high"]
    assert abs(r["treatment"] / r["baseline"] - 1 - r["lift"]) < 1e-3
    assert r["ceiling"] > r["baseline"]  # the world's truth beats popularity
    assert r["train"]["subscribers"] <= 2000
    assert r["fit_s"] < 60
