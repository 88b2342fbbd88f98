"""The streaming CSV reader and the neutralising writer."""

from __future__ import annotations

import csv
import io
import random
import re

import pytest

from exchanged.csvio import FORMULA_START, CsvReader, CsvWriter
from exchanged.errors import Refused


def read(data: bytes) -> tuple[tuple[str, ...], list[tuple[int, object, object]]]:
    r = CsvReader(io.BytesIO(data))
    return r.header, [(x.line, x.fields, x.problem.code if x.problem else None) for x in r]


def test_bom_crlf_and_quotes() -> None:
    header, rows = read(b'\xef\xbb\xbfNIK , Ref\r\n"1","a,b"\r\n2,"x""y"\r\n')
    assert header == ("nik", "ref")
    assert rows == [(2, ("1", "a,b"), None), (3, ("2", 'x"y'), None)]


def test_bad_rows_are_reported_by_line_and_reading_goes_on() -> None:
    data = b"nik,ref\n1,a\n2\n3,\xff\xfe\n4,b\n5,\x00\n6,c\n"
    _, rows = read(data)
    assert [(line, code) for line, _, code in rows] == [
        (2, None), (3, "WRONG_FIELD_COUNT"), (4, "BAD_ENCODING"), (5, None), (6, "NUL_BYTE"),
        (7, None),
    ]


def test_multiline_field_keeps_line_numbers() -> None:
    _, rows = read(b'nik,ref\n1,"two\nlines"\n2,x\n')
    assert [line for line, _, _ in rows] == [2, 4]


def test_quote_left_open_at_the_end() -> None:
    _, rows = read(b'nik,ref\n1,a\n2,"open\n')
    assert rows[-1][2] == "UNCLOSED_QUOTE"


def test_huge_field_fails_its_row_only() -> None:
    _, rows = read(b"nik,ref\n1," + b"x" * 200_000 + b"\n2,b\n")
    assert rows[0][2] == "FIELD_TOO_LARGE"
    assert rows[-1][1] == ("2", "b")


@pytest.mark.parametrize(
    ("data", "code"),
    [(b"", "NO_HEADER"), (b"nik,nik\n", "DUPLICATE_COLUMN"), (b"nik,\n", "BAD_HEADER"),
     (b"n\xffk\n", "BAD_ENCODING"), (b"n-k\n", "BAD_HEADER")],
)
def test_bad_headers(data: bytes, code: str) -> None:
    with pytest.raises(Refused) as info:
        CsvReader(io.BytesIO(data))
    assert info.value.reasons[0].code == code


def test_writer_neutralises_formulas() -> None:
    out = io.BytesIO()
    w = CsvWriter(out, ["ref", "status"])
    w.write(["=1+1", "ASN"])
    w.write(["+62", "@SUM(A1)"])
    w.write(["-5", "ok"])
    w.close()
    assert out.getvalue().decode() == (
        '"ref","status"\r\n"\'=1+1","ASN"\r\n"\'+62","\'@SUM(A1)"\r\n"\'-5","ok"\r\n'
    )


#: what the writer must survive: separators, quotes, spaces, formulas, text in between
PIECES = ["=2+3", "+1", "-x", "@A1", "\t", "\r", "\n", ";", ",", '"', " ", "'", "a", "Dinas",
          "é", "=", ";=", "; -", '"=1']


def test_no_way_of_splitting_an_answer_starts_a_cell_with_a_formula() -> None:
    """Indonesian Excel splits a line on ';' once its first field has ended, whatever the
    quotes say; naive readers split on tabs and line breaks. Whatever a value holds, every
    piece of the written file that any of them could open as a cell starts harmlessly (after
    the spaces and quotes a spreadsheet may skip), and a CSV reader gets the value back
    whole, an apostrophe before each runnable part its only change."""
    rng = random.Random(11)
    rows = [["".join(rng.choice(PIECES) for _ in range(rng.randint(0, 6))) for _ in range(3)]
            for _ in range(3000)]
    rows += [["Kementerian Sosial;=2+3", "x;=HYPERLINK(1);y", ' ;"=1']]
    out = io.BytesIO()
    writer = CsvWriter(out, ["a", "b", "c"])
    writer.write_many(rows)
    writer.close()
    text = out.getvalue().decode()
    for piece in re.split("[;\t\r\n]", text):
        assert not piece.lstrip(' "').startswith(FORMULA_START), repr(piece)
    back = list(csv.reader(io.StringIO(text, newline="")))[1:]
    assert len(back) == len(rows)
    for got, sent in zip(back, rows, strict=True):
        assert [g.replace("'", "") for g in got] == [s.replace("'", "") for s in sent]
    # every field quoted
    assert text.startswith('"a","b","c"\r\n"')
    assert text.endswith('\r\n"Kementerian Sosial;\'=2+3","x;\'=HYPERLINK(1);y"," ;\'""=1"\r\n')
    assert back[-1] == ["Kementerian Sosial;'=2+3", "x;'=HYPERLINK(1);y", " ;'\"=1"]


def test_a_missing_header_row_is_not_quoted_back() -> None:
    with pytest.raises(Refused) as info:
        CsvReader(io.BytesIO(b"3171014101900001,Siti Aminah\n"))
    message = info.value.reasons[0].message
    assert info.value.reasons[0].code == "BAD_HEADER"
    assert "3171014101900001" not in message and "Siti" not in message
    assert "column 1" in message
    with pytest.raises(Refused) as info:
        CsvReader(io.BytesIO(b"_3171014101900001\n"))
    assert "3171014101900001" not in info.value.reasons[0].message


def test_a_line_longer_than_any_row_is_dropped_as_it_is_read() -> None:
    """A line over the longest a row of this header can be (at least 4 MiB) is refused
    LINE_TOO_LONG without being held whole; the rows around it are read as usual."""
    _, rows = read(b"nik,ref\n1,a\r\n2," + b"x" * (5 << 20) + b"\r\n3,c\r\n")
    assert [(line, code) for line, _, code in rows] == [
        (2, None), (3, "LINE_TOO_LONG"), (4, None)]
    assert rows[-1][1] == ("3", "c")
