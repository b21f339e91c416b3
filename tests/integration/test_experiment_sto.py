"""`clarion experiment sto --json`: the measurement runs end to end on real Postgres (a
history written, a model fitted from it, a split campaign drawn by the world) and prints one
JSON object as its last line with the figures the issue names."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from clarion.cli import app


def test_experiment_sto_prints_one_json_object_last() -> None:
    result = CliRunner().invoke(
        app, ["experiment", "sto", "--subscribers", "400", "--history", "30", "--json"]
    )
    assert result.exit_code == 0, result.output
    got = json.loads(result.output.strip().splitlines()[-1])
    for key in ("lift", "ci_low", "ci_high", "baseline", "treatment", "n"):
        assert isinstance(got[key], int | float), key
    assert got["ci_low"] <= got["lift"] <= got["ci_high"]
    assert abs(got["lift"] - (got["treatment"] / got["baseline"] - 1)) < 0.001
    assert got["n"] == got["subscribers"] * got["test_campaigns"]
    assert got["subscribers"] + got["left_out_zone_unknown"] == 400
    assert got["model"]["messages"] == 30 * got["subscribers"]  # it learnt from the history
    assert got["outside_compliance_window"] == 0
    expected = got["expected_click_rate"]
    # the model beats the fixed time in expectation (no draws), and no model beats the oracle
    assert expected["best_time"] > 1.15 * expected["fixed"]
    assert expected["best_time"] < expected["oracle"]
