"""Audience stage: a keyset page of subscribers becomes a recipient batch."""

from __future__ import annotations

from typing import Any

from clarion.pipeline.audience import recipient_batch


def row(
    id: int,
    *,
    phone: str | None = "+12125557788",
    consent: str | None = "opted_in",
    first_name: str | None = None,
    last_name: str | None = None,
    email: str | None = None,
    attributes: dict[str, Any] | None = None,
    timezone: str | None = "America/New_York",
) -> dict[str, Any]:
    return {
        "id": id,
        "phone": phone,
        "timezone": timezone,
        "first_name": first_name,
        "last_name": last_name,
        "email": email,
        "attributes": attributes,
        "sms_consent": consent,
    }


def build(rows: list[dict[str, Any]], *, attempt: int = 1, campaign_id: int = 9):
    return recipient_batch(brand_id=3, campaign_id=campaign_id, attempt=attempt, rows=rows)


def test_every_row_with_a_phone_becomes_a_recipient_and_consent_is_left_to_the_gate() -> None:
    out = build(
        [
            row(1),
            row(2, phone=None),
            row(3, consent="opted_out"),
            row(4, consent="pending"),
            row(5, consent=None),
            row(6, consent="OPTED_IN"),
            row(7, phone="+14155552671"),
        ]
    )
    assert [r.subscriber_id for r in out.recipients] == [1, 3, 4, 5, 6, 7]
    assert out.recipients[-1].phone == "+14155552671"
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
    rows = [row(10), row(11, consent="opted_out"), row(12)]
    assert build(rows).batch_id == build([dict(r) for r in rows]).batch_id


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
