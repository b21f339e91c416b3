"""Cursor pagination: a cursor continues where the last page stopped; anything else is a
clear error naming `cursor`."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clarion.api.errors import ApiError
from clarion.api.pages import decode, encode, page


@given(st.integers(min_value=0, max_value=2**63 - 1))
def test_a_cursor_gives_back_its_position(after_id: int) -> None:
    assert decode(encode(after_id)) == after_id


@pytest.mark.parametrize(
    "bad", ["x", "MTp4", "Mjo1", "%%%", "MTotMQ", "MTo5OTk5OTk5OTk5OTk5OTk5OTk5OQ"]
)
def test_a_cursor_this_api_did_not_give_is_refused_by_name(bad: str) -> None:
    with pytest.raises(ApiError) as caught:
        decode(bad)
    assert caught.value.status_code == 422
    assert caught.value.field == "cursor"


def test_a_page_has_a_next_cursor_only_when_more_remain() -> None:
    full = page([1, 2, 3], 2, id_of=lambda i: i, shown=str)
    assert full["data"] == ["1", "2"]
    assert decode(full["next_cursor"]) == 2
    last = page([1, 2], 2, id_of=lambda i: i, shown=str)
    assert last["next_cursor"] is None
    assert page([], 2, id_of=lambda i: i, shown=str) == {"data": [], "next_cursor": None}
