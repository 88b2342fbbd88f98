"""Keyed tokens: the agencies' codec, the exchange's check, the answer given its NIKs back."""

from __future__ import annotations

import base64
import csv
import hashlib
import hmac
import io
import os
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from exchanged.client.tokens import TokenError, read_token_key, restore, tokenize
from exchanged.errors import PolicyError, Refused
from exchanged.flows.model import Column, Flow, Tokens
from exchanged.flows.nik_lookup import _index_to_search
from exchanged.flows.tokens import refuse_tokens, token_column
from exchanged.ids import token as tk
from exchanged.matching.register import RegisterStore, Snapshot, token_key
from exchanged.policy import load_policies

KEY = bytes(range(32))
NIK = "3171014101900001"


def flow(tokens: bool = True, key: bytes = KEY) -> Flow:
    return Flow(name="kpm-verification", kind="nik-lookup", purpose="p", clause="c",
                sender="kemensos", recipients=("kemensos",),
                columns=(Column("nik", "nik", True),), columns_clause="c",
                tokens=Tokens(tk.fingerprint(key), "Adendum II", "Pasal 12") if tokens else None)


def column(*values: str) -> tuple[pa.StringArray, np.ndarray, np.ndarray]:
    n = len(values)
    return (pa.array(list(values), type=pa.string()), np.ones(n, dtype=np.bool_),
            np.arange(2, n + 2, dtype=np.int64))


def test_a_token_is_the_hmac_and_never_looks_like_a_nik() -> None:
    token = tk.Tokenizer(KEY).token(NIK)
    digest = hmac.new(KEY, b"nik:" + NIK.encode(), hashlib.sha256).digest()
    assert len(token) == tk.WIDTH == 56
    assert token.startswith("nt1." + tk.fingerprint(KEY)[:8] + ".")
    assert base64.urlsafe_b64decode(token.split(".")[2] + "=") == digest
    assert tk.looks_like_token(token) and not tk.looks_like_token(NIK)
    assert tk.Tokenizer(KEY).token(NIK) == token != tk.Tokenizer(bytes(32)).token(NIK)


def test_the_key_file_round_trips_and_names_no_key(tmp_path: Path) -> None:
    text = tk.key_file_text(KEY)
    assert tk.parse_key_file(text) == KEY
    assert tk.fingerprint(KEY) in text
    for bad in ("", "nonsense x\n", f"{tk.KEY_FILE_LABEL} AAAA\n", text + text):
        with pytest.raises(tk.TokenKeyError):
            tk.parse_key_file(bad)
    path = tmp_path / "k"
    path.write_text(text)
    path.chmod(0o644)
    with pytest.raises(TokenError, match="chmod 600"):
        read_token_key(path)
    path.chmod(0o600)
    assert read_token_key(path) == KEY


def test_the_exchange_decodes_what_the_agency_keyed() -> None:
    tokens = [tk.Tokenizer(KEY).token(f"31710141019{i:05d}") for i in range(1, 40)]
    values, readable, lines = column(*tokens, "")
    got = token_column(flow(), "nik", values, readable, lines)
    assert got.rows.tolist() == list(range(39))
    for token, digest in zip(tokens, got.digests, strict=True):
        assert base64.urlsafe_b64decode(token[13:] + "=")[:16] == bytes(digest)


@pytest.mark.parametrize("raw", [NIK, " " + NIK, "abc", "nt1.00000000." + "A" * 43,
                                 tk.Tokenizer(KEY).token(NIK)[:-1] + "B",
                                 tk.Tokenizer(KEY).token(NIK)[:-1] + "+"])
def test_anything_but_a_token_refuses_a_token_batch(raw: str) -> None:
    values, readable, lines = column(tk.Tokenizer(KEY).token(NIK), raw)
    with pytest.raises(Refused) as e:
        token_column(flow(), "nik", values, readable, lines)
    assert e.value.reasons[0].code in ("NIK_NOT_TOKENIZED", "TOKEN_KEY_MISMATCH")
    message = e.value.reasons[0].message
    assert "line 3" in message.lower() and raw.strip() not in message
    assert e.value.details["rules"] == ["kpm-verification.tokens"]


def test_a_token_of_another_key_names_both_keys() -> None:
    other = bytes(32)
    values, readable, lines = column(tk.Tokenizer(other).token(NIK))
    with pytest.raises(Refused) as e:
        token_column(flow(), "nik", values, readable, lines)
    assert e.value.reasons[0].code == "TOKEN_KEY_MISMATCH"
    assert tk.fingerprint(other)[:8] in e.value.reasons[0].message
    assert tk.fingerprint(KEY)[:8] in e.value.reasons[0].message


def test_a_plain_flow_refuses_tokens() -> None:
    values, readable, lines = column(NIK, "  NT1.whatever")
    with pytest.raises(Refused) as e:
        refuse_tokens(flow(tokens=False), "nik", values, readable, lines)
    assert e.value.reasons[0].code == "TOKEN_IN_PLAIN_FLOW"
    refuse_tokens(flow(tokens=False), "nik", *column(NIK, "nt1", "x"))


def _answer(folder: Path, rows: list[list[str]]) -> Path:
    out = io.StringIO()
    csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\n").writerows(rows)
    path = folder / f"answer-{len(list(folder.iterdir()))}.csv"
    path.write_text(out.getvalue())
    return path


def test_tokenize_then_restore_gives_the_plain_answer(tmp_path: Path) -> None:
    batch = tmp_path / "kpm.csv"
    batch.write_text("ref,NIK\nr1,3171014101900001\nr2, 31-71 \n\nr3,3171014101900002 \n")
    sent = tmp_path / "sent.csv"
    done = tokenize(batch, sent, KEY)
    assert (done.rows, done.invalid) == (3, 1)
    assert os.stat(sent).st_mode & 0o777 == 0o600
    lines = sent.read_text().splitlines()
    assert lines[2] == "r2," and lines[3] == "" and NIK not in sent.read_text()
    t1, t3 = lines[1].split(",")[1], lines[4].split(",")[1]
    answer = _answer(tmp_path, [["ref", "nik", "status"], ["r1", t1, "ASN"],
                                ["r2", "", "TIDAK_VALID"], ["r3", t3, "TIDAK_DITEMUKAN"]])
    restore(answer, batch, tmp_path / "answer.csv", KEY)
    got = list(csv.reader((tmp_path / "answer.csv").open()))
    assert got[1:] == [["r1", NIK, "ASN"], ["r2", "31-71", "TIDAK_VALID"],
                       ["r3", "3171014101900002", "TIDAK_DITEMUKAN"]]
    # an answer that is not this batch's is refused, not merged
    wrong = _answer(tmp_path, [["ref", "nik", "status"], ["r1", t3, "ASN"],
                               ["r2", "", "TIDAK_VALID"], ["r3", t1, "ASN"]])
    with pytest.raises(TokenError, match="not this batch's answer"):
        restore(wrong, batch, tmp_path / "wrong.csv", KEY)


def test_a_register_summary_names_invalid_niks_as_the_plain_path(tmp_path: Path) -> None:
    batch = tmp_path / "reg.csv"
    batch.write_text("nip,nik\n1,3171014101900001\n2,12345\n3,\n")
    answer = _answer(tmp_path, [["record", "line", "code", "detail"],
                                ["summary", "", "ROWS_READ", "3"],
                                ["invalid", "3", "EMPTY_VALUE", "nik is empty"],
                                ["invalid", "4", "EMPTY_VALUE", "nik is empty"]])
    restore(answer, batch, tmp_path / "a.csv", KEY)
    got = list(csv.reader((tmp_path / "a.csv").open()))
    assert got[2] == ["invalid", "3", "INVALID_NIK", "nik is not a structurally valid NIK"]
    assert got[3] == ["invalid", "4", "EMPTY_VALUE", "nik is empty"]


SHIPPED = Path(__file__).resolve().parents[2] / "policies"
AGREEMENT = "pks-kemensos-bkn-2023"


def _addendum(policies: Path, flows: dict[str, str]) -> None:
    body = "".join(f"    {name}:\n      tokens: {{key_fingerprint: '{fpr}', clause: Pasal 9}}\n"
                   for name, fpr in flows.items())
    (policies / f"{AGREEMENT}.addendum-001.yaml").write_text(
        "format: exchanged/addendum-v1\naddendum:\n  agreement: " + AGREEMENT + "\n"
        "  number: 1\n  reference: EXAMPLE ONLY\n  recorded: '2026-01-01'\n"
        "  clause: Pasal 12 ayat (2)\n  example: true\n  amend_flows:\n" + body)


@pytest.fixture
def policies(tmp_path: Path) -> Path:
    d = tmp_path / "policies"
    d.mkdir()
    shutil.copy(SHIPPED / f"{AGREEMENT}.yaml", d)
    return d


def test_an_addendum_puts_the_register_and_its_lookup_on_tokens(policies: Path) -> None:
    fpr = tk.fingerprint(KEY)
    _addendum(policies, {"asn-register": fpr, "kpm-verification": fpr})
    policy = load_policies(policies)
    for name in ("asn-register", "kpm-verification"):
        found = policy.find_flow(name)
        assert found is not None and found[1].tokens is not None
        assert found[1].tokens.key_fingerprint == fpr
    found = policy.find_flow("jabfung-integration")  # matches by NIP: unchanged
    assert found is not None and found[1].tokens is None


@pytest.mark.parametrize(("flows", "message"), [
    ({"kpm-verification": tk.fingerprint(KEY)}, "loads dataset asn-register as NIKs"),
    ({"asn-register": tk.fingerprint(KEY), "kpm-verification": tk.fingerprint(bytes(32))},
     "both must match the same way"),
    ({"asn-register": "ABC"}, "64 lower-case hex digits"),
    ({"jabfung-integration": tk.fingerprint(KEY)}, "only a flow with a nik column"),
])
def test_a_lookup_and_its_register_must_agree(policies: Path, flows: dict[str, str],
                                              message: str) -> None:
    _addendum(policies, flows)
    with pytest.raises(PolicyError, match=message):
        load_policies(policies)


def _snapshot(tmp_path: Path, key: str, keyed: np.ndarray) -> Snapshot:
    store = RegisterStore(tmp_path, b"s" * 32)
    builder = store.new_snapshot("s", keys=(key,), unique=(key,), values=("instansi",))
    builder.add_block(np.arange(2, 2 + len(keyed)), {key: (keyed, np.ones(len(keyed), bool))},
                      {"instansi": pa.array(["X"] * len(keyed))})
    builder.finish()
    return store.open("s")


def test_a_lookup_searches_only_a_register_loaded_the_same_way(tmp_path: Path) -> None:
    key = token_key("nik", tk.fingerprint(KEY))
    token = tk.Tokenizer(KEY).token(NIK)
    values, readable, lines = column(token)
    digests = token_column(flow(), "nik", values, readable, lines).digests
    on_tokens = _snapshot(tmp_path / "t", key, RegisterStore(tmp_path / "t", b"s" * 32)
                          .cipher.tokens(key, digests))
    assert _index_to_search(flow(), on_tokens) == key
    assert on_tokens.find(key, on_tokens.cipher.tokens(key, digests)).tolist() == [0]
    for wrong in (flow(tokens=False), flow(key=bytes(32))):
        with pytest.raises(Refused) as e:
            _index_to_search(replace(wrong, reference="asn-register"), on_tokens)
        assert e.value.reasons[0].code == "REFERENCE_NOT_TOKENIZED"
    on_niks = _snapshot(tmp_path / "n", "nik",
                        RegisterStore(tmp_path / "n", b"s" * 32).cipher.values("nik", [NIK]))
    with pytest.raises(Refused, match="REFERENCE_NOT_TOKENIZED"):
        _index_to_search(replace(flow(), reference="asn-register"), on_niks)
