"""Send stage core: what to persist for a rendered batch, and how provider answers map to
status updates. The worker persists first, then calls the provider, then records results."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime, timedelta

import msgspec

from clarion.compliance.gate import Action, Decision, GateInput, Reason, decide
from clarion.compliance.windows import place_key
from clarion.domain.lanes import Lane
from clarion.domain.messages import MessageRow, SendResult, StatusUpdate, Waiting
from clarion.domain.records import OutboundMessage, Receipt, RenderedBatch, StatusChange
from clarion.domain.status import RANK, MessageStatus


def rows_to_persist(batch: RenderedBatch, *, expires_at: datetime | None) -> list[MessageRow]:
    """Queued rows for rendered messages, failed rows (with the reason) for render failures."""
    queued_rank = RANK[MessageStatus.QUEUED]
    failed_rank = RANK[MessageStatus.FAILED]
    rows = [
        MessageRow(
            m.message_id,
            batch.brand_id,
            batch.campaign_id,
            m.subscriber_id,
            m.to,
            batch.sender,
            m.body,
            m.segments,
            MessageStatus.QUEUED,
            queued_rank,
            None,
            None,
            batch.kind,
            expires_at,
            batch.channel,
        )
        for m in batch.messages
    ]
    rows.extend(
        MessageRow(
            f.message_id,
            batch.brand_id,
            batch.campaign_id,
            f.subscriber_id,
            f.to,
            batch.sender,
            None,
            0,
            MessageStatus.FAILED,
            failed_rank,
            "template_error",
            f.error,
            batch.kind,
            expires_at,
            batch.channel,
        )
        for f in batch.failures
    )
    return rows


def decided_rows(
    batch: RenderedBatch,
    *,
    expires_at: datetime | None,
    provider: str,
    drops: Sequence[tuple[str, str, str, str | None]],
    quiet: Sequence[tuple[str, datetime, str]],
    waits: Sequence[tuple[str, datetime, str, str | None]],
    sent_at: datetime,
) -> list[MessageRow]:
    """The rows of a batch seen for the first time, persisted with the send stage's decision
    already made, so each message is written once instead of inserted and then updated:
    `drops` (id, suppressed|expired, reason, detail) and the gate's quiet-hours deferrals
    `quiet` (id, not_before, rule) as `record_gate` writes them, `waits` (id, not_before,
    reason, detail) as `defer` writes them, and every other message claimed (`sending`) for
    `provider` at `sent_at`, which it is handed to right after the commit. Render failures
    are failed rows, as in `rows_to_persist`."""
    dropped = {d[0]: d for d in drops}
    deferred: dict[str, tuple[datetime, str, str | None]] = {
        d[0]: (d[1], str(Reason.QUIET_HOURS), d[2]) for d in quiet
    }
    deferred.update((w[0], (w[1], w[2], w[3])) for w in waits)
    rows = []
    for row in rows_to_persist(batch, expires_at=expires_at):
        if row.status != MessageStatus.QUEUED:
            rows.append(row)
        elif (d := dropped.get(row.id)) is not None:
            rows.append(
                msgspec.structs.replace(
                    row, status=d[1], status_rank=RANK[d[1]], error_code=d[2], error_detail=d[3]
                )
            )
        elif (w := deferred.get(row.id)) is not None:
            rows.append(
                msgspec.structs.replace(
                    row,
                    status=MessageStatus.DEFERRED,
                    not_before=w[0],
                    error_code=w[1],
                    error_detail=w[2],
                )
            )
        else:
            rows.append(
                msgspec.structs.replace(
                    row, status=MessageStatus.SENDING, provider=provider, sent_at=sent_at
                )
            )
    return rows


# The origin of the receipts `answer_receipts` makes (a ReceiptBatch's `origin`).
ANSWER = "answer"


def answer_receipts(results: Sequence[SendResult], at: datetime) -> list[Receipt]:
    """Accepted answers as `accepted` receipts with the provider's id. They go onto the
    receipts hop and are folded with the provider's status reports, most often in the same
    UPDATE as `sent` and `delivered`, instead of costing every message an UPDATE of its own.
    Until then the message stays `sending`, which counts as handed over for the caps."""
    return [
        Receipt(
            message_id=r.message_id,
            status=MessageStatus.ACCEPTED,
            occurred_at=at,
            provider_message_id=r.provider_message_id,
        )
        for r in results
        if r.accepted and not r.retry
    ]


def status_updates(results: Sequence[SendResult], *, final: bool = False) -> list[StatusUpdate]:
    """Accepted → `accepted` with the provider's id (`delivered` when the provider's
    acceptance is final, as an SMTP 250 is); rejected → `failed` with its error."""
    ok = MessageStatus.DELIVERED if final else MessageStatus.ACCEPTED
    accepted_rank = RANK[ok]
    failed_rank = RANK[MessageStatus.FAILED]
    return [
        StatusUpdate(
            message_id=r.message_id,
            status=ok if r.accepted else MessageStatus.FAILED,
            status_rank=accepted_rank if r.accepted else failed_rank,
            provider_message_id=r.provider_message_id,
            error_code=r.error_code,
            error_detail=r.error_detail,
        )
        for r in results
    ]


# Provider error codes that mean the number will never receive: suppress it everywhere.
PERMANENT_ERRORS: dict[str, str] = {
    "21211": "invalid_number",
    "21614": "landline",
    "30005": "unknown_handset",
    "30006": "landline",
    "smpp:0x0b": "invalid_number",  # ESME_RINVDSTADR
}


class GateOutcome(msgspec.Struct, frozen=True, kw_only=True):
    send: list[OutboundMessage]
    drops: list[tuple[str, str, str, str | None]]  # (id, status, reason, detail)
    defers: list[tuple[str, datetime, str]]  # (id, not_before, rule)


def gate_batch(
    messages: Sequence[OutboundMessage],
    *,
    at: datetime,
    consent: Mapping[int, str],
    suppressed: Mapping[str, str],
    recent_sends: Mapping[int, Sequence[datetime]],
    expires_at: datetime | None,
    smart_sending_h: float,
) -> GateOutcome:
    """The compliance gate over a batch: which messages go now, which wait, which never go.

    Every message gets `decide`'s verdict. A message with current consent, no suppression
    and no recent send (nearly all of a campaign) is decided by its place alone (its stored
    zone and state, or its number's prefix: `place_key`), so one decision per place in the
    batch serves the rest of them: a batch of a thousand makes a few dozen."""
    out = GateOutcome(send=[], drops=[], defers=[])
    by_place: dict[tuple[str | None, ...], Decision] = {}

    def decision(m: OutboundMessage, c: str | None, recent: Sequence[datetime]) -> Decision:
        return decide(
            GateInput(
                phone=m.to,
                at=at,
                consent=c,
                suppression=suppressed.get(m.to),
                recent_sends=recent,
                timezone=m.timezone,
                expires_at=expires_at,
                smart_sending_h=smart_sending_h,
            )
        )

    for m in messages:
        sid = m.subscriber_id
        c = consent.get(sid) if sid is not None else None
        recent = recent_sends.get(sid, ()) if sid is not None else ()
        if c == "opted_in" and not recent and m.to not in suppressed:
            place = place_key(m.to, m.timezone)
            d = by_place.get(place)
            if d is None:
                d = by_place[place] = decision(m, c, recent)
        else:
            d = decision(m, c, recent)
        if d.action is Action.SEND:
            out.send.append(m)
        elif d.action is Action.DEFER:
            assert d.not_before is not None
            out.defers.append((m.message_id, d.not_before, d.detail or ""))
        else:
            status = MessageStatus.EXPIRED if d.reason is Reason.EXPIRED else "suppressed"
            out.drops.append((m.message_id, status, str(d.reason), d.detail))
    return out


def gate_emails(
    messages: Sequence[OutboundMessage],
    *,
    at: datetime,
    consent: Mapping[int, str],
    suppressed: Mapping[str, str],
    expires_at: datetime | None,
) -> GateOutcome:
    """The gate for marketing email: expiry, current email consent, suppression (hard
    bounces, complaints). Email has no sending window and no carrier caps."""
    out = GateOutcome(send=[], drops=[], defers=[])
    for m in messages:
        c = consent.get(m.subscriber_id) if m.subscriber_id is not None else None
        if expires_at is not None and at >= expires_at:
            out.drops.append((m.message_id, MessageStatus.EXPIRED, str(Reason.EXPIRED), None))
        elif c == "opted_out":
            out.drops.append((m.message_id, "suppressed", str(Reason.OPTED_OUT), None))
        elif c != "opted_in":
            out.drops.append((m.message_id, "suppressed", str(Reason.NO_CONSENT), c))
        elif m.to.lower() in suppressed:
            detail = suppressed[m.to.lower()]
            out.drops.append((m.message_id, "suppressed", str(Reason.SUPPRESSED), detail))
        else:
            out.send.append(m)
    return out


def permanent_reason(error_code: str | None) -> str | None:
    """Why an address or number can never be reached again, from a provider's error code:
    invalid numbers and landlines (SMS), hard bounces and complaints (email)."""
    if error_code is None:
        return None
    if error_code in PERMANENT_ERRORS:
        return PERMANENT_ERRORS[error_code]
    if error_code == "bounce:hard" or error_code.startswith("smtp:5"):
        return "hard_bounce"
    if error_code == "spamreport":
        return "complaint"
    return None


def _suppression(
    brand_id: int, address: str, code: str, source: str
) -> tuple[int | None, str, str, str] | None:
    """(brand or None for every brand, address, reason, source): a complaint is about this
    brand; a bad number or a hard bounce is true for everyone."""
    reason = permanent_reason(code)
    if reason is None:
        return None
    return (brand_id if reason == "complaint" else None, address, reason, source)


def hard_failures(
    brand_id: int, results: Sequence[SendResult], messages: Sequence[OutboundMessage]
) -> list[tuple[int | None, str, str, str]]:
    """Suppressions for addresses a provider refused as permanently unreachable."""
    to = {m.message_id: m.to for m in messages}
    rows = [
        _suppression(brand_id, to[r.message_id], r.error_code, f"provider:{r.error_code}")
        for r in results
        if not r.accepted and not r.retry and r.error_code and r.message_id in to
    ]
    return [r for r in rows if r is not None]


def hard_failure_suppressions(
    changes: Sequence[StatusChange],
) -> list[tuple[int | None, str, str, str]]:
    """Suppressions for addresses whose receipts say they will never receive (or whose
    owner complained)."""
    rows = [
        _suppression(c.brand_id, c.to, c.error_code, f"receipt:{c.error_code}")
        for c in changes
        if c.error_code and c.to
    ]
    return [r for r in rows if r is not None]


def lanes_for(
    provider: str,
    sender: str,
    transactional: bool,
    *,
    brand_id: int = 0,
    campaign_id: int | None = None,
    carrier: str | None = None,
    channel: str = "sms",
) -> tuple[Lane, ...]:
    """The lanes a message takes a token from. Transactional traffic has lanes of its own, so
    it never queues behind a marketing blast on the same account or number. A marketing
    message whose carrier is known also takes from its carrier's lanes: per campaign per
    minute (AT&T style) and per brand per day (T-Mobile style)."""
    if channel == "email":  # the provider account's rate; no carriers, no segments
        return (("provider", provider),)
    if transactional:
        return (("provider_tx", provider), ("sender_tx", sender))
    lanes: tuple[Lane, ...] = (("provider", provider), ("sender", sender))
    if carrier:
        lanes += (
            ("carrier_minute", f"{brand_id}:{campaign_id or 0}:{carrier}"),
            ("brand_carrier_day", f"{brand_id}:{carrier}"),
        )
    return lanes


# Deferral reasons the send stage records on a message (besides the gate's quiet hours).
LANE_WAIT = "lane_wait"  # an empty lane (sender, provider, carrier per minute)
CARRIER_DAILY_CAP = "carrier_daily_cap"  # a brand's daily cap at a carrier is spent
SEQUENCE_WAIT = "sequence_wait"  # an older message to the same subscriber has not gone yet
RETRY = "retry"  # a transient provider error: tried again after a backoff
PAUSED = "paused"  # the campaign is paused; resume sets these free


def after_gate(
    waiting: Sequence[Waiting], outcome: GateOutcome, interrupted: Collection[str] = ()
) -> list[Waiting]:
    """The waiting messages as they stand once the gate's decisions are written: a dropped
    message no longer waits, a deferred one waits until its new moment (an interrupted one
    the gate holds back becomes of unknown fate, and no longer waits either)."""
    dropped = {d[0] for d in outcome.drops}
    deferred = {d[0]: d[1] for d in outcome.defers}
    out: list[Waiting] = []
    for w in waiting:
        if w.message_id in dropped:
            continue
        if w.message_id in deferred:
            if w.message_id in interrupted:
                continue
            w = msgspec.structs.replace(w, not_before=deferred[w.message_id])
        out.append(w)
    return out


def unwritten(todo: Sequence[OutboundMessage]) -> list[Waiting]:
    """A batch's own messages as `sequence_holds` needs them when they are not persisted yet:
    newer than every message already stored."""
    newest = datetime.max.replace(tzinfo=UTC)
    return [
        Waiting(m.message_id, m.subscriber_id, newest, None)
        for m in todo
        if m.subscriber_id is not None
    ]


def sequence_holds(
    todo: Sequence[OutboundMessage], waiting: Sequence[Waiting], *, at: datetime
) -> dict[str, datetime]:
    """Messages that must wait because an older message to the same subscriber is still
    waiting (not in this batch), mapped to when to look again: just after the older one's
    moment. `waiting` holds every waiting message of the batch's subscribers, this batch's
    included (their `created_at` orders them)."""
    mine = {m.message_id for m in todo}
    own = {w.message_id: w for w in waiting if w.message_id in mine}
    others: dict[int, list[Waiting]] = {}
    for w in waiting:
        if w.message_id not in mine:
            others.setdefault(w.subscriber_id, []).append(w)
    holds: dict[str, datetime] = {}
    for m in todo:
        me = own.get(m.message_id)
        if me is None or m.subscriber_id is None:
            continue
        older = [
            w
            for w in others.get(m.subscriber_id, ())
            if (w.created_at, w.message_id) < (me.created_at, me.message_id)
        ]
        if older:
            after = max(w.not_before or at for w in older)
            holds[m.message_id] = max(after, at) + timedelta(seconds=1)
    return holds
