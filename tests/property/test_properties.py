"""Property-based tests: whatever the input, the parsers and validators raise nothing but the
project's own errors, and what they accept has the shape the rest of the exchange relies on.

Each property runs a bounded number of examples (``max_examples``) so that the whole file
takes seconds; the seed is derived from the test's name (``derandomize``) so that a run is
reproducible.
"""

from __future__ import annotations

import io
import re
import signal
import string
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from exchanged.batch.names import batch_id_looks_personal, batch_id_of, shown_name
from exchanged.csvio import CsvReader, Record
from exchanged.errors import PolicyError, Refused
from exchanged.ids import ValidationError, nik, nip, nkk
from exchanged.policy.loader import load_policy_files
from exchanged.sftp.defender import address_key
from exchanged.sftp.paths import is_temporary_name, looks_sealed, normalise

FAST = settings(max_examples=300, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow])
SLOW = settings(max_examples=60, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

ROW_PROBLEMS = {"WRONG_FIELD_COUNT", "BAD_ENCODING", "NUL_BYTE", "FIELD_TOO_LARGE",
                "UNCLOSED_QUOTE", "BAD_CSV", "LINE_TOO_LONG"}
SHIPPED = Path(__file__).resolve().parents[2] / "policies" / "pks-kemensos-bkn-2023.yaml"


# -- the CSV reader -------------------------------------------------------------------------------

#: pieces a hostile CSV is made of: separators, quotes, line ends, NUL, bytes that are not
#: UTF-8, a BOM, formula starters, digits (NIK-like), letters, multi-byte characters
PIECES = st.sampled_from([b",", b'"', b'""', b"\n", b"\r\n", b"\r", b"\0", b"\xff", b"\xc3",
                          b"\xef\xbb\xbf", b"=", b"@", b"-", b" ", b"\t", b"nik", b"ref",
                          b"3171014101900001", b"a", "é".encode(), "中".encode(), b"x" * 70_000])
CSVISH = st.lists(PIECES, max_size=40).map(b"".join)
HEADERS = st.sampled_from([b"nik\n", b"ref,nik\n", b"nik,nama,tanggal_lahir\n", b"NIK , Ref\r\n",
                           b"\xef\xbb\xbfnik\n", b"nik,nik\n", b"\n", b""])


def read_all(data: bytes) -> tuple[tuple[str, ...], list[Record]] | Refused:
    try:
        reader = CsvReader(io.BytesIO(data))
    except Refused as r:
        return r
    return reader.header, list(reader)


def check_records(header: tuple[str, ...], records: list[Record]) -> None:
    last = 1
    for record in records:
        assert record.line > last, "line numbers go forward"
        last = record.line
        assert (record.fields is None) != (record.problem is None)
        if record.fields is not None:
            assert len(record.fields) == len(header)
            for cell in record.fields:
                assert "\0" not in cell
                cell.encode("utf-8")  # no lone surrogates: only valid text reaches a flow
        else:
            assert record.problem is not None and record.problem.code in ROW_PROBLEMS
            # a problem is described, never quoted
            assert "3171014101900001" not in record.problem.message


@FAST
@given(st.binary(max_size=2000))
def test_any_bytes_are_read_or_refused(data: bytes) -> None:
    result = read_all(data)
    if isinstance(result, Refused):
        assert result.reasons and all(r.code for r in result.reasons)
        assert "3171014101900001" not in str([r.message for r in result.reasons])
    else:
        check_records(*result)


@SLOW
@given(HEADERS, CSVISH)
@example(b"ref,nik\n", b'"' + b"x" * 70_000)
@example(b"nik\n", b"\0\n\xff\n3171014101900001\r")
def test_csv_built_to_break_the_parser_is_read_or_refused(header: bytes, body: bytes) -> None:
    result = read_all(header + body)
    if not isinstance(result, Refused):
        check_records(*result)


@SLOW
@given(HEADERS, CSVISH, st.sampled_from([64, 4096]))
def test_both_ways_of_reading_agree(header: bytes, body: bytes, block: int) -> None:
    """The column blocks (where the reader has them) hold exactly the rows iteration gives."""
    if not hasattr(CsvReader, "blocks"):
        pytest.skip("this reader has no column blocks")
    data = header + body
    result = read_all(data)
    try:
        reader = CsvReader(io.BytesIO(data), block_bytes=block)  # type: ignore[call-arg]
    except Refused as r:
        assert isinstance(result, Refused)
        assert [x.code for x in r.reasons] == [x.code for x in result.reasons]
        return
    assert not isinstance(result, Refused)
    _, records = result
    got: list[tuple[int, tuple[str, ...] | None, str | None]] = []
    for b in reader.blocks():
        for i in range(b.rows):
            problem = b.problems.get(i)
            fields = None if problem else tuple(str(c[i]) for c in b.columns)
            got.append((int(b.lines[i]), fields, problem.code if problem else None))
    want = [(r.line, r.fields, r.problem.code if r.problem else None) for r in records]
    assert got == want


# -- file names and paths -------------------------------------------------------------------------

NAMEISH = st.one_of(
    st.text(max_size=80),
    st.text(alphabet=string.ascii_letters + string.digits + "._-/\\ \n\t\x00\u2010\u200b",
            max_size=80).map(lambda s: s + ".csv.gpg"),
    st.from_regex(r"[A-Za-z0-9._-]{0,70}\.csv\.(gpg|pgp|asc)", fullmatch=True),
)


@FAST
@given(NAMEISH)
@example("..csv.gpg")
@example("a" * 64 + ".csv.gpg")
@example("kpm-w4.csv.gpg\n")
def test_the_file_name_rule(name: str) -> None:
    batch = batch_id_of(name)
    if batch is None:
        return
    assert re.fullmatch(r"[A-Za-z0-9._-]{1,64}", batch) and not batch.startswith(".")
    assert name in (f"{batch}.csv.gpg", f"{batch}.csv.pgp", f"{batch}.csv.asc")
    assert isinstance(batch_id_looks_personal(batch), bool)


@FAST
@given(st.text(max_size=300))
def test_a_name_quoted_back_is_tame(name: str) -> None:
    """What a rejection or a log says of a file name: printable ASCII, short, no NIK."""
    shown = shown_name(name)
    assert all(32 <= ord(c) < 127 for c in shown)
    assert len(shown) <= 90
    assert not re.search(r"\d{16}", shown)


@FAST
@given(st.lists(st.sampled_from(["", ".", "..", "...", "a", "inbox", "\0", "é", " ", "\\"]),
                max_size=12).map("/".join) | st.text(max_size=60))
def test_a_path_never_leaves_the_root(path: str) -> None:
    resolved = normalise(path)
    assert resolved.startswith("/") and "//" not in resolved
    parts = resolved.strip("/").split("/") if resolved != "/" else []
    assert not {".", "..", ""} & set(parts)
    assert normalise(resolved) == resolved
    # whatever is put in front, a path resolves inside the tree it is put in
    assert normalise("/inbox/flow/" + path).startswith("/")
    assert isinstance(is_temporary_name(path), bool)


@FAST
@given(st.binary(max_size=64))
def test_the_outbox_sniff_never_fails(head: bytes) -> None:
    assert isinstance(looks_sealed(head), bool)


@FAST
@given(st.text(max_size=60) | st.ip_addresses().map(str))
def test_any_address_has_a_key(address: str) -> None:
    key = address_key(address)
    assert isinstance(key, str) and address_key(key.split("/")[0]) in (key, key.split("/")[0])


# -- NIK, NIP, NKK ---------------------------------------------------------------------------------

DIGITS16 = st.from_regex(r"\s?[0-9]{16}\s?", fullmatch=True)
DIGITS18 = st.from_regex(r"\s?[0-9]{18}\s?", fullmatch=True)


@pytest.mark.parametrize("module,length", [(nik, 16), (nip, 18), (nkk, 16)],
                         ids=["nik", "nip", "nkk"])
@FAST
@given(text=st.one_of(st.text(max_size=40), DIGITS16, DIGITS18,
                      st.text(alphabet="0123456789٠١٢٣٤٥٦٧٨٩０１ -", max_size=20)))
def test_identifiers_validate_or_raise_their_own_error(module: object, length: int,
                                                       text: str) -> None:
    validate = module.validate  # type: ignore[attr-defined]
    is_valid = module.is_valid  # type: ignore[attr-defined]
    try:
        value = validate(text)
    except ValidationError as e:
        assert not is_valid(text)
        # the error never carries the number (it reaches logs and outcome files)
        digits = re.sub(r"\D", "", text)
        assert len(digits) < 6 or digits not in str(e)
        return
    assert is_valid(text)
    assert re.fullmatch(rf"[0-9]{{{length}}}", value)
    assert validate(value) == value == text.strip(" \t\r\n")


# -- the policy loader -----------------------------------------------------------------------------

SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
                    st.text(max_size=20), st.dates())
YAMLISH = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                       | st.dictionaries(st.text(max_size=12), inner, max_size=4), max_leaves=20)


def load(files: dict[str, bytes]) -> None:
    try:
        load_policy_files(files)
    except PolicyError as e:
        assert e.diagnostics()


@SLOW
@given(st.binary(max_size=500))
def test_any_bytes_load_or_raise_a_policy_error(data: bytes) -> None:
    load({"x.yaml": data})


@SLOW
@given(YAMLISH)
def test_any_yaml_loads_or_raises_a_policy_error(value: object) -> None:
    load({"x.yaml": yaml.safe_dump(value).encode()})
    load({"x.yaml": yaml.safe_dump({"format": "exchanged/agreement-v1", "agreement": value})
          .encode()})


def mutations(value: object, path: tuple[object, ...] = ()) -> Iterator[tuple[object, ...]]:
    yield path
    if isinstance(value, dict):
        for k, v in value.items():
            yield from mutations(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from mutations(v, (*path, i))


SHIPPED_DATA = yaml.safe_load(SHIPPED.read_text(encoding="utf-8"))
PATHS = list(mutations(SHIPPED_DATA))[1:]


@SLOW
@given(st.sampled_from(PATHS), st.one_of(SCALARS, YAMLISH, st.just("__delete__")))
def test_the_real_agreement_with_one_value_changed(path: tuple[object, ...],
                                                    replacement: object) -> None:
    """The shipped agreement with any one value replaced (or removed): it loads, or the
    loader says which file and why; nothing else escapes."""
    data = yaml.safe_load(SHIPPED.read_text(encoding="utf-8"))
    parent = data
    for key in path[:-1]:
        parent = parent[key]
    if replacement == "__delete__":
        del parent[path[-1]]
    else:
        parent[path[-1]] = replacement
    load({SHIPPED.name: yaml.safe_dump(data, allow_unicode=True).encode()})


@contextmanager
def at_most(seconds: int) -> Iterator[None]:
    def give_up(signum: int, frame: object) -> None:
        raise TimeoutError(f"still loading after {seconds} s")

    previous = signal.signal(signal.SIGALRM, give_up)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


LAUGHS = b"a: &a [x, x, x, x, x, x, x, x, x]\n" + b"".join(
    bytes([98 + i]) + b": &" + bytes([98 + i]) + b" [" + b", ".join(
        [b"*" + bytes([97 + i])] * 9) + b"]\n" for i in range(8))


@pytest.mark.parametrize("data", [b"[" * 5000 + b"]" * 5000, b"a: &a [*a]\n", LAUGHS],
                         ids=["deep", "recursive-alias", "billion-laughs"])
def test_yaml_bombs_raise_a_policy_error(data: bytes) -> None:
    # well under a second on a quiet machine; the bound is there to catch a hang, and a
    # machine loaded by other work must not trip it
    with at_most(10):
        with pytest.raises(PolicyError):
            load_policy_files({"x.yaml": data})
