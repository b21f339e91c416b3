"""The send stage's decisions, as functions of what the worker read: which messages of a batch
go now (and from which sender), which are dropped and why, which wait and until when. The
worker loads the state, calls these, writes what they return and hands over; nothing here
does I/O or reads a clock (`at` is an argument).

Every function is batch-oriented: one pass over the batch, no call per message beyond the
gate's own (`send.gate_batch`)."""

from __future__ import annotations

import zlib
from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime, timedelta

import msgspec

from clarion.domain.lanes import Lane
from clarion.domain.messages import SendResult, Waiting
from clarion.domain.records import OutboundMessage
from clarion.domain.schedule import LocalWave
from clarion.pipeline import send
from clarion.pipeline.lanes import Admission, next_pacific_midnight
from clarion.pipeline.send import GateOutcome

# (message id, suppressed|expired, reason, detail): as `compliance.record_gate` writes it.
Drop = tuple[str, str, str, str | None]
# (message id, not_before, reason, detail): as `messages.defer` writes it.
Deferral = tuple[str, datetime, str, str | None]

# A message waits at most this long for a lane before it is looked at again.
MAX_LANE_WAIT_S = 30.0
# `not_before` of messages a paused campaign holds: until resume sets them free.
FOREVER = datetime.max.replace(tzinfo=UTC)


class SendState(msgspec.Struct, frozen=True, kw_only=True):
    """What the send decision needs besides the batch, read by the worker right before it:
    the campaign's `status` (`sending`, `paused`, `cancelled`), its expiry and the brand's
    smart sending hours, current consent and suppressions, the sends of the last day and the
    messages of the batch's subscribers that still wait (for the sequence), the messages a
    crash cut short in a provider call (`interrupted`), and the moment `at`. The gate state
    is left empty when the status alone decides (paused, cancelled)."""

    at: datetime
    status: str | None = "sending"
    expires_at: datetime | None = None
    smart_sending_h: float = 0.0
    consent: Mapping[int, str] = msgspec.field(default_factory=dict)
    suppressed: Mapping[str, str] = msgspec.field(default_factory=dict)
    recent_sends: Mapping[int, Sequence[datetime]] = msgspec.field(default_factory=dict)
    waiting: Sequence[Waiting] = ()
    interrupted: Collection[str] = frozenset()
    local_wave: LocalWave | None = None  # a local-time send: each waits for their moment
    best_time: bool = False  # a best-time send: each waits for their `not_before`


class SendDecision(msgspec.Struct, frozen=True, kw_only=True):
    """The gate's and the sequence's verdict on a batch: `go` may go now (lanes permitting);
    `drops` never go; `quiet` wait for the recipient's sending window (id, not_before, rule);
    `waits` wait in Postgres (a paused campaign, an older message to the same subscriber);
    `unknown` were cut short in a provider call and are held back now, so whether they
    reached the handset is unknown. `gate` is the gate's own verdict and `held` how many the
    sequence holds (for the counts)."""

    go: list[OutboundMessage]
    drops: list[Drop]
    quiet: list[tuple[str, datetime, str]]
    waits: list[Deferral]
    unknown: list[str]
    gate: GateOutcome
    held: int = 0


_NO_GATE = GateOutcome(send=[], drops=[], defers=[])


def decide(
    channel: str, todo: Sequence[OutboundMessage], state: SendState, *, new: bool = False
) -> SendDecision:
    """Campaign status (pause, cancel), the compliance gate and the subscriber sequence over
    the messages `todo` of a marketing batch on `channel`. `new`: the batch is not persisted
    yet, so its own messages are not among `state.waiting` (they are newer than all of it)."""
    interrupted = state.interrupted
    if state.status == "paused":
        # They wait in Postgres, not on the bus (a held batch would stall its partition for
        # every other campaign); resume sets them free.
        paused: list[Deferral] = [(m.message_id, FOREVER, send.PAUSED, None) for m in todo]
        return SendDecision(go=[], drops=[], quiet=[], waits=paused, unknown=[], gate=_NO_GATE)
    if state.status == "cancelled":
        return SendDecision(
            go=[],
            drops=[
                (m.message_id, "suppressed", "cancelled", None)
                for m in todo
                if m.message_id not in interrupted
            ],
            quiet=[],
            waits=[],
            unknown=[m.message_id for m in todo if m.message_id in interrupted],
            gate=_NO_GATE,
        )
    at = state.at
    if channel == "email":
        outcome = send.gate_emails(
            todo, at=at, consent=state.consent, suppressed=state.suppressed,
            expires_at=state.expires_at,
        )  # fmt: skip
    else:
        outcome = send.gate_batch(
            todo, at=at, consent=state.consent, suppressed=state.suppressed,
            recent_sends=state.recent_sends, expires_at=state.expires_at,
            smart_sending_h=state.smart_sending_h,
        )  # fmt: skip
    local: list[Deferral] = []
    if state.local_wave is not None or state.best_time:  # the gate says yes: their moment?
        outcome, local = _their_moment(outcome, state.local_wave, at)
    if new:
        waiting = [*state.waiting, *send.unwritten(outcome.send)]
        drops, quiet, unknown = outcome.drops, outcome.defers, []
    else:
        # An interrupted message the gate now holds back may have reached the provider
        # before the crash: its fate is unknown, not suppressed.
        unknown = [d[0] for d in outcome.drops if d[0] in interrupted]
        unknown += [d[0] for d in outcome.defers if d[0] in interrupted]
        drops = [d for d in outcome.drops if d[0] not in interrupted]
        quiet = [d for d in outcome.defers if d[0] not in interrupted]
        waiting = send.after_gate(state.waiting, outcome, interrupted)
    # Sequence: never overtake an older message to the same subscriber that still waits.
    holds = send.sequence_holds(outcome.send, waiting, at=at)
    return SendDecision(
        go=[m for m in outcome.send if m.message_id not in holds] if holds else outcome.send,
        drops=drops,
        quiet=quiet,
        waits=local + [(mid, t, send.SEQUENCE_WAIT, None) for mid, t in holds.items()],
        unknown=unknown,
        gate=outcome,
        held=len(holds),
    )


LOCAL_TIME = "local_time"  # a local-time send's message waits for its wave
BEST_TIME = "best_time"  # a best-time send's message waits for its subscriber's best hour


def _their_moment(
    outcome: GateOutcome, wave: LocalWave | None, at: datetime
) -> tuple[GateOutcome, list[Deferral]]:
    """The gate's `send` less those whose moment has not come (deferred to it): a local-time
    send's wave in their zone, a best-time send's `not_before`."""
    go: list[OutboundMessage] = []
    later: list[Deferral] = []
    for m in outcome.send:
        if m.not_before is not None and m.not_before > at:
            later.append((m.message_id, m.not_before, BEST_TIME, None))
        elif wave is not None and (due := wave.due(m.timezone)) is not None and due > at:
            later.append((m.message_id, due, LOCAL_TIME, None))
        else:
            go.append(m)
    if not later:
        return outcome, []
    return msgspec.structs.replace(outcome, send=go), later


def senders_and_lanes(
    provider: str,
    todo: Sequence[OutboundMessage],
    *,
    sender_pool: Sequence[str],
    brand_id: int,
    campaign_id: int | None,
    channel: str,
    transactional: bool,
) -> tuple[list[str], list[tuple[Lane, ...]]]:
    """Each message's sender (a subscriber always hears from the same number of the pool:
    sticky by a hash of the address) and the lanes it takes a token from."""
    if len(sender_pool) == 1:
        senders = [sender_pool[0]] * len(todo)
    else:
        senders = [sender_pool[zlib.crc32(m.to.encode()) % len(sender_pool)] for m in todo]
    known: dict[tuple[str, str | None], tuple[Lane, ...]] = {}
    lanes_of = []
    for sender, m in zip(senders, todo, strict=True):
        lanes = known.get((sender, m.carrier))
        if lanes is None:
            lanes = known[sender, m.carrier] = send.lanes_for(
                provider, sender, transactional, brand_id=brand_id, campaign_id=campaign_id,
                carrier=m.carrier, channel=channel,
            )  # fmt: skip
        lanes_of.append(lanes)
    return senders, lanes_of


class LaneDecision(msgspec.Struct, frozen=True, kw_only=True):
    """What the lanes decided: `go` (sender, message) pairs to hand over now, `waits` for a
    lane to have room (or a daily cap to reopen), `expired`: capped past the expiry."""

    go: list[tuple[str, OutboundMessage]]
    waits: list[Deferral]
    expired: list[Drop]


def decide_lanes(
    todo: Sequence[OutboundMessage],
    senders: Sequence[str],
    admission: Admission,
    *,
    at: datetime,
    expires_at: datetime | None,
) -> LaneDecision:
    """Messages an empty lane holds back wait until their lane should have room; a spent
    daily cap holds them until midnight Pacific, or, when that is after the campaign's
    expiry, they expire now (they could never go)."""
    capped = set(admission.capped)
    waits: list[Deferral] = []
    expired: list[Drop] = []
    for i, ready_s in zip(admission.held, admission.ready_in_s, strict=True):
        mid = todo[i].message_id
        if i in capped:
            resume = next_pacific_midnight(at)
            if expires_at is not None and resume >= expires_at:
                expired.append((mid, "expired", send.CARRIER_DAILY_CAP, todo[i].carrier))
            else:
                waits.append((mid, resume, send.CARRIER_DAILY_CAP, todo[i].carrier))
        else:
            wait = timedelta(seconds=min(MAX_LANE_WAIT_S, max(0.05, ready_s)))
            waits.append((mid, at + wait, send.LANE_WAIT, None))
    go = [(senders[i], todo[i]) for i in admission.admitted]
    return LaneDecision(go=go, waits=waits, expired=expired)


def backoff_s(attempts: int, base_s: float, cap_s: float = 300.0) -> float:
    """Exponential backoff after `attempts` failed provider calls (before jitter)."""
    return min(cap_s, base_s * 2.0 ** min(attempts - 1, 16))


def throttle_waits(again: Sequence[SendResult], at: datetime) -> list[Deferral]:
    """Messages a provider throttled wait for its Retry-After (no attempt is counted)."""
    return [
        (r.message_id, at + timedelta(seconds=r.retry_after_s or 1.0), send.LANE_WAIT,
         r.error_detail or r.error_code)
        for r in again
        if r.throttled
    ]  # fmt: skip


def backoff_waits(
    retried: Sequence[tuple[str, int]], at: datetime, *, base_s: float, jitter: float, error: str
) -> list[Deferral]:
    """Messages a provider failed, (id, attempts so far), wait an exponential backoff; one
    `jitter` per failed call, so they come back together and other batches at other moments."""
    return [
        (mid, at + timedelta(seconds=backoff_s(n, base_s) * jitter), send.RETRY, error)
        for mid, n in retried
    ]
