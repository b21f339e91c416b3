"""Events a brand's systems send: what a subscriber did (viewed a product, added it to a
cart, started a checkout, ordered; or a type of the brand's own), when, and for how much.
Each event of a request is checked on its own, so a bad one is reported by its index and
the others are stored."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from clarion.errors import InvalidInput

STANDARD_TYPES = ("viewed_product", "added_to_cart", "started_checkout", "ordered")
MAX_BATCH = 1000
MAX_ID_CHARS = 200
MAX_ITEMS = 100
MAX_PROPERTIES = 50
MAX_PROPERTIES_BYTES = 8 * 1024
MAX_VALUE = 10**10
# How far an event's time may lie ahead of the clock (the shop's clock may be a little
# ahead), and how far back (a backfill of order history).
FUTURE_SLACK = timedelta(days=1)
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
EVENT_TYPE = re.compile(r"[a-z][a-z0-9_.:-]{0,63}")
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_encode = msgspec.json.Encoder().encode


class Item(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    product_id: str
    quantity: int = 1
    price: float | None = None


class SubscriberRef(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Who did it: the subscriber's id, phone (any format) or email — one of them."""

    id: int | None = None
    phone: str | None = None
    email: str | None = None


class EventIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    id: str  # the client's: a retry with the same id is stored once
    type: str
    occurred_at: datetime
    subscriber: SubscriberRef
    properties: dict[str, Any] | None = None
    value: float | None = None  # an order's revenue
    items: list[Item] | None = None


class EventBatch(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    events: list[EventIn]


class Event(msgspec.Struct, frozen=True, kw_only=True):
    """An event checked and tied to a subscriber, ready to store."""

    index: int  # in its request
    client_id: str
    subscriber_id: int
    type: str
    occurred_at: datetime
    value: float | None
    properties: dict[str, Any] | None
    items: list[Item] | None


_UNKNOWN_FIELD = re.compile(r"Object contains unknown field `(.*)`")


def explain(error: msgspec.ValidationError) -> tuple[str, str]:
    """(what was wrong, the field it is about) of a msgspec error: "Expected `int`, got `str`
    - at `$.items[0].quantity`" is about `items[0].quantity`; an unknown field is about
    itself."""
    text = str(error)
    reason, _, where = text.rpartition(" - at `")
    if not _:
        reason, where = text, ""
    path = where.rstrip("`").removeprefix("$").removeprefix(".")
    if unknown := _UNKNOWN_FIELD.fullmatch(reason):
        name = f"{path}.{unknown[1]}" if path else unknown[1]
        return f"unknown field {unknown[1]!r}", name or "body"
    return reason, path or "body"


def _bad(message: str, field: str) -> InvalidInput:
    return InvalidInput(message, field=field)


def event_in(raw: Any, *, now: datetime) -> EventIn:
    """One event from the request's JSON, or `InvalidInput` naming the field."""
    try:
        e = msgspec.convert(raw, EventIn)
    except msgspec.ValidationError as exc:
        raise _bad(*explain(exc)) from None
    if not 0 < len(e.id) <= MAX_ID_CHARS or _UNSTORABLE.search(e.id):
        raise _bad(f"1 to {MAX_ID_CHARS} characters, no NUL", "id")
    if not EVENT_TYPE.fullmatch(e.type):
        raise _bad(
            "a lower-case name: a letter, then letters, digits, _ . : - (64 at most)", "type"
        )
    if e.occurred_at.tzinfo is None:
        raise _bad("a time with its offset (RFC 3339, e.g. 2026-12-06T18:00:00Z)", "occurred_at")
    if not EARLIEST <= e.occurred_at <= now + FUTURE_SLACK:
        raise _bad("between 2000 and a day from now", "occurred_at")
    refs = [x for x in (e.subscriber.id, e.subscriber.phone, e.subscriber.email) if x is not None]
    if len(refs) != 1:
        raise _bad("exactly one of id, phone, email", "subscriber")
    if e.value is not None and not (math.isfinite(e.value) and abs(e.value) < MAX_VALUE):
        raise _bad(f"a finite number below {MAX_VALUE}", "value")
    if e.properties is not None:
        if len(e.properties) > MAX_PROPERTIES:
            raise _bad(f"at most {MAX_PROPERTIES} properties", "properties")
        try:
            encoded = _encode(e.properties)
        except (TypeError, ValueError, OverflowError):
            raise _bad("JSON values only", "properties") from None
        if len(encoded) > MAX_PROPERTIES_BYTES or b"\\u0000" in encoded:
            raise _bad(f"at most {MAX_PROPERTIES_BYTES} bytes of JSON, no NUL", "properties")
    if e.items is not None:
        if len(e.items) > MAX_ITEMS:
            raise _bad(f"at most {MAX_ITEMS} items", "items")
        for i, item in enumerate(e.items):
            if not 0 < len(item.product_id) <= MAX_ID_CHARS or _UNSTORABLE.search(item.product_id):
                raise _bad(f"1 to {MAX_ID_CHARS} characters", f"items[{i}].product_id")
            if not 0 < item.quantity <= 1_000_000:
                raise _bad("1 to 1000000", f"items[{i}].quantity")
            if item.price is not None and not (
                math.isfinite(item.price) and 0 <= item.price < MAX_VALUE
            ):
                raise _bad(f"at least 0 and below {MAX_VALUE}", f"items[{i}].price")
    return e


def _inline(schema: Any, defs: dict[str, Any]) -> Any:
    if isinstance(schema, dict):
        ref = schema.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            return _inline(defs[ref.removeprefix("#/$defs/")], defs)
        return {k: _inline(v, defs) for k, v in schema.items() if k != "$defs"}
    if isinstance(schema, list):
        return [_inline(v, defs) for v in schema]
    return schema


def batch_schema() -> dict[str, Any]:
    """The request's JSON Schema, every reference inlined (for the OpenAPI document)."""
    schema = msgspec.json.schema(EventBatch)
    inlined: dict[str, Any] = _inline(schema, schema.get("$defs", {}))
    inlined["properties"]["events"]["maxItems"] = MAX_BATCH
    inlined["properties"]["events"]["minItems"] = 1
    return inlined
