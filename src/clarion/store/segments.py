"""Segments: a definition's tree (`domain.segments`) compiled to one SQL condition over the
brand's subscribers (`s`), every value a parameter (never text pasted into SQL); counted
live, and saved by name.

How each condition reads (1M subscribers, 10M events: `bench/segment_count.py`):
- attributes and fields: a scan of the brand's subscribers (jsonb operators);
- events: the subscribers who did TYPE at least N times within D days, from an index-only
  range of `events_by_type` (brand, type, time, subscriber), hashed; "fewer than N" is the
  complement of that set;
- consent: the latest ledger entry per subscriber and channel, from `consents_current`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import msgspec

from clarion.compliance.area_codes import AREA_CODE_STATE
from clarion.domain import segments as seg
from clarion.domain.rows import CampaignRow
from clarion.domain.segments import SegmentRow
from clarion.errors import ClarionError, NotFound, Refused
from clarion.store.brands import AUDIENCE_CHUNK
from clarion.store.db import Pool

# A count that takes longer is stopped (the definition is too costly for this install).
COUNT_TIMEOUT_MS = 10_000
# Resolving a campaign's audience writes it too: a minute at most.
RESOLVE_TIMEOUT_MS = 60_000


@dataclass
class _Sql:
    """Parameters collected while a tree is compiled; `$1` is the brand."""

    brand_id: int
    params: list[Any] = field(default_factory=list)

    def p(self, value: Any, cast: str = "") -> str:
        self.params.append(value)
        return f"${len(self.params) + 1}{cast}"


_STATE_CODES: dict[str, list[str]] = {}
for _code, _state in AREA_CODE_STATE.items():
    _STATE_CODES.setdefault(_state, []).append(_code)


def _json_text(v: Any) -> str:
    return json.dumps(v)


def _listed(value: seg.Scalar | list[seg.Scalar] | None) -> list[seg.Scalar]:
    return value if isinstance(value, list) else []


def _compare_json(c: seg.Compare, target: str, q: _Sql) -> str:
    """`target` is a jsonb object (`s.attributes`, `e.properties`); the name a key of it."""
    key = q.p(c.name)
    value = f"{target} -> {key}"
    text = f"({target} ->> {key})"
    match c.op:
        case "exists":
            return f"({target} ? {key})"
        case "not_exists":
            return f"NOT coalesce({target} ? {key}, false)"
        case "eq":  # the pool's jsonb codec encodes the value itself
            return f"({value} = {q.p(c.value, '::jsonb')})"
        case "ne":
            return f"({value} IS DISTINCT FROM {q.p(c.value, '::jsonb')})"
        case "in":
            vals = q.p([_json_text(v) for v in _listed(c.value)], "::text[]::jsonb[]")
            return f"({value} = ANY({vals}))"
        case "not_in":
            vals = q.p([_json_text(v) for v in _listed(c.value)], "::text[]::jsonb[]")
            return f"NOT coalesce({value} = ANY({vals}), false)"
        case "contains":
            return f"(strpos(lower({text}), lower({q.p(c.value)})) > 0)"
        case "starts_with":
            return f"starts_with(lower({text}), lower({q.p(c.value)}))"
    return _order(c, value, text, q)


def _order(c: seg.Compare, value: str, text: str, q: _Sql) -> str:
    """gt gte lt lte: numbers as numbers, ISO dates as dates (by their first ten
    characters, which order as the dates do), other text as text."""
    sign = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}[c.op]
    v = c.value
    if isinstance(v, int | float):
        number = f"CASE WHEN jsonb_typeof({value}) = 'number' THEN ({text})::numeric END"
        return f"({number} {sign} {q.p(str(v), '::numeric')})"
    assert isinstance(v, str)
    if seg.ISO_DATE.fullmatch(v[:10]):
        day = f"CASE WHEN {text} ~ '^\\d{{4}}-\\d{{2}}-\\d{{2}}' THEN left({text}, 10) END"
        return f"({day} {sign} {q.p(v[:10])})"
    return f"(CASE WHEN jsonb_typeof({value}) = 'string' THEN {text} END {sign} {q.p(v)})"


def _compare_field(c: seg.Compare, q: _Sql) -> str:
    if c.name == "state":
        area = "(CASE WHEN s.phone LIKE '+1%' THEN substr(s.phone, 3, 3) END)"
        wanted = c.value if isinstance(c.value, list) else [c.value]
        codes = sorted({code for st in wanted for code in _STATE_CODES.get(str(st).upper(), [])})
        match c.op:
            case "exists":
                return f"({area} = ANY({q.p(sorted(AREA_CODE_STATE), '::text[]')}))"
            case "not_exists":
                return (
                    f"NOT coalesce({area} = ANY({q.p(sorted(AREA_CODE_STATE), '::text[]')}), false)"
                )
            case "eq" | "in":
                return f"({area} = ANY({q.p(codes, '::text[]')}))"
            case _:  # ne, not_in
                return f"NOT coalesce({area} = ANY({q.p(codes, '::text[]')}), false)"
    col = f"s.{c.name}"  # the name is one of `seg.FIELDS`, checked by the parser
    match c.op:
        case "exists":
            return f"({col} IS NOT NULL)"
        case "not_exists":
            return f"({col} IS NULL)"
        case "eq":
            return f"({col} = {q.p(c.value)})"
        case "ne":
            return f"({col} IS DISTINCT FROM {q.p(c.value)})"
        case "in":
            return f"({col} = ANY({q.p(c.value, '::text[]')}))"
        case "not_in":
            return f"NOT coalesce({col} = ANY({q.p(c.value, '::text[]')}), false)"
        case "contains":
            return f"(strpos(lower({col}), lower({q.p(c.value)})) > 0)"
        case "starts_with":
            return f"starts_with(lower({col}), lower({q.p(c.value)}))"
    sign = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}[c.op]
    return f"({col} {sign} {q.p(c.value)})"


def _counted(ids_sql: str, count: seg.Count, q: _Sql) -> str:
    """Subscribers whose count of rows in `ids_sql` (a grouped subquery's `subscriber_id`,
    `count(*)` as n) meets `count`. "At least" is a set of ids; "fewer than" is the
    complement of one, so subscribers with none at all are in it."""
    n = count.n
    inside = {"gte": (">=", n), "gt": (">", n), "eq": ("=", n)}
    if count.op in inside and not (count.op == "eq" and n == 0):
        sign, k = inside[count.op]
        if (sign, k) in ((">=", 0),):
            return "true"
        return f"s.id IN (SELECT subscriber_id FROM ({ids_sql}) x WHERE n {sign} {q.p(k)})"
    # lt n: not (>= n); lte n: not (> n); eq 0: not (>= 1)
    sign, k = {"lt": (">=", n), "lte": (">", n), "eq": (">=", 1)}[count.op]
    if (sign, k) == (">=", 0):
        return "false"
    return f"s.id NOT IN (SELECT subscriber_id FROM ({ids_sql}) x WHERE n {sign} {q.p(k)})"


def _compile(c: seg.Condition, q: _Sql) -> str:
    match c:
        case seg.All(items):
            return "(" + " AND ".join(_compile(i, q) for i in items) + ")"
        case seg.Any_(items):
            return "(" + " OR ".join(_compile(i, q) for i in items) + ")"
        case seg.Not(item):
            return f"NOT coalesce({_compile(item, q)}, false)"
        case seg.Compare(kind="attribute"):
            return _compare_json(c, "s.attributes", q)
        case seg.Compare(kind="field"):
            return _compare_field(c, q)
        case seg.ConsentNow(channel):
            return (
                "coalesce((SELECT c.status = 'opted_in' FROM consents c WHERE c.subscriber_id"
                f" = s.id AND c.channel = {q.p(channel)} ORDER BY c.id DESC LIMIT 1), false)"
            )
        case seg.SubscribedWithin(days):
            return f"(s.created_at >= now() - make_interval(days => {q.p(days)}))"
        case seg.Did():
            where = ["e.brand_id = $1", f"e.type = {q.p(c.type)}"]
            if c.days is not None:
                where.append(f"e.occurred_at >= now() - make_interval(days => {q.p(c.days)})")
            where += [_compare_json(w, "e.properties", q) for w in c.where]
            ids = (
                "SELECT e.subscriber_id, count(*) AS n FROM events e WHERE "
                + " AND ".join(where)
                + " GROUP BY e.subscriber_id"
            )
            return _counted(ids, c.count, q)
        case seg.Messaged():
            where = ["m.brand_id = $1", "m.sent_at IS NOT NULL"]
            if c.kind == "delivered":
                where.append("m.status = 'delivered'")
            if c.campaign_id is not None:
                where.append(f"m.campaign_id = {q.p(c.campaign_id)}")
            if c.days is not None:
                where.append(f"m.sent_at >= now() - make_interval(days => {q.p(c.days)})")
            ids = (
                "SELECT m.subscriber_id, count(*) AS n FROM messages m WHERE "
                + " AND ".join(where)
                + " GROUP BY m.subscriber_id"
            )
            return _counted(ids, c.count, q)
    raise AssertionError(f"no SQL for {c!r}")


def compile_condition(brand_id: int, condition: seg.Condition) -> tuple[str, list[Any]]:
    """(a WHERE clause over the brand's live subscribers `s`, its parameters, `$1` the
    brand)."""
    q = _Sql(brand_id)
    where = _compile(condition, q)
    return f"s.brand_id = $1 AND s.erased_at IS NULL AND {where}", [brand_id, *q.params]


async def count(pool: Pool, brand_id: int, condition: seg.Condition) -> int:
    where, params = compile_condition(brand_id, condition)
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(f"SET LOCAL statement_timeout = {COUNT_TIMEOUT_MS}")
        try:
            n: int = await conn.fetchval(
                f"SELECT count(*) FROM subscribers s WHERE {where}", *params
            )
        except asyncpg.QueryCanceledError:
            raise ClarionError(
                f"the count took longer than {COUNT_TIMEOUT_MS // 1000} s: narrow the definition"
            ) from None
    return n


async def resolve_audience(
    pool: Pool,
    brand_id: int,
    campaign_id: int,
    include: seg.Condition,
    exclude: Sequence[seg.Condition],
    *,
    launched: bool,
) -> int:
    """Write the campaign's audience (the subscribers `include` takes, less those any of
    `exclude` takes) into `campaign_audience_chunks`, replacing what was there; `launched` marks
    it resolved for good (a plan resolves it too, and the launch again). Returns how many."""
    condition: seg.Condition = include
    if exclude:
        condition = seg.All((include, *(seg.Not(e) for e in exclude)))
    where, params = compile_condition(brand_id, condition)
    n = len(params) + 1
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(f"SET LOCAL statement_timeout = {RESOLVE_TIMEOUT_MS}")
        await conn.execute(
            "DELETE FROM campaign_audience_chunks WHERE campaign_id = $1", campaign_id
        )
        # the ids in order, numbered, cut into chunks of AUDIENCE_CHUNK
        total: int = await conn.fetchval(
            f"""
            WITH chunk AS (
                INSERT INTO campaign_audience_chunks (campaign_id, last_id, ids)
                SELECT ${n}, max(id), array_agg(id ORDER BY id)
                FROM (SELECT s.id, (row_number() OVER (ORDER BY s.id) - 1) / ${n + 1} AS k
                      FROM subscribers s WHERE {where}) x
                GROUP BY k
                RETURNING cardinality(ids) AS n)
            SELECT coalesce(sum(n), 0) FROM chunk
            """,
            *params, campaign_id, AUDIENCE_CHUNK,
        )  # fmt: skip
        if launched:
            await conn.execute(
                "UPDATE campaigns SET audience_resolved_at = now() WHERE id = $1", campaign_id
            )
    return int(total)


async def create(pool: Pool, brand_id: int, name: str, definition: Any) -> SegmentRow:
    row = await pool.fetchrow(
        "INSERT INTO segments (brand_id, name, definition) VALUES ($1, $2, $3)"
        " RETURNING id, name, definition, created_at, updated_at",
        brand_id, name, definition,
    )  # fmt: skip
    assert row is not None
    return msgspec.convert(dict(row), SegmentRow)


async def get(pool: Pool, brand_id: int, segment_id: int) -> SegmentRow:
    row = await pool.fetchrow(
        "SELECT id, name, definition, created_at, updated_at FROM segments"
        " WHERE brand_id = $1 AND id = $2",
        brand_id, segment_id,
    )  # fmt: skip
    if row is None:
        raise NotFound("segment", segment_id)
    return msgspec.convert(dict(row), SegmentRow)


async def update(
    pool: Pool, brand_id: int, segment_id: int, name: str, definition: Any
) -> SegmentRow:
    row = await pool.fetchrow(
        "UPDATE segments SET name = $3, definition = $4, updated_at = now()"
        " WHERE brand_id = $1 AND id = $2"
        " RETURNING id, name, definition, created_at, updated_at",
        brand_id, segment_id, name, definition,
    )  # fmt: skip
    if row is None:
        raise NotFound("segment", segment_id)
    return msgspec.convert(dict(row), SegmentRow)


async def listed(pool: Pool, brand_id: int, *, after_id: int, limit: int) -> list[SegmentRow]:
    rows = await pool.fetch(
        "SELECT id, name, definition, created_at, updated_at FROM segments"
        " WHERE brand_id = $1 AND id > $2 ORDER BY id LIMIT $3",
        brand_id, after_id, limit,
    )  # fmt: skip
    return [msgspec.convert(dict(r), SegmentRow) for r in rows]


async def delete(pool: Pool, brand_id: int, segment_id: int) -> None:
    used = await pool.fetch(
        "SELECT id FROM campaigns WHERE brand_id = $1"
        " AND (segment_id = $2 OR $2 = ANY(exclude_segment_ids)) ORDER BY id LIMIT 5",
        brand_id, segment_id,
    )  # fmt: skip
    if used:
        ids = ", ".join(str(r["id"]) for r in used)
        raise Refused(f"segment {segment_id} is the audience of campaign(s) {ids}")
    done = await pool.execute(
        "DELETE FROM segments WHERE brand_id = $1 AND id = $2", brand_id, segment_id
    )
    if done.endswith(" 0"):
        raise NotFound("segment", segment_id)


async def resolve_campaign(pool: Pool, c: CampaignRow, *, launched: bool) -> int | None:
    """Write a targeted campaign's audience (its segment or definition, less the exclusion
    segments, as they are now); None for a campaign to the whole list, or one resolved at
    its first launch already (a relaunch goes to the same audience)."""
    if not c.targeted:
        return None
    if launched and c.audience_resolved_at is not None:
        return None
    if c.segment_id is not None:
        definition = (await get(pool, c.brand_id, c.segment_id)).definition
    else:
        definition = c.audience_definition
    exclude = [await get(pool, c.brand_id, x) for x in c.exclude_segment_ids]
    return await resolve_audience(
        pool, c.brand_id, c.id, seg.parse_definition(definition),
        [seg.parse_definition(x.definition) for x in exclude], launched=launched,
    )  # fmt: skip
