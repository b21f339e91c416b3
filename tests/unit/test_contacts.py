"""Subscriber import: E.164 phones, time zones, attributes and consent."""

from __future__ import annotations

import pytest

from clarion.domain.contacts import new_subscriber, normalize_phone
from clarion.errors import InvalidInput, InvalidPhoneNumber


@pytest.mark.parametrize(
    ("raw", "e164", "zone"),
    [
        ("(212) 555-7788", "+12125557788", "America/New_York"),
        ("212.555.7788", "+12125557788", "America/New_York"),
        ("+1-212-555-7788", "+12125557788", "America/New_York"),
        ("(415) 555-2671", "+14155552671", "America/Los_Angeles"),
        ("+44 20 7946 0958", "+442079460958", "Europe/London"),
    ],
)
def test_a_phone_number_normalizes_to_e164_and_its_time_zone(
    raw: str, e164: str, zone: str
) -> None:
    assert normalize_phone(raw) == (e164, zone)


@pytest.mark.parametrize("raw", ["not-a-number", "555-12"])
def test_an_invalid_phone_names_the_row_and_the_raw_value(raw: str) -> None:
    with pytest.raises(InvalidPhoneNumber) as info:
        new_subscriber({"phone": raw, "first_name": "Ada"}, row_number=7)
    message = str(info.value)
    assert "row 7" in message
    assert repr(raw) in message
    assert info.value.row == 7
    assert info.value.raw == raw
    assert info.value.field == "phone"


def test_an_invalid_phone_error_keeps_the_reason_without_repeating_the_prefix() -> None:
    with pytest.raises(InvalidPhoneNumber) as info:
        new_subscriber({"phone": "555-12"}, row_number=2)
    assert str(info.value).count("invalid phone number") == 1
    assert "not a valid number" in str(info.value)


def test_normalize_phone_on_its_own_raises_invalid_phone_number() -> None:
    with pytest.raises(InvalidPhoneNumber, match="'not-a-number'"):
        normalize_phone("not-a-number")


def test_a_valid_row_is_normalized() -> None:
    sub = new_subscriber(
        {
            "phone": " (212) 555-7788 ",
            "email": "  Ada.Lovelace@Example.COM ",
            "first_name": "Ada",
            "last_name": "Lovelace",
            "sms_consent": "yes",
        }
    )
    assert sub.phone == "+12125557788"
    assert sub.timezone == "America/New_York"
    assert sub.email == "ada.lovelace@example.com"
    assert (sub.first_name, sub.last_name) == ("Ada", "Lovelace")
    assert sub.attributes == {}
    assert sub.sms_consent is True


def test_extra_columns_become_attributes_and_blank_ones_are_dropped() -> None:
    sub = new_subscriber(
        {
            "phone": "(212) 555-7788",
            "first_name": "Ada",
            "city": "London",
            "plan": "gold",
            "visits": 3,
            "notes": "",
            "referrer": None,
        }
    )
    assert sub.attributes == {"city": "London", "plan": "gold", "visits": 3}


def test_an_explicit_time_zone_wins_over_the_phone_derived_one() -> None:
    sub = new_subscriber({"phone": "(212) 555-7788", "timezone": "America/Chicago"})
    assert sub.timezone == "America/Chicago"


def test_an_email_only_subscriber_has_no_phone_or_zone() -> None:
    sub = new_subscriber({"email": "A@B.CO"})
    assert (sub.phone, sub.timezone, sub.email) == (None, None, "a@b.co")


def test_a_row_with_neither_phone_nor_email_is_refused() -> None:
    with pytest.raises(InvalidInput, match="row 4") as info:
        new_subscriber({"phone": "  ", "email": "", "first_name": "Ada"}, row_number=4)
    assert not isinstance(info.value, InvalidPhoneNumber)


def test_an_email_without_an_at_sign_is_refused_naming_the_field() -> None:
    with pytest.raises(InvalidInput) as info:
        new_subscriber({"email": "ada.example.com"}, row_number=9)
    assert info.value.field == "email"
    assert info.value.row == 9


@pytest.mark.parametrize(
    ("value", "consent"),
    [
        ("yes", True),
        ("YES", True),
        ("1", True),
        ("true", True),
        (" True ", True),
        ("y", True),
        ("opted_in", True),
        (True, True),
        (1, True),
        ("no", False),
        ("", False),
        ("0", False),
        ("false", False),
        ("opted_out", False),
        (False, False),
        (None, False),
    ],
)
def test_sms_consent_parsing(value: object, consent: bool) -> None:
    sub = new_subscriber({"phone": "(212) 555-7788", "sms_consent": value})
    assert sub.sms_consent is consent


def test_a_missing_sms_consent_column_means_no_consent() -> None:
    assert new_subscriber({"phone": "(212) 555-7788"}).sms_consent is False


def test_email_consent_is_read_per_row_and_needs_an_address() -> None:
    from clarion.domain.contacts import new_subscriber

    both = new_subscriber(
        {"phone": "+12125552368", "email": "a@example.net", "email_consent": "yes"}
    )
    assert both.email_consent is True
    assert both.sms_consent is False
    assert "email_consent" not in both.attributes
    no_address = new_subscriber({"phone": "+12125552369", "email_consent": "yes"})
    assert no_address.email_consent is False


def test_a_row_with_a_column_added_by_a_later_migration_still_reads() -> None:
    """A process of the previous version reads rows of a schema one migration ahead."""
    from datetime import UTC, datetime

    import msgspec

    from clarion.domain.rows import BrandRow

    row = {
        "id": 1, "slug": "a", "name": "A", "sender": "+15125550100", "help_text": "",
        "created_at": datetime(2026, 1, 1, tzinfo=UTC), "smart_sending_h": 16.0,
        "support_contact": "", "email_from": None, "max_segments": 10,
    }  # fmt: skip
    assert msgspec.convert({**row, "a_new_column": 7}, BrandRow).name == "A"
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({**row, "max_segments": "ten"}, BrandRow)
