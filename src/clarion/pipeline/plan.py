"""The send plan: what a campaign launch will do, told before it does it.

The caller streams the audience in pages into a `Planner` (`add` once per page) and asks for
the `SendPlan`: recipients per lane and carrier, who waits for quiet hours and until when,
which daily caps will be hit and how many recipients they hold over, cost in segments, and
when sending should finish. Memory stays flat in the audience size: recipients are counted
into groups keyed by (release moment, carrier, lanes, segments), never kept one by one.

Every recipient goes through the same decisions as at send time: a render error excludes it
("template_error"); the compliance gate (`decide`) sends, defers to its window, or drops; the
sender is the send stage's sticky choice (crc32 of the number over the sorted pool); its lanes
are `send.lanes_for`, plus `PLATFORM_LANE`, the throughput Clarion itself sustains.

Daily caps are applied day by day (Pacific days, as `lanes.DailyQuota` counts them, one per
message): groups take what is left of a capped lane's day in release order; the rest resume
at the next Pacific midnight and count against that day, or expire when that moment is at or
after the campaign's expiry. A cap of less than one a day never sends, and the plan looks
no further than `MAX_HOLD_DAYS` ahead: recipients held beyond either count as expiring too.

The finish time is an ESTIMATE, not a promise. Each lane is an independent server working at
its configured rate (bursts, AIMD throttling, provider latency and worker count are ignored):
groups are taken in release order; on each rate lane a group starts when both it is released
and the lane is free, and takes tokens / rate seconds; the group is done when its slowest lane
is. Lanes without a rate (unlimited, or daily-only) take no time. `finish_at` is the latest
group's end; `bottleneck` the lane with the most busy time overall.
"""

from __future__ import annotations

import heapq
import zlib
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from clarion.compliance.gate import DEFAULT_SMART_SENDING_H, Action, GateInput, Reason, decide
from clarion.domain.lanes import Lane, LaneLimit
from clarion.pipeline.lanes import next_pacific_midnight, pacific_day, resolve_limit
from clarion.pipeline.send import lanes_for

# Every message takes a token here: Clarion's own measured throughput, all lanes together.
PLATFORM_LANE: Lane = ("platform", "all")
TEMPLATE_ERROR = "template_error"
UNKNOWN_CARRIER = "unknown"
# How far ahead daily caps are followed: a backlog longer than this is reported as expiring
# (a plan is for a launch decision; it also keeps the day-by-day walk finite).
MAX_HOLD_DAYS = 366


class PlanRecipient(msgspec.Struct, frozen=True, kw_only=True):
    """One audience member as the planner needs them (read at plan time, not send time)."""

    subscriber_id: int
    phone: str
    timezone: str | None
    carrier: str | None
    segments: int  # of this recipient's rendered message; 0 if it failed to render
    consent: str | None  # current SMS consent
    suppression: str | None = None
    recent_sends: tuple[datetime, ...] = ()
    render_error: str | None = None  # set: excluded as "template_error"


@dataclass(frozen=True, slots=True)
class PlanContext:
    """Everything about the launch that is the same for every recipient."""

    at: datetime  # the launch moment (aware)
    brand_id: int
    campaign_id: int
    provider: str
    sender_pool: Sequence[str]
    default_sender: str
    limits: Mapping[Lane, LaneLimit]
    expires_at: datetime | None = None
    smart_sending_h: float = DEFAULT_SMART_SENDING_H
    # used already on the Pacific day of `at`, per daily-capped lane (exact lane key)
    daily_used: Mapping[Lane, int] = field(default_factory=dict)
    platform_rate_mps: float = 3000.0

    def __post_init__(self) -> None:
        if self.at.utcoffset() is None:
            raise ValueError("PlanContext.at must be an aware datetime")


class HourCount(msgspec.Struct, frozen=True):
    at: datetime  # the start of a UTC hour
    count: int


class LanePlan(msgspec.Struct, frozen=True, kw_only=True):
    kind: str
    key: str
    recipients: int
    tokens: int  # segments on a per-segment lane, else messages
    rate_per_s: float | None
    per_day: int | None
    busy_s: float  # tokens / rate; 0 without a rate


class CapPlan(msgspec.Struct, frozen=True, kw_only=True):
    """A daily cap that holds recipients over to a later Pacific day."""

    kind: str
    key: str
    per_day: int
    remaining_today: int  # per_day less what was used today before launch
    recipients: int  # eligible demand on the lane, before the cap
    left_over: int  # held to a later day, sent before expiry
    resumes_at: datetime  # the next Pacific midnight after the first hold
    expire: int  # held past the campaign's expiry (or `MAX_HOLD_DAYS`): never sent


class SendPlan(msgspec.Struct, frozen=True, kw_only=True):
    campaign_id: int
    computed_at: datetime
    expires_at: datetime | None
    audience: int
    eligible: int  # gate SEND or DEFER, less those a daily cap holds past expiry
    excluded: dict[str, int]  # gate DROP reasons (`Reason` values) and "template_error"
    send_now: int  # eligible, allowed at `computed_at` (a daily cap may still hold them)
    deferred: int  # eligible, waiting for their sending window
    deferred_by_hour: list[HourCount]
    expire_in_quiet_hours: int  # their window opens after expiry (also in excluded)
    capped: int  # held over by daily caps, sent later (sum of caps' left_over)
    expire_after_caps: int  # held over by daily caps past expiry (sum of caps' expire)
    segments: int  # of eligible messages: the estimated cost
    carriers: dict[str, int]  # eligible per carrier
    lanes: list[LanePlan]  # busiest first
    caps: list[CapPlan]
    first_send_at: datetime | None
    finish_at: datetime | None  # an estimate (see the module docstring)
    duration_s: float | None  # finish_at - first_send_at
    bottleneck: str | None  # "kind:key" of the busiest lane
    # a local-time send's waves: when it reaches each zone, and how many subscribers
    waves: list[Wave] = []


class Wave(msgspec.Struct, frozen=True):
    at: datetime
    timezone: str
    subscribers: int


# (release moment from the gate, carrier, lanes, segments): recipients alike for the plan.
_Group = tuple[datetime, str, tuple[Lane, ...], int]


@dataclass(slots=True)
class _Hold:
    """What one daily-capped lane held over (recipients are counted at their first hold)."""

    held: int = 0
    expire: int = 0
    resumes_at: datetime | None = None


class _LimitBook:
    """Lane limits as the send stage resolves them (cached: the lanes are few)."""

    def __init__(self, ctx: PlanContext) -> None:
        self._ctx = ctx
        self._limit_of: dict[Lane, LaneLimit | None] = {}

    def limit(self, lane: Lane) -> LaneLimit | None:
        """A lane's configured limit; the platform lane's is Clarion's measured rate."""
        if lane not in self._limit_of:
            if lane == PLATFORM_LANE:
                rate = self._ctx.platform_rate_mps
                self._limit_of[lane] = LaneLimit(rate_per_s=rate) if rate > 0 else None
            else:
                self._limit_of[lane] = resolve_limit(self._ctx.limits, lane)
        return self._limit_of[lane]

    def tokens(self, lane: Lane, segments: int) -> int:
        """What one message takes from a lane: its segments on a per-segment lane, else 1."""
        limit = self.limit(lane)
        return segments if limit is not None and limit.per_segment else 1

    def rate(self, lane: Lane) -> float | None:
        limit = self.limit(lane)
        rate = limit.rate_per_s if limit is not None else None
        return rate if rate is not None and rate > 0 else None

    def per_day(self, lane: Lane) -> int | None:
        limit = self.limit(lane)
        return limit.per_day if limit is not None else None


class Planner:
    """Counts pages of recipients into a `SendPlan`; its state grows with the number of
    distinct groups (windows, senders, carriers, segment counts), not with the audience."""

    def __init__(self, ctx: PlanContext) -> None:
        self._ctx = ctx
        self._at = ctx.at.astimezone(UTC)
        # The send stage's pool, as it is loaded (sorted), so the sticky sender matches.
        self._pool = sorted(ctx.sender_pool) or [ctx.default_sender]
        self._expired_at_launch = ctx.expires_at is not None and ctx.at >= ctx.expires_at
        self._audience = 0
        self._excluded: Counter[str] = Counter()
        self._expire_in_quiet_hours = 0
        self._groups: Counter[_Group] = Counter()
        self._lanes_of: dict[tuple[str, str | None], tuple[Lane, ...]] = {}
        self._book = _LimitBook(ctx)

    def add(self, recipients: Iterable[PlanRecipient]) -> None:
        """Count one page of the audience in."""
        ctx = self._ctx
        for r in recipients:
            self._audience += 1
            if r.render_error is not None:
                self._excluded[TEMPLATE_ERROR] += 1
                continue
            d = decide(
                GateInput(
                    phone=r.phone,
                    at=self._at,
                    consent=r.consent,
                    suppression=r.suppression,
                    recent_sends=r.recent_sends,
                    timezone=r.timezone,
                    expires_at=ctx.expires_at,
                    smart_sending_h=ctx.smart_sending_h,
                )
            )
            if d.action is Action.DROP:
                assert d.reason is not None
                self._excluded[d.reason.value] += 1
                if d.reason is Reason.EXPIRED and not self._expired_at_launch:
                    self._expire_in_quiet_hours += 1
                continue
            if d.action is Action.SEND:
                release = self._at
            else:
                assert d.not_before is not None
                release = d.not_before.astimezone(UTC)
            sender = self._pool[zlib.crc32(r.phone.encode()) % len(self._pool)]
            carrier = r.carrier or UNKNOWN_CARRIER
            self._groups[(release, carrier, self._lanes(sender, r.carrier), r.segments)] += 1

    def result(self) -> SendPlan:
        """The plan for everything added so far (adding more afterwards is allowed)."""
        caps = _CapRun(self._ctx, self._book, self._at)
        caps.run(self._groups)
        eligible = caps.eligible
        deferred_by_hour: Counter[datetime] = Counter()
        carriers: Counter[str] = Counter()
        send_now = segments = 0
        for (release, carrier, _, seg), n in eligible.items():
            if release == self._at:
                send_now += n
            else:
                deferred_by_hour[release.replace(minute=0, second=0, microsecond=0)] += n
            carriers[carrier] += n
            segments += n * seg
        lanes = self._lane_plans(eligible)
        first, finish = self._timing(caps.sending)
        cap_plans = caps.plans(self._groups)
        return SendPlan(
            campaign_id=self._ctx.campaign_id,
            computed_at=self._at,
            expires_at=_utc(self._ctx.expires_at),
            audience=self._audience,
            eligible=sum(eligible.values()),
            excluded=dict(sorted(self._excluded.items())),
            send_now=send_now,
            deferred=sum(deferred_by_hour.values()),
            deferred_by_hour=[HourCount(h, n) for h, n in sorted(deferred_by_hour.items())],
            expire_in_quiet_hours=self._expire_in_quiet_hours,
            capped=sum(c.left_over for c in cap_plans),
            expire_after_caps=sum(c.expire for c in cap_plans),
            segments=segments,
            carriers=dict(sorted(carriers.items())),
            lanes=lanes,
            caps=cap_plans,
            first_send_at=first,
            finish_at=finish,
            duration_s=(finish - first).total_seconds() if first and finish else None,
            bottleneck=f"{lanes[0].kind}:{lanes[0].key}" if lanes and lanes[0].busy_s else None,
        )

    def _lanes(self, sender: str, carrier: str | None) -> tuple[Lane, ...]:
        lanes = self._lanes_of.get((sender, carrier))
        if lanes is None:
            c = self._ctx
            lanes = lanes_for(
                c.provider,
                sender,
                False,
                brand_id=c.brand_id,
                campaign_id=c.campaign_id,
                carrier=carrier,
            )
            lanes = self._lanes_of[(sender, carrier)] = (*lanes, PLATFORM_LANE)
        return lanes

    def _lane_plans(self, eligible: Counter[_Group]) -> list[LanePlan]:
        recipients: Counter[Lane] = Counter()
        tokens: Counter[Lane] = Counter()
        for (_, _, lanes, seg), n in eligible.items():
            for lane in lanes:
                recipients[lane] += n
                tokens[lane] += n * self._book.tokens(lane, seg)
        plans = []
        for lane, n in recipients.items():
            limit, rate = self._book.limit(lane), self._book.rate(lane)
            plans.append(
                LanePlan(
                    kind=lane[0],
                    key=lane[1],
                    recipients=n,
                    tokens=tokens[lane],
                    rate_per_s=rate,
                    per_day=limit.per_day if limit is not None else None,
                    busy_s=tokens[lane] / rate if rate else 0.0,
                )
            )
        return sorted(plans, key=lambda p: (-p.busy_s, p.kind, p.key))

    def _timing(
        self, sending: list[tuple[datetime, _Group, int]]
    ) -> tuple[datetime | None, datetime | None]:
        """(first send, estimated finish): lanes as independent servers (module docstring)."""
        if not sending:
            return None, None
        next_free_s: dict[Lane, float] = {}
        finish_s = 0.0
        for release, (_, _, lanes, seg), n in sending:  # in release order
            release_s = (release - self._at).total_seconds()
            done_s = release_s
            for lane in lanes:
                rate = self._book.rate(lane)
                if rate is None:
                    continue
                start_s = max(next_free_s.get(lane, release_s), release_s)
                next_free_s[lane] = start_s + n * self._book.tokens(lane, seg) / rate
                done_s = max(done_s, next_free_s[lane])
            finish_s = max(finish_s, done_s)
        return sending[0][0], self._at + timedelta(seconds=finish_s)


class _CapRun:
    """Daily caps, day by day: which groups go on their release day, which resume at a later
    Pacific midnight, and which would resume only at or after expiry."""

    def __init__(self, ctx: PlanContext, book: _LimitBook, at: datetime) -> None:
        self._ctx = ctx
        self._book = book
        self._today = pacific_day(at)
        self._horizon = at + timedelta(days=MAX_HOLD_DAYS)
        self._used: dict[tuple[Lane, str], int] = {}
        self.holds: defaultdict[Lane, _Hold] = defaultdict(_Hold)
        self.eligible: Counter[_Group] = Counter()
        self.sending: list[tuple[datetime, _Group, int]] = []  # (release, group, count)

    def _left(self, lane: Lane, day: str, per_day: int) -> int:
        used = self._used.get((lane, day))
        if used is None:
            used = self._ctx.daily_used.get(lane, 0) if day == self._today else 0
        return max(0, per_day - used)

    def run(self, groups: Counter[_Group]) -> None:
        # (release, order, group, count, first holding lane); order keeps the heap stable
        # and never compares groups, and sorting first makes the plan independent of paging.
        queue: list[tuple[datetime, int, _Group, int, Lane | None]] = [
            (g[0], i, g, n, None) for i, (g, n) in enumerate(sorted(groups.items()))
        ]
        order = len(queue)
        while queue:
            release, _, group, n, holder = heapq.heappop(queue)
            day = pacific_day(release)
            room, binding, binding_per_day = n, None, 0
            capped = [(lane, d) for lane in group[2] if (d := self._book.per_day(lane)) is not None]
            for lane, per_day in capped:
                left = self._left(lane, day, per_day)
                if left < room:
                    room, binding, binding_per_day = left, lane, per_day
            for lane, per_day in capped:
                self._used[(lane, day)] = per_day - self._left(lane, day, per_day) + room
            if room:
                self.eligible[group] += room
                self.sending.append((release, group, room))
            if room == n:
                continue
            assert binding is not None
            if holder is None:
                holder = binding
                self.holds[holder].held += n - room
            resume = next_pacific_midnight(release)
            hold = self.holds[holder]
            if hold.resumes_at is None:
                hold.resumes_at = resume
            expires_at = self._ctx.expires_at
            if expires_at is None or expires_at > self._horizon:
                expires_at = self._horizon
            if binding_per_day < 1 or resume >= expires_at:
                hold.expire += n - room
            else:
                heapq.heappush(queue, (resume, order, group, n - room, holder))
                order += 1

    def plans(self, groups: Counter[_Group]) -> list[CapPlan]:
        demand: Counter[Lane] = Counter()
        for (_, _, lanes, _), n in groups.items():
            for lane in lanes:
                if lane in self.holds:
                    demand[lane] += n
        plans = []
        for lane, hold in sorted(self.holds.items()):
            per_day = self._book.per_day(lane)
            assert per_day is not None
            assert hold.resumes_at is not None
            used_today = self._ctx.daily_used.get(lane, 0)
            plans.append(
                CapPlan(
                    kind=lane[0],
                    key=lane[1],
                    per_day=per_day,
                    remaining_today=max(0, per_day - used_today),
                    recipients=demand[lane],
                    left_over=hold.held - hold.expire,
                    resumes_at=hold.resumes_at,
                    expire=hold.expire,
                )
            )
        return plans


def _utc(at: datetime | None) -> datetime | None:
    return at.astimezone(UTC) if at is not None else None


class Actual(msgspec.Struct, frozen=True, kw_only=True):
    """What a campaign did, counted the way its plan was (for the report after it)."""

    eligible: int  # audience less the gate's drops and template errors
    sent: int  # handed over without waiting for quiet hours (the plan's send_now)
    deferred: int  # held by the gate for quiet hours (the plan's deferred)
    capped: int  # held over by a daily cap to a later day
    expired: int  # expired, in quiet hours or behind a cap
    segments: int
    first_send_at: datetime | None
    finished_at: datetime | None
    carriers: dict[str, int]


class PlanRow(msgspec.Struct, frozen=True):
    metric: str
    planned: Any
    actual: Any


def plan_vs_actual(plan: SendPlan, actual: Actual) -> list[PlanRow]:
    """Rows of the after-campaign report: each planned figure next to what happened."""

    def after_launch_s(at: datetime | None) -> float | None:
        return (at - plan.computed_at).total_seconds() if at is not None else None

    actual_duration_s = None
    if actual.first_send_at is not None and actual.finished_at is not None:
        actual_duration_s = (actual.finished_at - actual.first_send_at).total_seconds()
    rows = [
        PlanRow("eligible", plan.eligible, actual.eligible),
        PlanRow("sent now", plan.send_now, actual.sent),
        PlanRow("deferred", plan.deferred, actual.deferred),
        PlanRow("capped", sum(c.left_over for c in plan.caps), actual.capped),
        PlanRow(
            "expired",
            plan.excluded.get(Reason.EXPIRED.value, 0) + plan.expire_after_caps,
            actual.expired,
        ),
        PlanRow("segments", plan.segments, actual.segments),
        PlanRow(
            "first send (s)",
            after_launch_s(plan.first_send_at),
            after_launch_s(actual.first_send_at),
        ),
        PlanRow("duration (s)", plan.duration_s, actual_duration_s),
        PlanRow("finish", plan.finish_at, _utc(actual.finished_at)),
    ]
    for carrier in sorted(plan.carriers.keys() | actual.carriers.keys()):
        rows.append(
            PlanRow(
                f"carrier {carrier}", plan.carriers.get(carrier, 0), actual.carriers.get(carrier, 0)
            )
        )
    return rows
