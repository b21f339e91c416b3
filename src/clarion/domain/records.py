"""Wire records: every message on the bus is one of these batches (msgspec, frozen).

Commands are imperative (`LaunchCampaign`), batches are what flows between stages.
Each batch has a deterministic `batch_id` so a republished batch is recognisable.

The records a batch holds one of per recipient or message are not tracked by the garbage
collector (`gc=False`): they hold only scalars (and a recipient's decoded fields), so they
can be in no reference cycle, and at tens of thousands a second the collections their
allocation triggers cost a few per cent of a worker.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple

import msgspec


class LaunchCampaign(msgspec.Struct, frozen=True, kw_only=True):
    """Resolve a campaign's audience and send it. `attempt` distinguishes deliberate relaunches."""

    command_id: str
    brand_id: int
    campaign_id: int
    attempt: int
    issued_at: datetime


class Recipient(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    subscriber_id: int
    phone: str
    timezone: str | None
    # first_name, last_name, email and every custom attribute, for personalisation.
    fields: dict[str, Any]
    carrier: str | None = None  # when known (a lookup or a receipt told us)


class RecipientBatch(msgspec.Struct, frozen=True, kw_only=True):
    batch_id: str
    brand_id: int
    campaign_id: int
    recipients: list[Recipient]
    partition: int = 0  # every recipient's `partition_of` (see domain.ids)


class OutboundMessage(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """A rendered message ready to persist. `message_id` is derived, see `domain.ids`."""

    message_id: str
    subscriber_id: int | None
    to: str
    body: str
    segments: int
    timezone: str | None = None
    carrier: str | None = None
    subject: str | None = None  # email: the rendered subject
    unsubscribe_url: str | None = None  # email: the one-click unsubscribe link
    html: str | None = None  # email: the rendered HTML part (None: text only)
    # a best-time campaign's: the moment its subscriber is sent to (None: at once)
    not_before: datetime | None = None


class RenderFailure(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """A recipient whose message could not be rendered, and why."""

    message_id: str
    subscriber_id: int
    to: str
    error: str


class RenderedBatch(msgspec.Struct, frozen=True, kw_only=True):
    batch_id: str
    brand_id: int
    campaign_id: int | None  # None for transactional messages
    sender: str
    messages: list[OutboundMessage]
    failures: list[RenderFailure] = []
    kind: str = "marketing"  # or "transactional": replies that skip the marketing gate
    partition: int = 0  # every message's `partition_of` (see domain.ids)
    channel: str = "sms"  # or "email": `to` is then an address, `sender` the From
    # Messages stored already (the deferred sweeper's): the send stage reads their state
    # instead of persisting them first.
    stored: bool = False


class Receipt(msgspec.Struct, frozen=True, kw_only=True, gc=False, omit_defaults=True):
    """One status report from a provider about one message (several arrive per message).
    `message_id` is "" when the provider reports only its own id (SMPP): the aggregate stage
    finds the message by `provider_message_id`, or keeps the receipt until the send answer
    that names that id is recorded. Encoded without the fields it does not have (a report
    with no error code, most of them, has no `error_code` key), on the bus and in the
    receipt log: shorter to write, parse and compress."""

    message_id: str
    status: str
    occurred_at: datetime
    provider_message_id: str | None = None
    error_code: str | None = None
    carrier: str | None = None


class ReceiptBatch(msgspec.Struct, frozen=True, kw_only=True):
    batch_id: str
    provider: str
    receipts: list[Receipt]
    # Who found them: "webhook" (the provider's reports), or the send stage ("answer": a
    # send answer's `accepted`, folded but not an event), the early-receipt sweeper, the
    # reconciler.
    origin: str = "webhook"


class InboundMessage(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """A message a handset sent to one of our numbers."""

    provider_message_id: str
    from_: str = msgspec.field(name="from")
    to: str
    body: str
    received_at: datetime


class InboundBatch(msgspec.Struct, frozen=True, kw_only=True):
    batch_id: str
    provider: str
    messages: list[InboundMessage]


class StatusChange(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """A message's current status moved forward (the output of the aggregate fold)."""

    message_id: str
    brand_id: int
    campaign_id: int | None
    status: str
    carrier: str | None
    error_code: str | None
    to: str | None = None
    latency_s: float | None = None  # handed over → this status (for delivery monitoring)


class StatusCount(NamedTuple):
    """How many of a fold's status changes moved messages of one brand, campaign and carrier
    to one status, with the delivery latency summed over those that have one, and the
    lowest of their message ids (which names the fold's batch: a message reaches a final
    status once)."""

    brand_id: int
    campaign_id: int | None
    carrier: str | None
    status: str
    n: int
    latency_sum_s: float
    latency_n: int
    first_id: str


class Folded(NamedTuple):
    """What a fold changed: its changes counted (`counts`), and, one by one, those that
    carry an error code (`failures`: a failure may suppress its number; their codes are
    counted per carrier)."""

    counts: list[StatusCount]
    failures: list[StatusChange]


class StatusBatch(msgspec.Struct, frozen=True, kw_only=True):
    """What the carrier stage judges: the (brand, carrier) pairs whose outcomes a fold has just
    counted (`checks`, in the minute `minute`; the fold counted them in its own transaction).
    `changes`: the outcomes themselves, as batches published before the fold counted them
    carried them (still decoded and counted once, so an upgrade loses none on the bus)."""

    batch_id: str
    changes: list[StatusChange] = []
    checks: list[tuple[int, str]] = []
    minute: datetime | None = None
