"""Contact imports: NDJSON or CSV read as it arrives, one row at a time, each row either a
contact to upsert by email or a rejection with its line number and reason. Pure: the
bytes come in from the HTTP adapter, the rows go out to the repository.
"""

import csv
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson
from pydantic import BaseModel, ValidationError

from segment_svc.contacts import ContactDraft
from servicekit.validation import json_path, unstorable

MAX_LINE = 1024 * 1024  # a row as large as a single contact the API accepts
FIELDS = ("first_name", "last_name", "timezone", "marketing_opt_in")  # those an update may leave alone
_ATTRIBUTE_PREFIX = "attributes."
_PLAIN_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]{0,14})(?:\.[0-9]{1,15})?\Z")  # exact as a double
# What JSON text must hold for its value to hold a NUL or a lone surrogate: raw, or escaped.
# Lines without it (nearly all) skip the walk through every value that would find them.
_MAYBE_UNSTORABLE = re.compile(r"\x00|\\u(?:0000|[dD][89a-fA-F])")
_MAYBE_UNSTORABLE_BYTES = re.compile(_MAYBE_UNSTORABLE.pattern.encode())


@dataclass(frozen=True, slots=True)
class ImportRow:
    line: int
    contact: ContactDraft

    @property
    def given(self) -> tuple[str, ...]:
        """Which of FIELDS the row sets; an update leaves the others as they are stored."""
        return tuple(field for field in FIELDS if field in self.contact.model_fields_set)


@dataclass(frozen=True, slots=True)
class Rejection:
    line: int
    reason: str


class BadHeader(ValueError):
    """The CSV header cannot be read: nothing of the file is imported."""

    def __init__(self, column: int | None, message: str) -> None:
        super().__init__(message)
        self.path = "$.header" if column is None else f"$.header[{column}]"


class Lines:
    """Splits a byte stream into numbered lines, however the chunks fall. A line longer
    than MAX_LINE is cut off and handed on as `None` (to be rejected), not buffered."""

    def __init__(self) -> None:
        self._partial = bytearray()
        self._overlong = False
        self.number = 0

    def feed(self, chunk: bytes) -> list[tuple[int, bytes | None]]:
        *complete, rest = chunk.split(b"\n")
        lines = []
        if complete:
            lines.append(self._line(complete[0]))  # ends what the chunks before began
            rest_of = complete[1:]
            if len(chunk) > MAX_LINE:  # then a line inside it may be too long
                rest_of = [None if len(line) > MAX_LINE else line for line in rest_of]
            lines += enumerate(rest_of, start=self.number + 1)
            self.number += len(rest_of)
        self._keep(rest)
        return lines

    def close(self) -> Iterator[tuple[int, bytes | None]]:
        if self._partial or self._overlong:
            yield self._line(b"")

    def _line(self, tail: bytes) -> tuple[int, bytes | None]:
        self.number += 1
        overlong = self._overlong or len(self._partial) + len(tail) > MAX_LINE
        line = None if overlong else (bytes(self._partial) + tail if self._partial else tail)
        self._partial.clear()
        self._overlong = False
        return self.number, line

    def _keep(self, rest: bytes) -> None:
        if self._overlong:
            return
        if len(self._partial) + len(rest) > MAX_LINE:
            self._partial.clear()
            self._overlong = True
        else:
            self._partial += rest


def ndjson_row(number: int, line: bytes | None) -> ImportRow | Rejection | None:
    """One line of NDJSON: a JSON object with a contact's fields. Blank lines are skipped."""
    if line is None:
        return Rejection(number, f"the line is longer than {MAX_LINE} bytes")
    if not line.strip():
        return None
    try:
        data = orjson.loads(line)
    except orjson.JSONDecodeError as error:
        return Rejection(number, f"not JSON: {error}")
    if not isinstance(data, dict):
        return Rejection(number, "$: expected a JSON object with the contact's fields")
    # Two substring tests (C speed) spare nearly every line the regular expression.
    suspect = (b"\\u" in line or b"\x00" in line) and _MAYBE_UNSTORABLE_BYTES.search(line) is not None
    return _contact(number, data, suspect)


def _contact(number: int, data: dict[str, Any], suspect: bool) -> ImportRow | Rejection:
    if suspect and (problem := unstorable(data)):
        return Rejection(number, problem)
    try:
        return ImportRow(number, _validate_draft(data))
    except ValidationError as error:
        return Rejection(number, _reason(error))


_validate_draft = ContactDraft.__pydantic_validator__.validate_python  # model_validate without its wrapper


def _reason(error: ValidationError) -> str:
    return "; ".join(f"{json_path(tuple(item['loc']))}: {item['msg']}" for item in error.errors(include_url=False))


class CsvRows:
    """CSV with a header naming the columns: `email` (required), `first_name`, `last_name`,
    `timezone`, `marketing_opt_in` (true or false), `attributes` (a JSON object) and
    `attributes.<name>` (one attribute; a cell that reads as a JSON number, boolean, array,
    object or quoted string is that value, any other text is text). An empty cell sets nothing.
    Line numbers are those of the file, the header being line 1.
    """

    def __init__(self) -> None:
        self._columns: list[str] | None = None
        self._record: list[str] = []
        self._record_line = 0
        self._quotes = 0

    def feed(self, number: int, line: bytes | None) -> Iterator[ImportRow | Rejection]:
        """Takes one physical line; yields a row once a record (which may span lines,
        inside quotes) is complete. RFC 4180 doubles a quote inside a quoted field, so a
        record is complete when its count of quote characters is even."""
        if line is None:
            yield from self._abandon(number, f"the line is longer than {MAX_LINE} bytes")
            return
        try:
            text = line.decode().removesuffix("\r")
        except UnicodeDecodeError as error:
            yield from self._abandon(number, f"not UTF-8 text: {error}")
            return
        if not self._record:
            self._record_line = number
        self._record.append(text)
        self._quotes += text.count('"')
        if self._quotes % 2 == 0:
            yield from self._complete()

    def close(self) -> Iterator[ImportRow | Rejection]:
        if self._record:
            yield from self._abandon(self._record_line, "a quoted field is never closed")

    def _abandon(self, number: int, reason: str) -> Iterator[Rejection]:
        line = self._record_line if self._record else number
        self._record, self._quotes = [], 0
        yield Rejection(line, reason)

    def _complete(self) -> Iterator[ImportRow | Rejection]:
        number, text = self._record_line, "\n".join(self._record)
        self._record, self._quotes = [], 0
        if not text.strip():
            return
        try:
            cells = next(csv.reader([text], strict=True))
        except csv.Error as error:
            yield Rejection(number, f"not CSV: {error}")
            return
        if self._columns is None:
            self._columns = _header(cells)
            return
        yield self._row(number, cells)

    def _row(self, number: int, cells: list[str]) -> ImportRow | Rejection:
        if len(cells) != len(self._columns):
            return Rejection(number, f"expected {len(self._columns)} cells as in the header, found {len(cells)}")
        data: dict[str, Any] = {}
        attributes: dict[str, Any] = {}
        for column, cell in zip(self._columns, cells, strict=True):
            if cell == "":
                continue
            if column.startswith(_ATTRIBUTE_PREFIX):
                attributes[column.removeprefix(_ATTRIBUTE_PREFIX)] = _attribute(cell)
            elif column == "attributes":
                try:
                    data["attributes"] = orjson.loads(cell)
                except orjson.JSONDecodeError as error:
                    return Rejection(number, f"$.attributes: not JSON: {error}")
            elif column == "marketing_opt_in":
                data[column] = _boolean(cell)
            else:
                data[column] = cell
        if attributes:
            if not isinstance(data.get("attributes", {}), dict):
                return Rejection(number, "$.attributes: expected a JSON object")
            data["attributes"] = data.get("attributes", {}) | attributes
        return _contact(number, data, any(_MAYBE_UNSTORABLE.search(cell) for cell in cells))


def _header(cells: list[str]) -> list[str]:
    columns = [cell.strip() for cell in cells]
    known = {"email", "attributes", *FIELDS}
    for index, column in enumerate(columns):
        if column not in known and not (column.startswith(_ATTRIBUTE_PREFIX) and len(column) > len(_ATTRIBUTE_PREFIX)):
            raise BadHeader(index, f"unknown column {column!r}: use {sorted(known)} or attributes.<name>")
        if columns.index(column) != index:
            raise BadHeader(index, f"column {column!r} appears twice")
    if "email" not in columns:
        raise BadHeader(None, "the header has no email column")
    return columns


def _boolean(cell: str) -> bool | str:
    lowered = cell.strip().lower()
    return {"true": True, "false": False}.get(lowered, cell)  # anything else: refused by the model


def _attribute(cell: str) -> Any:
    """A plain decimal is a number, true/false/null are themselves, JSON arrays, objects
    and quoted strings are what they say; anything else (02134, 8e5, N/A) stays text."""
    if _PLAIN_NUMBER.match(cell) or cell in ("true", "false", "null"):
        return orjson.loads(cell)
    if cell[0] in '[{"':
        try:
            return orjson.loads(cell)
        except orjson.JSONDecodeError:
            pass
    return cell


class Reader:
    """Turns the chunks of an upload, as they arrive, into rows and rejections."""

    def __init__(self, kind: str) -> None:
        self._lines = Lines()
        self._csv = CsvRows() if kind == "csv" else None
        self._rows = self._csv_rows if self._csv is not None else self._ndjson_rows

    def feed(self, chunk: bytes) -> Iterator[ImportRow | Rejection]:
        return self._rows(self._lines.feed(chunk))

    def close(self) -> Iterator[ImportRow | Rejection]:
        yield from self._rows(self._lines.close())
        if self._csv is not None:
            yield from self._csv.close()

    def _csv_rows(self, numbered: Iterable[tuple[int, bytes | None]]) -> Iterator[ImportRow | Rejection]:
        for number, line in numbered:
            yield from self._csv.feed(number, line)

    @staticmethod
    def _ndjson_rows(numbered: Iterable[tuple[int, bytes | None]]) -> Iterator[ImportRow | Rejection]:
        for number, line in numbered:
            if (row := ndjson_row(number, line)) is not None:
                yield row


class Batches:
    """Groups rows for the database: at most `size`, and never one email twice, so that a
    batch upserted at once means what its rows upserted one by one would."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._rows: list[ImportRow] = []
        self._rejections: list[Rejection] = []
        self._emails: set[str] = set()

    def add(self, row: ImportRow | Rejection) -> tuple[list[ImportRow], list[Rejection]] | None:
        """The batch to store before this row, if there is one."""
        if isinstance(row, Rejection):
            self._rejections.append(row)
            return self.take() if len(self._rejections) >= self._size else None
        ready = self.take() if row.contact.email in self._emails or len(self._rows) >= self._size else None
        self._rows.append(row)
        self._emails.add(row.contact.email)
        return ready

    def take(self) -> tuple[list[ImportRow], list[Rejection]]:
        batch = self._rows, self._rejections
        self._rows, self._rejections, self._emails = [], [], set()
        return batch


def rows_of(kind: str, chunks: Iterable[bytes]) -> list[ImportRow | Rejection]:
    """Every row of a whole file: the synchronous form, for tests and tools."""
    reader = Reader(kind)
    rows = [row for chunk in chunks for row in reader.feed(chunk)]
    return rows + list(reader.close())


class RejectedLine(BaseModel):
    line: int
    reason: str


class ImportReport(BaseModel):
    """What an import did; `rejections` lists every rejected line, in order."""

    inserted: int
    updated: int
    rejected: int
    rejections: list[RejectedLine]


class ReportJson:
    """ImportReport's JSON, written as the rejections are read back (there may be a
    million): the head, each page of rejections, the end. Every value goes through orjson
    or `%d`, so the pieces make valid JSON whatever a reason holds; a unit test holds the
    whole to the model's."""

    END = b"]}"

    def __init__(self) -> None:
        self._first = True

    @staticmethod
    def head(inserted: int, updated: int, rejected: int) -> bytes:
        return b'{"inserted": %d, "updated": %d, "rejected": %d, "rejections": [' % (inserted, updated, rejected)

    def rejections(self, rejections: list[Rejection]) -> bytes:
        items = b",".join(orjson.dumps({"line": r.line, "reason": r.reason}) for r in rejections)
        if not items:
            return b""
        separator, self._first = (b"" if self._first else b","), False
        return separator + items
