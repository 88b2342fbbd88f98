"""kpm-verification's answers, cell by cell, against what the NIK module and the CSV writer
say of each row one at a time: the column paths (numpy, Arrow, the presence filter) must
answer every odd cell exactly as the row-by-row definitions do."""

from __future__ import annotations

import csv
import io
import random
from pathlib import Path

import pytest

from exchanged.csvio import CsvReader, neutralise
from exchanged.flows.base import FlowContext
from exchanged.flows.nik_lookup import nik_lookup
from exchanged.ids import nik
from exchanged.matching.register import RegisterStore, Snapshot
from exchanged.policy import load_policies

REPO = Path(__file__).resolve().parents[2]


class OneSnapshot:
    def __init__(self, store: RegisterStore, snapshot_id: str) -> None:
        self._store, self._id = store, snapshot_id

    def store(self, dataset: str) -> RegisterStore:
        return self._store

    def current(self, dataset: str) -> Snapshot | None:
        return self._store.open(self._id)


def odd_cell(rng: random.Random, registered: list[str], breaks: bool) -> str:
    """A NIK cell as agencies' exports write them, right or wrong."""
    good = rng.choice(registered) if rng.random() < 0.5 else (
        f"31710{rng.randint(1, 9)}{rng.randint(1, 28):02d}{rng.randint(1, 12):02d}"
        f"{rng.randint(0, 99):02d}{rng.randint(1, 9999):04d}")
    return rng.choice([
        good, good, f" {good}", f"{good} ", f"\t{good}", f"{good}\t", f"  {good}  ",
        f"\u00a0{good}", good[:-1], good + "0", "", "   ", "3.17101E+15", "3,17101E+15",
        good[:6] + "31" + good[8:], good[:6] + "7102" + good[10:], good[:12] + "0000",
        "00" + good[2:], good[:4] + "00" + good[6:], f"={good}", f"+{good}", f"-{good}",
        f"{good};=1+1", good.replace("1", "١"), good[:8] + "x" + good[9:],
        f'"{good}"', f"'{good}", f"{good[:8]} {good[8:]}", "NIK", "@SUM(A1)",
        good[:15] + "\u00e9", good * 2, *([f"\r{good}", f"{good}\n"] if breaks else []),
    ])


def expected_row(cell: str, found: dict[str, tuple[str, str]]) -> list[str]:
    try:
        canonical = nik.validate(cell)
    except ValueError:
        return [neutralise(cell.strip()), "TIDAK_VALID", "", "", nik.problem(cell) or ""]
    if canonical in found:
        return [canonical, "ASN", *found[canonical], ""]
    return [canonical, "TIDAK_DITEMUKAN", "", "", ""]


@pytest.mark.parametrize(("seed", "breaks"), [(0, False), (1, False), (2, True)])
def test_every_odd_nik_cell_is_answered_as_the_nik_module_says(tmp_path: Path, seed: int,
                                                               breaks: bool) -> None:
    """Without line breaks in cells every block takes Arrow's path; with them, most take
    the csv module's."""
    rng = random.Random(seed)
    registered = list(dict.fromkeys(
        f"3171{rng.randint(1, 99):02d}{rng.randint(1, 71):02d}0{rng.randint(1, 9)}"
        f"{rng.randint(50, 99):02d}{rng.randint(1, 9999):04d}" for _ in range(3000)))
    registered = [n for n in registered if nik.is_valid(n)]
    store = RegisterStore(tmp_path / "reference", b"s" * 32)
    builder = store.new_snapshot("s1", keys=("nik",), unique=("nik",),
                                 values=("jenis_asn", "instansi"))
    found = {}
    for line, n in enumerate(registered, start=2):
        kind, agency = rng.choice(["PNS", "PPPK"]), rng.choice(["BKN", "Kemensos;=1", "D,I"])
        builder.add(line, [n], [kind, agency])
        found[n] = (kind, neutralise(agency))
    builder.finish()
    flow = load_policies(REPO / "policies").find_flow("kpm-verification")
    assert flow is not None
    cells = [odd_cell(rng, registered, breaks) for _ in range(6000)]
    text = io.StringIO()
    # every field quoted: a CR inside a cell stays inside it (those blocks take the csv
    # module's path, the others Arrow's)
    writer = csv.writer(text, lineterminator="\n", quoting=csv.QUOTE_ALL)
    writer.writerow(["ref", "nik"])
    writer.writerows([f"R{i}", c] for i, c in enumerate(cells))
    out = io.BytesIO()
    result = nik_lookup(CsvReader(io.BytesIO(text.getvalue().encode("utf-8")),
                                  block_bytes=1 << 14), out,
                        FlowContext(flow=flow[1], references=OneSnapshot(store, "s1"),
                                    work=tmp_path, new_snapshot_id="x"))
    rows = list(csv.reader(io.StringIO(out.getvalue().decode("utf-8"), newline="")))
    assert rows[0] == ["ref", "nik", "status", "jenis_asn", "instansi", "alasan"]
    assert len(rows) == len(cells) + 1 == result.rows + 1
    for i, (row, cell) in enumerate(zip(rows[1:], cells, strict=True)):
        assert row == [f"R{i}", *expected_row(cell, found)], (i, cell)
    assert sum(result.counts.values()) == len(cells)
    # every field quoted, every row CRLF-ended, as the row writer writes them
    lines = out.getvalue().split(b"\r\n")
    assert lines[-1] == b"" and all(line.startswith(b'"') and line.endswith(b'"')
                                    for line in lines[:-1])
