"""`clarion experiment ab --json`: the measurement runs end to end, small, and prints one
JSON object as its last line with the figures the issue names, both modes scored on the
same campaigns."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from clarion.cli import app
from clarion.harness.experiments.ab import AbExperiment, run


def test_experiment_ab_prints_one_json_object_last() -> None:
    result = CliRunner().invoke(
        app, ["experiment", "ab", "--recipients", "2000", "--campaigns", "12", "--seed", "7",
              "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    got = json.loads(result.output.strip().splitlines()[-1])
    for key in ("lift", "ci_low", "ci_high", "baseline", "treatment", "n"):
        assert isinstance(got[key], int | float), key
    assert got["n"] == 12
    assert got["ci_low"] <= got["lift"] <= got["ci_high"]
    assert 0 < got["baseline"] < 1
    assert 0 <= got["treatment"] < 1
    assert abs(got["lift"] - (1 - got["treatment"] / got["baseline"])) < 0.01
    for mode in ("test_then_winner", "adaptive"):
        assert 0 <= got[mode]["winner_accuracy"] <= 1


def test_the_same_seed_measures_the_same() -> None:
    x = AbExperiment(recipients=1000, campaigns=6, seed=3)
    first, again = run(x), run(x)
    first.pop("seconds")
    again.pop("seconds")
    assert first == again


def test_a_test_then_winner_sends_a_worse_variant_to_at_least_half_its_two_way_sample() -> None:
    got = run(AbExperiment(recipients=4000, campaigns=10, seed=5))
    # two or three variants split evenly over a 20 % sample: at least 10 % get a worse one
    assert got["baseline"] >= 0.1 - 0.01
