"""Audience stage: a keyset page of subscribers becomes a recipient batch."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from clarion.domain.rows import SubscriberRow
from clarion.pipeline.audience import recipient_batch, split_pages


def row(
    id: int,
    *,
    phone: str | None = "+12125557788",
    first_name: str | None = None,
    last_name: str | None = None,
    email: str | None = None,
    attributes: dict[str, Any] | None = None,
    timezone: str | None = "America/New_York",
    carrier: str | None = None,
) -> SubscriberRow:
    return SubscriberRow(
        id=id,
        phone=phone,
        timezone=timezone,
        first_name=first_name,
        last_name=last_name,
        email=email,
        attributes=attributes,
        carrier=carrier,
    )


def build(rows: list[SubscriberRow], *, attempt: int = 1, campaign_id: int = 9):
    return recipient_batch(brand_id=3, campaign_id=campaign_id, attempt=attempt, rows=rows)


def test_every_row_with_a_phone_becomes_a_recipient_with_its_stored_carrier() -> None:
    # a subscriber row carries no consent: the send stage's gate reads it when it sends
    out = build(
        [
            row(1),
            row(2, phone=None),
            row(3),
            row(4, carrier="AT&T"),
            row(5, email="a@example.com"),
            row(6, timezone=None),
            row(7, phone="+14155552671"),
        ]
    )
    assert [r.subscriber_id for r in out.recipients] == [1, 3, 4, 5, 6, 7]
    assert out.recipients[-1].phone == "+14155552671"
    assert [r.carrier for r in out.recipients] == [None, None, "AT&T", None, None, None]
    assert (out.brand_id, out.campaign_id) == (3, 9)


def test_attributes_merge_with_the_standard_fields_into_fields() -> None:
    out = build(
        [
            row(
                1,
                first_name="Ada",
                last_name="Lovelace",
                email="ada@example.com",
                attributes={"city": "London", "plan": "gold"},
                timezone="Europe/London",
            )
        ]
    )
    (r,) = out.recipients
    assert r.fields == {
        "city": "London",
        "plan": "gold",
        "first_name": "Ada",
        "last_name": "Lovelace",
        "email": "ada@example.com",
    }
    assert r.timezone == "Europe/London"


def test_missing_standard_fields_are_left_out_so_templates_can_default_them() -> None:
    out = build([row(1, first_name="Ada", attributes=None)])
    assert out.recipients[0].fields == {"first_name": "Ada"}


def test_a_standard_field_wins_over_an_attribute_of_the_same_name() -> None:
    out = build([row(1, first_name="Ada", attributes={"first_name": "stale", "x": 1})])
    assert out.recipients[0].fields == {"first_name": "Ada", "x": 1}


def test_merging_does_not_mutate_the_row_attributes() -> None:
    attributes = {"city": "London"}
    build([row(1, first_name="Ada", attributes=attributes)])
    assert attributes == {"city": "London"}


def test_the_batch_id_is_the_same_for_a_republished_page() -> None:
    def page() -> list[SubscriberRow]:
        return [row(10), row(11, phone=None), row(12)]

    assert build(page()).batch_id == build(page()).batch_id


def test_the_batch_id_depends_on_the_first_row_even_when_it_is_not_eligible() -> None:
    eligible_first = build([row(10), row(12)])
    ineligible_first = build([row(11, phone=None), row(12)])
    assert eligible_first.batch_id != ineligible_first.batch_id
    assert [r.subscriber_id for r in ineligible_first.recipients] == [12]


def test_the_batch_id_differs_across_attempts_and_campaigns() -> None:
    rows = [row(10), row(12)]
    ids = {
        build(rows, attempt=1).batch_id,
        build(rows, attempt=2).batch_id,
        build(rows, attempt=1, campaign_id=10).batch_id,
        build([row(11), row(12)], attempt=1).batch_id,
    }
    assert len(ids) == 4


def test_an_empty_page_gives_an_empty_batch_with_a_stable_id() -> None:
    out = build([])
    assert out.recipients == []
    assert out.batch_id == build([]).batch_id
    assert out.batch_id != build([], attempt=2).batch_id


# --- split_pages: one contiguous read, a page per partition --------------------------------


def rows_of(ids: list[int]) -> list[SubscriberRow]:
    return [row(i) for i in ids]


def test_a_read_gives_each_partition_a_page_and_moves_its_cursor() -> None:
    # 8 partitions, pages of 3: subscribers 1..30 read in one go (not the end of the audience)
    pages, after = split_pages(rows_of(list(range(1, 31))), [0] * 8, page_size=3, exhausted=False)
    by_part = {p: [r.id for r in page] for p, page in pages}
    assert by_part[0] == [8, 16, 24]
    assert by_part[5] == [5, 13, 21]
    # full pages: the cursor is the page's last row
    assert (after[0], after[5]) == (24, 21)
    # partitions 1..6 have a 4th row in the read (25..30): it waits for the next read
    assert all(len(page) == 3 for _, page in pages)


def test_a_partition_with_fewer_rows_than_a_page_moves_to_the_end_of_the_read() -> None:
    ids = [i for i in range(1, 41) if i % 8 != 3] + [3]  # partition 3 has one row only
    pages, after = split_pages(rows_of(sorted(ids)), [0] * 8, page_size=4, exhausted=False)
    assert dict(pages)[3] == [row(3)]
    assert after[3] == 40  # nothing of it up to the read's last id is left behind


def test_rows_at_or_below_a_partitions_cursor_and_done_partitions_are_skipped() -> None:
    cursors = [0, 0, 18, 0, 0, 0, 0, -1]  # partition 2 is further on; partition 7 is done
    pages, after = split_pages(rows_of(list(range(1, 41))), cursors, page_size=2, exhausted=True)
    by_part = {p: [r.id for r in page] for p, page in pages}
    assert by_part[2] == [26, 34]
    assert 7 not in by_part
    assert after[7] == -1


def test_the_last_read_ends_every_partition_it_has_paged_whole() -> None:
    pages, after = split_pages(rows_of([1, 2, 9, 10, 17]), [0] * 8, page_size=2, exhausted=True)
    assert {p: [r.id for r in page] for p, page in pages} == {1: [1, 9], 2: [2, 10]}
    # partitions 1 and 2 have full pages: there may be more of them (17 is partition 1's,
    # read next time); the others are done
    assert after == [-1, 9, 10, -1, -1, -1, -1, -1]


@settings(max_examples=200, deadline=None)
@given(
    ids=st.sets(st.integers(1, 5_000), max_size=400),
    page_size=st.integers(1, 40),
    behind=st.lists(st.integers(0, 5_000), min_size=8, max_size=8),
    legacy=st.booleans(),
)
def test_reading_until_done_publishes_every_subscriber_once_in_pages_of_at_most_a_page(
    ids: set[int], page_size: int, behind: list[int], legacy: bool
) -> None:
    """The whole walk, from fresh cursors or from partitions left at different ids (an
    upgrade mid-campaign): every subscriber above its partition's cursor is published
    exactly once, in id order per partition, and the walk ends."""
    everyone = sorted(ids)
    cursors = behind if legacy else [0] * 8
    expected = [i for i in everyone if i > cursors[i % 8]]
    published: list[int] = []
    size = 8 * page_size
    for _ in range(10_000):
        open_cursors = [c for c in cursors if c >= 0]
        if not open_cursors:
            break
        start = min(open_cursors)
        rows = rows_of([i for i in everyone if i > start][:size])
        pages, after = split_pages(rows, cursors, page_size=page_size, exhausted=len(rows) < size)
        for p, page in pages:
            assert len(page) <= page_size
            assert all(r.id % 8 == p for r in page)
            published += [r.id for r in page]
        assert after != cursors or not open_cursors, "a read that moves no cursor"
        cursors = after
    else:
        raise AssertionError("the walk did not end")
    assert sorted(published) == expected
    assert len(published) == len(set(published))
