"""Outbound webhooks, as Standard Webhooks (standardwebhooks.com) define them: each request
carries `webhook-id` (stable across retries of the same batch), `webhook-timestamp` and
`webhook-signature` ("v1," + base64 of HMAC-SHA256 over "id.timestamp.body", keyed by the
endpoint's secret `whsec_…` decoded). A request carries a batch of events, each with its
own stable id; a retry repeats the batch as it was.

Retries back off exponentially (5 s doubling, at most an hour apart, with jitter) for as
long as the endpoint is enabled; an endpoint failing for a day is disabled, and its pending
events wait for it to be enabled again."""

from __future__ import annotations

import base64
import hashlib
import hmac
import random
import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import msgspec

EVENT_TYPES = (
    "message.delivered", "message.failed", "message.clicked", "subscriber.opted_out",
    "subscriber.opted_in", "order.attributed",
)  # fmt: skip
# Read from the receipt log by each endpoint's cursor (the others come from the outbox).
RECEIPT_TYPES = {"delivered": "message.delivered", "undelivered": "message.failed",
                 "failed": "message.failed"}  # fmt: skip
FIRST_RETRY_S = 5.0
MAX_RETRY_S = 3600.0
DISABLE_AFTER = timedelta(days=1)
MAX_EVENTS_PER_REQUEST = 100


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def signed_headers(secret: str, msg_id: str, at: datetime, body: bytes) -> dict[str, str]:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    timestamp = str(int(at.timestamp()))
    mac = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": timestamp,
        "webhook-signature": "v1," + base64.b64encode(mac.digest()).decode(),
        "content-type": "application/json",
    }


class Event(msgspec.Struct, frozen=True):
    id: str  # evt_…: stable for the fact it tells
    type: str
    created_at: datetime
    payload: Any


def request_of(events: Sequence[Event]) -> tuple[str, bytes]:
    """(the webhook id, the body) of a batch: the id is derived from its events, so a retry
    of the same batch carries the same."""
    ids = ",".join(str(e.id) for e in events)
    msg_id = "msg_" + hashlib.blake2b(ids.encode(), digest_size=12).hexdigest()
    body = msgspec.json.encode({
        "type": "batch",
        "data": [
            {"id": e.id, "type": e.type, "timestamp": e.created_at, "data": e.payload}
            for e in events
        ],
    })  # fmt: skip
    return msg_id, body


def retry_after_s(attempts: int, rng: random.Random) -> float:
    """Seconds to the next try after `attempts` failed ones: 5, 10, 20 … up to an hour,
    each ±20 %."""
    base = min(FIRST_RETRY_S * 2 ** max(attempts - 1, 0), MAX_RETRY_S)
    return float(base * rng.uniform(0.8, 1.2))
