"""Segment definitions: who a campaign goes to, as JSON a marketer's tools build. Parsed here
into a tree of conditions, each error naming the path of the bad part
(`definition.all[2].op`); `store.segments` compiles the tree to one parameterised query.

    {"all": [c, …]}, {"any": [c, …]}, {"not": c}
    {"attribute": NAME, "op": OP, "value": V}      OP: eq ne in not_in contains starts_with
    {"field": F, "op": OP, "value": V}                 gt gte lt lte exists not_exists
    {"consent": "sms" | "email"}                   opted in on that channel now
    {"subscribed_within_days": N}
    {"event": TYPE, "count": {"gte": N}, "within_days": N, "where": [{"property": P, "op": OP,
     "value": V}, …]}                              count: at least one unless given
    {"message": "sent" | "delivered", "campaign_id": ID, "within_days": N, "count": {…}}
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec

from clarion.domain.events import EVENT_TYPE
from clarion.domain.subscribers import ATTRIBUTE_NAME
from clarion.errors import InvalidInput

OPS = ("eq", "ne", "in", "not_in", "contains", "starts_with", "gt", "gte", "lt", "lte",
       "exists", "not_exists")  # fmt: skip
COUNT_OPS = ("gte", "gt", "eq", "lte", "lt")
FIELDS = ("phone", "email", "timezone", "state", "first_name", "last_name")
STATE_OPS = ("eq", "ne", "in", "not_in", "exists", "not_exists")
MESSAGE_KINDS = ("sent", "delivered")
MAX_DEPTH = 8
MAX_CONDITIONS = 200
MAX_LIST = 1000
MAX_TEXT = 1000
MAX_DAYS = 3650
ISO_DATE = re.compile(r"\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])")

Scalar = str | int | float | bool


@dataclass(frozen=True)
class Compare:
    """An attribute, a built-in field or an event's property compared with a value."""

    kind: str  # attribute, field or property
    name: str
    op: str
    value: Scalar | list[Scalar] | None


@dataclass(frozen=True)
class All:
    items: tuple[Condition, ...]


@dataclass(frozen=True)
class Any_:
    items: tuple[Condition, ...]


@dataclass(frozen=True)
class Not:
    item: Condition


@dataclass(frozen=True)
class ConsentNow:
    channel: str


@dataclass(frozen=True)
class SubscribedWithin:
    days: int


@dataclass(frozen=True)
class Count:
    op: str  # gte gt eq lte lt
    n: int


@dataclass(frozen=True)
class Did:
    """Did an event `type` (`count` times, within `days`, with properties matching)."""

    type: str
    count: Count
    days: int | None
    where: tuple[Compare, ...]


@dataclass(frozen=True)
class Messaged:
    kind: str  # sent or delivered
    campaign_id: int | None
    count: Count
    days: int | None


Condition = All | Any_ | Not | Compare | ConsentNow | SubscribedWithin | Did | Messaged


class SegmentRow(msgspec.Struct, frozen=True, kw_only=True):
    """A saved segment: its definition is counted live, never stored as a list."""

    id: int
    name: str
    definition: Any
    created_at: datetime
    updated_at: datetime


def _bad(path: str, message: str) -> InvalidInput:
    return InvalidInput(message, field=path)


def _int(raw: Any, path: str, lo: int, hi: int) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int) or not lo <= raw <= hi:
        raise _bad(path, f"a whole number from {lo} to {hi}")
    return raw


def _scalar(raw: Any, path: str) -> Scalar:
    if isinstance(raw, bool | int):
        if not isinstance(raw, bool) and abs(raw) >= 2**53:
            raise _bad(path, "a number below 2^53")
        return raw
    if isinstance(raw, float):
        if raw != raw or raw in (float("inf"), float("-inf")):
            raise _bad(path, "a finite number")
        return raw
    if isinstance(raw, str):
        if len(raw) > MAX_TEXT or "\x00" in raw:
            raise _bad(path, f"at most {MAX_TEXT} characters, no NUL")
        return raw
    raise _bad(path, "a string, a number or a boolean")


def _compare(raw: Mapping[str, Any], kind: str, path: str) -> Compare:
    allowed = {kind, "op", "value"}
    if unknown := sorted(str(k) for k in raw if k not in allowed):
        raise _bad(f"{path}.{unknown[0][:64]}", "unknown field")
    name = raw[kind]
    if kind == "field":
        if name not in FIELDS:
            raise _bad(f"{path}.field", f"one of {', '.join(FIELDS)}")
    elif not isinstance(name, str) or not ATTRIBUTE_NAME.fullmatch(name):
        raise _bad(f"{path}.{kind}", "a name: a letter or _, then letters, digits or _")
    op = raw.get("op")
    if op not in OPS:
        raise _bad(f"{path}.op", f"one of {', '.join(OPS)}")
    if kind == "field" and name == "state" and op not in STATE_OPS:
        raise _bad(f"{path}.op", f"for state one of {', '.join(STATE_OPS)}")
    value: Scalar | list[Scalar] | None
    if op in ("exists", "not_exists"):
        if "value" in raw:
            raise _bad(f"{path}.value", f"{op} takes no value")
        value = None
    elif op in ("in", "not_in"):
        items = raw.get("value")
        if not isinstance(items, list) or not 0 < len(items) <= MAX_LIST:
            raise _bad(f"{path}.value", f"a list of 1 to {MAX_LIST} values")
        value = [_scalar(v, f"{path}.value[{i}]") for i, v in enumerate(items)]
    else:
        if "value" not in raw:
            raise _bad(f"{path}.value", "required")
        value = _scalar(raw["value"], f"{path}.value")
        if op in ("contains", "starts_with") and not isinstance(value, str):
            raise _bad(f"{path}.value", f"{op} compares text: a string")
        if op in ("gt", "gte", "lt", "lte") and isinstance(value, bool):
            raise _bad(f"{path}.value", f"{op} compares numbers, dates or text, not booleans")
    if kind == "field" and value is not None:
        for v in value if isinstance(value, list) else [value]:
            if not isinstance(v, str):
                raise _bad(f"{path}.value", f"{name} is text: compare it with strings")
    return Compare(kind, name, op, value)


def _count(raw: Any, path: str) -> Count:
    if raw is None:
        return Count("gte", 1)
    if not isinstance(raw, Mapping) or len(raw) != 1:
        raise _bad(path, f'one of {", ".join(COUNT_OPS)} with a number, e.g. {{"gte": 2}}')
    ((op, n),) = raw.items()
    if op not in COUNT_OPS:
        raise _bad(f"{path}.{str(op)[:16]}", f"one of {', '.join(COUNT_OPS)}")
    return Count(op, _int(n, f"{path}.{op}", 0, 1_000_000))


def _days(raw: Mapping[str, Any], path: str) -> int | None:
    if raw.get("within_days") is None:
        return None
    return _int(raw["within_days"], f"{path}.within_days", 1, MAX_DAYS)


class _Parser:
    def __init__(self) -> None:
        self.conditions = 0

    def parse(self, raw: Any, path: str, depth: int) -> Condition:
        self.conditions += 1
        if self.conditions > MAX_CONDITIONS:
            raise _bad(path, f"a definition has at most {MAX_CONDITIONS} conditions")
        if depth > MAX_DEPTH:
            raise _bad(path, f"conditions nest at most {MAX_DEPTH} deep")
        if not isinstance(raw, Mapping) or not raw:
            raise _bad(path, "a condition is a JSON object")
        for key in ("all", "any"):
            if key in raw:
                if len(raw) != 1:
                    raise _bad(path, f"{key!r} stands alone in its object")
                items = raw[key]
                if not isinstance(items, list) or not 0 < len(items) <= MAX_CONDITIONS:
                    raise _bad(f"{path}.{key}", f"a list of 1 to {MAX_CONDITIONS} conditions")
                parsed = tuple(
                    self.parse(c, f"{path}.{key}[{i}]", depth + 1) for i, c in enumerate(items)
                )
                return All(parsed) if key == "all" else Any_(parsed)
        if "not" in raw:
            if len(raw) != 1:
                raise _bad(path, "'not' stands alone in its object")
            return Not(self.parse(raw["not"], f"{path}.not", depth + 1))
        if "attribute" in raw:
            return _compare(raw, "attribute", path)
        if "field" in raw:
            return _compare(raw, "field", path)
        if "consent" in raw:
            if len(raw) != 1 or raw["consent"] not in ("sms", "email"):
                raise _bad(f"{path}.consent", "sms or email, alone")
            return ConsentNow(raw["consent"])
        if "subscribed_within_days" in raw:
            if len(raw) != 1:
                raise _bad(path, "'subscribed_within_days' stands alone in its object")
            days = _int(
                raw["subscribed_within_days"], f"{path}.subscribed_within_days", 1, MAX_DAYS
            )
            return SubscribedWithin(days)
        if "event" in raw:
            return self._event(raw, path)
        if "message" in raw:
            return self._message(raw, path)
        raise _bad(
            path,
            "a condition: all, any, not, attribute, field, consent, subscribed_within_days,"
            " event or message",
        )

    def _event(self, raw: Mapping[str, Any], path: str) -> Did:
        if unknown := sorted(
            str(k) for k in raw if k not in {"event", "count", "within_days", "where"}
        ):
            raise _bad(f"{path}.{unknown[0][:64]}", "unknown field")
        kind = raw["event"]
        if not isinstance(kind, str) or not EVENT_TYPE.fullmatch(kind):
            raise _bad(f"{path}.event", "an event type: lower-case letters, digits, _ . : -")
        where = raw.get("where") or []
        if not isinstance(where, list) or len(where) > 20:
            raise _bad(f"{path}.where", "a list of at most 20 property conditions")
        props = []
        for i, c in enumerate(where):
            at = f"{path}.where[{i}]"
            if not isinstance(c, Mapping) or "property" not in c:
                raise _bad(at, '{"property": NAME, "op": OP, "value": V}')
            props.append(_compare(c, "property", at))
        self.conditions += len(props)
        return Did(kind, _count(raw.get("count"), f"{path}.count"), _days(raw, path), tuple(props))

    def _message(self, raw: Mapping[str, Any], path: str) -> Messaged:
        allowed = {"message", "campaign_id", "within_days", "count"}
        if unknown := sorted(str(k) for k in raw if k not in allowed):
            raise _bad(f"{path}.{unknown[0][:64]}", "unknown field")
        kind = raw["message"]
        if kind == "clicked":
            raise _bad(f"{path}.message", "clicks are not tracked yet: sent or delivered")
        if kind not in MESSAGE_KINDS:
            raise _bad(f"{path}.message", "sent or delivered")
        campaign = raw.get("campaign_id")
        campaign_id = (
            None if campaign is None else _int(campaign, f"{path}.campaign_id", 1, 2**63 - 1)
        )
        return Messaged(
            kind, campaign_id, _count(raw.get("count"), f"{path}.count"), _days(raw, path)
        )


def parse_definition(raw: Any, path: str = "definition") -> Condition:
    """The definition's tree, or `InvalidInput` whose field is the path of the bad part."""
    return _Parser().parse(raw, path, 1)
