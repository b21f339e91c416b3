"""A subscriber import's progress and its rejected rows, as the API and the CLI show them."""

from __future__ import annotations

from datetime import datetime

import msgspec


class ImportRow(msgspec.Struct, frozen=True, kw_only=True):
    """An import as its progress is shown: `rows_read` data rows so far, of which `created`
    became new subscribers, `existing` had a phone or email the brand had already, and
    `rejected` were refused (each with its row number and reason)."""

    id: int
    brand_id: int
    source: str
    status: str  # running, done or failed
    rows_read: int
    created: int
    existing: int
    rejected: int
    error: str | None
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None


class Rejection(msgspec.Struct, frozen=True):
    row: int  # the CSV record's number, the header being row 1
    field: str | None
    reason: str
