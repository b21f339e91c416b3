"""What the audience API takes from a brand's systems — subscribers, events, products — is
checked by the domain: any JSON at all is either accepted, normalised, or refused with an
`InvalidInput` naming a field; never another exception."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clarion.domain.catalog import product_of
from clarion.domain.events import event_in
from clarion.domain.subscribers import signup_in, subscriber_in, subscriber_patch
from clarion.errors import InvalidInput

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
KEYS = [
    "phone", "email", "timezone", "first_name", "attributes", "consent", "id", "type",
    "occurred_at", "subscriber", "value", "items", "name", "price", "categories", "url",
    "page", "disclosure", "ip", "user_agent",
]  # fmt: skip
objects = st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=6), json_values, max_size=6)


@settings(max_examples=400)
@given(objects | json_values)
def test_any_json_is_accepted_or_refused_by_field(raw: Any) -> None:
    unnamed = []
    for check in (
        subscriber_in,
        subscriber_patch,
        signup_in,
        product_of,
        lambda r: event_in(r, now=NOW),
    ):
        try:
            check(raw)
        except InvalidInput as exc:
            if not exc.field:
                unnamed.append(exc)
    assert unnamed == []


def test_a_subscriber_is_normalised() -> None:
    s = subscriber_in(
        {"phone": "(512) 555-0142", "email": " Ava@Example.COM ", "attributes": {"vip": True}}
    )
    assert (s.phone, s.email, s.timezone) == ("+15125550142", "ava@example.com", "America/Chicago")
    assert s.attributes == {"vip": True}


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({}, "phone"),
        ({"phone": "12"}, "phone"),
        ({"email": "not-an-address"}, "email"),
        ({"phone": "+15125550142", "timezone": "Moon/Base"}, "timezone"),
        ({"phone": "+15125550142", "attributes": {"1st": 1}}, "attributes.1st"),
        ({"phone": "+15125550142", "attributes": {"x": [1, 2]}}, "attributes.x"),
        ({"phone": "+15125550142", "attributes": {"x": float("nan")}}, "attributes.x"),
        ({"phone": "+15125550142", "consent": {"push": {"source": "x"}}}, "consent.push"),
        ({"email": "a@b.co", "consent": {"sms": {"source": "form"}}}, "consent.sms"),
        ({"phone": "+15125550142", "consent": {"sms": {"source": " "}}}, "consent.sms.source"),
        ({"phone": "+15125550142", "first_name": "A\x00"}, "first_name"),
        ({"phone": "+15125550142", "nickname": "A"}, "nickname"),
    ],
)
def test_a_bad_subscriber_names_its_field(raw: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        subscriber_in(raw)
    assert caught.value.field == field


def test_a_patch_keeps_only_what_it_names_and_null_removes_an_attribute() -> None:
    p = subscriber_patch({"last_name": None, "attributes": {"tier": "gold", "vip": None}})
    assert p.set == {"last_name": None}
    assert p.attributes == {"tier": "gold"}
    assert p.removed == ["vip"]


def test_an_event_far_in_the_future_or_without_an_offset_is_refused() -> None:
    base = {"id": "e", "type": "ordered", "subscriber": {"id": 1}}
    for when in ("2026-12-08T12:00:00Z", "2026-12-01T12:00:00", "1999-12-31T23:00:00Z"):
        with pytest.raises(InvalidInput) as caught:
            event_in({**base, "occurred_at": when}, now=NOW)
        assert caught.value.field == "occurred_at"
    ok = event_in({**base, "occurred_at": "2026-12-07T11:00:00+01:00"}, now=NOW)
    assert ok.occurred_at.utcoffset() is not None
