"""The flow kinds' own policy checks, asked by the loader through the registry KINDS.

Every kind in the registry must have its checks exercised here: a kind added
without a case fails ``test_every_kind_in_the_registry_is_exercised``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from exchanged.errors import PolicyError
from exchanged.flows import KINDS, FlowProblem
from exchanged.flows.model import Column, Flow
from exchanged.policy import load_policies

SHIPPED = Path(__file__).resolve().parents[2] / "policies"
AGREEMENT = "pks-kemensos-bkn-2023"
SWITCH = ("    fuzzy: {enabled: true, min_score: 0.92, status: KEMUNGKINAN_ASN, "
          "clause: Pasal 3 ayat (1) huruf b}\n")
COMPARES = "    compares: [jabatan, jenjang_jabatan, unit_kerja, tmt_jabatan]\n"
BOUND = ("    max_comparisons_per_nip:\n"
         "      clause: Pasal 3 ayat (1) huruf a dan d; Pasal 9 ayat (2); Pasal 12 ayat (3)\n"
         "      count: 3\n      days: 30\n      status: TIDAK_DIPERIKSA\n")

# (kind, flow of that kind in the shipped agreement, text, its replacement, the key of the
# flow the error points at (None: the flow itself), the message as the loader words it)
CASES = [
    ("reference-load", "asn-register", "    dataset: asn-register\n", "", None,
     "a reference-load flow must name the dataset it loads"),
    ("reference-load", "kpm-register",
     "        nik: {type: nik, required: true}\n        program:",
     "        nik: {type: nik}\n        program:", "columns",
     "a reference-load flow must require a nik or nip column to match on"),
    ("nik-lookup", "kpm-status", "    reference: kpm-register\n", "", None,
     "a nik-lookup flow must name the reference dataset it matches"),
    ("nik-lookup", "kpm-verification",
     "        nik: {type: nik, required: true}\n        ref: {type: text, max_length: 64}\n"
     "        nama:",
     "        nik: {type: nik}\n        ref: {type: text, max_length: 64, required: true}\n"
     "        nama:",
     "columns", "a nik-lookup flow must require column nik"),
    ("nik-lookup", "kpm-status",
     "      invalid: TIDAK_VALID\n    discloses:\n      clause: Pasal 4 ayat (1) huruf a\n",
     "    discloses:\n      clause: Pasal 4 ayat (1) huruf a\n", "answer",
     "needs the statuses invalid"),
    ("nip-compare", "jabfung-integration",
     "    reference: asn-register\n    columns:\n      clause: Pasal 3 ayat (2) huruf c",
     "    columns:\n      clause: Pasal 3 ayat (2) huruf c", None,
     "a nip-compare flow must name the reference dataset it matches"),
    ("nip-compare", "jabfung-integration",
     "        nip: {type: nip, required: true}\n        nama: {type: text, required: true",
     "        nip: {type: nip}\n        nama: {type: text, required: true", "columns",
     "a nip-compare flow must require column nip"),
    ("nip-compare", "jabfung-integration", "      differs: BERBEDA\n", "", "answer",
     "needs the statuses differs"),
    ("nip-compare", "jabfung-integration", COMPARES, "", None,
     "a nip-compare flow must list the columns it compares"),
    ("nip-compare", "jabfung-integration", COMPARES, COMPARES + SWITCH, "fuzzy",
     "only a nik-lookup flow can have a fuzzy fallback"),
    ("nip-compare", "jabfung-integration", BOUND, "", None,
     "a nip-compare flow must bound how often one NIP is compared (max_comparisons_per_nip: "
     "{count, days, status, clause})"),
    ("nik-lookup", "kpm-status", "    reference: kpm-register\n",
     "    reference: kpm-register\n" + BOUND, "max_comparisons_per_nip",
     "only a nip-compare flow compares, and can bound its comparisons"),
]


@pytest.fixture
def policies(tmp_path: Path) -> Path:
    d = tmp_path / "policies"
    d.mkdir()
    shutil.copy(SHIPPED / f"{AGREEMENT}.yaml", d)
    return d


def _edit(policies: Path, old: str, new: str) -> str:
    p = policies / f"{AGREEMENT}.yaml"
    text = p.read_text()
    assert text.count(old) == 1, old
    edited = text.replace(old, new)
    p.write_text(edited)
    return edited


def _line(text: str, flow: str, key: str | None) -> int:
    """The line of the flow's key in the file, or of one of the flow's own keys."""
    lines = text.splitlines()
    at = lines.index(f"  {flow}:")
    if key is None:
        return at + 1
    return next(i for i in range(at, len(lines)) if lines[i].startswith(f"    {key}:")) + 1


@pytest.mark.parametrize(("kind", "flow", "old", "new", "key", "message"), CASES)
def test_a_kind_refuses_what_its_flows_lack(policies: Path, kind: str, flow: str, old: str,
                                            new: str, key: str | None, message: str) -> None:
    found = load_policies(policies).find_flow(flow)
    assert found is not None and found[1].kind == kind
    text = _edit(policies, old, new)
    with pytest.raises(PolicyError) as info:
        load_policies(policies)
    where = f"flows.{flow}" + (f".{key}" if key else "")
    line = _line(text, flow, key)
    assert str(info.value) == f"{AGREEMENT}.yaml:{line}: {where}: {message}"
    assert (info.value.file, info.value.line) == (f"{AGREEMENT}.yaml", line)


@pytest.mark.parametrize(("old", "new", "key", "message"), [
    ("count: 3\n", "count: 0\n", "count", "must be a whole number of at least 1"),
    ("days: 30\n", "days: 4000\n", "days", "must be at most 3660"),
    ("status: TIDAK_DIPERIKSA", "status: BERBEDA", "status",
     "must differ from the flow's other statuses"),
    ("status: TIDAK_DIPERIKSA", "status: tidak diperiksa", "status",
     "must be upper-case letters, digits and _"),
])
def test_a_comparison_bound_is_checked(policies: Path, old: str, new: str, key: str,
                                       message: str) -> None:
    text = _edit(policies, BOUND, BOUND.replace(old, new))
    with pytest.raises(PolicyError) as info:
        load_policies(policies)
    line = next(i for i, x in enumerate(text.splitlines(), 1) if x.startswith(f"      {key}:")
                and i > _line(text, "jabfung-integration", "max_comparisons_per_nip"))
    assert str(info.value) == (f"{AGREEMENT}.yaml:{line}: flows.jabfung-integration."
                               f"max_comparisons_per_nip.{key}: {message}")


def test_every_kind_in_the_registry_is_exercised() -> None:
    assert {case[0] for case in CASES} == set(KINDS)


def test_an_unknown_kind_is_refused_naming_the_registered_ones(policies: Path) -> None:
    text = _edit(policies, "    kind: nik-lookup\n    purpose: verifikasi-kpm\n"
                 "    clause: Pasal 4 ayat (1) huruf a;",
                 "    kind: name-lookup\n    purpose: verifikasi-kpm\n"
                 "    clause: Pasal 4 ayat (1) huruf a;")
    with pytest.raises(PolicyError) as info:
        load_policies(policies)
    line = _line(text, "kpm-status", "kind")
    assert str(info.value) == (f"{AGREEMENT}.yaml:{line}: flows.kpm-status.kind: must be one "
                               "of reference-load, nik-lookup, nip-compare")


def test_the_registry() -> None:
    assert list(KINDS) == ["reference-load", "nik-lookup", "nip-compare"]
    assert all(kind.name == name for name, kind in KINDS.items())
    with pytest.raises(TypeError):
        KINDS["other"] = KINDS["nik-lookup"]  # type: ignore[index]
    # a load answers an empty batch itself; the lookups' empty batches are refused after
    assert [k.name for k in KINDS.values() if not k.needs_rows] == ["reference-load"]
    assert [k.name for k in KINDS.values() if k.builds_dataset] == ["reference-load"]
    assert [k.name for k in KINDS.values() if k.fuzzy_fallback] == ["nik-lookup"]
    assert [k.name for k in KINDS.values() if k.bounds_comparisons] == ["nip-compare"]


def test_the_shipped_flows_satisfy_their_kinds() -> None:
    for folder in (SHIPPED, SHIPPED / "examples"):
        for agreement in load_policies(folder).agreements:
            for flow in agreement.flows:
                assert list(KINDS[flow.kind].check(flow)) == [], flow.name


def test_a_kind_reports_its_problems_in_order() -> None:
    bare = Flow(name="f", kind="nip-compare", purpose="p", clause="c", sender="s",
                recipients=("s",), columns=(Column("ref", required=True),), columns_clause="c")
    assert list(KINDS["nip-compare"].check(bare)) == [
        FlowProblem((), "a nip-compare flow must name the reference dataset it matches"),
        FlowProblem(("columns",), "a nip-compare flow must require column nip"),
        FlowProblem(("answer",), "needs the statuses found, not_found, invalid, differs"),
        FlowProblem((), "a nip-compare flow must list the columns it compares"),
        FlowProblem((), "a nip-compare flow must bound how often one NIP is compared "
                    "(max_comparisons_per_nip: {count, days, status, clause})"),
    ]
