"""Subscriber records as imported: normalised once, at import (E.164 phone, IANA time zone)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec
import phonenumbers
from phonenumbers import timezone as pn_timezone

from clarion.errors import InvalidInput, InvalidPhoneNumber

_STANDARD = (
    "phone", "email", "first_name", "last_name", "timezone", "sms_consent", "email_consent",
)  # fmt: skip
_UNKNOWN_ZONE = "Etc/Unknown"


class NewSubscriber(msgspec.Struct, frozen=True, kw_only=True):
    phone: str | None
    email: str | None
    timezone: str | None
    first_name: str | None
    last_name: str | None
    attributes: dict[str, Any]
    sms_consent: bool
    email_consent: bool = False


def normalize_phone(raw: str, *, default_region: str = "US") -> tuple[str, str | None]:
    """(E.164, the number's time zone when it has exactly one) or `InvalidPhoneNumber`.

    A number spanning several zones gets no stored zone, so the sending window is checked
    in every one of them."""
    try:
        parsed = phonenumbers.parse(raw, default_region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhoneNumber(raw, str(exc.args[0]) if exc.args else "unparseable") from exc
    if not phonenumbers.is_valid_number(parsed):
        raise InvalidPhoneNumber(raw, "not a valid number for its region")
    zones = [z for z in pn_timezone.time_zones_for_number(parsed) if z != _UNKNOWN_ZONE]
    e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    return e164, zones[0] if len(zones) == 1 else None


def _truthy(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in {"1", "true", "yes", "y", "opted_in"}


def new_subscriber(row: Mapping[str, Any], *, row_number: int | None = None) -> NewSubscriber:
    """Validate and normalise one import row; extra columns become attributes."""
    raw_phone = (row.get("phone") or "").strip() or None
    email = (row.get("email") or "").strip().lower() or None
    if raw_phone is None and email is None:
        raise InvalidInput("a subscriber needs a phone or an email", field="phone", row=row_number)
    phone, zone = (None, None)
    if raw_phone is not None:
        try:
            phone, zone = normalize_phone(raw_phone)
        except InvalidPhoneNumber as exc:
            raise InvalidPhoneNumber(
                raw_phone, exc.reason.split(": ", 1)[-1], row=row_number
            ) from None
    if email is not None and "@" not in email:
        raise InvalidInput(f"invalid email {email!r}", field="email", row=row_number)
    return NewSubscriber(
        phone=phone,
        email=email,
        timezone=(row.get("timezone") or None) or zone,
        first_name=(row.get("first_name") or None),
        last_name=(row.get("last_name") or None),
        attributes={k: v for k, v in row.items() if k not in _STANDARD and v not in (None, "")},
        sms_consent=_truthy(row.get("sms_consent", False)),
        email_consent=email is not None and _truthy(row.get("email_consent", False)),
    )
