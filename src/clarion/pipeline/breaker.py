"""A circuit breaker per provider: when calls to a provider keep failing (errors or timeouts),
stop calling it for a while so traffic moves to the next provider of the route, then let one
trial call through and close again when it succeeds. Pure: time is passed in."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from enum import StrEnum


class State(StrEnum):
    CLOSED = "closed"  # calls go through
    OPEN = "open"  # calls go elsewhere until `open_s` has passed
    HALF_OPEN = "half_open"  # one trial call decides


@dataclass
class Breaker:
    """Opens when, over the last `window_s`, at least `min_calls` calls were made and the
    share that failed reached `failure_ratio`; stays open `open_s`; then one trial call."""

    failure_ratio: float = 0.5
    min_calls: int = 4
    window_s: float = 10.0
    open_s: float = 5.0
    state: State = State.CLOSED
    opened_at: float = 0.0
    trial_in_flight: bool = False
    calls: deque[tuple[float, bool]] = field(default_factory=deque)

    def allow(self, now_s: float) -> bool:
        """May a call go to this provider now? (In half-open, only the one trial.)"""
        if self.state is State.OPEN and now_s - self.opened_at >= self.open_s:
            self.state, self.trial_in_flight = State.HALF_OPEN, False
        if self.state is State.CLOSED:
            return True
        if self.state is State.HALF_OPEN and not self.trial_in_flight:
            self.trial_in_flight = True
            return True
        return False

    def retry_in_s(self, now_s: float) -> float:
        """When this provider may be tried again (0 when it may now)."""
        if self.state is State.OPEN:
            return max(0.0, self.open_s - (now_s - self.opened_at))
        return 0.0

    def record(self, ok: bool, now_s: float) -> None:
        """The outcome of a call (a failed call: an error or timeout of the call as a whole,
        or every message of it refused for a passing reason)."""
        if self.state is State.HALF_OPEN:
            self.trial_in_flight = False
            if ok:
                self.state = State.CLOSED
                self.calls.clear()
            else:
                self.state, self.opened_at = State.OPEN, now_s
            return
        self.calls.append((now_s, ok))
        while self.calls and self.calls[0][0] < now_s - self.window_s:
            self.calls.popleft()
        failed = sum(1 for _, good in self.calls if not good)
        if (
            self.state is State.CLOSED
            and len(self.calls) >= self.min_calls
            and failed / len(self.calls) >= self.failure_ratio
        ):
            self.state, self.opened_at = State.OPEN, now_s
