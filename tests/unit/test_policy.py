"""Policy loading and decisions on the shipped Kemensos–BKN agreement."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import pytest

from exchanged.errors import PolicyError
from exchanged.policy import Request, decide, load_policies
from exchanged.policy.loader import addendum_text

SHIPPED = Path(__file__).resolve().parents[2] / "policies"
AGREEMENT = "pks-kemensos-bkn-2023"


@pytest.fixture
def policies(tmp_path: Path) -> Path:
    d = tmp_path / "policies"
    d.mkdir()
    shutil.copy(SHIPPED / f"{AGREEMENT}.yaml", d)
    return d


def test_shipped_policy_has_the_real_agreement(policies: Path) -> None:
    policy = load_policies(policies)
    a = policy.agreement(AGREEMENT)
    assert a is not None
    assert dict(a.numbers) == {"kemensos": "02 Tahun 2023", "bkn": "12/HM.04.01/2023"}
    assert a.signed_on == date(2023, 4, 3) and a.signed_at == "Jakarta"
    assert (a.validity.start, a.validity.end) == (date(2023, 4, 3), date(2026, 4, 3))
    assert {p.id for p in a.parties} == {"kemensos", "bkn"}
    kemensos = a.party("kemensos")
    assert kemensos and kemensos.contact and kemensos.contact.email == "pusdatinkesos@kemsos.go.id"
    assert policy.inbox_flows("kemensos") == ("kpm-verification",)
    assert policy.inbox_flows("bkn") == ("asn-register",)


def test_in_force_on_last_day_and_not_after(policies: Path) -> None:
    policy = load_policies(policies)
    ok = decide(policy, Request("kemensos", "kpm-verification", date(2026, 4, 3), ("nik",)))
    assert ok.allow and [r.rule for r in ok.deciding] == ["kpm-verification.sender"]
    late = decide(policy, Request("kemensos", "kpm-verification", date(2026, 4, 4), ("nik",)))
    assert not late.allow
    assert [r.code for r in late.reasons] == ["AGREEMENT_NOT_IN_FORCE"]
    assert "2023-04-03 to 2026-04-03" in late.reasons[0].message
    assert late.deciding[0].clause == "Pasal 6 ayat (1)"
    early = decide(policy, Request("kemensos", "kpm-verification", date(2023, 4, 2), ("nik",)))
    assert not early.allow


def test_only_the_sender_may_use_a_flow(policies: Path) -> None:
    policy = load_policies(policies)
    d = decide(policy, Request("bkn", "kpm-verification", date(2025, 1, 1), ("nik",)))
    assert not d.allow and d.reasons[0].code == "FLOW_NOT_PERMITTED"
    unknown = decide(policy, Request("kemensos", "no-such-flow", date(2025, 1, 1)))
    assert not unknown.allow and unknown.reasons[0].code == "NO_POLICY"


def test_columns_required_and_listed(policies: Path) -> None:
    policy = load_policies(policies)
    day = date(2025, 1, 1)
    missing = decide(policy, Request("kemensos", "kpm-verification", day, ("ref",)))
    assert [r.code for r in missing.reasons] == ["MISSING_COLUMN"]
    assert "nik" in missing.reasons[0].message
    extra = decide(policy, Request("kemensos", "kpm-verification", day, ("nik", "alamat")))
    assert [r.code for r in extra.reasons] == ["COLUMN_NOT_ALLOWED"]
    assert "alamat" in extra.reasons[0].message
    ok = decide(policy, Request("kemensos", "kpm-verification", day,
                                ("ref", "nik", "nama", "tanggal_lahir")))
    assert ok.allow and ok.disclosed == ("jenis_asn", "instansi")


def test_disclosure_never_includes_identifiers(policies: Path) -> None:
    policy = load_policies(policies)
    found = policy.find_flow("kpm-verification")
    assert found is not None
    assert not {"nip", "nik", "nama", "tanggal_lahir"} & set(found[1].discloses)


def test_size_limit(policies: Path) -> None:
    policy = load_policies(policies)
    d = decide(policy, Request("bkn", "asn-register", date(2025, 1, 1), None, size=5 * 1024**3))
    assert [r.code for r in d.reasons] == ["UPLOAD_TOO_LARGE"]


def test_addendum_extends(policies: Path) -> None:
    (policies / f"{AGREEMENT}.addendum-001.yaml").write_text(
        addendum_text(AGREEMENT, 1, "EXAMPLE", "2026-01-01T00:00:00Z",
                      extend_until=date(2027, 4, 3), clause="Pasal 6 ayat (2)")
    )
    policy = load_policies(policies)
    assert decide(policy, Request("kemensos", "kpm-verification", date(2026, 11, 26),
                                  ("nik",))).allow
    a = policy.agreement(AGREEMENT)
    assert a is not None and a.original_validity.end == date(2026, 4, 3)


def test_addendum_that_shortens_is_refused(policies: Path) -> None:
    (policies / f"{AGREEMENT}.addendum-001.yaml").write_text(
        addendum_text(AGREEMENT, 1, "X", "2026-01-01T00:00:00Z",
                      extend_until=date(2025, 1, 1), clause="Pasal 6 ayat (2)")
    )
    with pytest.raises(PolicyError, match="does not extend"):
        load_policies(policies)


def test_addendum_for_unknown_agreement(policies: Path) -> None:
    (policies / "other.addendum-001.yaml").write_text(
        addendum_text("no-such", 1, "X", "2026-01-01T00:00:00Z",
                      extend_until=date(2030, 1, 1), clause="Pasal 6 ayat (2)")
    )
    with pytest.raises(PolicyError, match="unknown agreement no-such"):
        load_policies(policies)


def _edit(policies: Path, old: str, new: str) -> None:
    p = policies / f"{AGREEMENT}.yaml"
    text = p.read_text()
    assert old in text
    p.write_text(text.replace(old, new, 1))


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("    sender: bkn\n", "    sender: kemendagri\n", "kemendagri is not a party"),
        ("  signed:\n", "  signd:\n", "unknown key"),
        ("    until: 2026-04-03\n", "    until: 2026-02-30\n", "impossible date"),
        ("    until: 2026-04-03\n", "    until: 2020-01-01\n", "before validity.from"),
        ("        nik: {type: nik, required: true}\n        ref:",
         "        nik: {type: nikk, required: true}\n        ref:", "must be one of"),
        ("    answer_to: [kemensos]\n", "    answer_to: [bkn]\n", "only to the flow's sender"),
        ("    reference: asn-register\n", "    reference: dtks\n", "names dataset dtks"),
    ],
)
def test_load_errors_name_file_and_line(policies: Path, old: str, new: str, message: str) -> None:
    _edit(policies, old, new)
    with pytest.raises(PolicyError, match=message) as info:
        load_policies(policies)
    assert info.value.file == f"{AGREEMENT}.yaml"
    assert info.value.line is not None and info.value.line > 1


def test_malformed_yaml(policies: Path) -> None:
    (policies / f"{AGREEMENT}.yaml").write_text("format: [unclosed\n")
    with pytest.raises(PolicyError, match="not valid YAML") as info:
        load_policies(policies)
    assert info.value.line == 2


def test_policy_hash_changes_with_any_file(policies: Path) -> None:
    before = load_policies(policies).sha256
    _edit(policies, "max_rows: 10000000", "max_rows: 10000001")
    assert load_policies(policies).sha256 != before
