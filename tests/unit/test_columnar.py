"""The columnar paths give exactly what the row-by-row code gives: CSV blocks against
record iteration, column checks against check_value, the vector writer against CsvWriter."""

from __future__ import annotations

import io
import random

import numpy as np
import pyarrow as pa
import pytest

from exchanged.csvio import CsvReader, CsvWriter, csv_cells, write_columns
from exchanged.flows.base import (
    ValueProblem,
    check_column,
    check_value,
    fixed_width,
    nik_ok,
    nip_ok,
    stripped,
)
from exchanged.ids import nik, nip
from exchanged.matching.register.keys import _numbers
from exchanged.policy.model import Column

PIECES = ["a", "b,c", '"x,y"', '"q""q"', "", " ", '"', 'ab"c', "\r\n", "\n", "\r", "\x00",
          "\udcff", "é", '"mul\nti"', ",", '"\r\n"', "zz", "\ufeff", "\t",
          # bytes that are not UTF-8 though they look it: an encoded surrogate, overlong
          # forms, past U+10FFFF, a sequence cut short (Arrow's check must agree with
          # Python's decoder), and the highest valid ones
          "\udced\udca0\udc80", "\udcc0\udcaf", "\udce0\udc80\udcaf", "\udcf4\udc90\udc80\udc80",
          "\udcc3", "\uffff", "\U0010ffff", "\ud7ff"]


def records(data: bytes) -> list[tuple[int, object, object]]:
    reader = CsvReader(io.BytesIO(data))
    return [(r.line, r.fields, r.problem.code if r.problem else None) for r in reader]


def blocks(data: bytes, block_bytes: int) -> list[tuple[int, object, object]]:
    reader = CsvReader(io.BytesIO(data), block_bytes=block_bytes)
    out: list[tuple[int, object, object]] = []
    for block in reader.blocks():
        for i in range(block.rows):
            problem = block.problems.get(i)
            if problem is not None:
                out.append((int(block.lines[i]), None, problem.code))
            else:
                out.append((int(block.lines[i]), tuple(c[i].as_py() for c in block.columns),
                            None))
    return out


@pytest.mark.parametrize("seed", range(2))
def test_blocks_read_every_input_as_the_csv_module_does(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(250):
        lines = []
        for _ in range(rng.randint(0, 40)):
            if rng.random() < 0.8:
                end = "\r\n" if rng.random() < 0.3 else "\n"
                name = '"Siti, S.Pd"' if rng.random() < 0.3 else "Budi"
                lines.append(f"{rng.randint(1, 999)},{name}{end}")
            else:
                lines.append("".join(rng.choice(PIECES) for _ in range(rng.randint(1, 5)))
                             + rng.choice(["\n", "\r\n", ""]))
        data = ("ref,nama\n" + "".join(lines)).encode("utf-8", "surrogateescape")
        expected = records(data)
        for size in (8, 64, 1 << 20):
            assert blocks(data, size) == expected, data


def test_a_plain_batch_is_read_in_blocks_with_its_line_numbers() -> None:
    body = "".join(f"K{i},3171014101900001\n" for i in range(50_000))
    data = ("\ufeffref,nik\r\n" + body).encode()
    reader = CsvReader(io.BytesIO(data), block_bytes=1 << 16)
    got = list(reader.blocks())
    assert len(got) > 10 and not any(b.problems for b in got)
    lines = np.concatenate([b.lines for b in got])
    assert lines[0] == 2 and lines[-1] == 50_001 and len(lines) == 50_000
    assert reader.rows_read == 50_000


def test_one_malformed_row_in_the_middle_fails_that_row_only() -> None:
    rows = [f"K{i},3171014101900001\n" for i in range(20_000)]
    rows[10_000] = 'K10000,"3171014101900001\n'  # a quote left open... until the end
    rows[5_000] = "K5000,31710141,01900001\n"
    data = ("ref,nik\n" + "".join(rows)).encode()
    assert blocks(data, 1 << 14) == records(data)


def test_a_line_break_inside_quotes_is_one_row_of_two_lines() -> None:
    """Arrow keeps a quoted line break in the value; the chunk then has fewer rows than
    lines and goes to the csv module, which numbers the lines as it always did. Plain
    ASCII and UTF-8 chunks alike (Arrow checks the UTF-8 of chunks with a high byte)."""
    for name in ("Siti", "Sitï"):
        rows = [f'K{i},"{name}, S.Pd"\n' for i in range(2_000)]
        rows[700] = f'K700,"{name}\nS.Pd"\n'
        rows[1_500] = f'K1500,"{name}\r\nS.Pd"\n'
        data = ("ref,nama\n" + "".join(rows)).encode()
        got = blocks(data, 1 << 12)
        assert got == records(data)
        assert got[700] == (702, ("K700", f"{name}\nS.Pd"), None)
        assert got[1_500] == (1_503, ("K1500", f"{name}\r\nS.Pd"), None)


def random_cell(rng: random.Random, alphabet: str, width: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, width)))


COLUMNS = [
    Column(name="nik", type="nik", required=True),
    Column(name="nip", type="nip", required=True),
    Column(name="tanggal_lahir", type="date"),
    Column(name="tanggal", type="date", required=True),
    Column(name="ref", type="text", max_length=8),
    Column(name="nama", type="text", required=True, max_length=200),
    Column(name="jenis_asn", type="enum", required=True, values=("PNS", "PPPK")),
    Column(name="angka", type="integer"),
]


@pytest.mark.parametrize("column", COLUMNS, ids=lambda c: c.name)
def test_column_checks_agree_with_check_value(column: Column) -> None:
    rng = random.Random(column.name)
    values: list[str] = []
    for _ in range(3000):
        kind = rng.random()
        if kind < 0.3:
            values.append(random_cell(rng, "0123456789", 19))
        elif kind < 0.5:
            values.append(f"{rng.randint(0, 9999):04d}-{rng.randint(0, 13):02d}-"
                          f"{rng.randint(0, 32):02d}")
        elif kind < 0.6:
            values.append(rng.choice(["PNS", " pppk ", "PPPK", "x", "", " ", "١٢", "3\t"]))
        elif kind < 0.7:
            person = f"{rng.randint(11, 94)}{rng.randint(1, 99):02d}{rng.randint(1, 99):02d}"
            day = rng.randint(1, 71)
            values.append(f"{person}{day:02d}{rng.randint(1, 12):02d}{rng.randint(0, 99):02d}"
                          f"{rng.randint(0, 20):04d}")
        elif kind < 0.8:
            y = rng.randint(1890, 2100)
            values.append(f"{y}{rng.randint(1, 12):02d}{rng.randint(1, 31):02d}"
                          f"{y + rng.randint(10, 40)}{rng.choice(['03', '21', '13'])}"
                          f"{rng.randint(0, 3)}{rng.randint(0, 999):03d}")
        else:
            values.append(random_cell(rng, "ab =-@\t\r\x01é0,\"", 12))
    readable = np.array([rng.random() > 0.05 for _ in values])
    checked = check_column(column, pa.array(values, type=pa.string()), readable)
    for i, value in enumerate(values):
        if not readable[i]:
            assert i not in checked.problems and checked.values[i].as_py() == ""
            continue
        want = check_value(column, value)
        if isinstance(want, ValueProblem):
            assert checked.problems.get(i) == want, (value, want)
            assert checked.values[i].as_py() == ""
        else:
            assert i not in checked.problems, (value, checked.problems.get(i))
            assert checked.values[i].as_py() == want, value


def test_identifier_checks_agree_with_the_id_modules() -> None:
    rng = random.Random(7)
    niks = [f"{rng.randint(0, 99):02d}{rng.randint(0, 99):02d}{rng.randint(0, 99):02d}"
            f"{rng.randint(0, 79):02d}{rng.randint(0, 13):02d}{rng.randint(0, 99):02d}"
            f"{rng.randint(0, 3):04d}" for _ in range(20_000)]
    matrix = np.frombuffer("".join(niks).encode(), dtype=np.uint8).reshape(-1, 16)
    assert nik_ok(matrix).tolist() == [nik.is_valid(n) for n in niks]
    # any byte anywhere: only digits pass (a byte just below '0' or above '9', one with its
    # high bit set, next to a real digit or not)
    junk = np.frombuffer("".join(niks[:5000]).encode(), dtype=np.uint8).reshape(-1, 16).copy()
    at = np.array([rng.randrange(16) for _ in range(len(junk))])
    junk[np.arange(len(junk)), at] = [rng.choice((0, 47, 58, 127, 128, 176, 185, 255,
                                                  rng.randrange(256))) for _ in range(len(junk))]
    words = [bytes(row).decode("latin-1") for row in junk]
    assert nik_ok(junk).tolist() == [nik.is_valid(w) for w in words]
    nips = [f"{rng.randint(1880, 2110)}{rng.randint(0, 13):02d}{rng.randint(0, 32):02d}"
            f"{rng.randint(1890, 2120)}{rng.choice(['00', '01', '12', '13', '21'])}"
            f"{rng.randint(0, 3)}{rng.randint(0, 2):03d}" for _ in range(20_000)]
    matrix = np.frombuffer("".join(nips).encode(), dtype=np.uint8).reshape(-1, 18)
    assert nip_ok(matrix).tolist() == [nip.is_valid(n) for n in nips]


def test_fixed_width_takes_the_bytes_of_the_rows_asked() -> None:
    rng = random.Random(3)
    words = ["".join(rng.choice("0123456789x") for _ in range(rng.choice((15, 16, 16, 17))))
             for _ in range(2_000)]
    values = pa.array(words, type=pa.string()).slice(5)  # a slice: offsets not from 0
    rows = np.array([i for i, w in enumerate(words[5:]) if len(w) == 16], dtype=np.int64)
    got = fixed_width(values, rows, 16)
    assert [bytes(r).decode() for r in got] == [words[5 + i] for i in rows.tolist()]
    assert fixed_width(values, rows[:0], 16).shape == (0, 16)


@pytest.mark.parametrize("width", range(1, 19))
def test_numbers_read_digits_eight_at_a_time_as_int_does(width: int) -> None:
    rng = np.random.default_rng(width)
    digits = rng.integers(48, 58, size=(3_000, width), dtype=np.uint8)
    digits[0] = 57  # the largest number of the width
    digits[1] = 48
    assert _numbers(digits).tolist() == [int(bytes(row)) for row in digits]


def test_stripped_is_str_strip() -> None:
    values = [" a ", "b", "\x1cc\x1f", "\u00a0d\u2003", "", "e\t", "é ", "=f"]
    readable = np.array([True] * 7 + [False])
    got = stripped(pa.array(values, type=pa.string()), readable).to_pylist()
    assert got == [v.strip() for v in values[:7]] + [""]


def test_vector_writer_writes_what_csv_writer_writes() -> None:
    rows = [["=1+1", "ASN", "a,b"], ["+62", "@SUM(A1)", 'q"q'], ["-5", "ok", "line\nbreak"],
            ["\tx", "", "\rcr"], ["plain", "é", " space "],
            ["Kementerian Sosial;=2+3", ' "=1', "a;\t-b\n@c"], ["x;y", "-", '"q";"=r"']]
    expected = io.BytesIO()
    writer = CsvWriter(expected, ["a", "b", "c"], header_row=False)
    writer.write_many(rows)
    writer.close()
    got = io.BytesIO()
    columns = [pa.array([r[i] for r in rows], type=pa.string()) for i in range(3)]
    write_columns(got, [csv_cells(c) for c in columns])
    assert got.getvalue() == expected.getvalue()


@pytest.mark.parametrize(("column", "pool"), [
    (COLUMNS[-2], ["PNS", "PPPK", ""]),  # enum: every value already canonical, or empty
    (COLUMNS[-3], ["Budi", "Siti Aminah", "", "A" * 201, "x y"]),  # text: all ASCII
    (COLUMNS[-3], ["Budi", " Siti", "\x01", "Ani "]),
], ids=["enum-canonical", "text-ascii", "text-ascii-odd"])
def test_column_checks_agree_on_plain_columns(column: Column, pool: list[str]) -> None:
    # the fast paths taken when a whole column is plain (ASCII text, enum values written
    # as the policy writes them) give check_value's verdicts too
    rng = random.Random(column.name + str(len(pool)))
    values = [rng.choice(pool) for _ in range(500)]
    readable = np.array([rng.random() > 0.05 for _ in values])
    checked = check_column(column, pa.array(values, type=pa.string()), readable)
    for i, value in enumerate(values):
        want = check_value(column, value) if readable[i] else ""
        if isinstance(want, ValueProblem):
            assert checked.problems.get(i) == want and checked.values[i].as_py() == ""
        else:
            assert i not in checked.problems and checked.values[i].as_py() == want


def test_blocks_written_behind_keep_their_order_and_their_errors() -> None:
    """BlocksBehind: blocks written on its thread in the order given; a failure of the
    thread comes back to the caller (at the next block or at close); abort swallows it."""
    import threading

    from exchanged.csvio import BlocksBehind

    out = io.BytesIO()
    behind = BlocksBehind(depth=2)
    for i in range(50):
        behind.submit(lambda i=i: write_columns(out, [pa.array([str(i)] * 3)]))
    behind.close()
    assert out.getvalue() == b"".join(b'"%d"\r\n' % i * 3 for i in range(50))

    def broken() -> None:
        raise BrokenPipeError("gpg stopped reading the answer")

    behind = BlocksBehind(depth=1)
    behind.submit(broken)
    with pytest.raises(BrokenPipeError):
        behind.submit(lambda: None)  # waits for the first block: its error comes back
    behind.abort()

    behind = BlocksBehind(depth=2)
    behind.submit(broken)
    with pytest.raises(BrokenPipeError):
        behind.close()

    behind = BlocksBehind(depth=2)
    behind.submit(broken)
    behind.abort()  # the caller's own error is the one that counts: this one is dropped
    assert not any(t.name.startswith("answer-rows") for t in threading.enumerate())
