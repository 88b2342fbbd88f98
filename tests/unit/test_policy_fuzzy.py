"""The fuzzy switch of a nik-lookup flow in the policy: loaded, checked with file and line."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from exchanged.errors import PolicyError
from exchanged.policy import load_policies
from exchanged.policy.model import Fuzzy

SHIPPED = Path(__file__).resolve().parents[2] / "policies"
AGREEMENT = "pks-kemensos-bkn-2023"
# where the switch goes: after kpm-verification's answer statuses
ANCHOR = "      invalid: TIDAK_VALID        # the NIK is not a structurally valid NIK\n"
SWITCH = ("    fuzzy: {enabled: true, min_score: 0.92, status: KEMUNGKINAN_ASN, "
          "clause: Pasal 3 ayat (1) huruf b}\n")


@pytest.fixture
def policies(tmp_path: Path) -> Path:
    d = tmp_path / "policies"
    d.mkdir()
    shutil.copy(SHIPPED / f"{AGREEMENT}.yaml", d)
    return d


def _with(policies: Path, switch: str, anchor: str = ANCHOR) -> int:
    """Put ``switch`` after ``anchor``; return the line it starts on."""
    p = policies / f"{AGREEMENT}.yaml"
    text = p.read_text()
    assert anchor in text
    at = text.index(anchor) + len(anchor)
    p.write_text(text[:at] + switch + text[at:])
    return text[:at].count("\n") + 1


def test_the_switch_is_loaded(policies: Path) -> None:
    _with(policies, SWITCH)
    found = load_policies(policies).find_flow("kpm-verification")
    assert found is not None
    assert found[1].fuzzy == Fuzzy(True, 0.92, "KEMUNGKINAN_ASN", "Pasal 3 ayat (1) huruf b")


def test_without_the_switch_there_is_no_fallback() -> None:
    found = load_policies(SHIPPED).find_flow("kpm-verification")
    assert found is not None and found[1].fuzzy is None


def test_a_block_mapping_and_switched_off(policies: Path) -> None:
    _with(policies, "    fuzzy:\n      enabled: false\n      min_score: 1\n"
                    "      status: KEMUNGKINAN_ASN\n      clause: Pasal 3 ayat (1) huruf b\n")
    found = load_policies(policies).find_flow("kpm-verification")
    assert found is not None and found[1].fuzzy == Fuzzy(False, 1.0, "KEMUNGKINAN_ASN",
                                                         "Pasal 3 ayat (1) huruf b")


@pytest.mark.parametrize(("switch", "message"), [
    (SWITCH.replace("min_score: 0.92", "min_score: 1.5"), "min_score: must be a number above 0"),
    (SWITCH.replace("min_score: 0.92", "min_score: 0"), "min_score: must be a number above 0"),
    (SWITCH.replace("min_score: 0.92", "min_score: high"), "min_score: must be a number above 0"),
    (SWITCH.replace("min_score: 0.92, ", ""), "min_score is missing"),
    (SWITCH.replace("enabled: true, ", ""), "enabled is missing"),
    (SWITCH.replace("enabled: true", "enabled: yes please"), "must be true or false"),
    (SWITCH.replace("status: KEMUNGKINAN_ASN", "status: ASN"), "must differ from the flow's"),
    (SWITCH.replace("status: KEMUNGKINAN_ASN", "status: mungkin asn"), "upper-case letters"),
    (SWITCH.replace(", clause: Pasal 3 ayat (1) huruf b", ""), "clause is missing"),
    (SWITCH.replace("enabled: true", "enabled: true, limit: 3"), "unknown key"),
])
def test_a_bad_switch_names_file_and_line(policies: Path, switch: str, message: str) -> None:
    line = _with(policies, switch)
    with pytest.raises(PolicyError, match=message) as info:
        load_policies(policies)
    assert info.value.file == f"{AGREEMENT}.yaml"
    assert info.value.line == line


def test_only_a_nik_lookup_flow_with_names_and_dates(policies: Path) -> None:
    # kpm-status sends no names or dates: nothing to match on
    anchor = "      found: KPM\n      not_found: TIDAK_DITEMUKAN\n      invalid: TIDAK_VALID\n"
    line = _with(policies, SWITCH, anchor)
    with pytest.raises(PolicyError, match="needs the flow to list the columns nama") as info:
        load_policies(policies)
    assert info.value.line == line


def test_not_on_a_nip_compare_flow(policies: Path) -> None:
    anchor = ("      differs: BERBEDA\n      not_found: TIDAK_DITEMUKAN\n"
              "      invalid: TIDAK_VALID\n")
    line = _with(policies, SWITCH, anchor)
    with pytest.raises(PolicyError, match="only a nik-lookup flow") as info:
        load_policies(policies)
    assert info.value.line == line


def test_an_addendum_can_switch_it_on(policies: Path) -> None:
    (policies / f"{AGREEMENT}.addendum-001.yaml").write_text(
        "format: exchanged/addendum-v1\n"
        "addendum:\n"
        f"  agreement: {AGREEMENT}\n"
        "  number: 1\n"
        "  reference: EXAMPLE fuzzy fallback\n"
        "  recorded: '2025-01-01'\n"
        "  clause: Pasal 12 ayat (2)\n"
        "  amend_flows:\n"
        "    kpm-verification:\n"
        "      fuzzy: {enabled: true, min_score: 0.95, status: KEMUNGKINAN_ASN,\n"
        "              clause: Pasal 3 ayat (1) huruf b}\n")
    found = load_policies(policies).find_flow("kpm-verification")
    assert found is not None and found[1].fuzzy is not None
    assert found[1].fuzzy.min_score == 0.95
