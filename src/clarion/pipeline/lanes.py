"""Flow-control lanes: token buckets keyed by provider account, sender, carrier and brand.

A message belongs to several lanes and takes one token (or one per segment, for lanes that
count segments) from each of them, or from none: a lane that is empty holds back only its
own messages. Throttle answers lower a lane's rate multiplicatively; successful calls raise
it additively back towards its configured rate (AIMD). Time is passed in (seconds on any
monotonic clock), so everything here is tested without sleeping.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from datetime import time as dt_time
from typing import Any
from zoneinfo import ZoneInfo

from clarion.domain.lanes import Grant, Lane, LaneLimit

_PACIFIC = ZoneInfo("America/Los_Angeles")


def limit_keys(key: str) -> list[str]:
    """The keys a lane's limit is looked up under, most specific first: leading parts of a
    `:`-separated key are replaced by `*` one by one ("7:42:AT&T", "7:*:AT&T", "*:*:AT&T"),
    so one row can set AT&T's per-campaign rate for every campaign of a brand, or of all."""
    parts = key.split(":")
    keys = [key]
    for i in range(len(parts) - 2, -1, -1):  # the last part (the carrier) always stays
        keys.append(":".join([*parts[:i], *["*"] * (len(parts) - 1 - i), parts[-1]]))
    return keys


def resolve_limit(limits: Mapping[Lane, LaneLimit], lane: Lane) -> LaneLimit | None:
    """A lane's configured limit: an exact row, else the nearest wildcard row, else None."""
    kind, key = lane
    for k in limit_keys(key):
        limit = limits.get((kind, k))
        if limit is not None:
            return limit
    return None


def pacific_day(at: datetime) -> str:
    """The day a daily carrier cap counts in (they reset at midnight Pacific)."""
    return at.astimezone(_PACIFIC).date().isoformat()


def next_pacific_midnight(at: datetime) -> datetime:
    """When the next Pacific day starts (aware, in UTC)."""
    local = at.astimezone(_PACIFIC)
    midnight = datetime.combine(local.date() + timedelta(days=1), dt_time(0), tzinfo=_PACIFIC)
    return midnight.astimezone(UTC)


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
        floor = min(self.floor_per_s, self.max_rate_per_s)  # never above the configured rate
        self.rate_per_s = max(floor, self.rate_per_s / 2)
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
        today = pacific_day(at)
        if today != self.day:
            self.day, self.used = today, 0

    def remaining(self, at: datetime) -> int:
        self._roll(at)
        return self.limit - self.used

    def take(self, n: int, at: datetime) -> None:
        self._roll(at)
        self.used += n


@dataclass(frozen=True, slots=True)
class Admission:
    admitted: list[int]  # indexes of the messages that may go now
    held: list[int]  # indexes held back by an empty lane, in order
    ready_in_s: list[float]  # per held message: seconds until its lanes should have room
    capped: list[int]  # the held messages a spent daily quota holds (until midnight Pacific)
    unused: dict[Lane, float]  # granted tokens not taken: given back

    @property
    def retry_after_s(self) -> float:
        """When the first held message could go (inf: only daily caps hold them)."""
        return min(self.ready_in_s, default=0.0)


def cost(limit: LaneLimit | None, segments: int) -> float:
    """Tokens a message takes from a lane: its segments on lanes that count them, else 1."""
    return float(segments) if limit is not None and limit.per_segment else 1.0


def demand(
    lanes_of: Sequence[Sequence[Lane]],
    segments: Sequence[int],
    limit_of: Callable[[Lane], LaneLimit | None],
) -> dict[Lane, float]:
    """Tokens a batch would take from each limited lane (unlimited lanes are left out)."""
    return _taken(lanes_of, segments, limit_of, lambda lane: limit_of(lane) is not None)


def _taken(
    lanes_of: Sequence[Sequence[Lane]],
    segments: Sequence[int],
    limit_of: Callable[[Lane], LaneLimit | None],
    counts: Callable[[Lane], bool],
) -> dict[Lane, float]:
    """Tokens the batch takes from each lane that `counts`, summed per group of messages."""
    taken: dict[Lane, float] = {}
    for lanes, segs, n in _grouped(lanes_of, segments):
        for lane in lanes:
            if counts(lane):
                taken[lane] = taken.get(lane, 0.0) + cost(limit_of(lane), segs) * n
    return taken


def _grouped(
    lanes_of: Sequence[Sequence[Lane]], segments: Sequence[int]
) -> Iterable[tuple[Sequence[Lane], int, int]]:
    """(lanes, segments, how many messages) for each distinct pair in a batch. Callers give
    the messages of one sender and carrier the same lanes object, so a batch of a thousand
    is a handful of groups; lanes that are equal but not the same object only make more
    groups. Token counts are whole numbers, so sums per group are exact."""
    groups: dict[tuple[int, int], list[Any]] = {}
    for lanes, segs in zip(lanes_of, segments, strict=True):
        group = groups.get((id(lanes), segs))
        if group is None:
            groups[id(lanes), segs] = [lanes, segs, 1]
        else:
            group[2] += 1
    return [(lanes, segs, n) for lanes, segs, n in groups.values()]


def admit(
    lanes_of: Sequence[Sequence[Lane]],
    segments: Sequence[int],
    limit_of: Callable[[Lane], LaneLimit | None],
    grants: Mapping[Lane, Grant],
) -> Admission:
    """Admit messages in order against what each lane granted; a message takes from all its
    lanes at once, or waits. Once a lane refuses a message, later messages of that lane wait
    too (order within a lane), while the message's other lanes stay open for others.
    Lanes without a grant are unlimited.

    When every lane granted what the whole batch takes from it (the common case), all are
    admitted without a walk over the messages; the walk decides the rest."""
    need = _taken(lanes_of, segments, limit_of, grants.__contains__)
    if all(g.tokens - need.get(lane, 0.0) >= -1e-9 for lane, g in grants.items()):
        rest = ((lane, g.tokens - need.get(lane, 0.0)) for lane, g in grants.items())
        unused = {lane: t for lane, t in rest if t > 1e-9 and math.isfinite(t)}
        return Admission(list(range(len(lanes_of))), [], [], [], unused)
    return admit_in_order(lanes_of, segments, limit_of, grants)


def admit_in_order(
    lanes_of: Sequence[Sequence[Lane]],
    segments: Sequence[int],
    limit_of: Callable[[Lane], LaneLimit | None],
    grants: Mapping[Lane, Grant],
) -> Admission:
    """`admit`, one message at a time."""
    left = {lane: g.tokens for lane, g in grants.items()}
    owed: dict[Lane, float] = {}  # tokens the waiting messages of a lane still need
    admitted: list[int] = []
    held: list[int] = []
    ready: list[float] = []
    capped: list[int] = []
    for i, (lanes, segs) in enumerate(zip(lanes_of, segments, strict=True)):
        costs = [(lane, cost(limit_of(lane), segs)) for lane in lanes if lane in grants]
        if all(lane not in owed and left[lane] >= c - 1e-9 for lane, c in costs):
            for lane, c in costs:
                left[lane] -= c
            admitted.append(i)
            continue
        wait, daily = 0.0, False
        for lane, c in costs:
            if lane in owed or left[lane] < c - 1e-9:
                owed[lane] = owed.get(lane, 0.0) + c - (0.0 if lane in owed else left[lane])
                g = grants[lane]
                if g.daily_spent or not g.rate_per_s:
                    daily = True
                else:
                    wait = max(wait, owed[lane] / g.rate_per_s)
        held.append(i)
        ready.append(math.inf if daily else wait)
        if daily:
            capped.append(i)
    unused = {lane: t for lane, t in left.items() if t > 1e-9 and math.isfinite(t)}
    return Admission(admitted, held, ready, capped, unused)


@dataclass
class Lanes:
    """Lanes held in this process's memory: the reference implementation of the lane store
    (Postgres holds the shared one, see `clarion.store.lanes`), used by unit tests and the
    planner. `limit_of` says a lane's limit (None: no limit)."""

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

    def grant(self, want: Mapping[Lane, float], *, now_s: float, at: datetime) -> dict[Lane, Grant]:
        """Take up to `want` tokens from each lane, as many as it has."""
        grants: dict[Lane, Grant] = {}
        for lane, n in want.items():
            bucket, quota = self._bucket(lane, now_s), self._quota(lane)
            tokens, rate, spent = n, None, False
            if bucket is not None:
                tokens = max(0.0, min(tokens, bucket.available(now_s)))
                rate = bucket.rate_per_s
            if quota is not None:  # a quota counts whole messages
                left = max(0, quota.remaining(at))
                spent = left < tokens
                tokens = float(math.floor(min(tokens, float(left))))
            if bucket is not None:
                bucket.take(tokens, now_s)
            if quota is not None:
                quota.used += int(tokens)
            grants[lane] = Grant(tokens, rate, spent)
        return grants

    def refund(self, unused: Mapping[Lane, float], *, now_s: float, at: datetime) -> None:
        for lane, n in unused.items():
            bucket, quota = self._bucket(lane, now_s), self._quota(lane)
            if bucket is not None:
                bucket.tokens = min(bucket.burst, bucket.tokens + n)
            if quota is not None:
                quota.remaining(at)  # a new day has nothing to give back
                quota.used = max(0, quota.used - math.floor(n))

    def admit(
        self,
        lanes_of: Sequence[Iterable[Lane]],
        *,
        now_s: float,
        at: datetime,
        segments: Sequence[int] | None = None,
    ) -> Admission:
        """Grant, admit in order, give back what was not taken."""
        lanes = [tuple(x) for x in lanes_of]
        segs = list(segments) if segments is not None else [1] * len(lanes)
        grants = self.grant(demand(lanes, segs, self.limit_of), now_s=now_s, at=at)
        admission = admit(lanes, segs, self.limit_of, grants)
        self.refund(admission.unused, now_s=now_s, at=at)
        return admission

    def throttled(self, lane: Lane, now_s: float) -> None:
        bucket = self._bucket(lane, now_s)
        if bucket is not None:
            bucket.throttled()

    def succeeded(self, lane: Lane, now_s: float) -> None:
        bucket = self._bucket(lane, now_s)
        if bucket is not None:
            bucket.succeeded()
