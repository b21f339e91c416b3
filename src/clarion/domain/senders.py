"""Senders: the numbers a brand sends SMS from — a phone number (long code, toll-free), kept
as E.164, or a short code of 5 or 6 digits."""

from __future__ import annotations

import re

from clarion.domain.contacts import normalize_phone
from clarion.errors import InvalidInput, InvalidPhoneNumber

_SHORT_CODE = re.compile(r"[1-9]\d{4,5}")


def normalize_sender(raw: str) -> str:
    """The sender as stored: a short code as it is, a phone number as E.164. Raises
    `InvalidInput` (field "sender") for anything else."""
    text = raw.strip()
    if _SHORT_CODE.fullmatch(text):
        return text
    try:
        return normalize_phone(text)[0]
    except InvalidPhoneNumber as exc:
        raise InvalidInput(
            f"{raw[:40]!r} is neither a phone number nor a short code"
            f" ({exc.reason.rsplit(': ', 1)[-1]})",
            field="sender",
        ) from None
