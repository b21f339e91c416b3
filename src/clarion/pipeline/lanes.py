"""Flow-control lanes: token buckets keyed by provider account, sender, carrier and brand.

A message belongs to several lanes and takes one token (or one per segment, for lanes that
count segments) from each of them, or from none: a lane that is empty holds back only its
own messages. Throttle answers lower a lane's rate multiplicatively; successful calls raise
it additively back towards its configured rate (AIMD). Time is passed in (seconds on any
monotonic clock), so everything here is tested without sleeping.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

# A lane: (kind, key), e.g. ("sender", "+15125550100"), ("provider", "sim"),
# ("carrier", "42:AT&T") per campaign, ("brand_carrier_day", "7:T-Mobile").
Lane = tuple[str, str]
_PACIFIC = ZoneInfo("America/Los_Angeles")


@dataclass(slots=True)
class TokenBucket:
    """`rate_per_s` tokens a second, holding at most `burst`. AIMD moves `rate_per_s` between
    `floor_per_s` and the configured `max_rate_per_s`."""

    max_rate_per_s: float
    burst: float
    now_s: float
    rate_per_s: float = -1.0
    tokens: float = -1.0
    floor_per_s: float = 0.1

    def __post_init__(self) -> None:
        if self.rate_per_s < 0:
            self.rate_per_s = self.max_rate_per_s
        if self.tokens < 0:
            self.tokens = self.burst

    def _refill(self, now_s: float) -> None:
        if now_s > self.now_s:
            self.tokens = min(self.burst, self.tokens + (now_s - self.now_s) * self.rate_per_s)
            self.now_s = now_s

    def available(self, now_s: float) -> float:
        self._refill(now_s)
        return self.tokens

    def take(self, n: float, now_s: float) -> None:
        self._refill(now_s)
        self.tokens -= n

    def wait_s(self, n: float, now_s: float) -> float:
        """Seconds until `n` tokens are there (0 if they are now)."""
        missing = n - self.available(now_s)
        return 0.0 if missing <= 0 else missing / self.rate_per_s

    def throttled(self) -> None:
        """The provider said slow down: halve the rate, drop what was saved up."""
        self.rate_per_s = max(self.floor_per_s, self.rate_per_s / 2)
        self.tokens = min(self.tokens, 0.0)

    def succeeded(self, step_fraction: float = 0.05) -> None:
        """Additive increase back towards the configured rate."""
        step = self.max_rate_per_s * step_fraction
        self.rate_per_s = min(self.max_rate_per_s, self.rate_per_s + step)


@dataclass(slots=True)
class DailyQuota:
    """At most `limit` a day, the day ending at midnight Pacific (T-Mobile's brand caps)."""

    limit: int
    used: int = 0
    day: str = ""

    def _roll(self, at: datetime) -> None:
        today = at.astimezone(_PACIFIC).date().isoformat()
        if today != self.day:
            self.day, self.used = today, 0

    def remaining(self, at: datetime) -> int:
        self._roll(at)
        return self.limit - self.used

    def take(self, n: int, at: datetime) -> None:
        self._roll(at)
        self.used += n


@dataclass(frozen=True, slots=True)
class LaneLimit:
    """A lane's configured limit: a rate (per second) and burst, or a daily quota."""

    rate_per_s: float | None = None
    burst: float | None = None
    per_day: int | None = None
    per_segment: bool = False  # count SMS segments, not messages (long-code senders)


@dataclass(frozen=True, slots=True)
class Admission:
    admitted: list[int]  # indexes of the messages that may go now
    held: list[int]  # indexes held back by an empty lane
    retry_after_s: float  # when the first held message could go (inf: a daily cap is spent)


@dataclass
class Lanes:
    """Every lane's bucket in this process. `limit_of` says a lane's limit (None: no limit)."""

    limit_of: Callable[[Lane], LaneLimit | None]
    buckets: dict[Lane, TokenBucket] = field(default_factory=dict)
    quotas: dict[Lane, DailyQuota] = field(default_factory=dict)

    def _bucket(self, lane: Lane, now_s: float) -> TokenBucket | None:
        bucket = self.buckets.get(lane)
        if bucket is None:
            limit = self.limit_of(lane)
            if limit is None or limit.rate_per_s is None:
                return None
            burst = limit.burst if limit.burst is not None else max(1.0, limit.rate_per_s)
            bucket = TokenBucket(limit.rate_per_s, burst, now_s)
            self.buckets[lane] = bucket
        return bucket

    def _quota(self, lane: Lane) -> DailyQuota | None:
        quota = self.quotas.get(lane)
        if quota is None:
            limit = self.limit_of(lane)
            if limit is None or limit.per_day is None:
                return None
            quota = self.quotas[lane] = DailyQuota(limit.per_day)
        return quota

    def admit(
        self,
        lanes_of: Sequence[Iterable[Lane]],
        *,
        now_s: float,
        at: datetime,
        segments: Sequence[int] | None = None,
    ) -> Admission:
        """Admit messages in order; each takes from all its lanes at once, or waits. Once a
        lane refuses a message, later messages of that lane wait too (order within a lane)."""
        admitted: list[int] = []
        held: list[int] = []
        blocked: set[Lane] = set()
        retry = math.inf
        for i, lanes in enumerate(lanes_of):
            lanes = tuple(lanes)
            if blocked.intersection(lanes):  # an earlier message of a lane is waiting
                held.append(i)
                continue
            cost = float(segments[i]) if segments is not None else 1.0
            empty: dict[Lane, float] = {}
            for lane in lanes:
                limit = self.limit_of(lane)
                n = cost if limit is not None and limit.per_segment else 1.0
                bucket = self._bucket(lane, now_s)
                wait = bucket.wait_s(n, now_s) if bucket is not None else 0.0
                quota = self._quota(lane)
                if quota is not None and quota.remaining(at) < 1:
                    wait = math.inf
                if wait > 0:
                    empty[lane] = wait
            if empty:
                # only the empty lanes wait; the message's other lanes stay open for others
                held.append(i)
                blocked.update(empty)
                retry = min(retry, max(empty.values()))
                continue
            for lane in lanes:
                limit = self.limit_of(lane)
                n = cost if limit is not None and limit.per_segment else 1.0
                bucket = self._bucket(lane, now_s)
                if bucket is not None:
                    bucket.take(n, now_s)
                quota = self._quota(lane)
                if quota is not None:
                    quota.take(1, at)
            admitted.append(i)
        return Admission(admitted, held, retry if held else 0.0)

    def throttled(self, lane: Lane, now_s: float) -> None:
        bucket = self._bucket(lane, now_s)
        if bucket is not None:
            bucket.throttled()

    def succeeded(self, lane: Lane, now_s: float) -> None:
        bucket = self._bucket(lane, now_s)
        if bucket is not None:
            bucket.succeeded()
