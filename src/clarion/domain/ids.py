"""Deterministic ids: a message id is derived from what it is, so a replay cannot mint another."""

from __future__ import annotations

import functools
import hashlib
import uuid

_NAMESPACE = uuid.UUID("6f1c1a52-6d2f-4c39-9d56-2f1f3c0b9a11")
# Send work is routed by subscriber: subscriber id % PARTITIONS picks the bus partition, and
# each partition is handled one batch at a time, so no two workers ever hold the same
# subscriber. Fixed for an install (the audience index uses it, see migration 0004).
PARTITIONS = 8


def partition_of(subscriber_id: int | None, to: str) -> int:
    """The partition of a message: its subscriber's, or its address's for a number that is
    no subscriber yet."""
    if subscriber_id is not None:
        return subscriber_id % PARTITIONS
    return int.from_bytes(hashlib.blake2b(to.encode(), digest_size=4).digest()) % PARTITIONS


def campaign_message_id(campaign_uid: str, variant: str, subscriber_id: int) -> str:
    """The id of the one message a campaign variant sends to a subscriber.

    A UUIDv8 (RFC 9562's layout for ids of one's own design): 62 bits of a hash of the
    campaign's globally unique uid and the variant, then the subscriber id. Derived from what
    the message is, so a replay names the same message; and a campaign's ids are adjacent and
    ascend with the subscriber, so the messages and events indexes take each batch's inserts
    and lookups in a few neighbouring pages instead of one random page per message."""
    if not 0 <= subscriber_id < 1 << 62:
        raise ValueError(f"subscriber id out of range for a message id: {subscriber_id}")
    tail = f"{_SUBSCRIBER_TAG | subscriber_id:016x}"
    return f"{_campaign_prefix(campaign_uid, variant)}{tail[:4]}-{tail[4:]}"


# The variant bits (10) of RFC 9562, above the subscriber id in the id's last 64 bits.
_SUBSCRIBER_TAG = 0b10 << 62


@functools.lru_cache(maxsize=1024)
def _campaign_prefix(campaign_uid: str, variant: str) -> str:
    """The first 64 bits of a campaign variant's message ids, as the text of a UUID up to
    and including its fourth dash (version nibble 8)."""
    h = hashlib.blake2b(f"c:{campaign_uid}:{variant}".encode(), digest_size=8).hexdigest()
    return f"{h[:8]}-{h[8:12]}-8{h[13:16]}-"


def batch_id(*parts: object) -> str:
    """A short stable id for a batch made of `parts` (used as the bus de-duplication key)."""
    text = ":".join(str(p) for p in parts)
    return hashlib.blake2b(text.encode(), digest_size=12).hexdigest()


def reply_message_id(provider: str, inbound_id: str) -> str:
    """The id of the one reply Clarion sends to an inbound message."""
    return str(uuid.uuid5(_NAMESPACE, f"r:{provider}:{inbound_id}"))


def api_message_id(brand_id: int, idempotency_key: str) -> str:
    """The id of the one message an API call sends for a brand's idempotency key: the same
    key sent again names the same message, which is sent once."""
    return str(uuid.uuid5(_NAMESPACE, f"a:{brand_id}:{idempotency_key}"))
