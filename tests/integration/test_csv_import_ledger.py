"""A CSV import writes the consent ledger once per actual change: a duplicated row adds no
second opt-in, and the first row's answer is the one recorded. What it stores reads back
as the audience reads it."""

from __future__ import annotations

from clarion import bootstrap
from clarion.domain.contacts import NewSubscriber, new_subscriber
from clarion.domain.csv_import import read_subscribers
from clarion.domain.rows import SubscriberRow
from clarion.errors import InvalidInput
from clarion.store import brands
from clarion.store.db import Pool


async def ledger(pool: Pool, brand_id: int) -> list[tuple[str, str, str]]:
    """(address, channel, status) of every consent row of the brand."""
    rows = await pool.fetch(
        "SELECT coalesce(s.phone, s.email) AS address, c.channel, c.status FROM consents c"
        " JOIN subscribers s ON s.id = c.subscriber_id WHERE c.brand_id = $1 ORDER BY 1, 2",
        brand_id,
    )
    return [(r["address"], r["channel"], r["status"]) for r in rows]


async def test_a_file_with_duplicated_phones_records_one_opt_in_from_the_first_row(
    infra: bootstrap.Infra,
) -> None:
    pool = infra.pool
    brand_id = await brands.create_brand(pool, slug="dup", name="Dup", sender="+15125550100")
    data = (
        b"phone,first_name,sms_consent\n"
        b"(212) 555-7788,Ava,yes\n"
        b"+1 212 555 7788,Ava,yes\n"  # the same number, written another way
        b"(415) 555-2671,Noah,no\n"
        b"4155552671,Noah,yes\n"  # a later yes does not overrule the earlier no
    )
    outcomes = list(read_subscribers(data))
    good = [o for o in outcomes if isinstance(o, NewSubscriber)]
    reported = [str(o) for o in outcomes if isinstance(o, InvalidInput)]
    assert reported == [
        "row 3, field 'phone': duplicate of row 2",
        "row 5, field 'phone': duplicate of row 4",
    ]
    assert await brands.import_subscribers(pool, brand_id, good, source="csv-import") == 2
    assert await ledger(pool, brand_id) == [("+12125557788", "sms", "opted_in")]


async def test_the_store_records_one_opt_in_per_new_subscriber_even_given_twins(
    infra: bootstrap.Infra,
) -> None:
    """Callers other than the CSV reader may pass rows sharing a phone or an email: the
    first row of each subscriber is the one stored, and its consent the one recorded."""
    pool = infra.pool
    brand_id = await brands.create_brand(pool, slug="twins", name="Tw", sender="+15125550100")
    rows = [
        {"phone": "2125557788", "sms_consent": "no"},
        {"phone": "2125557788", "sms_consent": "yes"},
        {"phone": "4155552671", "sms_consent": "yes", "first_name": "First"},
        {"phone": "4155552671", "sms_consent": "yes", "first_name": "Second"},
        # another phone with the same email: not stored, and its email consent is not
        # given to the subscriber who has that email
        {"phone": "6465550199", "email": "mia@example.com", "email_consent": "no"},
        {"phone": "3125550142", "email": "mia@example.com", "email_consent": "yes"},
        {"email": "leo@example.com", "email_consent": "yes"},
        {"email": "LEO@example.com", "email_consent": "yes"},
    ]
    subscribers = [new_subscriber(r) for r in rows]
    assert await brands.import_subscribers(pool, brand_id, subscribers, source="test") == 4
    assert await ledger(pool, brand_id) == [
        ("+14155552671", "sms", "opted_in"),
        ("leo@example.com", "email", "opted_in"),
    ]
    names = await pool.fetch(
        "SELECT phone, first_name FROM subscribers WHERE brand_id = $1 AND phone IS NOT NULL"
        " ORDER BY phone",
        brand_id,
    )
    assert [(r["phone"], r["first_name"]) for r in names] == [
        ("+12125557788", None),
        ("+14155552671", "First"),
        ("+16465550199", None),
    ]


async def test_an_imported_subscriber_reads_back_with_each_column_in_its_own_field(
    infra: bootstrap.Infra,
) -> None:
    """The audience's and the plan's pages build their rows by position, unchecked: each
    value must land in the field of its name."""
    pool = infra.pool
    brand_id = await brands.create_brand(pool, slug="rows", name="Rows", sender="+15125550100")
    ada = {
        "phone": "(212) 555-7788", "email": "ada@example.com", "first_name": "Ada",
        "last_name": "Lovelace", "timezone": "Europe/London", "plan": "gold", "sms_consent": "yes",
    }  # fmt: skip
    noah = {"email": "noah@example.com", "email_consent": "yes"}
    subscribers = [new_subscriber(ada), new_subscriber(noah)]
    await brands.import_subscribers(pool, brand_id, subscribers, source="test")
    await pool.execute("UPDATE subscribers SET carrier = 'AT&T' WHERE phone IS NOT NULL")

    first, second = await brands.audience_range(pool, brand_id, 0, 10)
    assert first == SubscriberRow(
        id=first.id, phone="+12125557788", timezone="Europe/London", first_name="Ada",
        last_name="Lovelace", email="ada@example.com", attributes={"plan": "gold"},
        carrier="AT&T",
    )  # fmt: skip
    assert second == SubscriberRow(
        id=second.id, phone=None, timezone=None, first_name=None, last_name=None,
        email="noah@example.com", attributes={}, carrier=None,
    )  # fmt: skip
    assert await brands.phone_page(pool, brand_id, 0, 10) == [first]
    assert await brands.audience_range(pool, brand_id, first.id, 10) == [second]
