"""The clocks a worker may be given: only the decision time moves; intervals and wall
seconds stay real."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from clarion.domain.clock import PinnedClock, SystemClock
from clarion.domain.ports import Clock

NOON = datetime(2026, 11, 25, 17, 0, tzinfo=UTC)


def test_a_pinned_clock_decides_at_its_moment_until_moved() -> None:
    clock: Clock = PinnedClock(NOON)
    assert clock.now() == NOON
    assert clock.now() == NOON
    assert isinstance(clock, PinnedClock)
    clock.at = NOON + timedelta(hours=12)
    assert clock.now() == NOON + timedelta(hours=12)
    assert abs(clock.epoch() - time.time()) < 5  # wall seconds are real


def test_a_shifted_clock_runs_ahead_by_its_offset() -> None:
    clock = SystemClock(offset_s=3600)
    ahead = clock.now() - datetime.now(UTC)
    assert timedelta(minutes=59) < ahead < timedelta(minutes=61)
    assert abs(clock.epoch() - time.time()) < 5  # only decisions are shifted


def test_a_clock_starting_at_a_moment_runs_on_from_it() -> None:
    clock = SystemClock.starting_at(NOON)
    first = clock.now()
    assert abs((first - NOON).total_seconds()) < 1
    time.sleep(0.02)
    assert clock.now() > first
    before = clock.monotonic()
    assert clock.monotonic() >= before
