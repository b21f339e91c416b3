"""Records of one message on its way out, shared by the send stage, the store and every
provider adapter: the row as stored, a provider's answer, a status change to write, and a
message still waiting to go."""

from __future__ import annotations

from datetime import datetime

import msgspec


class MessageRow(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """A `messages` row as the worker COPYs it (column order matches `MESSAGE_COLUMNS`)."""

    id: str
    brand_id: int
    campaign_id: int | None
    subscriber_id: int | None
    to_address: str
    sender: str
    body: str | None
    segments: int
    status: str
    status_rank: int
    error_code: str | None
    error_detail: str | None
    kind: str
    expires_at: datetime | None
    channel: str
    provider: str | None = None  # the account a `sending` row is claimed for
    not_before: datetime | None = None  # when a `deferred` row is looked at again
    sent_at: datetime | None = None  # when a `sending` row was claimed (it counts for caps)


MESSAGE_COLUMNS = tuple(MessageRow.__struct_fields__)


class SendResult(msgspec.Struct, frozen=True, kw_only=True):
    """A provider's synchronous answer about one message. `accepted=False` is a permanent
    rejection (it fails, with the error), unless `retry` says the message was not handed
    over for a passing reason (a 5xx, a timeout, a throttle): then it waits and goes again."""

    message_id: str
    accepted: bool
    provider_message_id: str | None = None
    error_code: str | None = None
    error_detail: str | None = None
    retry: bool = False
    throttled: bool = False  # the provider said slow down (HTTP 429, SMPP 0x58)
    retry_after_s: float | None = None


# `SendResult.error_code` of a request sent but never answered (a timeout, a dropped
# connection): the provider may have taken it.
NO_ANSWER = "no_answer"


class StatusUpdate(msgspec.Struct, frozen=True, kw_only=True):
    message_id: str
    status: str
    status_rank: int
    provider_message_id: str | None
    error_code: str | None
    error_detail: str | None


class DueMessage(msgspec.Struct, frozen=True):
    """A deferred message whose moment has come, with what a send batch needs to carry it
    (`store.compliance.due_deferred`; fields in the query's column order)."""

    message_id: str
    brand_id: int
    campaign_id: int | None  # None: transactional
    subscriber_id: int | None
    to: str
    sender: str
    body: str
    segments: int
    kind: str  # marketing or transactional
    not_before: datetime
    timezone: str | None
    carrier: str | None


class Waiting(msgspec.Struct, frozen=True, array_like=True):
    """A marketing message still waiting to go: (id, subscriber, created_at, not_before)."""

    message_id: str
    subscriber_id: int
    created_at: datetime
    not_before: datetime | None
