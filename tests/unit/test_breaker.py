"""The circuit breaker on an injected clock."""

from __future__ import annotations

from clarion.pipeline.breaker import Breaker, State


def test_it_opens_on_the_failure_ratio_once_enough_calls_were_made() -> None:
    b = Breaker(failure_ratio=0.5, min_calls=4, window_s=10, open_s=5)
    for t, ok in [(0.0, False), (0.1, False), (0.2, False)]:
        b.record(ok, t)
        assert b.state is State.CLOSED  # too few calls to judge
    b.record(True, 0.3)
    assert b.state is State.OPEN  # 3 of 4 failed
    assert not b.allow(1.0)
    assert abs(b.retry_in_s(1.0) - 4.3) < 1e-9  # opened at 0.3, open 5 s


def test_successes_keep_it_closed_and_old_failures_leave_the_window() -> None:
    b = Breaker(failure_ratio=0.5, min_calls=4, window_s=10, open_s=5)
    for t in range(3):
        b.record(False, float(t))
    b.record(True, 20.0)  # the three failures are older than the window
    b.record(False, 20.1)
    b.record(True, 20.2)
    b.record(True, 20.3)
    assert b.state is State.CLOSED
    assert b.allow(20.4)


def test_after_the_open_time_one_trial_call_decides() -> None:
    b = Breaker(failure_ratio=0.5, min_calls=2, window_s=10, open_s=5)
    b.record(False, 0.0)
    b.record(False, 0.0)
    assert b.state is State.OPEN
    assert b.allow(5.0)  # the trial
    assert not b.allow(5.0)  # only one at a time
    b.record(False, 5.1)
    assert b.state is State.OPEN  # the trial failed: open again, from now
    assert not b.allow(9.0)
    assert b.allow(10.2)
    b.record(True, 10.3)
    assert b.state is State.CLOSED
    assert b.allow(10.4)
    assert b.allow(10.4)
