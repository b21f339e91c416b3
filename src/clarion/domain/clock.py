"""The clocks a worker may be given (the port is `domain.ports.Clock`): the system's, with the
decision time shifted or not, and one whose decision time is pinned (tests, benchmarks).
Intervals and wall seconds are always real: only the time decisions run on moves."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta


@dataclass(frozen=True)
class SystemClock:
    """The real clock; decisions run `offset_s` seconds ahead of it (the CLI's
    `--clock-offset`, or the demo's "as if it were 18:00")."""

    offset_s: float = 0.0

    def now(self) -> datetime:
        real = datetime.now(UTC)
        return real + timedelta(seconds=self.offset_s) if self.offset_s else real

    def monotonic(self) -> float:
        return time.monotonic()

    def epoch(self) -> float:
        return time.time()

    @classmethod
    def starting_at(cls, at: datetime) -> SystemClock:
        """A clock whose decision time reads `at` now and runs on from there."""
        return cls(offset_s=(at - datetime.now(UTC)).total_seconds())


@dataclass
class PinnedClock:
    """Decisions run at `at`, which stays put until a test moves it (`clock.at = ...`)."""

    at: datetime

    def now(self) -> datetime:
        return self.at

    def monotonic(self) -> float:
        return time.monotonic()

    def epoch(self) -> float:
        return time.time()
