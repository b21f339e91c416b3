"""SMS encoding and segment counts (GSM 03.38 / UCS-2), as Twilio's calculator counts."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clarion.compliance.encoding import sms_segments

GSM_BASIC_SAMPLE = "@£$¥èéÇØÅåΔ_ΦΓΛΩ !\"#%&'()*+,-./0123456789:;<=>?ABCXYZabcxyzÄÖÑÜ§¿äöñüà"
GSM_EXTENDED = "\f^{}\\[~]|€"


@pytest.mark.parametrize(
    ("text", "encoding", "segments", "units"),
    [
        pytest.param("", "GSM-7", 0, 0, id="empty"),
        pytest.param("a", "GSM-7", 1, 1, id="one-char"),
        pytest.param("a" * 160, "GSM-7", 1, 160, id="160-gsm"),
        pytest.param("a" * 161, "GSM-7", 2, 161, id="161-gsm"),
        pytest.param("a" * 306, "GSM-7", 2, 306, id="2x153-gsm"),
        pytest.param("a" * 307, "GSM-7", 3, 307, id="2x153+1-gsm"),
        pytest.param("a" * 459, "GSM-7", 3, 459, id="3x153-gsm"),
        pytest.param("€" * 80, "GSM-7", 1, 160, id="80-euro"),
        pytest.param("€" * 81, "GSM-7", 2, 162, id="81-euro"),
        pytest.param("{" * 80, "GSM-7", 1, 160, id="80-brace"),
        pytest.param("[" * 81, "GSM-7", 2, 162, id="81-bracket"),
        pytest.param("a" * 158 + "€", "GSM-7", 1, 160, id="158a+euro"),
        pytest.param("a" * 159 + "€", "GSM-7", 2, 161, id="159a+euro"),
        pytest.param("’" * 70, "UCS-2", 1, 70, id="70-ucs2"),
        pytest.param("’" * 71, "UCS-2", 2, 71, id="71-ucs2"),
        pytest.param("’" + "a" * 133, "UCS-2", 2, 134, id="2x67-ucs2"),
        pytest.param("’" + "a" * 134, "UCS-2", 3, 135, id="2x67+1-ucs2"),
        pytest.param("😀" * 35, "UCS-2", 1, 70, id="35-emoji"),
        pytest.param("😀" * 36, "UCS-2", 2, 72, id="36-emoji"),
    ],
)
def test_segment_table(text: str, encoding: str, segments: int, units: int) -> None:
    result = sms_segments(text)
    assert (result.encoding, result.segments, result.units) == (encoding, segments, units)


def test_the_empty_string_is_zero_gsm_segments_with_nothing_non_gsm() -> None:
    result = sms_segments("")
    assert result.non_gsm == ()
    assert result.segments == 0


@pytest.mark.parametrize("ch", list(GSM_EXTENDED))
def test_every_extension_character_counts_two_septets(ch: str) -> None:
    result = sms_segments("a" + ch)
    assert result.encoding == "GSM-7"
    assert result.units == 3
    assert result.non_gsm == ()


def test_the_basic_gsm_alphabet_stays_gsm_at_one_septet_each() -> None:
    result = sms_segments(GSM_BASIC_SAMPLE)
    assert result.encoding == "GSM-7"
    assert result.units == len(GSM_BASIC_SAMPLE)
    assert result.non_gsm == ()


def test_an_escape_pair_is_never_split_across_parts() -> None:
    # 306 septets would fit two 153-septet parts exactly, but the '€' at septets 153-154
    # cannot straddle parts 1 and 2, so it moves to part 2, which then overflows into a third.
    text = "a" * 152 + "€" + "a" * 152
    result = sms_segments(text)
    assert result.units == 306
    assert result.segments == 3
    assert sms_segments("a" * 306).segments == 2


def test_an_escape_pair_that_fits_the_first_part_does_not_add_a_part() -> None:
    text = "a" * 151 + "€" + "a" * 153
    result = sms_segments(text)
    assert result.units == 306
    assert result.segments == 2


@pytest.mark.parametrize(
    ("text", "non_gsm"),
    [
        ("It’s on", ("’",)),
        ("Sale 😀 now", ("😀",)),
        ("“Hi” ’ 😀 ’", ("“", "”", "’", "😀")),
        ("naïve", ("ï",)),
    ],
)
def test_a_non_gsm_character_forces_ucs2_and_is_reported_in_order_once(
    text: str, non_gsm: tuple[str, ...]
) -> None:
    result = sms_segments(text)
    assert result.encoding == "UCS-2"
    assert result.non_gsm == non_gsm


def test_in_ucs2_an_emoji_counts_two_utf16_units() -> None:
    assert sms_segments("hi 😀").units == 5
    assert sms_segments("hi ’").units == 4


def test_a_surrogate_pair_is_never_split_across_parts() -> None:
    # 134 units would fit two 67-unit parts exactly, but the emoji at units 67-68 moves whole
    # to part 2, which then needs a third part.
    text = "a" * 66 + "😀" + "a" * 66
    result = sms_segments(text)
    assert (result.encoding, result.units) == ("UCS-2", 134)
    assert result.segments == 3
    assert sms_segments("’" + "a" * 133).segments == 2


def test_in_ucs2_extension_characters_count_one_unit() -> None:
    result = sms_segments("’€{")
    assert (result.encoding, result.units) == ("UCS-2", 3)


def _expected_parts(sizes: list[int], single: int, part: int) -> int:
    """Reference: split into parts greedily, never breaking a character."""
    if sum(sizes) <= single:
        return 1 if sizes else 0
    parts: list[int] = [0]
    for s in sizes:
        if parts[-1] + s > part:
            parts.append(0)
        parts[-1] += s
    assert all(p <= part for p in parts)
    return len(parts)


@given(st.text(alphabet=st.sampled_from("ab€{ "), max_size=500))
def test_gsm_segments_match_a_reference_packing(text: str) -> None:
    sizes = [2 if ch in GSM_EXTENDED else 1 for ch in text]
    result = sms_segments(text)
    assert result.encoding == "GSM-7"
    assert result.units == sum(sizes)
    assert result.segments == _expected_parts(sizes, 160, 153)


@given(st.text(alphabet=st.sampled_from("a’😀"), min_size=1, max_size=300))
def test_ucs2_segments_match_a_reference_packing(text: str) -> None:
    result = sms_segments(text + "’")
    sizes = [2 if ch == "😀" else 1 for ch in text + "’"]
    assert result.encoding == "UCS-2"
    assert result.units == sum(sizes)
    assert result.segments == _expected_parts(sizes, 70, 67)


@given(st.text(alphabet=st.sampled_from("a€’😀"), max_size=300), st.sampled_from("a€’😀"))
def test_appending_a_character_never_reduces_the_segment_count(text: str, ch: str) -> None:
    assert sms_segments(text + ch).segments >= sms_segments(text).segments


@given(st.text(alphabet=st.sampled_from('@£\nÅ_ΦΩ!"#-./09:;<=>?¡AZÄ§¿az^ö€é\r]\\'), max_size=600))
def test_the_basic_set_fast_path_agrees_with_the_character_walk(text: str) -> None:
    from clarion.compliance.encoding import _segments

    assert sms_segments(text) == _segments(text)
