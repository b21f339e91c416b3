"""The simulator's HTTP wire format, shared by the simulator and Clarion's `sim` adapter."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime

import msgspec

# Webhooks are signed as Standard Webhooks (standardwebhooks.com) sign them: HMAC-SHA256 of
# "id.timestamp.body", so a captured request cannot be replayed once its timestamp is old.
# The key is the shared secret's UTF-8 bytes.
ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"


class SimMessage(msgspec.Struct, frozen=True):
    id: str
    to: str
    sender: str
    body: str


class SendRequest(msgspec.Struct, frozen=True):
    callback_url: str
    messages: list[SimMessage]
    # Where replies to the senders in this request go (a number's inbound webhook).
    inbound_url: str | None = None


# Results and receipts hold only strings and times, so they can be in no reference cycle:
# the garbage collector need not track them (the simulator keeps one of each per message).
class SimResult(msgspec.Struct, frozen=True, gc=False):
    id: str
    status: str  # "accepted" | "rejected"
    provider_id: str | None = None
    error_code: str | None = None
    error_message: str | None = None


class SendResponse(msgspec.Struct, frozen=True):
    results: list[SimResult]


class SimReceipt(msgspec.Struct, frozen=True, gc=False):
    """One status report. On the wire its fields are named as Clarion's `Receipt`'s, and
    its statuses (`sent`, `delivered`, `undelivered`) are Clarion's, so the adapter reads a
    webhook straight into receipts."""

    message_id: str
    provider_id: str = msgspec.field(name="provider_message_id")
    status: str
    occurred_at: datetime
    error_code: str | None = None
    carrier: str | None = None


class ReceiptPost(msgspec.Struct, frozen=True):
    batch_id: str
    receipts: list[SimReceipt]


class SimInbound(msgspec.Struct, frozen=True):
    id: str
    from_: str = msgspec.field(name="from")
    to: str = ""
    body: str = ""
    received_at: datetime | None = None


class InboundPost(msgspec.Struct, frozen=True):
    batch_id: str
    messages: list[SimInbound]


class ReplyRequest(msgspec.Struct, frozen=True):
    """A handset texting one of the network's numbers (`POST /handsets/{e164}/reply`)."""

    to: str
    body: str


def signed_headers(secret: str, msg_id: str, body: bytes, at_s: float) -> dict[str, str]:
    """The headers that sign a webhook `body` sent at `at_s` (Unix seconds) as `msg_id`."""
    timestamp = str(int(at_s))
    mac = hmac.new(secret.encode(), f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256)
    return {
        ID_HEADER: msg_id,
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: "v1," + base64.b64encode(mac.digest()).decode(),
    }
