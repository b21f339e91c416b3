"""Compliance rules as pure functions (no I/O). See docs/compliance.md and COMPLIANCE.md."""

from clarion.compliance.encoding import SmsSegments, sms_segments
from clarion.compliance.keywords import InboundIntent, classify_inbound
from clarion.compliance.windows import SendingWindow, sending_window

__all__ = [
    "InboundIntent",
    "SendingWindow",
    "SmsSegments",
    "classify_inbound",
    "sending_window",
    "sms_segments",
]
