"""The message state machine: statuses only move forward, terminal states win.

queued | deferred → sending → accepted → sent → delivered | undelivered | failed
queued | deferred → suppressed | expired   (the compliance gate's drops, or a cancel)
sending → unknown  (a crash during the provider call, with a provider that has no
                    idempotency key: never resent; the provider's receipts reconcile it)
A `sent` that arrives after `delivered` changes nothing; between two terminal states the first
to be recorded stands (a provider never revises a final status in practice, and replaying
receipts must not flip a record).
"""

from __future__ import annotations

from enum import StrEnum


class MessageStatus(StrEnum):
    QUEUED = "queued"
    DEFERRED = "deferred"  # held by the gate until `not_before` (quiet hours)
    SENDING = "sending"  # claimed by a send worker for a provider call
    UNKNOWN = "unknown"  # its provider call was cut short and cannot safely be repeated
    SUPPRESSED = "suppressed"  # dropped by the gate; the reason is in error_code
    ACCEPTED = "accepted"
    SENT = "sent"
    DELIVERED = "delivered"
    UNDELIVERED = "undelivered"
    FAILED = "failed"
    EXPIRED = "expired"


RANK: dict[str, int] = {
    MessageStatus.QUEUED: 0,
    MessageStatus.DEFERRED: 0,
    MessageStatus.SENDING: 0,
    MessageStatus.UNKNOWN: 0,
    MessageStatus.ACCEPTED: 1,
    MessageStatus.SENT: 2,
    MessageStatus.DELIVERED: 3,
    MessageStatus.UNDELIVERED: 3,
    MessageStatus.FAILED: 3,
    MessageStatus.EXPIRED: 3,
    MessageStatus.SUPPRESSED: 3,
}
TERMINAL_RANK = 3


def rank(status: str) -> int:
    """Rank of a status; an unknown status ranks below everything and never applies."""
    return RANK.get(status, -1)


def is_terminal(status: str) -> bool:
    return rank(status) >= TERMINAL_RANK


def advances(current: str, new: str) -> bool:
    """Whether `new` may replace `current` as a message's status."""
    return rank(new) > rank(current)
