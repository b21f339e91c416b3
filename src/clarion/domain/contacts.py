"""Subscriber records as imported: normalised once, at import (E.164 phone, IANA time zone)."""

from __future__ import annotations

import functools
import re
import zoneinfo
from collections.abc import Mapping
from typing import Any

import msgspec
import phonenumbers
from phonenumbers import timezone as pn_timezone

from clarion.errors import InvalidInput, InvalidPhoneNumber

# The columns with a meaning of their own; any other column becomes an attribute.
STANDARD_COLUMNS = (
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
    # The number's type is worked out once (a dozen regexes, a third of the cost): it says
    # whether the number is valid (`is_valid_number` is "its type is known") and where to
    # look up its zones (what `time_zones_for_number` would work it out again for).
    kind = phonenumbers.number_type(parsed)
    if kind == phonenumbers.PhoneNumberType.UNKNOWN:
        raise InvalidPhoneNumber(raw, "not a valid number for its region")
    code = parsed.country_code  # always set by `parse`
    if code is not None and phonenumbers.is_number_type_geographical(kind, code):
        found = pn_timezone.time_zones_for_geographical_number(parsed)
    else:
        found = pn_timezone.time_zones_for_number(parsed)
    zones = [z for z in found if z != _UNKNOWN_ZONE]
    e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    return e164, zones[0] if len(zones) == 1 else None


@functools.cache
def _zone_names() -> dict[str, str]:
    """IANA zone names this host knows, by their lower-case spelling (read once: ~50 ms)."""
    return {name.lower(): name for name in zoneinfo.available_timezones()}


def known_zone(raw: str, *, row_number: int | None = None) -> str:
    """The IANA name of time zone `raw` (any case), or `InvalidInput` naming the field: a
    zone the sending window cannot be computed in must not be stored."""
    name = _zone_names().get(raw.lower())
    if name is None:
        raise InvalidInput(
            f"unknown time zone {raw[:60]!r} (an IANA name such as 'America/Chicago')",
            field="timezone",
            row=row_number,
        )
    return name


def _truthy(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in {"1", "true", "yes", "y", "opted_in"}


_INTEGER = re.compile(r"-?(?:0|[1-9][0-9]{0,14})")  # no leading zero: "02139" is a ZIP code
_DECIMAL = re.compile(r"-?(?:0|[1-9][0-9]{0,14})\.[0-9]{1,10}")
_BOOLEANS = {"true": True, "false": False}


def typed(value: str) -> str | int | float | bool:
    """A CSV value as the JSON type it spells: a whole number (without a leading zero, which
    a ZIP code or an id has), a decimal, `true` or `false` (any case); anything else — an ISO
    date included, which segments compare as a date — stays text."""
    if _INTEGER.fullmatch(value):
        return int(value)
    if _DECIMAL.fullmatch(value):
        return float(value)
    return _BOOLEANS.get(value.lower(), value) if len(value) in (4, 5) else value


def new_subscriber(row: Mapping[str, Any], *, row_number: int | None = None) -> NewSubscriber:
    """Validate and normalise one import row; extra columns become attributes. A
    `timezone` must be an IANA zone name; without one, the phone number's zone is used."""
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
    raw_zone = (row.get("timezone") or "").strip()
    if raw_zone:
        zone = known_zone(raw_zone, row_number=row_number)
    return NewSubscriber(
        phone=phone,
        email=email,
        timezone=zone,
        first_name=(row.get("first_name") or None),
        last_name=(row.get("last_name") or None),
        attributes={
            k: typed(v) if isinstance(v, str) else v
            for k, v in row.items()
            if k not in STANDARD_COLUMNS and v not in (None, "")
        },
        sms_consent=_truthy(row.get("sms_consent", False)),
        email_consent=email is not None and _truthy(row.get("email_consent", False)),
    )
