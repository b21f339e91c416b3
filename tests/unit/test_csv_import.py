"""Subscriber CSV files as users' spreadsheets write them: every bad row is named and
skipped, every good row comes through, and no file makes the reader crash."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterable, Iterator

import phonenumbers
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from phonenumbers import timezone as pn_timezone

from clarion.domain import csv_import
from clarion.domain.contacts import NewSubscriber, new_subscriber, normalize_phone
from clarion.domain.csv_import import MAX_COLUMNS, MAX_FIELD_CHARS, read_subscribers
from clarion.errors import InvalidInput, InvalidPhoneNumber

Outcomes = list[NewSubscriber | InvalidInput]


def read(data: bytes | Iterable[bytes], **options: object) -> Outcomes:
    return list(read_subscribers(data, **options))  # type: ignore[arg-type]


def accepted(outcomes: Outcomes) -> list[NewSubscriber]:
    return [o for o in outcomes if isinstance(o, NewSubscriber)]


def rejected(outcomes: Outcomes) -> dict[int | None, str]:
    return {o.row: str(o) for o in outcomes if isinstance(o, InvalidInput)}


def phones(outcomes: Outcomes) -> list[str | None]:
    return [s.phone for s in accepted(outcomes)]


def comparable(outcomes: Outcomes) -> list[NewSubscriber | str]:
    return [str(o) if isinstance(o, InvalidInput) else o for o in outcomes]


def chunked(data: bytes, size: int) -> Iterator[bytes]:
    return (data[i : i + size] for i in range(0, len(data), size))


# --- the faults of issue 24, each reproduced -------------------------------------------------


def test_a_row_with_more_fields_than_the_header_is_rejected_naming_the_count() -> None:
    out = read(b"phone,first_name\n(212) 555-7788,Ava,gold,x\n+1 415 555 2671,Noah\n")
    assert phones(out) == ["+14155552671"]
    assert rejected(out) == {2: "row 2: 4 fields, but the header has 2"}


def test_a_row_with_fewer_fields_than_the_header_has_the_rest_empty() -> None:
    out = read(b"phone,first_name,city\n(212) 555-7788\n")
    assert accepted(out)[0].first_name is None
    assert accepted(out)[0].attributes == {}


def test_a_latin_1_file_is_read_as_cp1252_and_the_fallback_is_said() -> None:
    told: list[str] = []
    out = list(read_subscribers(b"phone,first_name\n2125557788,Jos\xe9\n", on_fallback=told.append))
    assert [s.first_name for s in accepted(out)] == ["José"]
    assert told == ["cp1252"]


def test_a_utf_8_file_is_not_said_to_fall_back() -> None:
    told: list[str] = []
    out = list(
        read_subscribers("phone,first_name\n2125557788,José\n".encode(), on_fallback=told.append)
    )
    assert [s.first_name for s in accepted(out)] == ["José"]
    assert told == []


def test_a_row_that_cannot_be_decoded_is_rejected_and_suggests_the_encoding() -> None:
    # valid UTF-8 at the start (so UTF-8 is chosen), a cp1252 byte in row 4
    data = b"phone,first_name\n2125557788,Ana\n4155552671,Jos\xc3\xa9\n6465550199,Jos\xe9\n"
    out = read(data, encoding="utf-8")
    assert phones(out) == ["+12125557788", "+14155552671"]
    assert accepted(out)[1].first_name == "José"
    reason = rejected(out)[4]
    assert "field 'first_name'" in reason
    assert "utf-8" in reason
    assert "--encoding" in reason


def test_a_file_with_a_utf_8_bom_is_utf_8_even_with_a_bad_byte_near_the_start() -> None:
    told: list[str] = []
    data = b"\xef\xbb\xbfphone,first_name\n2125557788,Jos\xe9\n4155552671,Zo\xc3\xab\n"
    out = list(read_subscribers(data, on_fallback=told.append))
    assert [s.first_name for s in accepted(out)] == ["Zoë"]
    assert list(rejected(out)) == [2]
    assert told == []


def test_a_utf_16_file_with_a_bom_is_read_as_utf_16() -> None:
    data = "phone,first_name\n2125557788,Zoë\n".encode("utf-16")
    assert [s.first_name for s in accepted(read(data))] == ["Zoë"]


def test_a_binary_file_is_a_clear_error_not_a_crash() -> None:
    with pytest.raises(InvalidInput, match="is this a CSV file"):
        read(bytes(range(256)) * 40)
    with pytest.raises(InvalidInput, match="no phone and no email column"):
        read(bytes(range(1, 256)) * 40)


def test_a_workbook_is_named_as_such() -> None:
    with pytest.raises(InvalidInput, match="workbook"):
        read(b"PK\x03\x04\x14\x00\x06\x00" + bytes(200))


def test_a_nul_byte_rejects_its_row_and_not_the_file() -> None:
    out = read(b"phone,first_name\n2125557788,A\x00va\n4155552671,Noah\n")
    assert phones(out) == ["+14155552671"]
    assert rejected(out) == {2: "row 2, field 'first_name': a NUL character"}


def test_a_utf_8_bom_is_not_part_of_the_first_column_name() -> None:
    out = read(b"\xef\xbb\xbfphone,first_name\n(212) 555-7788,Ava\n")
    assert phones(out) == ["+12125557788"]
    assert rejected(out) == {}


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16", "utf-16-le"])
def test_a_bom_is_dropped_when_the_encoding_is_stated_too(encoding: str) -> None:
    data = "\ufeffphone\n2125557788\n".encode("utf-16-le" if "16" in encoding else encoding)
    assert phones(read(data, encoding=encoding)) == ["+12125557788"]


def test_a_later_duplicate_phone_is_rejected_and_the_first_row_stands() -> None:
    out = read(b"phone,sms_consent\n(212) 555-7788,no\n+1 212 555 7788,yes\n")
    assert [(s.phone, s.sms_consent) for s in accepted(out)] == [("+12125557788", False)]
    assert rejected(out) == {3: "row 3, field 'phone': duplicate of row 2"}


def test_a_duplicate_email_is_rejected_even_with_another_phone() -> None:
    out = read(b"phone,email\n2125557788,ada@example.com\n4155552671,ADA@example.com\n")
    assert phones(out) == ["+12125557788"]
    assert rejected(out) == {3: "row 3, field 'email': duplicate of row 2"}


def test_an_unknown_time_zone_rejects_the_row_naming_the_field() -> None:
    out = read(b"phone,timezone\n2125557788,Mars/Olympus\n4155552671,america/chicago\n")
    assert [s.timezone for s in accepted(out)] == ["America/Chicago"]
    assert rejected(out)[2].startswith("row 2, field 'timezone': unknown time zone 'Mars/Olympus'")


def test_new_subscriber_refuses_an_unknown_time_zone_for_every_caller() -> None:
    with pytest.raises(InvalidInput) as info:
        new_subscriber({"phone": "2125557788", "timezone": "Mars/Olympus"}, row_number=3)
    assert (info.value.field, info.value.row) == ("timezone", 3)


# --- bounds and whole-file errors ------------------------------------------------------------


def test_a_field_longer_than_the_limit_rejects_its_row() -> None:
    long_name = b"x" * (MAX_FIELD_CHARS + 1)
    out = read(b"phone,first_name\n2125557788," + long_name + b"\n4155552671,Noah\n")
    assert phones(out) == ["+14155552671"]
    assert rejected(out) == {2: "row 2, field 'first_name': longer than 1,000 characters"}


@pytest.mark.parametrize("line", [b"1" * 3_000_000, b"1," * 300_000])
def test_a_line_far_longer_than_any_row_is_rejected_and_reading_goes_on(line: bytes) -> None:
    out = read([b"phone\n", line, b"\n2125557788\n"])
    assert phones(out) == ["+12125557788"]
    assert rejected(out) == {2: "row 2: longer than 400,600 characters"}


def test_an_unclosed_quote_cannot_swallow_the_file_into_memory() -> None:
    out = read(b'phone\n"' + b"2125557788\n" * 50_000 + b'"\n4155552671\n')
    assert "+14155552671" in phones(out)


def test_a_header_with_too_many_columns_is_an_error_for_the_file() -> None:
    header = b"phone," + b",".join(b"c%d" % i for i in range(MAX_COLUMNS))
    with pytest.raises(InvalidInput, match=f"at most {MAX_COLUMNS}"):
        read(header + b"\n2125557788\n")


def test_a_header_without_phone_or_email_is_an_error_for_the_file() -> None:
    with pytest.raises(InvalidInput) as info:
        read(b"name;mobile\nAva;2125557788\n")
    assert info.value.exit_code == 65
    assert info.value.row == 1
    assert "'name;mobile'" in str(info.value)


@pytest.mark.parametrize("data", [b"", b"\n\n\r\n", b"\xef\xbb\xbf"])
def test_an_empty_file_is_an_error_for_the_file(data: bytes) -> None:
    with pytest.raises(InvalidInput, match="empty"):
        read(data)


@pytest.mark.parametrize("name", ["rot13", "base64", "nope", "\x00", "utf\x00-8"])
def test_an_unknown_encoding_is_an_error_for_the_file(name: str) -> None:
    # a NUL in the name made Python's codec look-up raise ValueError: a 500 (schemathesis)
    with pytest.raises(InvalidInput, match="unknown text encoding") as caught:
        read(b"phone\n2125557788\n", encoding=name)
    assert caught.value.field == "encoding"


def test_a_duplicated_column_is_an_error_for_the_file() -> None:
    with pytest.raises(InvalidInput, match="column 'phone' appears twice"):
        read(b"phone,Phone\n2125557788,4155552671\n")


# --- what a good file may look like ----------------------------------------------------------


def test_row_numbers_are_csv_records_counting_blank_lines_and_multi_line_fields() -> None:
    data = b'phone,notes\n2125557788,"two\nlines"\n\nnot-a-number,\n4155552671,\n'
    out = read(data)
    assert phones(out) == ["+12125557788", "+14155552671"]
    assert list(rejected(out)) == [4]  # header 1, the quoted field 2, blank 3
    assert accepted(out)[0].attributes == {"notes": "two\nlines"}


def test_a_line_of_empty_fields_is_skipped_like_a_blank_one_but_counted() -> None:
    out = read(b"phone,first_name,tier\n,,\n\nnot-a-number,,\n2125557788,,\n")
    assert phones(out) == ["+12125557788"]
    assert list(rejected(out)) == [4]


@pytest.mark.parametrize("newline", [b"\n", b"\r\n", b"\r"])
def test_every_line_ending_is_read(newline: bytes) -> None:
    data = newline.join([b"phone,first_name", b"2125557788,Ava", b'4155552671,"No\rah"', b""])
    out = read(data)
    assert phones(out) == ["+12125557788", "+14155552671"]
    assert accepted(out)[1].first_name == "No\rah"


def test_chunks_may_split_a_line_a_crlf_and_a_character_anywhere() -> None:
    text = "\ufeffphone,first_name\r\n2125557788,José\r\nnot-a-number,\r\n4155552671,Zoë\r\n"
    data = text.encode()
    whole = comparable(read(data))
    assert len(whole) == 3
    for size in (1, 2, 3, 7):  # (a stated encoding: sniffing joins the start into one chunk)
        assert comparable(read(chunked(data, size), encoding="utf-8")) == whole


def test_a_file_object_is_read_in_chunks() -> None:
    data = b"phone\n" + b"".join(b"+1212555%04d\n" % i for i in range(1000, 1400))
    assert len(accepted(read(io.BytesIO(data)))) == 400  # 5.7 kB: at most READ_BYTES a read


def test_column_names_of_their_own_keep_their_case_and_standard_ones_do_not() -> None:
    out = read(b" Phone ,First_Name,Tier\n2125557788,Ava,gold\n")
    sub = accepted(out)[0]
    assert (sub.phone, sub.first_name, sub.attributes) == ("+12125557788", "Ava", {"Tier": "gold"})


def test_a_value_under_a_column_with_no_name_is_rejected() -> None:
    out = read(b"phone,,tier\n2125557788,,gold\n4155552671,oops,\n")
    assert phones(out) == ["+12125557788"]
    assert rejected(out) == {3: "row 3: a value in column 2, which has no name in the header"}


def test_normalize_phone_agrees_with_phonenumbers_own_validity_and_zones() -> None:
    """It works out the number's type once; the answers must be the library's own."""
    for raw in (
        "(212) 555-7788", "+44 20 7946 0958", "+33 6 12 34 56 78", "+1 800 555 0199",
        "+61 2 9876 5432", "+49 30 901820", "+81 3-1234-5678", "+800 1234 5678",
        "+1 808 555 0100", "+1 907 555 0100", "+1 684 733 1234", "+1 212 555 01",
    ):  # fmt: skip
        parsed = phonenumbers.parse(raw, "US")
        if not phonenumbers.is_valid_number(parsed):
            with pytest.raises(InvalidPhoneNumber):
                normalize_phone(raw)
            continue
        zones = [z for z in pn_timezone.time_zones_for_number(parsed) if z != "Etc/Unknown"]
        e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
        assert normalize_phone(raw) == (e164, zones[0] if len(zones) == 1 else None), raw


# --- properties ------------------------------------------------------------------------------

GOOD_PHONES = [f"+1212555{n:04d}" for n in range(1000, 1030)]
# garbage lines: any byte but a quote (an unclosed quote takes the lines after it into its
# field, as it does in every CSV reader) and the line ends
garbage_line = st.binary(max_size=60).map(
    lambda b: bytes(c for c in b if c not in b'"\r\n').replace(b"+1212555", b"")
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2_000), st.integers(1, 64))
@example(b'"', 1)
@example(b'phone\n\x00\xff"\r', 3)
def test_arbitrary_bytes_never_crash_the_reader(data: bytes, chunk_size: int) -> None:
    with contextlib.suppress(InvalidInput):  # a file that cannot be read at all is said so
        read(chunked(data, chunk_size))
    read(b"phone,email,timezone\n" + data)  # with a header, nothing at all is raised


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.tuples(st.sampled_from(GOOD_PHONES), st.lists(garbage_line, max_size=3))),
    st.sampled_from(["auto", "utf-8", "cp1252", "latin-1"]),
)
def test_every_good_row_comes_through_whatever_lies_between(
    rows: list[tuple[str, list[bytes]]], encoding: str
) -> None:
    wanted = list(dict.fromkeys(phone for phone, _ in rows))  # the first of each phone
    lines = [b"phone,first_name,sms_consent"]
    for phone, garbage in rows:
        lines += [f"{phone},Ana,yes".encode(), *garbage]
    out = read(b"\r\n".join(lines) + b"\n", encoding=encoding)
    assert phones(out) == wanted
    assert all(s.first_name == "Ana" and s.sms_consent for s in accepted(out))
    numbered = [o.row or 0 for o in out if isinstance(o, InvalidInput)]
    assert numbered == sorted(set(numbered))  # one rejection per row, in file order
    assert all(2 <= row <= len(lines) for row in numbered)


def test_the_csv_field_size_limit_is_left_as_it_was() -> None:
    import csv

    before = csv.field_size_limit()
    read(b"phone\n" + b"1" * 200_000 + b"\n")
    assert csv.field_size_limit() == before
    assert csv_import.MAX_ROW_CHARS < 1_000_000  # a rejected row costs a bounded amount
