"""The nip-compare handler (jabfung-integration), driven with a fake register snapshot."""

from __future__ import annotations

import csv
import importlib
import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path

import pytest

from exchanged.csvio import CsvReader
from exchanged.errors import Refused
from exchanged.flows import KINDS, FlowContext
from exchanged.flows.nip_compare import NIP_COMPARE, nip_compare, same_value, text_key
from exchanged.policy.loader import load_policies
from exchanged.policy.model import Column, Flow

ROOT = Path(__file__).resolve().parents[2]
HEADER = "ref,nip,nama,jabatan,jenjang_jabatan,unit_kerja,tmt_jabatan\n"
A = "199001012015031001"  # PNS, born 1990-01-01
B = "198807172022211997"  # PPPK, born 1988-07-17
C = "197505052000121002"  # PNS, born 1975-05-05, holds no position in the register
D = "199203032019022001"  # PNS, born 1992-03-03, a woman
NOBODY = "195501011980011001"  # valid, in nobody's register

SIASN = {
    A: {"jabatan": "Pekerja Sosial", "jenjang_jabatan": "Ahli Pertama",
        "unit_kerja": "Dinas Sosial Kab. Bogor", "tmt_jabatan": "2020-01-01"},
    B: {"jabatan": "Penyuluh Sosial", "jenjang_jabatan": "Terampil",
        "unit_kerja": "Balai Rehabilitasi Sosial", "tmt_jabatan": "2023-03-01"},
    C: {"jabatan": "", "jenjang_jabatan": "", "unit_kerja": "", "tmt_jabatan": ""},
    D: {"jabatan": "Pekerja Sosial", "jenjang_jabatan": "Ahli Pertama",
        "unit_kerja": "Dinas Sosial Kab. Bogor", "tmt_jabatan": "2020-01-01"},
}


class FakeSnapshot:
    def __init__(self, rows: Mapping[str, Mapping[str, str]],
                 columns: Sequence[str] = ("jenis_asn", "instansi", "jabatan", "jenjang_jabatan",
                                           "unit_kerja", "tmt_jabatan"),
                 keys: Sequence[str] = ("nip", "nik")) -> None:
        self.snapshot_id = "snap-1"
        self.rows = rows
        self.columns = tuple(columns)
        self.keys = tuple(keys)
        self.closed = False
        self.lookups = 0

    def lookup(self, key: str, identifiers: Iterable[str], fields: Sequence[str]
               ) -> dict[str, tuple[str, ...]]:
        assert key == "nip" and all(f in self.columns for f in fields)
        self.lookups += 1
        return {i: tuple(self.rows[i][f] for f in fields) for i in identifiers if i in self.rows}

    def close(self) -> None:
        self.closed = True


class Budget:
    """The pipeline's budget as the flow sees it: ``left`` more comparisons of each NIP."""

    def __init__(self, left: int = 3) -> None:
        self.left = left
        self.taken: dict[str, int] = {}
        self.asked: list[list[str]] = []

    def take(self, identifiers: Sequence[str]) -> list[bool]:
        self.asked.append(list(identifiers))
        granted = []
        for nip in identifiers:
            ok = self.taken.get(nip, 0) < self.left
            if ok:
                self.taken[nip] = self.taken.get(nip, 0) + 1
            granted.append(ok)
        return granted


class FakeReferences:
    def __init__(self, snapshot: FakeSnapshot | None) -> None:
        self.snapshot = snapshot

    def current(self, dataset: str) -> FakeSnapshot | None:
        assert dataset == "asn-register"
        return self.snapshot

    def store(self, dataset: str) -> object:
        raise AssertionError("a nip-compare flow loads nothing")


@pytest.fixture(scope="module")
def flow() -> Flow:
    found = load_policies(ROOT / "policies").find_flow("jabfung-integration")
    assert found is not None
    return found[1]


def run(flow: Flow, text: str, snapshot: FakeSnapshot | None, tmp_path: Path,
        budget: Budget | None = None) -> tuple[list[dict[str, str]], Mapping[str, int]]:
    out = io.BytesIO()
    ctx = FlowContext(flow=flow, references=FakeReferences(snapshot),  # type: ignore[arg-type]
                      work=tmp_path, new_snapshot_id="x",
                      comparisons=budget if budget is not None else Budget())
    result = nip_compare(CsvReader(io.BytesIO(text.encode())), out, ctx)
    rows = list(csv.DictReader(io.StringIO(out.getvalue().decode())))
    assert result.rows == len(rows)
    assert result.reference_snapshot == "snap-1"
    return rows, result.counts


def test_the_kind_is_registered_under_its_name() -> None:
    assert KINDS["nip-compare"] is NIP_COMPARE


def test_every_status(flow: Flow, tmp_path: Path) -> None:
    snapshot = FakeSnapshot(SIASN)
    rows, counts = run(flow, HEADER
                       + f"R1,{A},Budi,Pekerja Sosial,Ahli Pertama,Dinas Sosial Kab. Bogor,2020-01-01\n"  # noqa: E501 (a row as sent)
                       + f"R2,{D},Dewi,Pekerja Sosial,Ahli Muda,Dinas Sosial Kab. Bogor,2021-06-01\n"  # noqa: E501 (a row as sent)
                       + f"R3,{NOBODY},Ani,Pekerja Sosial,Ahli Muda,Dinas Sosial,2021-06-01\n"
                       + "R4,1990 0101 2015 03 1 001,Budi,Pekerja Sosial,Ahli Pertama,Dinsos,2020-01-01\n"  # noqa: E501 (a row as sent)
                       + f"R5,{B},Sri,Penyuluh Sosial,Terampil,Balai Rehabilitasi Sosial,2023-02-30\n"  # noqa: E501 (a row as sent)
                       + f"R6,{C},Eko,Pekerja Sosial,Ahli Pertama,Dinas Sosial,2020-01-01\n",
                       snapshot, tmp_path)
    assert [(r["ref"], r["status"], r["berbeda"]) for r in rows] == [
        ("R1", "SESUAI", ""),
        ("R2", "BERBEDA", "jenjang_jabatan;tmt_jabatan"),
        ("R3", "TIDAK_DITEMUKAN", ""),
        ("R4", "TIDAK_VALID", ""),
        ("R5", "TIDAK_VALID", ""),  # an impossible start date
        ("R6", "BERBEDA", "jabatan;jenjang_jabatan;unit_kerja;tmt_jabatan"),
    ]
    assert [r["nip"] for r in rows][:4] == [A, D, NOBODY, "1990 0101 2015 03 1 001"]
    assert list(rows[0]) == ["ref", "nip", "status", "berbeda"]
    assert counts == {"SESUAI": 1, "BERBEDA": 2, "TIDAK_DITEMUKAN": 1, "TIDAK_VALID": 2,
                      "TIDAK_DIPERIKSA": 0}
    assert snapshot.closed


def test_comparison_forgives_case_spaces_and_punctuation(flow: Flow, tmp_path: Path) -> None:
    rows, _ = run(flow, HEADER
                  + f"R1,{A},Budi,  PEKERJA  SOSIAL ,ahli-pertama,Dinas Sosial Kab Bogor,2020-01-01\n"  # noqa: E501 (a row as sent)
                  + f"R2,{B},Sri,Penyuluh sosial,TERAMPIL,\"Balai Rehabilitasi Sosial.\",2023-03-01\n",  # noqa: E501 (a row as sent)
                  FakeSnapshot(SIASN), tmp_path)
    assert [r["status"] for r in rows] == ["SESUAI", "SESUAI"]


def test_never_discloses_the_registers_values(flow: Flow, tmp_path: Path) -> None:
    rows, _ = run(flow, HEADER + f"R1,{B},Sri,Pekerja Sosial,Ahli Utama,Dinas Sosial,2010-01-01\n",
                  FakeSnapshot(SIASN), tmp_path)
    assert rows[0]["berbeda"] == "jabatan;jenjang_jabatan;unit_kerja;tmt_jabatan"
    text = ",".join(rows[0].values())
    for value in SIASN[B].values():
        assert value not in text


def test_without_ref_and_with_unreadable_rows(flow: Flow, tmp_path: Path) -> None:
    text = ("nip,nama,jabatan,jenjang_jabatan,unit_kerja,tmt_jabatan\n"
            f"{A},Budi,Pekerja Sosial,Ahli Pertama,Dinas Sosial Kab. Bogor,2020-01-01\n"
            f"{A},Budi,too,few\n"
            f"{B},,Pekerja Sosial,Ahli Pertama,Dinas Sosial Kab. Bogor,2020-01-01\n"
            f"{D},Dewi,=HYPERLINK(1),Ahli Pertama,Dinas Sosial Kab. Bogor,2020-01-01\n")
    rows, _ = run(flow, text, FakeSnapshot(SIASN), tmp_path)
    assert list(rows[0]) == ["nip", "status", "berbeda"]
    assert [r["status"] for r in rows] == ["SESUAI", "TIDAK_VALID", "TIDAK_VALID", "BERBEDA"]
    assert rows[3]["berbeda"] == "jabatan"


def test_answers_in_order_across_chunks(flow: Flow, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    # the module itself: its functions read CHUNK from it
    module = importlib.import_module("exchanged.flows.nip_compare")
    monkeypatch.setattr(module, "CHUNK", 3)
    # employees 1990-01-01 with serials 1..9 are in the register, those born 1955 are not
    nips = [f"19900101201503100{i}" if i % 2 else f"19550101198001100{i + 1}" for i in range(10)]
    lines = [f"R{i},{nip},X,Pekerja Sosial,Ahli Pertama,Dinas Sosial Kab. Bogor,2020-01-01\n"
             for i, nip in enumerate(nips)]
    snapshot = FakeSnapshot({nip: SIASN[A] for nip in nips if nip.startswith("1990")})
    rows, _ = run(flow, HEADER + "".join(lines), snapshot, tmp_path)
    assert [r["ref"] for r in rows] == [f"R{i}" for i in range(10)]
    assert [r["status"] for r in rows] == [
        "SESUAI" if i % 2 else "TIDAK_DITEMUKAN" for i in range(10)]
    assert snapshot.lookups == 4


def test_without_register_or_without_its_fields_the_batch_is_refused(flow: Flow,
                                                                      tmp_path: Path) -> None:
    text = HEADER + f"R1,{A},Budi,Pekerja Sosial,Ahli Pertama,Dinas Sosial,2020-01-01\n"
    with pytest.raises(Refused) as none:
        run(flow, text, None, tmp_path)
    assert none.value.reasons[0].code == "NO_REFERENCE_DATA"
    old = FakeSnapshot(SIASN, columns=("jenis_asn", "instansi"))
    with pytest.raises(Refused) as older:
        run(flow, text, old, tmp_path)
    assert older.value.reasons[0].code == "NO_REFERENCE_DATA"
    assert old.closed


def test_row_limit(flow: Flow, tmp_path: Path) -> None:
    small = replace(flow, max_rows=2)
    text = HEADER + "".join(
        f"R{i},{A},Budi,Pekerja Sosial,Ahli Pertama,Dinas Sosial,2020-01-01\n" for i in range(3))
    with pytest.raises(Refused) as refused:
        run(small, text, FakeSnapshot(SIASN), tmp_path)
    assert refused.value.reasons[0].code == "TOO_MANY_ROWS"


def test_values_compare_as_what_they_mean() -> None:
    date = Column("tmt_jabatan", "date")
    assert same_value(date, "2020-01-01", "2020-01-01")
    assert not same_value(date, "2020-01-01", "2020-01-02")
    assert not same_value(date, "2020-01-01", "not a date")
    text = Column("jabatan")
    assert same_value(text, "Ahli Pertama", "ahli  PERTAMA")
    assert not same_value(text, "Ahli Pertama", "")
    assert text_key("Kepala Seksi (Kasi)") == text_key("kepala seksi kasi")
    assert same_value(Column("n", "integer"), "007", "7")


def test_one_nip_on_many_lines_refuses_the_batch(flow: Flow, tmp_path: Path) -> None:
    """The oracle of issue 11: one NIP on 128 lines, each with another start date, would read
    SIASN's date off the one SESUAI. The batch is refused, naming lines, never NIPs, and
    takes nothing of the NIP's budget."""
    lines = [f"R{d},{A},Budi,Pekerja Sosial,Ahli Pertama,Dinas Sosial Kab. Bogor,"
             f"2020-{1 + d // 28:02d}-{1 + d % 28:02d}\n" for d in range(128)]
    budget = Budget()
    with pytest.raises(Refused) as refused:
        run(flow, HEADER + f"R-,{B},Sri,x,y,z,2020-01-01\n" + "".join(lines), FakeSnapshot(SIASN),
            tmp_path, budget)
    reason = refused.value.reasons[0]
    assert reason.code == "REPEATED_NIP"
    # the header is line 1, B line 2, A first on line 3
    assert ": 127 line(s) repeat the NIP of an earlier line; the first: 4 (3), 5 (3), 6 (3)," \
        in reason.message
    assert "23 (3), ..." in reason.message and "24 (3)" not in reason.message
    assert A not in reason.message + reason.pesan and "Pasal 9 ayat (2)" in reason.message
    assert reason.pesan.startswith("Satu NIP muncul pada lebih dari satu baris")
    # an invalid NIP, or a row that cannot be read, repeats nothing
    rows, _ = run(flow, HEADER + f"R1,{A},Budi,x,y,z,2020-01-01\nR2,{A}9,Budi,x,y,z,2020-01-01\n"
                  f"R3,{A},short\n", FakeSnapshot(SIASN), tmp_path)
    assert [r["status"] for r in rows] == ["BERBEDA", "TIDAK_VALID", "TIDAK_VALID"]
    # padded or not, a NIP is the same NIP, also on a row invalid for another reason
    with pytest.raises(Refused):
        run(flow, HEADER + f"R1,{A},Budi,x,y,z,2020-01-01\nR2, {A} ,,x,y,z,2020-01-01\n",
            FakeSnapshot(SIASN), tmp_path)


def test_a_nip_whose_comparisons_are_spent_is_not_compared(flow: Flow, tmp_path: Path) -> None:
    bound = flow.max_comparisons_per_nip
    assert bound is not None and (bound.count, bound.days) == (3, 30)
    assert bound.status == "TIDAK_DIPERIKSA" and "Pasal 9 ayat (2)" in bound.clause
    budget = Budget(left=1)
    budget.taken[A] = 1  # compared once already within the period
    text = (HEADER + f"R1,{A},Budi,Pekerja Sosial,Ahli Pertama,Dinas Sosial Kab. Bogor,2020-01-01\n"
            f"R2,{B},Sri,Penyuluh Sosial,Terampil,Balai Rehabilitasi Sosial,2023-03-01\n"
            f"R3,{NOBODY},Ani,x,y,z,2020-01-01\nR4,{C}x,Eko,x,y,z,2020-01-01\n")
    rows, counts = run(flow, text, FakeSnapshot(SIASN), tmp_path, budget)
    assert [(r["status"], r["berbeda"]) for r in rows] == [
        ("TIDAK_DIPERIKSA", ""), ("SESUAI", ""), ("TIDAK_DITEMUKAN", ""), ("TIDAK_VALID", "")]
    assert counts == {"SESUAI": 1, "BERBEDA": 0, "TIDAK_DITEMUKAN": 1, "TIDAK_VALID": 1,
                      "TIDAK_DIPERIKSA": 1}
    # only NIPs the register holds, on valid rows, are asked for: nothing else is compared
    assert budget.asked == [[A, B]]
    # a bounded flow is never compared without its budget
    ctx = FlowContext(flow=flow, references=FakeReferences(FakeSnapshot(SIASN)),  # type: ignore[arg-type]
                      work=tmp_path, new_snapshot_id="x")
    with pytest.raises(RuntimeError):
        nip_compare(CsvReader(io.BytesIO(text.encode())), io.BytesIO(), ctx)
