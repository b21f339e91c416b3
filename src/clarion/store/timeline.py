"""A brand's subscribers found by the start of their phone or email, and one subscriber's
history (messages, clicks, events), each a bounded read through an index however large the
brand is.

Prefix search walks the `(brand_id, phone)` and `(brand_id, email)` indexes between two
bounds (`prefix_bounds`) and keeps the rows that start with the prefix: no index of its own,
so imports and the pipeline write no more than before, and it holds under any collation the
database was made with (see `prefix_bounds`)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import msgspec

from clarion.store.db import Pool

# Characters a bound is made of: digits before letters, as every collation sorts them.
_ALNUM = "0123456789abcdefghijklmnopqrstuvwxyz"


class Found(msgspec.Struct, frozen=True, kw_only=True):
    """A subscriber in a list of search results."""

    id: int
    phone: str | None
    email: str | None
    first_name: str | None
    last_name: str | None
    created_at: datetime


class SentMessage(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    campaign_id: int | None
    campaign: str | None  # its name
    channel: str
    kind: str
    status: str
    error_code: str | None
    created_at: datetime
    sent_at: datetime | None
    updated_at: datetime


class Click(msgspec.Struct, frozen=True, kw_only=True):
    campaign_id: int
    campaign: str | None
    url: str
    clicks: int
    first_at: datetime
    last_at: datetime


class Event(msgspec.Struct, frozen=True, kw_only=True):
    type: str
    occurred_at: datetime
    value: Decimal | None
    properties: dict[str, Any] | None


def prefix_bounds(prefix: str) -> tuple[str, str | None]:
    """[low, high) of the index range that holds every value starting with `prefix` (high
    None: to the end), for a prefix of `+`, digits and lowercase letters then anything.

    Only the leading run of `+` and alphanumerics makes the bounds: a collation that ignores
    punctuation at first (glibc's en_US, ICU) still sorts every value starting with that
    run between the run and the run with its last character raised (`+1559` → `+156`);
    the exact `LIKE` filter then keeps only true matches."""
    run = ""
    for ch in prefix:
        if (ch == "+" and not run) or ch in _ALNUM:
            run += ch
        else:
            break
    core = run.lstrip("+")
    while core and core[-1] == _ALNUM[-1]:
        core = core[:-1]
    if not core:
        return run, None
    high = core[:-1] + _ALNUM[_ALNUM.index(core[-1]) + 1]
    return run, run[: len(run) - len(run.lstrip("+"))] + high


def _like(prefix: str) -> str:
    return prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


async def search(pool: Pool, brand_id: int, column: str, prefix: str, limit: int) -> list[Found]:
    """Up to `limit` of the brand's subscribers whose `column` (phone or email) starts with
    `prefix`, in that column's order."""
    assert column in ("phone", "email")
    low, high = prefix_bounds(prefix)
    rows = await pool.fetch(
        f"SELECT id, phone, email, first_name, last_name, created_at FROM subscribers"
        f" WHERE brand_id = $1 AND {column} >= $2 AND ($3::text IS NULL OR {column} < $3)"
        f" AND {column} LIKE $4 AND erased_at IS NULL ORDER BY {column} LIMIT $5",
        brand_id, low, high, _like(prefix), limit,
    )  # fmt: skip
    return [Found(**dict(r)) for r in rows]


async def newest(pool: Pool, brand_id: int, limit: int) -> list[Found]:
    """The brand's newest subscribers, newest first."""
    rows = await pool.fetch(
        "SELECT id, phone, email, first_name, last_name, created_at FROM subscribers"
        " WHERE brand_id = $1 AND erased_at IS NULL ORDER BY brand_id DESC, id DESC LIMIT $2",
        brand_id, limit,
    )  # fmt: skip
    return [Found(**dict(r)) for r in rows]


async def messages(pool: Pool, brand_id: int, subscriber_id: int, limit: int) -> list[SentMessage]:
    """The subscriber's newest messages, with their campaign's name."""
    rows = await pool.fetch(
        "SELECT m.id::text AS id, m.campaign_id, c.name AS campaign, m.channel, m.kind,"
        " m.status, m.error_code, m.created_at, m.sent_at, m.updated_at"
        " FROM messages m LEFT JOIN campaigns c ON c.id = m.campaign_id"
        " WHERE m.subscriber_id = $2 AND m.brand_id = $1 ORDER BY m.created_at DESC LIMIT $3",
        brand_id, subscriber_id, limit,
    )  # fmt: skip
    return [SentMessage(**dict(r)) for r in rows]


async def clicks(pool: Pool, brand_id: int, subscriber_id: int, limit: int) -> list[Click]:
    """The subscriber's newest clicks (people's, not bots'), with the link and campaign."""
    rows = await pool.fetch(
        "SELECT k.campaign_id, c.name AS campaign, l.url, k.clicks, k.first_at, k.last_at"
        " FROM clicks k JOIN links l ON l.id = k.link_id"
        " LEFT JOIN campaigns c ON c.id = k.campaign_id"
        " WHERE k.subscriber_id = $2 AND k.brand_id = $1 AND k.kind = 'human'"
        " ORDER BY k.last_at DESC LIMIT $3",
        brand_id, subscriber_id, limit,
    )  # fmt: skip
    return [Click(**dict(r)) for r in rows]


async def events(pool: Pool, brand_id: int, subscriber_id: int, limit: int) -> list[Event]:
    """The subscriber's newest events (orders, views, …)."""
    rows = await pool.fetch(
        "SELECT type, occurred_at, value, properties FROM events"
        " WHERE subscriber_id = $2 AND brand_id = $1 ORDER BY occurred_at DESC LIMIT $3",
        brand_id, subscriber_id, limit,
    )  # fmt: skip
    return [Event(**dict(r)) for r in rows]
