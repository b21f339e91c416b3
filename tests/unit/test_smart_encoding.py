"""Smart encoding: the GSM-7 suggestion `sms_segments` makes for look-alike characters."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clarion.compliance.encoding import SMART_SUBSTITUTIONS, sms_segments

GSM_ALPHABET = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
    "\f^{}\\[~]|€"
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("It’s here", "It's here", id="right-single-quote"),
        pytest.param("‘Fresh’ bread", "'Fresh' bread", id="single-curly-quotes"),
        pytest.param("“Fresh” bread", '"Fresh" bread', id="double-curly-quotes"),
        pytest.param("Sale — today", "Sale - today", id="em-dash"),
        pytest.param("9–5 daily", "9-5 daily", id="en-dash"),
        pytest.param("Wait for it…", "Wait for it...", id="ellipsis"),
        pytest.param("20%\u00a0off", "20% off", id="non-breaking-space"),
        pytest.param("“Acme’s” 9–5 — wait…\u00a0now", '"Acme\'s" 9-5 - wait... now', id="all"),
    ],
)
def test_a_look_alike_character_gets_a_gsm7_suggestion(text: str, expected: str) -> None:
    result = sms_segments(text)
    assert result.encoding == "UCS-2"
    assert result.suggestion == expected
    assert sms_segments(expected).encoding == "GSM-7"


def test_one_curly_quote_in_a_100_character_message_costs_a_segment_the_suggestion_saves() -> None:
    text = "Acme Bakery: it’s back" + "a" * 78
    assert len(text) == 100
    result = sms_segments(text)
    assert (result.encoding, result.segments) == ("UCS-2", 2)
    assert result.suggestion is not None
    fixed = sms_segments(result.suggestion)
    assert (fixed.encoding, fixed.segments) == ("GSM-7", 1)


def test_pure_gsm_text_has_no_suggestion() -> None:
    assert (
        sms_segments("Acme Bakery: 20% off [today] {only} €5 ~ ^ | \\ Reply STOP").suggestion
        is None
    )


def test_the_empty_text_has_no_suggestion() -> None:
    assert sms_segments("").suggestion is None


def test_emoji_text_without_look_alikes_has_no_suggestion() -> None:
    result = sms_segments("Fresh bread 🥖 today 😀")
    assert result.encoding == "UCS-2"
    assert result.suggestion is None


def test_emoji_text_with_a_look_alike_gets_a_suggestion_that_is_still_ucs2() -> None:
    result = sms_segments("It’s fresh 🥖")
    assert result.suggestion == "It's fresh 🥖"
    fixed = sms_segments(result.suggestion)
    assert fixed.encoding == "UCS-2"
    assert fixed.non_gsm == ("🥖",)


@given(st.text(alphabet=GSM_ALPHABET))
def test_gsm_text_never_gets_a_suggestion(text: str) -> None:
    result = sms_segments(text)
    assert result.encoding == "GSM-7"
    assert result.suggestion is None


@given(
    st.lists(
        st.one_of(st.sampled_from(GSM_ALPHABET), st.sampled_from(sorted(SMART_SUBSTITUTIONS))),
        min_size=1,
    )
    .map("".join)
    .filter(lambda text: any(ch in SMART_SUBSTITUTIONS for ch in text))
)
def test_gsm_text_with_look_alikes_always_gets_a_gsm7_suggestion(text: str) -> None:
    result = sms_segments(text)
    assert result.suggestion is not None
    assert sms_segments(result.suggestion).encoding == "GSM-7"
    assert not any(ch in SMART_SUBSTITUTIONS for ch in result.suggestion)
