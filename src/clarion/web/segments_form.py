"""The segment builder's form: rows of (kind, name, operator, value, within days) joined by
all or any, read into the definition JSON the API takes (`domain.segments`), and a
definition back into rows when it is that simple; any other is edited as JSON. An error of
the definition names its path (`definition.all[2].op`): it is shown next to its row."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from clarion.domain.contacts import typed
from clarion.domain.segments import COUNT_OPS, FIELDS, OPS
from clarion.errors import InvalidInput

MAX_ROWS = 20  # the builder's rows (a definition as JSON may have more: up to 200)
MAX_JSON_CHARS = 16_000
KINDS = (
    ("attribute", "Attribute"),
    ("field", "Field"),
    ("consent", "Consent now"),
    ("event", "Did an event"),
    ("message", "Was messaged"),
    ("subscribed", "Subscribed within days"),
)
OP_LABELS = {
    "eq": "is", "ne": "is not", "in": "is one of", "not_in": "is none of",
    "contains": "contains", "starts_with": "starts with", "gt": "more than",
    "gte": "at least", "lt": "less than", "lte": "at most", "exists": "is set",
    "not_exists": "is not set",
}  # fmt: skip
_NO_VALUE = ("exists", "not_exists")


@dataclass
class Row:
    kind: str = "attribute"
    name: str = ""
    op: str = "eq"
    value: str = ""
    days: str = ""


@dataclass
class SegmentForm:
    name: str = ""
    match: str = "all"  # all or any of the rows
    rows: list[Row] = field(default_factory=lambda: [Row()])
    editor: str = "rows"  # or "json"
    json_text: str = ""

    @classmethod
    def posted(cls, form: Mapping[str, str]) -> SegmentForm:
        raw = form.get("rows", "1")
        count = int(raw) if raw.isascii() and raw.isdigit() and int(raw) <= MAX_ROWS else 1
        rows = [
            Row(**{k: form.get(f"c{i}_{k}", "")[:1000] for k in ("kind", "name", "op", "value",
                                                               "days")})
            for i in range(count)
        ]  # fmt: skip
        return cls(
            name=form.get("name", ""), match="any" if form.get("match") == "any" else "all",
            rows=rows, editor="json" if form.get("editor") == "json" else "rows",
            json_text=form.get("definition_json", "")[: MAX_JSON_CHARS + 1],
        )  # fmt: skip

    @classmethod
    def of(cls, name: str, definition: Any) -> SegmentForm:
        shown = rows_of(definition)
        if shown is None:
            return cls(name=name, editor="json", json_text=json.dumps(definition, indent=2))
        match, rows = shown
        return cls(name=name, match=match, rows=rows)

    def definition(self) -> Any:
        """The definition JSON (None: no condition yet); `InvalidInput` naming the form's
        field for what cannot be read."""
        if self.editor == "json":
            if len(self.json_text) > MAX_JSON_CHARS:
                raise InvalidInput(f"at most {MAX_JSON_CHARS:,} characters", field="definition")
            if not self.json_text.strip():
                return None
            try:
                return json.loads(self.json_text)
            except ValueError as exc:
                raise InvalidInput(f"not JSON: {exc}", field="definition") from None
        conditions = [_condition(self.rows[i], i) for i in self.filled()]
        return {self.match: conditions} if conditions else None

    def filled(self) -> list[int]:
        """The rows with something in them (a blank row is one not filled in yet)."""
        return [i for i, r in enumerate(self.rows) if r.name.strip() or r.value.strip()
                or r.days.strip() or r.kind == "consent"]  # fmt: skip

    def as_json(self) -> SegmentForm:
        """The same, edited as JSON."""
        try:
            text = json.dumps(self.definition(), indent=2)
        except InvalidInput:
            text = self.json_text
        return replace(self, editor="json", json_text=text)

    def as_rows(self) -> SegmentForm:
        """The same, edited as rows (unchanged when the JSON is more than rows show)."""
        try:
            shown = rows_of(self.definition())
        except InvalidInput:
            return self
        if shown is None:
            return self
        return replace(self, editor="rows", match=shown[0], rows=shown[1])


def _condition(r: Row, i: int) -> dict[str, Any]:
    days = _days(r.days, f"c{i}_days") if r.days.strip() else None
    if r.kind == "consent":
        return {"consent": r.name.strip().lower() or "sms"}
    if r.kind == "subscribed":
        return {"subscribed_within_days": _days(r.value or r.days, f"c{i}_value")}
    if r.kind in ("event", "message"):
        made: dict[str, Any] = {r.kind: r.name.strip()}
        if r.value.strip():
            op = r.op if r.op in COUNT_OPS else "gte"
            made["count"] = {op: _days(r.value, f"c{i}_value", low=0)}
        if days is not None:
            made["within_days"] = days
        return made
    if r.kind not in ("attribute", "field"):
        raise InvalidInput("a kind of condition", field=f"c{i}_kind")
    made = {r.kind: r.name.strip(), "op": r.op}
    if r.op in _NO_VALUE:
        return made
    text = r.value.strip()
    if r.op in ("in", "not_in"):
        items = [v.strip() for v in text.split(",") if v.strip()]
        made["value"] = items if r.kind == "field" else [typed(v) for v in items]
    else:
        made["value"] = text if r.kind == "field" else typed(text)
    return made


def _days(raw: str, name: str, *, low: int = 1) -> int:
    text = raw.strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 9 or int(text) < low:
        raise InvalidInput("a whole number" + (" above 0" if low else ""), field=name)
    return int(text)


def rows_of(definition: Any) -> tuple[str, list[Row]] | None:
    """(all or any, the rows) of a definition the builder can show; None for another."""
    if not isinstance(definition, dict) or len(definition) != 1:
        return None
    (match, items) = next(iter(definition.items()))
    if match not in ("all", "any") or not isinstance(items, list):
        items, match = [definition], "all"
    if not 0 < len(items) <= MAX_ROWS:
        return None
    rows = [_row(c) for c in items]
    return None if any(r is None for r in rows) else (match, [r for r in rows if r is not None])


def _row(c: Any) -> Row | None:
    if not isinstance(c, dict):
        return None
    if set(c) == {"consent"}:
        return Row("consent", str(c["consent"]))
    if set(c) == {"subscribed_within_days"}:
        return Row("subscribed", "", "eq", str(c["subscribed_within_days"]))
    for kind in ("event", "message"):
        if kind in c and set(c) <= {kind, "count", "within_days"}:
            count = c.get("count") or {"gte": 1}
            if not isinstance(count, dict) or len(count) != 1:
                return None
            ((op, n),) = count.items()
            days = "" if c.get("within_days") is None else str(c["within_days"])
            return Row(kind, str(c[kind]), str(op), str(n), days)
    for kind in ("attribute", "field"):
        if kind in c and set(c) <= {kind, "op", "value"}:
            value = c.get("value")
            shown = ", ".join(_text(v) for v in value) if isinstance(value, list) else _text(value)
            return Row(kind, str(c[kind]), str(c.get("op")), shown)
    return None


def _text(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


_PATH = re.compile(r"definition\.(?:all|any)\[(\d+)\](?:\.(\w+))?.*")
_PART = {"attribute": "name", "field": "name", "event": "name", "message": "name",
         "consent": "name", "op": "op", "value": "value", "count": "value",
         "within_days": "days", "subscribed_within_days": "value"}  # fmt: skip


def form_field(error_field: str | None, form: SegmentForm) -> str:
    """The form field next to which an error of the definition (its path) belongs."""
    f = error_field or ""
    if f == "name" or re.fullmatch(r"c\d+_\w+", f):
        return f
    filled = form.filled()
    if form.editor == "rows" and (m := _PATH.fullmatch(f)) and int(m.group(1)) < len(filled):
        return f"c{filled[int(m.group(1))]}_{_PART.get(m.group(2) or '', 'kind')}"
    return "definition"


__all__ = ["FIELDS", "KINDS", "MAX_ROWS", "OPS", "OP_LABELS", "Row", "SegmentForm", "form_field"]
