"""`clarion campaign report` shows an adaptive test's allocation over time, a row per release."""

from __future__ import annotations

from rich.console import Console

from clarion.cli.campaigns import _rounds_table

ROUNDS = [
    {"round": 0, "last_round": 0, "audience_share": 0.1, "weights": {"a": 0.5, "b": 0.5},
     "delivered": {}, "clicks": {}, "p_best": {}, "reason": "first round"},
    {"round": 1, "last_round": 1, "audience_share": 0.1, "weights": {"a": 0.2, "b": 0.8},
     "delivered": {"a": 500, "b": 498}, "clicks": {"a": 20, "b": 31},
     "p_best": {"a": 0.06, "b": 0.94}, "reason": "no variant is best"},
    {"round": 2, "last_round": 4, "audience_share": 0.7, "weights": {"a": 0.0, "b": 1.0},
     "delivered": {"a": 600, "b": 1300}, "clicks": {"a": 24, "b": 85},
     "p_best": {"a": 0.01, "b": 0.99}, "reason": "all remaining traffic to b"},
]  # fmt: skip


def test_the_report_shows_each_releases_split_and_what_it_was_decided_from() -> None:
    console = Console(width=200, record=True)
    console.print(_rounds_table(ROUNDS))
    text = console.export_text()
    rows = [line for line in text.splitlines() if line.startswith("│")]
    assert len(rows) == 3
    assert "a 20% b 80%" in rows[1]
    assert "a 0.060 b 0.940" in rows[1]
    assert rows[2].split("│")[1].strip() == "2-4"  # the winner to every round left
    assert "70%" in rows[2]
    assert "all remaining traffic to b" in rows[2]
