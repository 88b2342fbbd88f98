"""Policy loading, decisions, addenda and policy tests, on the shipped agreements."""

from __future__ import annotations

import json
import shutil
from datetime import date
from pathlib import Path

import pytest

from exchanged.errors import PolicyError
from exchanged.policy import Request, decide, load_policies
from exchanged.policy.cases import agreement_files, load_cases, run_cases
from exchanged.policy.engine import all_rules
from exchanged.policy.loader import addendum_text, read_policy_files

SHIPPED = Path(__file__).resolve().parents[2] / "policies"
AGREEMENT = "pks-kemensos-bkn-2023"
IN_FORCE = date(2025, 6, 1)


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
    kemensos, bkn = a.party("kemensos"), a.party("bkn")
    assert kemensos and kemensos.contact and kemensos.contact.email == "pusdatinkesos@kemsos.go.id"
    assert kemensos.signatory == "Harry Hikmat" and kemensos.role == "PIHAK KESATU"
    assert bkn and bkn.signatory == "Imas Sukmariah" and bkn.contact
    assert bkn.contact.clause == "Pasal 8 huruf b"
    assert {p.id for p in a.purposes} == {"integrasi-data", "verifikasi-kpm", "manajemen-asn"}
    assert policy.inbox_flows("kemensos") == ("jabfung-integration", "kpm-register",
                                              "kpm-verification")
    assert policy.inbox_flows("bkn") == ("asn-register", "kpm-status")
    assert a.monitoring.evaluations_per_year == 2 and a.monitoring.evaluations_clause == "Pasal 7"
    assert a.monitoring.renewal_notice_days == 30
    assert a.monitoring.force_majeure_notice_days == 14
    assert a.confidentiality.survives_end and a.retention.after_end_days == 30


def test_every_enforceable_clause_of_the_domain_table_is_cited() -> None:
    text = (SHIPPED / f"{AGREEMENT}.yaml").read_text()
    for clause in ("Pasal 1", "Pasal 2 huruf a", "Pasal 2 huruf b", "Pasal 3 ayat (1) huruf a",
                   "Pasal 4 ayat (2) huruf a", "Pasal 3 ayat (1) huruf c",
                   "Pasal 4 ayat (2) huruf c", "Pasal 3 ayat (2) huruf d",
                   "Pasal 4 ayat (1) huruf d", "Pasal 3 ayat (2) huruf g",
                   "Pasal 4 ayat (2) huruf g", "Pasal 4 ayat (1) huruf a", "Pasal 6 ayat (1)",
                   "Pasal 6 ayat (2)", "Pasal 7", "Pasal 8 huruf a", "Pasal 8 huruf b",
                   "Pasal 9 ayat (3)", "Pasal 9 ayat (4)", "Pasal 9 ayat (6)", "Pasal 10 ayat (2)",
                   "Pasal 12 ayat (2)"):
        assert clause in text, clause


def test_in_force_on_last_day_and_not_after(policies: Path) -> None:
    policy = load_policies(policies)
    ok = decide(policy, Request("kemensos", "kpm-verification", date(2026, 4, 3), ("nik",)))
    assert ok.allow and ok.rule_ids == ("kpm-verification.sender",)
    assert ok.purpose == "verifikasi-kpm" and ok.purpose_clause == "Pasal 2 huruf a"
    late = decide(policy, Request("kemensos", "kpm-verification", date(2026, 4, 4), ("nik",)))
    assert not late.allow
    assert [r.code for r in late.reasons] == ["AGREEMENT_NOT_IN_FORCE"]
    assert "2023-04-03 to 2026-04-03" in late.reasons[0].message
    assert "2023-04-03 sampai 2026-04-03" in late.reasons[0].pesan
    assert late.deciding[0].clause == "Pasal 6 ayat (1)"
    fields = late.ledger_fields()
    assert fields["rules"] == ["agreement.validity"] and fields["clauses"] == ["Pasal 6 ayat (1)"]
    assert fields["policy_sha256"] == policy.sha256 and fields["columns"] == ["nik"]


def test_default_deny_and_forbid_beats_permit(policies: Path) -> None:
    policy = load_policies(policies)
    d = decide(policy, Request("bkn", "kpm-verification", IN_FORCE, ("nik",)))
    assert not d.allow and "default.deny" in d.rule_ids
    assert d.reasons[0].code == "FLOW_NOT_PERMITTED"
    unknown = decide(policy, Request("kemensos", "no-such-flow", IN_FORCE))
    assert not unknown.allow and unknown.reasons[0].code == "NO_POLICY"
    both = decide(policy, Request("kemensos", "kpm-verification", IN_FORCE, ("nik", "x")))
    assert not both.allow  # the sender permit matched, the columns forbid wins
    assert [r.rule for r in both.evaluated if r.matched] == [
        "kpm-verification.sender", "kpm-verification.columns.listed"]


def test_an_unlisted_column_reaches_the_ledger_by_position_only(policies: Path) -> None:
    """A header row that is really a first data row (a name, a sex), or a column named like
    a NIK: the sender's reasons name the columns, the ledger's fields only their positions,
    and a decision rebuilt from those fields (policy explain --seq) refuses them again."""
    policy = load_policies(policies)
    for columns in (("budi_santoso", "laki_laki"), ("nik", "ref", "nik_3171_0141_0190_0001")):
        d = decide(policy, Request("kemensos", "kpm-verification", IN_FORCE, columns))
        unlisted = [c for c in columns if c not in ("nik", "ref")]
        assert not d.allow
        refusal = next(r for r in d.reasons if r.code == "COLUMN_NOT_ALLOWED")
        assert f"Column {unlisted[0]} is not listed" in refusal.message  # the sender's own
        fields = d.ledger_fields()
        recorded = json.dumps(fields)
        assert not [name for name in unlisted if name in recorded]
        assert fields["columns"] == [f"#{at}" if c in unlisted else c
                                     for at, c in enumerate(columns, 1)]
        assert fields["unlisted_columns"] == [at for at, c in enumerate(columns, 1)
                                              if c in unlisted]
        again = decide(policy, Request("kemensos", "kpm-verification", IN_FORCE,
                                       tuple(fields["columns"])))  # type: ignore[arg-type]
        assert again.rule_ids == d.rule_ids and again.ledger_fields() == fields
    unknown = decide(policy, Request("kemensos", "no-such-flow", IN_FORCE, ("siti", "nik")))
    assert unknown.ledger_fields()["columns"] == ["#1", "#2"]
    allowed = decide(policy, Request("kemensos", "kpm-verification", IN_FORCE, ("ref", "nik")))
    assert allowed.ledger_fields()["columns"] == ["ref", "nik"]
    assert "unlisted_columns" not in allowed.ledger_fields()


def test_columns_required_listed_and_disclosure(policies: Path) -> None:
    policy = load_policies(policies)
    missing = decide(policy, Request("kemensos", "kpm-verification", IN_FORCE, ("ref",)))
    assert [r.code for r in missing.reasons] == ["MISSING_COLUMN"]
    extra = decide(policy, Request("kemensos", "kpm-verification", IN_FORCE, ("nik", "alamat")))
    assert [r.code for r in extra.reasons] == ["COLUMN_NOT_ALLOWED"]
    assert "alamat" in extra.reasons[0].message
    ok = decide(policy, Request("kemensos", "kpm-verification", IN_FORCE,
                                ("ref", "nik", "nama", "tanggal_lahir"),
                                disclose=("jenis_asn", "instansi")))
    assert ok.allow and ok.disclosed == ("jenis_asn", "instansi")
    leak = decide(policy, Request("kemensos", "kpm-verification", IN_FORCE, ("nik",),
                                  disclose=("jenis_asn", "nip")))
    assert [r.code for r in leak.reasons] == ["DISCLOSURE_NOT_ALLOWED"]
    found = policy.find_flow("kpm-verification")
    assert found is not None
    assert not {"nip", "nik", "nama", "tanggal_lahir"} & set(found[1].discloses)


def test_answers_only_to_the_requester(policies: Path) -> None:
    policy = load_policies(policies)
    d = decide(policy, Request("kemensos", "kpm-verification", IN_FORCE, recipient="bkn"))
    assert [r.code for r in d.reasons] == ["NOT_A_RECIPIENT"]
    assert d.deciding[0].clause == "Pasal 9 ayat (3)"


def test_size_and_rows(policies: Path) -> None:
    policy = load_policies(policies)
    d = decide(policy, Request("bkn", "asn-register", IN_FORCE, size=5 * 1024**3,
                               rows=10_000_001))
    assert [r.code for r in d.reasons] == ["UPLOAD_TOO_LARGE", "TOO_MANY_ROWS"]


def write_addendum(policies: Path, number: int, **kw: object) -> None:
    (policies / f"{AGREEMENT}.addendum-{number:03d}.yaml").write_text(
        addendum_text(AGREEMENT, number, "EXAMPLE", "2026-01-01T00:00:00Z",
                      clause="Pasal 6 ayat (2)", **kw)  # type: ignore[arg-type]
    )


def test_addenda_extend_and_terminate(policies: Path) -> None:
    write_addendum(policies, 1, extend_until=date(2027, 4, 3))
    policy = load_policies(policies)
    assert decide(policy, Request("kemensos", "kpm-verification", date(2026, 11, 26))).allow
    a = policy.agreement(AGREEMENT)
    assert a is not None and a.original_validity.end == date(2026, 4, 3)
    write_addendum(policies, 2, terminate_on=date(2026, 12, 1))
    policy = load_policies(policies)
    d = decide(policy, Request("kemensos", "kpm-verification", date(2026, 12, 1)))
    assert [r.code for r in d.reasons] == ["AGREEMENT_TERMINATED"]
    assert decide(policy, Request("kemensos", "kpm-verification", date(2026, 11, 30))).allow


def test_addendum_suspends_and_amends(policies: Path) -> None:
    (policies / f"{AGREEMENT}.addendum-001.yaml").write_text(f"""
format: exchanged/addendum-v1
addendum:
  agreement: {AGREEMENT}
  number: 1
  reference: EXAMPLE amendment
  recorded: "2025-01-01"
  clause: Pasal 12 ayat (2)
  suspend:
    - {{flow: kpm-status, from: 2025-06-01, until: 2025-06-30}}
  amend_flows:
    kpm-verification:
      discloses: {{clause: Pasal 12 ayat (2), fields: [jenis_asn], never: [instansi]}}
    jabfung-integration:
      max_comparisons_per_nip: {{clause: Pasal 12 ayat (2), count: 1, days: 90,
                                status: TIDAK_DIPERIKSA}}
""")
    policy = load_policies(policies)
    d = decide(policy, Request("bkn", "kpm-status", date(2025, 6, 10)))
    assert [r.code for r in d.reasons] == ["FLOW_SUSPENDED"]
    found = policy.find_flow("kpm-verification")
    assert found is not None and found[1].discloses == ("jenis_asn",)
    jabfung = policy.find_flow("jabfung-integration")
    assert jabfung is not None and jabfung[1].max_comparisons_per_nip is not None
    assert (jabfung[1].max_comparisons_per_nip.count, jabfung[1].max_comparisons_per_nip.days) \
        == (1, 90)
    original = (SHIPPED / f"{AGREEMENT}.yaml").read_bytes()
    assert (policies / f"{AGREEMENT}.yaml").read_bytes() == original


def test_addendum_that_shortens_is_refused(policies: Path) -> None:
    write_addendum(policies, 1, extend_until=date(2025, 1, 1))
    with pytest.raises(PolicyError, match="does not extend") as info:
        load_policies(policies)
    assert info.value.file == f"{AGREEMENT}.addendum-001.yaml"


def test_addendum_for_unknown_agreement(policies: Path) -> None:
    (policies / "other.addendum-001.yaml").write_text(
        addendum_text("no-such", 1, "X", "2026-01-01T00:00:00Z",
                      extend_until=date(2030, 1, 1), clause="Pasal 6 ayat (2)")
    )
    with pytest.raises(PolicyError, match="unknown agreement no-such"):
        load_policies(policies)


def test_overlapping_suspensions_are_refused(policies: Path) -> None:
    for n, (start, end) in enumerate((("2025-06-01", "2025-06-30"), ("2025-06-15", "2025-07-15")),
                                     start=1):
        (policies / f"{AGREEMENT}.addendum-{n:03d}.yaml").write_text(f"""
format: exchanged/addendum-v1
addendum: {{agreement: {AGREEMENT}, number: {n}, reference: R{n}, recorded: x, clause: c,
            suspend: [{{flow: kpm-status, from: {start}, until: {end}}}]}}
""")
    with pytest.raises(PolicyError, match="overlaps the suspension"):
        load_policies(policies)


def _edit(policies: Path, old: str, new: str) -> None:
    p = policies / f"{AGREEMENT}.yaml"
    text = p.read_text()
    assert old in text, old
    p.write_text(text.replace(old, new, 1))


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("    sender: bkn\n", "    sender: kemendagri\n", "kemendagri is not a party"),
        ("    recipients: [kemensos]\n", "    recipients: [kemendagri]\n",
         "kemendagri is not a party"),
        ("  signed:\n", "  signd:\n", "unknown key"),
        ("    until: 2026-04-03\n", "    until: 2026-02-30\n", "impossible date"),
        ("    until: 2026-04-03\n", "    until: 2020-01-01\n", "before validity.from"),
        ("        nik: {type: nik, required: true}\n        ref:",
         "        nik: {type: nikk, required: true}\n        ref:", "must be one of"),
        ("    recipients: [kemensos]\n", "    recipients: [bkn]\n", "only to the flow's sender"),
        ("    reference: asn-register\n", "    reference: dtks\n", "names dataset dtks"),
        ("      fields: [jenis_asn, instansi]\n      never: [nip, nik, nama, tanggal_lahir]",
         "      fields: [jenis_asn, instansi]\n      never: [nip, instansi]",
         "both as disclosed and as never disclosed"),
        ("      fields: [jenis_asn, instansi]\n", "      fields: [jenis_asn, agama]\n",
         "agama is not kept by dataset asn-register"),
        ("    purpose: verifikasi-kpm\n", "    purpose: pemasaran\n",
         "not one of the agreement's purposes"),
        ("    keeps: [program]\n", "    keeps: [program, nkk]\n", "identifier"),
        ("      max_rows: 10000000\n", "      max_rows: -1\n", "at least 1"),
    ],
)
def test_load_errors_name_file_and_line(policies: Path, old: str, new: str, message: str) -> None:
    original = (policies / f"{AGREEMENT}.yaml").read_text()
    edited = original[: original.index(old)].count("\n") + 1 + old.count("\n") - 1
    _edit(policies, old, new)
    with pytest.raises(PolicyError, match=message) as info:
        load_policies(policies)
    assert info.value.file == f"{AGREEMENT}.yaml"
    assert info.value.line is not None and info.value.line > 1
    # the line named is the edited one, or the key of the mapping that holds it
    assert abs(info.value.line - edited) <= 12, (info.value.line, edited)


def test_malformed_yaml(policies: Path) -> None:
    (policies / f"{AGREEMENT}.yaml").write_text("format: [unclosed\n")
    with pytest.raises(PolicyError, match="not valid YAML") as info:
        load_policies(policies)
    assert info.value.line == 2


def test_policy_hash_changes_with_any_file(policies: Path) -> None:
    before = load_policies(policies).sha256
    _edit(policies, "max_rows: 10000000", "max_rows: 10000001")
    assert load_policies(policies).sha256 != before


@pytest.mark.parametrize("folder", [SHIPPED, SHIPPED / "examples"])
def test_shipped_policy_tests_pass_and_exercise_every_rule(folder: Path) -> None:
    cases = []
    for path in sorted((folder / "tests").glob("*.yaml")):
        cases += load_cases(path.name, path.read_bytes())
    report = run_cases(agreement_files(folder, with_addenda=False), cases)
    assert not report.failed, [(r.case.name, r.problems) for r in report.failed]
    assert not report.unexercised
    assert len(report.rules) == len(all_rules(load_policies(folder)))


def test_a_wrong_expectation_fails(policies: Path) -> None:
    cases = load_cases("t.yaml", b"""
format: exchanged/policy-tests-v1
cases:
  - name: wrong on purpose
    request: {agency: kemensos, flow: kpm-verification, date: 2026-12-01}
    expect: {decision: allow}
""")
    report = run_cases(read_policy_files(policies), cases)
    assert len(report.failed) == 1 and "expected allow, got deny" in report.failed[0].problems[0]
    assert report.unexercised  # one case cannot exercise every rule


def test_example_agreement_is_unrelated_and_fictional() -> None:
    policy = load_policies(SHIPPED / "examples")
    (a,) = policy.agreements
    assert "FIKTIF" in a.title and a.id != AGREEMENT
    assert set(policy.parties()).isdisjoint({"kemensos", "bkn"})
