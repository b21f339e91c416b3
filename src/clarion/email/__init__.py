"""Email: messages with one-click unsubscribe and DKIM, unsubscribe tokens and their
endpoint, and the bounce/complaint vocabulary of providers. Adapters live in
`clarion.providers.smtp` and `clarion.providers.sendgrid`."""

from clarion.email.message import (
    BounceKind,
    DkimKey,
    EmailProvider,
    OutboundEmail,
    build_email,
    classify_smtp_reply,
    dkim_txt_record,
    generate_dkim_key,
    receipt_from_sendgrid_event,
    sign_dkim,
)
from clarion.email.unsubscribe import make_token, read_token

__all__ = [
    "BounceKind",
    "DkimKey",
    "EmailProvider",
    "OutboundEmail",
    "build_email",
    "classify_smtp_reply",
    "dkim_txt_record",
    "generate_dkim_key",
    "make_token",
    "read_token",
    "receipt_from_sendgrid_event",
    "sign_dkim",
]
