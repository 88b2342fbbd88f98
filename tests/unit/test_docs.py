"""The documents say what the code does: every reason code and ledger kind is documented."""

from __future__ import annotations

import re
from pathlib import Path

from exchanged.ledger.kinds import KINDS
from exchanged.reasons import CATALOGUE

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_every_reason_code_is_documented() -> None:
    text = (DOCS / "reasons.md").read_text(encoding="utf-8")
    missing = [code for code in CATALOGUE if f"`{code}`" not in text]
    assert not missing


def test_every_ledger_kind_is_documented() -> None:
    text = (DOCS / "ledger.md").read_text(encoding="utf-8")
    missing = [kind for kind in KINDS if f"`{kind}`" not in text]
    assert not missing


def test_every_ledger_kind_written_by_the_code_is_known() -> None:
    source = "\n".join(p.read_text(encoding="utf-8")
                       for p in (DOCS.parent / "exchanged").rglob("*.py"))
    used = set(re.findall(r'(?:append|_mark)\(\s*(?:[a-z_.]+,\s*)*(?:[A-Z]+,\s*)?'
                          r'"([a-z_]+\.[a-z_]+)"',
                          source))
    used |= {f"outcome.{e}" for e in ("downloaded", "removed")}
    assert used, "the pattern found no ledger writes"
    assert used <= set(KINDS), used - set(KINDS)


def test_the_sentence_table_is_the_catalogue() -> None:
    text = (DOCS / "reasons.md").read_text(encoding="utf-8")
    for code, (english, indonesian) in CATALOGUE.items():
        row = f"| `{code}` | {english.replace('|', '/')} | {indonesian.replace('|', '/')} |"
        assert row in text, f"docs/reasons.md's sentence for {code} is out of date"


def test_every_row_reason_of_an_answer_is_labelled_and_documented() -> None:
    from exchanged.ids.nik import PROBLEMS
    from exchanged.reasons import ROW_LABELS

    text = (DOCS / "reasons.md").read_text(encoding="utf-8")
    assert set(PROBLEMS) == set(ROW_LABELS)
    for code, (english, indonesian) in ROW_LABELS.items():
        assert f"| `{code}` | {english} | {indonesian} |" in text, code
