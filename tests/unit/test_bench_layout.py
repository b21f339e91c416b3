"""How `clarion bench` lays out its worker processes."""

from __future__ import annotations

from collections import Counter

import pytest

from clarion.bench import RECEIPTS_SIDE, SEND_SIDE, BenchOptions, _nice, layout
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
