"""Consent ledger exports for audits: CSV and JSON, rows in, text out."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta, timezone

import msgspec

from clarion.compliance.ledger import COLUMNS, ledger_csv, ledger_json
from clarion.domain.rows import ConsentRow

ROWS = [
    ConsentRow(
        id=1,
        subscriber_id=10,
        phone="+12125550001",
        email=None,
        channel="sms",
        status="opted_in",
        source="web_form",
        keyword=None,
        disclosure='Acme: recurring texts, "deals" & news. Reply STOP to cancel, HELP for help',
        created_at=datetime(2026, 3, 1, 14, 30, 5, 123456, tzinfo=UTC),
    ),
    ConsentRow(
        id=2,
        subscriber_id=10,
        phone="+12125550001",
        email="ada@example.com",
        channel="sms",
        status="opted_out",
        source="inbound_sms",
        keyword="STOP",
        disclosure="",
        created_at=datetime(2026, 3, 2, 9, 0, tzinfo=timezone(timedelta(hours=-5))),
    ),
]


def csv_records(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def expected_cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def test_the_csv_starts_with_the_column_header() -> None:
    assert csv_records(ledger_csv(ROWS))[0] == list(COLUMNS)


def test_the_csv_has_one_line_per_row_after_the_header() -> None:
    text = ledger_csv(ROWS)
    assert len(text.splitlines()) == 1 + len(ROWS)
    assert len(csv_records(text)) == 1 + len(ROWS)


def test_the_csv_parses_back_to_every_field_with_iso_timestamps() -> None:
    records = csv_records(ledger_csv(ROWS))[1:]
    for record, row in zip(records, ROWS, strict=True):
        assert record == [expected_cell(getattr(row, c)) for c in COLUMNS]
        parsed = datetime.fromisoformat(record[COLUMNS.index("created_at")])
        assert parsed == row.created_at
        assert parsed.utcoffset() == row.created_at.utcoffset()


def test_the_csv_quotes_commas_and_doubles_quotes_in_the_disclosure() -> None:
    text = ledger_csv(ROWS)
    assert '"Acme: recurring texts, ""deals"" & news. Reply STOP to cancel, HELP for help"' in text
    disclosure = csv_records(text)[1][COLUMNS.index("disclosure")]
    assert disclosure == ROWS[0].disclosure


def test_a_disclosure_with_a_line_break_stays_one_csv_record() -> None:
    row = msgspec.structs.replace(ROWS[0], disclosure="Acme texts.\nReply STOP, to cancel")
    records = csv_records(ledger_csv([row]))
    assert len(records) == 2
    assert records[1][COLUMNS.index("disclosure")] == "Acme texts.\nReply STOP, to cancel"


def test_no_rows_export_as_a_header_only_csv_and_an_empty_json_list() -> None:
    assert csv_records(ledger_csv([])) == [list(COLUMNS)]
    assert json.loads(ledger_json([])) == []


def test_the_json_round_trips_with_the_same_fields_in_column_order() -> None:
    decoded = msgspec.json.decode(ledger_json(ROWS))
    assert len(decoded) == len(ROWS)
    for obj, row in zip(decoded, ROWS, strict=True):
        assert list(obj) == list(COLUMNS)
        for column in COLUMNS:
            if column != "created_at":
                assert obj[column] == getattr(row, column)


def test_the_json_writes_datetimes_as_iso_strings_of_the_same_instant() -> None:
    decoded = json.loads(ledger_json(ROWS))
    for obj, row in zip(decoded, ROWS, strict=True):
        assert isinstance(obj["created_at"], str)
        parsed = datetime.fromisoformat(obj["created_at"])
        assert parsed == row.created_at
        assert parsed.utcoffset() == row.created_at.utcoffset()


def test_the_json_keeps_nulls_and_quotes_in_the_disclosure() -> None:
    first = json.loads(ledger_json(ROWS))[0]
    assert first["email"] is None
    assert first["keyword"] is None
    assert first["disclosure"] == ROWS[0].disclosure
