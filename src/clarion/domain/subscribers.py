"""A subscriber as the API takes it: normalised once (E.164 phone, lower-case email, IANA
zone), attributes kept in their JSON types, consent with its evidence. Validation names the
field that was wrong (`attributes.vip`, `consent.sms.source`), so one bad subscriber of a
batch is reported by its index while the others go in."""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import msgspec

from clarion.domain.contacts import known_zone, normalize_phone
from clarion.errors import InvalidInput, InvalidPhoneNumber

CHANNELS = ("sms", "email")
MAX_ATTRIBUTES = 100
MAX_NAME_CHARS = 100
MAX_VALUE_CHARS = 1000
MAX_SOURCE_CHARS = 200
MAX_DISCLOSURE_CHARS = 2000
MAX_EMAIL_CHARS = 254  # RFC 5321's longest path
# An attribute's name: what a segment or a template names it by.
ATTRIBUTE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")  # Postgres stores no NUL

# A JSON value an attribute may hold: string, number, boolean (null removes it).
AttributeValue = str | int | float | bool


class Consent(msgspec.Struct, frozen=True, kw_only=True):
    """Consent on one channel, with its evidence: where it was given (`source`: a form, a
    keyword, a point of sale) and the words the person agreed to (`disclosure`)."""

    status: str = "opted_in"  # or opted_out
    source: str
    disclosure: str | None = None


class SubscriberIn(msgspec.Struct, frozen=True, kw_only=True):
    """A new subscriber, valid and normalised."""

    phone: str | None
    email: str | None
    timezone: str | None
    first_name: str | None
    last_name: str | None
    attributes: dict[str, AttributeValue]
    consent: dict[str, Consent]  # by channel


class SubscriberPatch(msgspec.Struct, frozen=True, kw_only=True):
    """Changes to a subscriber: `set` holds the fields given (a None clears it), `attributes`
    the attributes to set, `removed` those to remove, `consent` what to append to the
    ledger."""

    set: dict[str, str | None]
    attributes: dict[str, AttributeValue]
    removed: list[str]
    consent: dict[str, Consent]


class Subscriber(msgspec.Struct, frozen=True, kw_only=True):
    """A subscriber as the API shows it; `consent` is the current status per channel (None:
    never asked)."""

    id: int
    phone: str | None
    email: str | None
    timezone: str | None
    first_name: str | None
    last_name: str | None
    attributes: dict[str, Any]
    consent: dict[str, str | None]
    created_at: datetime
    updated_at: datetime


def _text(value: Any, field: str, limit: int) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidInput("must be a string", field=field)
    value = value.strip()
    if len(value) > limit:
        raise InvalidInput(f"at most {limit} characters", field=field)
    if _UNSTORABLE.search(value):
        raise InvalidInput("contains a NUL or an unpaired surrogate", field=field)
    return value or None


def phone_of(value: Any, field: str = "phone") -> str | None:
    """A phone number in any format as E.164 (US numbers without +1 included)."""
    raw = _text(value, field, 64)
    if raw is None:
        return None
    try:
        return normalize_phone(raw)[0]
    except InvalidPhoneNumber as exc:
        raise InvalidInput(exc.reason.split(": ", 1)[-1] + f" ({raw!r})", field=field) from None


def email_of(value: Any, field: str = "email") -> str | None:
    raw = _text(value, field, MAX_EMAIL_CHARS)
    if raw is None:
        return None
    if not _EMAIL.fullmatch(raw):
        raise InvalidInput(f"not an email address: {raw!r}", field=field)
    return raw.lower()


def _zone(value: Any) -> str | None:
    raw = _text(value, "timezone", 64)
    return None if raw is None else known_zone(raw)


def _attribute(name: Any, value: Any) -> AttributeValue | None:
    if not isinstance(name, str) or not ATTRIBUTE_NAME.fullmatch(name):
        raise InvalidInput(
            "an attribute's name is a letter or _, then letters, digits or _ (64 at most)",
            field=f"attributes.{str(name)[:64]}",
        )
    field = f"attributes.{name}"
    if value is None or isinstance(value, bool | int):
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 2**53:
            raise InvalidInput("a whole number of at most 2^53", field=field)
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidInput("a finite number", field=field)
        return value
    if isinstance(value, str):
        return _text(value, field, MAX_VALUE_CHARS) or ""
    raise InvalidInput("a string, a number or a boolean (null removes it)", field=field)


def _attributes(raw: Any) -> tuple[dict[str, AttributeValue], list[str]]:
    """(attributes to set, names to remove: those given as null)."""
    if raw is None:
        return {}, []
    if not isinstance(raw, Mapping):
        raise InvalidInput("an object of names and values", field="attributes")
    if len(raw) > MAX_ATTRIBUTES:
        raise InvalidInput(f"at most {MAX_ATTRIBUTES} attributes", field="attributes")
    kept: dict[str, AttributeValue] = {}
    removed: list[str] = []
    for name, value in raw.items():
        checked = _attribute(name, value)
        if checked is None:
            removed.append(name)
        else:
            kept[name] = checked
    return kept, removed


def _consent(raw: Any) -> dict[str, Consent]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise InvalidInput("an object by channel (sms, email)", field="consent")
    out = {}
    for channel, given in raw.items():
        field = f"consent.{channel}"
        if channel not in CHANNELS:
            raise InvalidInput("unknown channel (sms or email)", field=field)
        if given is None:
            continue
        if not isinstance(given, Mapping):
            raise InvalidInput("an object: source, disclosure, status", field=field)
        if unknown := set(given) - {"source", "disclosure", "status"}:
            raise InvalidInput("unknown field", field=f"{field}.{sorted(unknown)[0]}")
        status = given.get("status", "opted_in")
        if status not in ("opted_in", "opted_out"):
            raise InvalidInput("opted_in or opted_out", field=f"{field}.status")
        source = _text(given.get("source"), f"{field}.source", MAX_SOURCE_CHARS)
        if source is None:
            raise InvalidInput(
                "where consent was given (a form, a keyword, a point of sale) is required",
                field=f"{field}.source",
            )
        disclosure = _text(given.get("disclosure"), f"{field}.disclosure", MAX_DISCLOSURE_CHARS)
        out[channel] = Consent(status=status, source=source, disclosure=disclosure)
    return out


_FIELDS = ("phone", "email", "timezone", "first_name", "last_name", "attributes", "consent")


def _known_fields(raw: Mapping[str, Any]) -> None:
    if unknown := [k for k in raw if k not in _FIELDS]:
        name = str(unknown[0])[:64]
        raise InvalidInput(f"unknown field {name!r}", field=name or "body")


def subscriber_in(raw: Any) -> SubscriberIn:
    """A new subscriber from the API's JSON, or `InvalidInput` naming the field."""
    if not isinstance(raw, Mapping):
        raise InvalidInput("a subscriber is a JSON object", field="body")
    _known_fields(raw)
    phone, email = phone_of(raw.get("phone")), email_of(raw.get("email"))
    if phone is None and email is None:
        raise InvalidInput("a subscriber needs a phone or an email", field="phone")
    attributes, _ = _attributes(raw.get("attributes"))
    consent = _consent(raw.get("consent"))
    _consent_reachable(consent, phone, email)
    zone = _zone(raw.get("timezone"))
    if zone is None and phone is not None:
        zone = normalize_phone(phone)[1]
    return SubscriberIn(
        phone=phone, email=email, timezone=zone,
        first_name=_text(raw.get("first_name"), "first_name", MAX_NAME_CHARS),
        last_name=_text(raw.get("last_name"), "last_name", MAX_NAME_CHARS),
        attributes=attributes, consent=consent,
    )  # fmt: skip


def _consent_reachable(
    consent: Mapping[str, Consent], phone: str | None, email: str | None
) -> None:
    if "sms" in consent and phone is None:
        raise InvalidInput("SMS consent needs a phone number", field="consent.sms")
    if "email" in consent and email is None:
        raise InvalidInput("email consent needs an email address", field="consent.email")


def subscriber_patch(raw: Any) -> SubscriberPatch:
    """Changes from the API's JSON (only the fields given change; an attribute given as null
    is removed), or `InvalidInput` naming the field."""
    if not isinstance(raw, Mapping):
        raise InvalidInput("a subscriber's changes are a JSON object", field="body")
    _known_fields(raw)
    fields: dict[str, str | None] = {}
    if "phone" in raw:
        fields["phone"] = phone_of(raw["phone"])
    if "email" in raw:
        fields["email"] = email_of(raw["email"])
    if "timezone" in raw:
        fields["timezone"] = _zone(raw["timezone"])
    for name in ("first_name", "last_name"):
        if name in raw:
            fields[name] = _text(raw[name], name, MAX_NAME_CHARS)
    attributes, removed = _attributes(raw.get("attributes"))
    return SubscriberPatch(
        set=fields, attributes=attributes, removed=removed, consent=_consent(raw.get("consent"))
    )


# --- sign-up forms (double opt-in) ---------------------------------------------------------

MAX_PAGE_CHARS = 2000
MAX_USER_AGENT_CHARS = 1000
_PAGE = re.compile(r"https?://\S+", re.IGNORECASE)
_SIGNUP_FIELDS = frozenset(
    {"phone", "email", "page", "disclosure", "ip", "user_agent", "first_name", "last_name",
     "attributes"}
)  # fmt: skip


class SignupIn(msgspec.Struct, frozen=True, kw_only=True):
    """A sign-up form's submission and its evidence: the page it was on, the words the
    visitor agreed to, their IP address and user agent. A phone, an email or both: each is
    confirmed on its own channel (a text answered Y, a link followed)."""

    phone: str | None
    email: str | None
    page: str
    disclosure: str
    ip: str
    user_agent: str | None
    first_name: str | None
    last_name: str | None
    attributes: dict[str, AttributeValue]

    def evidence(self) -> dict[str, str | None]:
        return {"page": self.page, "ip": self.ip, "user_agent": self.user_agent}


def signup_in(raw: Any) -> SignupIn:
    """A sign-up from the API's JSON, or `InvalidInput` naming the field."""
    if not isinstance(raw, Mapping):
        raise InvalidInput("a sign-up is a JSON object", field="body")
    if unknown := sorted(str(k) for k in raw if k not in _SIGNUP_FIELDS):
        raise InvalidInput(f"unknown field {unknown[0][:64]!r}", field=unknown[0][:64] or "body")
    phone, email = phone_of(raw.get("phone")), email_of(raw.get("email"))
    if phone is None and email is None:
        raise InvalidInput(
            "a phone number to text the confirmation to, or an email address to send it to",
            field="phone",
        )
    page = _text(raw.get("page"), "page", MAX_PAGE_CHARS)
    if page is None or not _PAGE.fullmatch(page):
        raise InvalidInput("the http(s) address of the page the form was on", field="page")
    disclosure = _text(raw.get("disclosure"), "disclosure", MAX_DISCLOSURE_CHARS)
    if disclosure is None:
        raise InvalidInput("the consent text the visitor was shown is required", field="disclosure")
    ip = _text(raw.get("ip"), "ip", 64)
    try:
        ip = str(ipaddress.ip_address(ip or ""))
    except ValueError:
        raise InvalidInput("the visitor's IP address (IPv4 or IPv6)", field="ip") from None
    attributes, _ = _attributes(raw.get("attributes"))
    return SignupIn(
        phone=phone, email=email, page=page, disclosure=disclosure, ip=ip,
        user_agent=_text(raw.get("user_agent"), "user_agent", MAX_USER_AGENT_CHARS),
        first_name=_text(raw.get("first_name"), "first_name", MAX_NAME_CHARS),
        last_name=_text(raw.get("last_name"), "last_name", MAX_NAME_CHARS),
        attributes=attributes,
    )  # fmt: skip
