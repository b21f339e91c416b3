"""Compliance rules as pure functions (no I/O). See docs/ and COMPLIANCE.md."""

from clarion.compliance.encoding import SmsSegments, sms_segments

__all__ = ["SmsSegments", "sms_segments"]
