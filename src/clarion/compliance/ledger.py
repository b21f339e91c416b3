"""Consent ledger exports for audits (CSV and JSON). Pure: rows in, text out."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from typing import Any

import msgspec

COLUMNS = (
    "id", "subscriber_id", "phone", "email", "channel", "status", "source", "keyword",
    "disclosure", "created_at",
)  # fmt: skip


def ledger_csv(rows: Sequence[Mapping[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    for r in rows:
        writer.writerow([r[c].isoformat() if c == "created_at" else r[c] for c in COLUMNS])
    return out.getvalue()


def ledger_json(rows: Sequence[Mapping[str, Any]]) -> str:
    return msgspec.json.encode([{c: r[c] for c in COLUMNS} for r in rows]).decode()
