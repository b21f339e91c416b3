"""Subscribers one at a time and in batches, as the API reads and writes them; their current
consent from the ledger (`consents`, append-only); erasure."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import asyncpg
import msgspec

from clarion.domain.subscribers import Consent, Subscriber, SubscriberIn, SubscriberPatch
from clarion.errors import Duplicate, NotFound, Refused
from clarion.store.db import Pool

if TYPE_CHECKING:
    from clarion.store.db import Conn

# A subscriber as the API shows it, with the current consent per channel.
_SHOWN = """
SELECT s.id, s.phone, s.email, s.timezone, s.first_name, s.last_name, s.attributes,
       jsonb_build_object(
           'sms', (SELECT c.status FROM consents c WHERE c.subscriber_id = s.id
                   AND c.channel = 'sms' ORDER BY c.id DESC LIMIT 1),
           'email', (SELECT c.status FROM consents c WHERE c.subscriber_id = s.id
                     AND c.channel = 'email' ORDER BY c.id DESC LIMIT 1)
       ) AS consent,
       s.created_at, s.updated_at
FROM subscribers s
"""


def _shown(row: Any) -> Subscriber:
    return msgspec.convert(dict(row), Subscriber)


async def get(pool: Pool | Conn, brand_id: int, subscriber_id: int) -> Subscriber:
    row = await pool.fetchrow(
        _SHOWN + " WHERE s.brand_id = $1 AND s.id = $2 AND s.erased_at IS NULL",
        brand_id, subscriber_id,
    )  # fmt: skip
    if row is None:
        raise NotFound("subscriber", subscriber_id)
    return _shown(row)


async def find(
    pool: Pool | Conn, brand_id: int, *, phone: str | None = None, email: str | None = None
) -> list[Subscriber]:
    """The brand's subscriber with this phone (E.164) or email, if any."""
    rows = await pool.fetch(
        _SHOWN + " WHERE s.brand_id = $1 AND ($2::text IS NULL OR s.phone = $2)"
        " AND ($3::text IS NULL OR s.email = $3) AND s.erased_at IS NULL ORDER BY s.id LIMIT 2",
        brand_id, phone, email,
    )  # fmt: skip
    return [_shown(r) for r in rows]


async def page(pool: Pool, brand_id: int, *, after_id: int, limit: int) -> list[Subscriber]:
    """The brand's subscribers in id order after `after_id`."""
    rows = await pool.fetch(
        _SHOWN + " WHERE s.brand_id = $1 AND s.id > $2 AND s.erased_at IS NULL"
        " ORDER BY s.brand_id, s.id LIMIT $3",
        brand_id, after_id, limit,
    )  # fmt: skip
    return [_shown(r) for r in rows]


async def _existing(
    conn: Conn, brand_id: int, phone: str | None, email: str | None, *, but: int = 0
) -> Duplicate:
    """The subscriber (other than `but`) that has this phone or email already."""
    row = await conn.fetchrow(
        "SELECT id, phone IS NOT DISTINCT FROM $2 AS by_phone FROM subscribers"
        " WHERE brand_id = $1 AND (phone = $2 OR email = $3) AND id <> $4 ORDER BY id LIMIT 1",
        brand_id, phone, email, but,
    )  # fmt: skip
    assert row is not None, "a conflict names an existing row"
    return Duplicate("subscriber", "phone" if row["by_phone"] else "email", row["id"])


async def _append_consent(
    conn: Conn,
    brand_id: int,
    subscriber_id: int,
    consent: Mapping[str, Consent],
    evidence: Mapping[str, Any] | None,
) -> None:
    if consent:
        await conn.executemany(
            "INSERT INTO consents (brand_id, subscriber_id, channel, status, source, disclosure,"
            " evidence) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            [
                (brand_id, subscriber_id, channel, c.status, c.source, c.disclosure, evidence)
                for channel, c in consent.items()
            ],
        )


async def create(
    conn: Conn, brand_id: int, s: SubscriberIn, *, evidence: Mapping[str, Any] | None = None
) -> int:
    """Insert one subscriber and its consent; `Duplicate` names the existing one. Run it in
    a transaction (a savepoint per subscriber of a batch)."""
    subscriber_id: int | None = await conn.fetchval(
        "INSERT INTO subscribers (brand_id, phone, email, timezone, first_name, last_name,"
        " attributes) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING RETURNING id",
        brand_id, s.phone, s.email, s.timezone, s.first_name, s.last_name, s.attributes,
    )  # fmt: skip
    if subscriber_id is None:
        raise await _existing(conn, brand_id, s.phone, s.email)
    await _append_consent(conn, brand_id, subscriber_id, s.consent, evidence)
    return subscriber_id


async def create_many(
    pool: Pool,
    brand_id: int,
    subscribers: Sequence[SubscriberIn],
    *,
    evidence: Mapping[str, Any] | None = None,
) -> list[int | Duplicate]:
    """Insert each subscriber (in one transaction): its id, or the `Duplicate` it is of an
    existing one (an earlier one of the batch included)."""
    out: list[int | Duplicate] = []
    async with pool.acquire() as conn, conn.transaction():
        for s in subscribers:
            try:
                out.append(await create(conn, brand_id, s, evidence=evidence))
            except Duplicate as dup:
                out.append(dup)
    return out


async def _lock_live(
    conn: Conn, brand_id: int, subscriber_id: int
) -> tuple[str | None, str | None]:
    """Lock the brand's subscriber (not erased) for a change: its (phone, email)."""
    row = await conn.fetchrow(
        "SELECT phone, email FROM subscribers WHERE brand_id = $1 AND id = $2"
        " AND erased_at IS NULL FOR UPDATE",
        brand_id, subscriber_id,
    )  # fmt: skip
    if row is None:
        raise NotFound("subscriber", subscriber_id)
    return row["phone"], row["email"]


async def update(
    pool: Pool,
    brand_id: int,
    subscriber_id: int,
    patch: SubscriberPatch,
    *,
    evidence: Mapping[str, Any] | None = None,
) -> Subscriber:
    """Apply the changes: fields given are set, attributes merged (those named in `removed`
    dropped), consent appended to the ledger."""
    sets = ["updated_at = now()"]
    args: list[Any] = [brand_id, subscriber_id]
    for name, value in patch.set.items():  # names come from `SubscriberPatch`'s own fields
        args.append(value)
        sets.append(f"{name} = ${len(args)}")
    args += [patch.attributes, patch.removed]
    sets.append(f"attributes = (attributes || ${len(args) - 1}::jsonb) - ${len(args)}::text[]")
    async with pool.acquire() as conn, conn.transaction():
        current = await _lock_live(conn, brand_id, subscriber_id)
        phone = patch.set.get("phone", current[0])
        email = patch.set.get("email", current[1])
        if phone is None and email is None:
            raise Refused("a subscriber needs a phone or an email", field="phone")
        for channel, have in (("sms", phone), ("email", email)):
            if channel in patch.consent and have is None:
                raise Refused(f"{channel} consent needs an address", field=f"consent.{channel}")
        try:
            async with conn.transaction():
                await conn.execute(
                    f"UPDATE subscribers SET {', '.join(sets)} WHERE brand_id = $1 AND id = $2",
                    *args,
                )
        except asyncpg.UniqueViolationError:  # another subscriber has this phone or email
            phone, email = patch.set.get("phone"), patch.set.get("email")
            raise await _existing(conn, brand_id, phone, email, but=subscriber_id) from None
        await _append_consent(conn, brand_id, subscriber_id, patch.consent, evidence)
        return await get(conn, brand_id, subscriber_id)


def _hash(brand_id: int, address: str | None) -> bytes | None:
    return None if address is None else hashlib.sha256(f"{brand_id}:{address}".encode()).digest()


async def erase(pool: Pool, brand_id: int, subscriber_id: int, *, source: str) -> None:
    """Erase a subscriber's personal data: its phone, email, names and attributes; the text
    and address of its messages and replies; its events. The consent ledger keeps its rows
    (the legal record), each channel ends opted out, and the row keeps hashes of the phone
    and email. Suppressions stay: a number that said STOP must not be texted again."""
    async with pool.acquire() as conn, conn.transaction():
        phone, email = await _lock_live(conn, brand_id, subscriber_id)
        ended = {
            channel: Consent(status="opted_out", source=source)
            for channel, address in (("sms", phone), ("email", email))
            if address is not None
        }
        await _append_consent(conn, brand_id, subscriber_id, ended, None)
        await conn.execute(
            "UPDATE subscribers SET phone = NULL, email = NULL, first_name = NULL,"
            " last_name = NULL, attributes = '{}', carrier = NULL, timezone = NULL,"
            " erased_at = now(), updated_at = now(), phone_hash = $3, email_hash = $4"
            " WHERE brand_id = $1 AND id = $2",
            brand_id, subscriber_id, _hash(brand_id, phone), _hash(brand_id, email),
        )  # fmt: skip
        await conn.execute(
            "UPDATE messages SET to_address = 'erased', body = NULL"
            " WHERE subscriber_id = $1 AND brand_id = $2",
            subscriber_id, brand_id,
        )  # fmt: skip
        await conn.execute(
            "DELETE FROM events WHERE brand_id = $1 AND subscriber_id = $2",
            brand_id, subscriber_id,
        )  # fmt: skip
        await conn.execute(
            "UPDATE inbound_messages SET from_address = 'erased', body = ''"
            " WHERE brand_id = $1 AND (subscriber_id = $2 OR from_address = $3)",
            brand_id, subscriber_id, phone or "",
        )  # fmt: skip
        await conn.execute(
            "UPDATE conversation_answers SET body = '' WHERE brand_id = $1 AND subscriber_id = $2",
            brand_id, subscriber_id,
        )  # fmt: skip


async def latest_consent(conn: Conn, subscriber_id: int, channel: str) -> tuple[str, float] | None:
    """(status, age in seconds on the database's clock) of the subscriber's latest consent
    entry on the channel."""
    row = await conn.fetchrow(
        "SELECT status, extract(epoch FROM now() - created_at)::float8 AS age_s FROM consents"
        " WHERE subscriber_id = $1 AND channel = $2 ORDER BY id DESC LIMIT 1",
        subscriber_id, channel,
    )  # fmt: skip
    return None if row is None else (row["status"], row["age_s"])


async def request_consent(
    conn: Conn,
    brand_id: int,
    subscriber_id: int,
    channel: str,
    *,
    source: str,
    disclosure: str,
    evidence: Mapping[str, Any],
) -> int:
    """Append a `pending` entry (consent asked for, to be confirmed); its id."""
    entry: int = await conn.fetchval(
        "INSERT INTO consents (brand_id, subscriber_id, channel, status, source, disclosure,"
        " evidence) VALUES ($1, $2, $3, 'pending', $4, $5, $6) RETURNING id",
        brand_id, subscriber_id, channel, source, disclosure, evidence,
    )  # fmt: skip
    return entry


class AskedConsent(msgspec.Struct, frozen=True):
    """A `pending` ledger entry (consent asked for), and whether it is still the
    subscriber's latest on its channel (nothing confirmed, refused or asked since)."""

    subscriber_id: int
    channel: str
    disclosure: str | None
    age_s: float
    latest: str  # the channel's latest status now
    is_latest: bool


async def asked_consent(conn: Conn, brand_id: int, entry_id: int) -> AskedConsent | None:
    """The brand's pending entry `entry_id` (None for another brand's, or any other entry),
    its subscriber's latest entry on the channel locked until the transaction ends."""
    row = await conn.fetchrow(
        "SELECT subscriber_id, channel, disclosure,"
        " extract(epoch FROM now() - created_at)::float8 AS age_s FROM consents"
        " WHERE id = $1 AND brand_id = $2 AND status = 'pending'",
        entry_id, brand_id,
    )  # fmt: skip
    if row is None:
        return None
    latest = await conn.fetchrow(
        "SELECT id, status FROM consents WHERE subscriber_id = $1 AND channel = $2"
        " ORDER BY id DESC LIMIT 1 FOR UPDATE",
        row["subscriber_id"], row["channel"],
    )  # fmt: skip
    assert latest is not None  # the entry itself, at least
    return AskedConsent(
        row["subscriber_id"], row["channel"], row["disclosure"], row["age_s"],
        latest["status"], latest["id"] == entry_id,
    )  # fmt: skip


async def confirm_consent(
    conn: Conn,
    brand_id: int,
    subscriber_id: int,
    channel: str,
    *,
    source: str,
    disclosure: str | None,
    evidence: Mapping[str, Any],
) -> int:
    """Append the `opted_in` entry that confirms a request; its id."""
    entry: int = await conn.fetchval(
        "INSERT INTO consents (brand_id, subscriber_id, channel, status, source, disclosure,"
        " evidence) VALUES ($1, $2, $3, 'opted_in', $4, $5, $6) RETURNING id",
        brand_id, subscriber_id, channel, source, disclosure, evidence,
    )  # fmt: skip
    return entry


async def add_email(conn: Conn, brand_id: int, subscriber_id: int, email: str) -> None:
    """Give a subscriber without an email this one (a sign-up that named both)."""
    await conn.execute(
        "UPDATE subscribers SET email = $3, updated_at = now()"
        " WHERE brand_id = $1 AND id = $2 AND email IS NULL",
        brand_id, subscriber_id, email,
    )  # fmt: skip
