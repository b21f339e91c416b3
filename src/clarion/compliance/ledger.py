"""Consent ledger exports for audits (CSV and JSON). Pure: rows in, text out."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence

import msgspec

from clarion.domain.rows import ConsentRow

# The export's columns, in order: an auditor's tools read them by name.
COLUMNS = (
    "id", "subscriber_id", "phone", "email", "channel", "status", "source", "keyword",
    "disclosure", "created_at",
)  # fmt: skip


def ledger_csv(rows: Sequence[ConsentRow]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    for r in rows:
        writer.writerow(
            [r.created_at.isoformat() if c == "created_at" else getattr(r, c) for c in COLUMNS]
        )
    return out.getvalue()


def ledger_json(rows: Sequence[ConsentRow]) -> str:
    return msgspec.json.encode([{c: getattr(r, c) for c in COLUMNS} for r in rows]).decode()
