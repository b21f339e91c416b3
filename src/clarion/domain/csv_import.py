"""Subscriber CSV files read as a stream: one outcome per data row, never a crash.

Bytes come in chunks (a file, an HTTP body); out comes, for every data row, a `NewSubscriber`
or the `InvalidInput` that says why that row was left out (its `row` is the CSV record's
number, the header being row 1, as a spreadsheet numbers it). Only a file that cannot be read
at all (empty, no phone or email column, not CSV) raises. Memory is bounded by the size of
one row, except for the phones and emails already seen (to reject duplicates): about 130
bytes each, so 260 MB for a million rows with both.
"""

from __future__ import annotations

import codecs
import csv
import functools
import re
from collections.abc import Callable, Iterable, Iterator
from typing import Protocol, runtime_checkable

from clarion.domain.contacts import STANDARD_COLUMNS, NewSubscriber, new_subscriber
from clarion.errors import InvalidInput

AUTO = "auto"  # UTF-8 with or without a BOM (UTF-16 with one); else cp1252 if not UTF-8
FALLBACK_ENCODING = "cp1252"  # what Excel on Windows writes as "CSV (Comma delimited)"
MAX_FIELD_CHARS = 1_000
MAX_COLUMNS = 200
# The longest row that can still be valid: every field quoted, every character a doubled
# quote. Longer input is rejected before the csv module holds it, so memory stays bounded.
MAX_ROW_CHARS = MAX_COLUMNS * (2 * MAX_FIELD_CHARS + 3)
SNIFF_BYTES = 64 * 1024  # how much of the file's start decides its encoding
READ_BYTES = 64 * 1024  # chunk size when reading a file object

_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)")  # a line and its end, as csv wants it
_LINE_END = re.compile(r"\r\n|\r|\n")
# PostgreSQL stores no NUL; a lone surrogate is a byte the decoder could not read
# (surrogateescape) and cannot be encoded to send.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_WORKBOOK_MAGIC = (b"PK\x03\x04", b"\xd0\xcf\x11\xe0")  # .xlsx (zip), .xls (OLE)


@runtime_checkable
class Readable(Protocol):
    """A binary file object, or anything with its `read`."""

    def read(self, size: int = -1, /) -> bytes: ...


Outcome = NewSubscriber | InvalidInput
# A data row that is well-formed CSV, before its values are checked: (its row number, its
# values by column name).
Record = tuple[int, dict[str, str]]


def read_subscribers(
    source: Readable | Iterable[bytes] | bytes,
    *,
    encoding: str = AUTO,
    on_fallback: Callable[[str], None] | None = None,
) -> Iterator[Outcome]:
    """Per data row, a `NewSubscriber` or an `InvalidInput` (with `row`), in file order.

    `encoding` is a Python codec name, or `AUTO`: what a BOM says (UTF-8 or UTF-16), else
    UTF-8 unless the first `SNIFF_BYTES` are not UTF-8, in which case cp1252 is used and
    `on_fallback` is called with its name. Rows with bytes the encoding cannot decode, a
    NUL, more fields than the header, a field longer than `MAX_FIELD_CHARS` or a phone or
    email of an earlier row are rejected; fewer fields than the header leave the rest
    empty; blank lines (and lines of empty fields) are skipped, but numbered. Raises
    `InvalidInput` only for the file as a whole: unknown encoding, empty file, a workbook,
    a header without a phone or an email column."""
    seen = Seen()
    for item in read_records(source, encoding=encoding, on_fallback=on_fallback):
        yield seen.first(*check_record(item))


def read_records(
    source: Readable | Iterable[bytes] | bytes,
    *,
    encoding: str = AUTO,
    on_fallback: Callable[[str], None] | None = None,
) -> Iterator[Record | InvalidInput]:
    """`read_subscribers` in two steps: per data row, its `Record` (well-formed, values not
    checked yet) or the `InvalidInput` that says why it is not one. `check_record` then
    checks a record, and `Seen.first` rejects a phone or email of an earlier row: the
    checking, which is most of the cost, can run on several cores."""
    if encoding != AUTO:
        encoding = _text_codec(encoding)
    chunks = iter(_chunks(source))
    if encoding == AUTO:
        chunks, encoding, fell_back = _sniff(chunks)
        if fell_back and on_fallback is not None:
            on_fallback(encoding)
    if codecs.lookup(encoding).name == "utf-8":
        encoding = "utf-8-sig"  # drops a BOM: Excel's "CSV UTF-8" starts with one
    decoder = codecs.getincrementaldecoder(encoding)(errors="surrogateescape")
    encoding = encoding.removesuffix("-sig")
    yield from _Rows(_Lines(chunks, decoder, encoding), encoding)


def check_record(item: Record | InvalidInput) -> tuple[int, Outcome]:
    """(the row's number, its subscriber or why it is not one); a rejection passes
    through."""
    if isinstance(item, InvalidInput):
        return item.row or 0, item
    row, values = item
    try:
        return row, new_subscriber(values, row_number=row)
    except InvalidInput as exc:
        return row, exc


def check_records(items: list[Record | InvalidInput]) -> list[tuple[int, Outcome]]:
    """`check_record` over a chunk (what a worker process is sent)."""
    return [check_record(item) for item in items]


class Seen:
    """The phones and emails of the rows so far, and the row that brought each."""

    def __init__(self) -> None:
        self._rows: dict[str, int] = {}

    def first(self, row: int, outcome: Outcome) -> Outcome:
        """`outcome`, remembered; or, when an earlier row had its phone or email, the
        rejection that names that row (the ledger records what the earlier row said)."""
        if isinstance(outcome, InvalidInput):
            return outcome
        return _first_seen(outcome, self._rows, row)


class _RowTooLong(Exception):
    """Raised through the csv reader by `_Lines` to abandon a row past `MAX_ROW_CHARS`."""


class _Lines:
    """Text lines with their ends (\\r\\n, \\r or \\n: no other character ends a CSV
    record), decoded from byte chunks. A line with no end within `MAX_ROW_CHARS`, or a row
    (`row_chars`, reset by the caller) growing past it, raises `_RowTooLong`; what is left
    of the line is then dropped."""

    def __init__(
        self, chunks: Iterator[bytes], decoder: codecs.IncrementalDecoder, encoding: str
    ) -> None:
        self._chunks = chunks
        self._decoder = decoder
        self._encoding = encoding
        self._ready: list[str] = []
        self._next = 0
        self._rest = ""  # text after the last complete line
        self._skipping = False  # dropping the rest of an over-long line
        self._done = False
        self.row_chars = 0

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        if self._next == len(self._ready):
            self._refill()
        line = self._ready[self._next]
        self._next += 1
        self.row_chars += len(line)
        if self.row_chars > MAX_ROW_CHARS:
            raise _RowTooLong
        return line

    def _refill(self) -> None:
        """Decode chunks until at least one line is ready; `StopIteration` at the end."""
        self._ready, self._next = [], 0
        while not self._ready:
            if self._done:
                raise StopIteration
            chunk = next(self._chunks, None)
            self._done = chunk is None
            try:
                text = self._rest + self._decoder.decode(chunk or b"", final=self._done)
            except UnicodeError as exc:  # a codec that cannot skip what it cannot read
                raise InvalidInput(
                    f"the file cannot be read as {self._encoding}: {exc}", field="encoding"
                ) from None
            # a final \r may be the first half of a \r\n: keep it for the next chunk
            end = len(text) - 1 if text.endswith("\r") and not self._done else len(text)
            start = 0
            if self._skipping:
                found = _LINE_END.search(text, 0, end)
                if found is None:
                    self._rest = text[end:]
                    continue
                start, self._skipping = found.end(), False
            # only up to the last line end: a regex search failing at every position of a
            # long unended line would take quadratic time
            last = max(text.rfind("\n", start, end), text.rfind("\r", start, end))
            self._ready = _LINE.findall(text, start, last + 1) if last >= start else []
            self._rest = text[start + sum(map(len, self._ready)) :]
            if len(self._rest) > MAX_ROW_CHARS:  # no line end in sight
                self._ready.append(self._rest)
                self._rest, self._skipping = "", True
            elif self._done and self._rest:  # the last line, without an end
                self._ready.append(self._rest)
                self._rest = ""


class _Rows:
    """The csv records of `lines`: the header checked, then per data row its values by
    column name, or why they cannot be read."""

    def __init__(self, lines: _Lines, encoding: str) -> None:
        self._lines = lines
        self._records = csv.reader(lines)
        self._encoding = encoding
        self.row = 0  # the number of the last record read (blank lines count)

    def __iter__(self) -> Iterator[Record | InvalidInput]:
        names = self._header()
        width = len(names)
        unnamed = [i for i, name in enumerate(names) if not name]
        while True:
            try:
                fields = self._next_record()
            except StopIteration:
                return
            except (_RowTooLong, csv.Error) as exc:
                yield InvalidInput(_unreadable(exc), row=self.row)
                continue
            if not any(fields):
                continue  # a blank line, or one of empty fields (a spreadsheet's ",,,")
            if len(fields) > width or max(map(len, fields)) > MAX_FIELD_CHARS:
                yield self._oversized(names, fields)
                continue
            if _UNSTORABLE.search("".join(fields)):
                yield self._unstorable(names, fields)
                continue
            values = dict(zip(names, fields, strict=False))  # missing fields are empty
            if unnamed:
                stray = next((i for i in unnamed if i < len(fields) and fields[i]), None)
                if stray is not None:
                    yield InvalidInput(
                        f"a value in column {stray + 1}, which has no name in the header",
                        row=self.row,
                    )
                    continue
                values.pop("", None)
            yield self.row, values

    def _next_record(self) -> list[str]:
        self._lines.row_chars = 0
        self.row += 1
        return next(self._records)

    def _header(self) -> list[str]:
        """The column names (standard ones in lower case), or `InvalidInput` for the file."""
        fields: list[str] = []
        while not fields:  # blank lines before the header are skipped, as csv.DictReader does
            try:
                fields = self._next_record()
            except StopIteration:
                raise InvalidInput("the file is empty: no header row") from None
            except (_RowTooLong, csv.Error) as exc:
                raise InvalidInput(f"the header: {_unreadable(exc)}", row=self.row) from None
        if len(fields) > MAX_COLUMNS:
            raise InvalidInput(
                f"the header has {len(fields)} columns; at most {MAX_COLUMNS}", row=self.row
            )
        if "\x00" in "".join(fields):
            raise InvalidInput("the header has a NUL character: is this a CSV file?", row=self.row)
        if _UNSTORABLE.search("".join(fields)):
            raise InvalidInput(f"the header {_not_decoded(self._encoding)}", row=self.row)
        names = [_column_name(f) for f in fields]
        if max(map(len, names)) > MAX_FIELD_CHARS:
            raise InvalidInput(f"a column name longer than {MAX_FIELD_CHARS:,}", row=self.row)
        for i, name in enumerate(names):
            if name and names.index(name) < i:
                raise InvalidInput(
                    f"column {name!r} appears twice (columns {names.index(name) + 1} and {i + 1})",
                    row=self.row,
                )
        if "phone" not in names and "email" not in names:
            found = ", ".join(repr(n[:40]) for n in names[:8]) + (", …" if len(names) > 8 else "")
            raise InvalidInput(
                f"the header has no phone and no email column (it has {found}); is this a"
                " comma-separated file with a header row?",
                row=self.row,
            )
        return names

    def _oversized(self, names: list[str], fields: list[str]) -> InvalidInput:
        if len(fields) > len(names):
            return InvalidInput(
                f"{len(fields)} fields, but the header has {len(names)}", row=self.row
            )
        i = next(i for i, f in enumerate(fields) if len(f) > MAX_FIELD_CHARS)
        return InvalidInput(
            f"longer than {MAX_FIELD_CHARS:,} characters", field=names[i], row=self.row
        )

    def _unstorable(self, names: list[str], fields: list[str]) -> InvalidInput:
        i, bad = next((i, m[0]) for i, f in enumerate(fields) if (m := _UNSTORABLE.search(f)))
        if bad == "\x00":
            return InvalidInput("a NUL character", field=names[i], row=self.row)
        return InvalidInput(_not_decoded(self._encoding), field=names[i], row=self.row)


def _first_seen(subscriber: NewSubscriber, seen: dict[str, int], row: int) -> Outcome:
    """`subscriber`, remembered; or, when an earlier row had its phone or email, the
    rejection that names that row (the ledger records what the earlier row said)."""
    for field, key in (("phone", subscriber.phone), ("email", subscriber.email)):
        if key is not None and key in seen:
            return InvalidInput(f"duplicate of row {seen[key]}", field=field, row=row)
    if subscriber.phone is not None:
        seen[subscriber.phone] = row
    if subscriber.email is not None:
        seen[subscriber.email] = row
    return subscriber


def _column_name(raw: str) -> str:
    name = raw.lstrip("\ufeff").strip()  # a BOM left by a stated (not sniffed) encoding
    return name.lower() if name.lower() in STANDARD_COLUMNS else name


def _not_decoded(encoding: str) -> str:
    other = "utf-8" if encoding == FALLBACK_ENCODING else FALLBACK_ENCODING
    return (
        f"has bytes that are not valid {encoding}: state the file's encoding"
        f" (--encoding, e.g. {other})"
    )


def _unreadable(exc: Exception) -> str:
    if isinstance(exc, _RowTooLong):
        return f"longer than {MAX_ROW_CHARS:,} characters"
    return f"not valid CSV ({exc})"


def _text_codec(encoding: str) -> str:
    """The codec's canonical name, or `InvalidInput` when it is not a text encoding."""
    try:
        b"x".decode(encoding)  # b"" would not do: decoding nothing skips the codec's checks
    except (LookupError, ValueError) as exc:
        if isinstance(exc, UnicodeError):
            return codecs.lookup(encoding).name  # one byte does not satisfy it (utf-16)
        # unknown, bytes-to-bytes (base64), str-to-str (rot13), or a name with a NUL in it
        raise InvalidInput(f"unknown text encoding {encoding!r}", field="encoding") from None
    return codecs.lookup(encoding).name


def _chunks(source: Readable | Iterable[bytes] | bytes) -> Iterator[bytes]:
    """`source` in pieces of at most `READ_BYTES` (so a line list stays small)."""
    pieces: Iterable[bytes]
    if isinstance(source, bytes):
        pieces = (source,)
    elif isinstance(source, Readable):
        pieces = iter(functools.partial(source.read, READ_BYTES), b"")
    else:
        pieces = source
    for piece in pieces:
        if len(piece) <= READ_BYTES:
            yield piece
        else:
            yield from (piece[i : i + READ_BYTES] for i in range(0, len(piece), READ_BYTES))


def _sniff(chunks: Iterator[bytes]) -> tuple[Iterator[bytes], str, bool]:
    """(the same chunks, the encoding, whether it is the fallback) from the file's start."""
    start: list[bytes] = []
    size = 0
    for chunk in chunks:
        start.append(chunk)
        size += len(chunk)
        if size >= SNIFF_BYTES:
            break
    sample = b"".join(start)
    if sample.startswith(_WORKBOOK_MAGIC):
        raise InvalidInput("this is a spreadsheet workbook, not CSV: save it as CSV UTF-8")
    if sample.startswith(codecs.BOM_UTF8):  # says UTF-8 itself: a bad byte is that row's
        return _chained(sample, chunks), "utf-8", False
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):  # Excel's "Unicode"
        return _chained(sample, chunks), "utf-16", False
    try:
        # final=False: a character cut in two at the sample's end is not an error
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=size < SNIFF_BYTES)
    except UnicodeDecodeError:
        return _chained(sample, chunks), FALLBACK_ENCODING, True
    return _chained(sample, chunks), "utf-8", False


def _chained(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    yield first
    yield from rest
