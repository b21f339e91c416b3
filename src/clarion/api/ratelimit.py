"""Requests a second per API key: a token bucket per key, in this process. Each API process
limits on its own, so N processes behind a balancer let a key through at up to N times its
rate; the limit protects the install from a runaway client, it is not billing."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

# Keys whose buckets one process keeps (the least recently seen are forgotten: a forgotten
# bucket starts full, which only ever lets a key through sooner).
_BUCKETS_KEPT = 10_000


@dataclass
class _Bucket:
    tokens: float
    at: float  # monotonic seconds of the last refill


@dataclass
class RateLimiter:
    """`burst_s` seconds of a key's rate may be spent at once."""

    burst_s: float = 2.0
    _buckets: dict[int, _Bucket] = field(default_factory=dict)

    def take(self, key_id: int, rate_per_s: float, now_s: float) -> float:
        """Take one request from the key's bucket: 0.0 if it may go now, else the seconds
        until it may (the request is not counted)."""
        capacity = max(1.0, rate_per_s * self.burst_s)
        b = self._buckets.pop(key_id, None)
        if b is None:
            b = _Bucket(capacity, now_s)
        else:
            b.tokens = min(capacity, b.tokens + (now_s - b.at) * rate_per_s)
            b.at = now_s
        self._buckets[key_id] = b  # most recently seen last
        if len(self._buckets) > _BUCKETS_KEPT:
            del self._buckets[next(iter(self._buckets))]
        if b.tokens >= 1.0:
            b.tokens -= 1.0
            return 0.0
        return (1.0 - b.tokens) / rate_per_s


def retry_after(wait_s: float) -> str:
    """A Retry-After header's whole seconds (at least 1)."""
    return str(max(1, math.ceil(wait_s)))
