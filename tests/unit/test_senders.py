"""A brand's senders: phone numbers kept as E.164, short codes as they are, nothing else (a
brand could be created sending from "notanumber")."""

from __future__ import annotations

import pytest

from clarion.domain.senders import normalize_sender
from clarion.errors import InvalidInput


@pytest.mark.parametrize(
    ("raw", "stored"),
    [
        ("+15125550100", "+15125550100"),
        ("(512) 555-0177", "+15125550177"),
        (" 1 512 555 0100 ", "+15125550100"),
        ("12345", "12345"),
        ("898211", "898211"),
    ],
)
def test_a_sender_is_stored_as_e164_or_as_a_short_code(raw: str, stored: str) -> None:
    assert normalize_sender(raw) == stored


@pytest.mark.parametrize("raw", ["notanumber", "", "0123", "1234", "01234", "+1555", "x" * 10_000])
def test_anything_else_is_refused_naming_the_sender(raw: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        normalize_sender(raw)
    assert refused.value.field == "sender"
    assert len(str(refused.value)) < 300  # a long input is not echoed whole
