"""How `clarion bench` lays out its worker processes."""

from __future__ import annotations

from collections import Counter

import pytest

from clarion.harness.bench import RECEIPTS_SIDE, SEND_SIDE, BenchOptions, _nice, layout
from clarion.runtime.stages import STAGES


def test_one_process_runs_every_stage() -> None:
    assert layout(1) == [list(STAGES)]


@pytest.mark.parametrize(
    ("workers", "send", "receipts"), [(2, 1, 1), (3, 2, 1), (4, 2, 2), (5, 3, 2), (10, 6, 4)]
)
def test_more_are_split_between_the_two_sides(workers: int, send: int, receipts: int) -> None:
    groups = layout(workers)
    assert len(groups) == workers
    assert Counter(tuple(g) for g in groups) == {SEND_SIDE: send, RECEIPTS_SIDE: receipts}


def test_the_two_sides_run_every_stage_once() -> None:
    assert sorted(SEND_SIDE + RECEIPTS_SIDE) == sorted(STAGES)


def test_every_stage_and_roles_override_the_layout() -> None:
    opts = BenchOptions(recipients=10, workers=3, every_stage=True)
    assert opts.groups() == [list(STAGES)] * 3
    opts = BenchOptions(recipients=10, workers=3, roles=[["send"], ["audience"]])
    assert opts.groups() == [["send"], ["audience"]]


def test_only_processes_that_fold_no_receipts_yield_and_only_beside_ones_that_do() -> None:
    two = BenchOptions(recipients=10, workers=3)  # two send-side processes, one receipts-side
    assert [_nice(two, g) for g in two.groups()] == [10, 10, 0]
    assert [_nice(BenchOptions(recipients=10, workers=1), list(STAGES))] == [0]
    everywhere = BenchOptions(recipients=10, workers=2, every_stage=True)
    assert [_nice(everywhere, g) for g in everywhere.groups()] == [0, 0]
    roles = BenchOptions(recipients=10, roles=[["audience", "personalize", "send"], ["send"]])
    assert [_nice(roles, g) for g in roles.groups()] == [0, 0]  # nobody folds: nobody yields
    equal = BenchOptions(recipients=10, workers=2, send_side_nice=0)
    assert [_nice(equal, g) for g in equal.groups()] == [0, 0]


def test_the_gate_time_is_the_next_weekday_afternoon_that_is_no_holiday() -> None:
    """18:00 UTC, inside every US sending window, on a day no state closes: a run on a
    Sunday, or on the eve of Thanksgiving, sends to as many subscribers as one midweek."""
    from datetime import UTC, datetime

    from clarion.harness.bench import default_at

    def at(text: str) -> str:
        return default_at(datetime.fromisoformat(text).replace(tzinfo=UTC)).isoformat()

    assert at("2026-12-08T09:00") == "2026-12-08T18:00:00+00:00"  # a Tuesday morning
    assert at("2026-12-08T19:00") == "2026-12-09T18:00:00+00:00"  # after 18:00: the next day
    assert at("2026-12-06T05:52") == "2026-12-07T18:00:00+00:00"  # a Sunday: Monday
    assert at("2026-12-04T18:30") == "2026-12-07T18:00:00+00:00"  # a Friday evening
    assert at("2026-11-25T20:00") == "2026-11-27T18:00:00+00:00"  # Thanksgiving is skipped
    assert at("2026-12-31T20:00") == "2027-01-04T18:00:00+00:00"  # New Year's Day, a weekend
