import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from segment_svc.imports import MAX_LINE, BadHeader, Batches, ImportRow, Rejection, rows_of


def ndjson(*rows) -> bytes:
    return b"".join((row if isinstance(row, bytes) else json.dumps(row).encode()) + b"\n" for row in rows)


def test_ndjson_rows_become_contacts_with_the_fields_they_set():
    rows = rows_of("ndjson", [ndjson({"email": "Ann@Example.com", "first_name": "Ann", "attributes": {"age": 3}})])
    assert len(rows) == 1 and isinstance(rows[0], ImportRow)
    assert rows[0].line == 1 and rows[0].contact.email == "ann@example.com"
    assert rows[0].given == ("first_name",)
    assert rows[0].contact.attributes == {"age": 3}


def test_each_bad_ndjson_row_is_rejected_with_its_line_and_reason():
    body = ndjson(
        {"email": "good@example.com"},
        b"{not json",
        {"email": "nope"},
        b"",  # blank lines are skipped, but counted
        {"email": "tz@example.com", "timezone": "Mars/Olympus"},
        {"email": "bool@example.com", "marketing_opt_in": "yes"},
        [1, 2],
        {"email": "nul@example.com", "first_name": "a\u0000b"},
        {"email": "extra@example.com", "shoe_size": 42},
    )
    rows = rows_of("ndjson", [body])
    assert [type(row).__name__ for row in rows] == ["ImportRow"] + ["Rejection"] * 7
    reasons = {row.line: row.reason for row in rows if isinstance(row, Rejection)}
    assert sorted(reasons) == [2, 3, 5, 6, 7, 8, 9]
    assert reasons[2].startswith("not JSON")
    assert reasons[3].startswith("$.email:")
    assert reasons[5].startswith("$.timezone:")
    assert reasons[6].startswith("$.marketing_opt_in:")
    assert reasons[7].startswith("$:")
    assert reasons[8].startswith("$.first_name:")
    assert reasons[9].startswith("$.shoe_size:")


@given(st.lists(st.integers(min_value=1, max_value=40), min_size=1, max_size=30))
def test_lines_are_the_same_however_the_chunks_fall(cuts):
    body = ndjson(*({"email": f"user{i}@example.com", "first_name": "é" * i} for i in range(12)), b"{bad")
    chunks, start = [], 0
    for cut in cuts:
        chunks.append(body[start:start + cut])
        start += cut
    chunks.append(body[start:])
    assert rows_of("ndjson", chunks) == rows_of("ndjson", [body])


@pytest.mark.parametrize("chunk_size", [65536, 4 * MAX_LINE], ids=["streamed", "one chunk"])
def test_an_overlong_line_is_rejected_without_losing_its_neighbours(chunk_size):
    huge = json.dumps({"email": "big@example.com", "first_name": "x" * MAX_LINE}).encode()
    body = ndjson({"email": "a@example.com"}, huge, {"email": "b@example.com"})
    rows = rows_of("ndjson", [body[i:i + chunk_size] for i in range(0, len(body), chunk_size)])
    assert [row.line for row in rows] == [1, 2, 3]
    assert isinstance(rows[1], Rejection) and "longer than" in rows[1].reason
    assert rows[2].contact.email == "b@example.com"


def test_a_last_line_without_newline_counts():
    rows = rows_of("ndjson", [b'{"email": "a@example.com"}\n{"email": "b@example.com"}'])
    assert [row.contact.email for row in rows] == ["a@example.com", "b@example.com"]


CSV = (
    "email,first_name,marketing_opt_in,attributes.age,attributes.zip,attributes.vip,attributes\r\n"
    'ann@example.com,Ann,true,41,02134,false,"{""plan"": ""pro""}"\r\n'
    "bob@example.com,,FALSE,,,,\r\n"
    'multi@example.com,"Line one\nline two",true,,,,\r\n'
    "bad-email,Eve,true,,,,\r\n"
    "short@example.com,Sam\r\n"
    "maybe@example.com,May,maybe,,,,\r\n"
)


def test_csv_rows_are_typed_and_a_quoted_field_may_span_lines():
    rows = rows_of("csv", [CSV.encode()])
    ann, bob, multi = rows[:3]
    assert ann.line == 2 and ann.contact.marketing_opt_in is True
    assert ann.contact.attributes == {"age": 41, "zip": "02134", "vip": False, "plan": "pro"}
    assert ann.given == ("first_name", "marketing_opt_in")
    assert bob.given == ("marketing_opt_in",) and bob.contact.first_name is None
    assert multi.line == 4 and multi.contact.first_name == "Line one\nline two"
    rejected = {row.line: row.reason for row in rows[3:]}
    assert sorted(rejected) == [6, 7, 8]
    assert rejected[6].startswith("$.email:")
    assert "expected 7 cells" in rejected[7]
    assert rejected[8].startswith("$.marketing_opt_in:")


def test_an_unclosed_quote_rejects_the_rest_from_its_line():
    rows = rows_of("csv", [b'email,first_name\na@example.com,"open\nb@example.com,Bo\n'])
    assert rows == [Rejection(2, "a quoted field is never closed")]


@pytest.mark.parametrize(
    ("header", "path"),
    [("first_name,last_name", "$.header"), ("email,shoe_size", "$.header[1]"), ("email,email", "$.header[1]"),
     ("email,attributes.", "$.header[1]")],
)
def test_a_bad_header_refuses_the_file(header, path):
    with pytest.raises(BadHeader) as error:
        rows_of("csv", [f"{header}\na@example.com,x\n".encode()])
    assert error.value.path == path


def test_a_batch_never_holds_one_email_twice():
    rows = rows_of("ndjson", [ndjson(*({"email": email} for email in ["a@x.com", "b@x.com", "A@x.com", "c@x.com"]),
                                     b"bad")])
    batches = Batches(size=3)
    ready = [batch for row in rows if (batch := batches.add(row))] + [batches.take()]
    assert [[row.contact.email for row in batch_rows] for batch_rows, _ in ready] == [
        ["a@x.com", "b@x.com"], ["a@x.com", "c@x.com"]]
    assert [rejection.line for _, rejections in ready for rejection in rejections] == [5]


@pytest.mark.parametrize(("cell", "value"), [
    ("41", 41), ("-2.5", -2.5), ("0", 0), ("02134", "02134"), ("8e12345678", "8e12345678"), ("1e5", "1e5"),
    ("true", True), ("null", None), ('["a", 1]', ["a", 1]), ('"41"', "41"), ("[broken", "[broken"),
    ("N/A", "N/A"), ("12345678901234567890", "12345678901234567890"),
])
def test_a_csv_attribute_cell_is_a_number_only_when_it_plainly_is_one(cell, value):
    import csv
    import io

    text = io.StringIO()
    csv.writer(text).writerows([["email", "attributes.x"], ["a@example.com", cell]])
    [row] = rows_of("csv", [text.getvalue().encode()])
    assert row.contact.attributes == {"x": value}
