"""Register snapshots: first occurrences as the first format decided them, lookups, the
keyed values, and snapshots of the first (SQLite) format still read."""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from exchanged.matching.register import (
    LegacySnapshot,
    RegisterStore,
    Snapshot,
    identifier_key,
)
from exchanged.matching.register.layout import (
    FILTER_CHUNK,
    _filter_bits,
    may_hold,
    presence_filter,
)

SECRET = b"k" * 32


def nik_of(i: int) -> str:
    return f"3171{i % 97 + 1:02d}01019{i % 10}{i % 9000 + 1:04d}"


def test_first_occurrence_wins_as_insert_or_ignore_decided(tmp_path: Path) -> None:
    rng = random.Random(3)
    store = RegisterStore(tmp_path, SECRET)
    builder = store.new_snapshot("s1", keys=("nip", "nik"), unique=("nip", "nik"),
                                 values=("instansi",))
    rows = []
    for line in range(2, 3000):
        nip = f"19900101201503{rng.randint(1, 2)}{rng.randint(1, 400):03d}"
        nik = f"31710141019{rng.randint(0, 9)}{rng.randint(1, 300):04d}"
        rows.append((line, nip, nik, f"I{line % 7}"))
        builder.add(line, [nip, nik], [f"I{line % 7}"])
    report = builder.finish()
    # the reference: rows in line order, kept unless an identifier is already kept
    kept: dict[str, dict[str, int]] = {"nip": {}, "nik": {}}
    refused = []
    for line, nip, nik, _ in rows:
        if nip in kept["nip"] or nik in kept["nik"]:
            refused.append((line, nip, nik))
            continue
        kept["nip"][nip] = line
        kept["nik"][nik] = line
    expected = []
    for line, nip, nik in refused:
        column, first = (("nip", kept["nip"][nip]) if nip in kept["nip"]
                         else ("nik", kept["nik"][nik]))
        expected.append((line, column, first))
    assert [(d.line, d.column, d.first_line) for d in report.duplicates] == expected
    assert report.rows_loaded == len(rows) - len(refused)
    snapshot = store.open("s1")
    assert isinstance(snapshot, Snapshot) and snapshot.rows == report.rows_loaded
    some = list(kept["nik"].items())[:50]
    found = snapshot.lookup("nik", [n for n, _ in some] + ["3171014101900999"], ["instansi"])
    assert found == {n: (f"I{line % 7}",) for n, line in some}
    snapshot.close()


def test_block_builder_and_vector_lookup(tmp_path: Path) -> None:
    store = RegisterStore(tmp_path, SECRET)
    builder = store.new_snapshot("s2", keys=("nik",), unique=("nik",),
                                 values=("jenis_asn", "instansi"))
    niks = [nik_of(i) for i in range(5000)]
    niks = list(dict.fromkeys(niks))
    keyed = store.cipher.values("nik", niks)
    import pyarrow as pa
    builder.add_block(np.arange(2, 2 + len(niks)), {"nik": (keyed, np.ones(len(niks), bool))},
                      {"jenis_asn": pa.array(["PNS"] * len(niks)),
                       "instansi": pa.array([f"Instansi, {i % 3}" for i in range(len(niks))])})
    report = builder.finish()
    assert report.rows_loaded == len(niks) and not report.duplicates
    snapshot = store.open("s2")
    probe = store.cipher.values("nik", [niks[10], "3171014101900999", niks[0]])
    rows = snapshot.find("nik", probe)
    assert rows[1] == -1 and rows[0] >= 0 and rows[2] >= 0
    assert snapshot.values("instansi", rows).to_pylist() == ["Instansi, 1", "", "Instansi, 0"]
    data = (tmp_path / "s2.db").read_bytes()
    for n in niks[:100]:
        assert n.encode() not in data
        assert int(n).to_bytes(8, "big") not in data and int(n).to_bytes(8, "little") not in data


def test_the_presence_filter_never_rules_out_a_stored_value(tmp_path: Path) -> None:
    """Every stored value passes the filter, nearly every other one is ruled out, and a
    snapshot written before the filter existed (none in the file) finds the same rows."""
    rng = np.random.default_rng(7)
    stored = np.sort(rng.integers(0, 2**63, size=20_000, dtype=np.uint64) * np.uint64(2))
    bitmap = presence_filter(stored)
    assert len(bitmap) * 8 >= 16 * len(stored)
    assert may_hold(bitmap, stored).all()
    others = rng.integers(0, 2**63, size=20_000, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
    assert may_hold(bitmap, others).mean() < 0.1
    assert may_hold(presence_filter(stored[:0]), others).sum() == 0

    # made a chunk at a time: a run of values in one byte cut by a chunk's end keeps the
    # bits of both parts (eight values a byte, every bit of it, the runs off the chunks)
    n = 2 * FILTER_CHUNK + 11
    bits = _filter_bits(n)
    picked = np.sort(rng.choice(1 << (bits - 3), size=n // 8 + 1, replace=False))
    where = (picked[:, None].astype(np.uint64) * np.uint64(8)
             + np.arange(8, dtype=np.uint64)).reshape(-1)[3:3 + n]
    dense = where << np.uint64(64 - bits)
    assert may_hold(presence_filter(dense), dense).all()
    expected = np.zeros(1 << (bits - 3), dtype=np.uint8)
    np.bitwise_or.at(expected, (where >> np.uint64(3)).astype(np.intp),
                     np.left_shift(np.uint8(1), (where & np.uint64(7)).astype(np.uint8)))
    assert (presence_filter(dense) == expected).all()

    store = RegisterStore(tmp_path, SECRET)
    builder = store.new_snapshot("s3", keys=("nik",), unique=("nik",), values=())
    niks = list(dict.fromkeys(nik_of(i) for i in range(3000)))
    for line, n in enumerate(niks, start=2):
        builder.add(line, [n], [])
    builder.finish()
    probe = store.cipher.values("nik", niks[::7] + [nik_of(9000 + i)[:-4] + "9999"
                                                    for i in range(50)])
    snapshot = store.open("s3")
    with_filter = snapshot.find("nik", probe)
    assert (with_filter[:len(niks[::7])] >= 0).all() and (with_filter[-50:] == -1).all()
    del snapshot._arrays["filter.nik"]
    assert (snapshot.find("nik", probe) == with_filter).all()
    snapshot.close()


def test_keyed_values_depend_on_the_secret_and_the_column(tmp_path: Path) -> None:
    a = RegisterStore(tmp_path / "a", SECRET).cipher
    b = RegisterStore(tmp_path / "b", b"other secret").cipher
    one = a.values("nik", ["3171014101900001"])
    assert (one != b.values("nik", ["3171014101900001"])).any()
    assert (one != a.values("nkk", ["3171014101900001"])).any()
    assert (one == a.values("nik", ["3171014101900001"])).all()


def test_a_failed_build_leaves_nothing_and_clean_removes_leftovers(tmp_path: Path) -> None:
    store = RegisterStore(tmp_path, SECRET)
    builder = store.new_snapshot("s3", keys=("nik",), unique=("nik",), values=())
    builder.add(2, ["3171014101900001"], [])
    builder.abort()
    assert list(tmp_path.iterdir()) == []
    left = store.new_snapshot("s4", keys=("nik",), unique=("nik",), values=())
    left.add(2, ["3171014101900001"], [])
    left._flush()  # a crash mid-build leaves the hidden build folder
    left._drain()
    assert store.remove_unreferenced([]) == 1
    assert list(tmp_path.iterdir()) == []


def test_a_snapshot_of_the_first_format_is_still_read(tmp_path: Path) -> None:
    store = RegisterStore(tmp_path, SECRET)
    conn = sqlite3.connect(tmp_path / "old.db")
    conn.execute('CREATE TABLE register (line INTEGER PRIMARY KEY, "nik_key" BLOB, '
                 '"instansi" TEXT)')
    conn.execute("INSERT INTO register VALUES (2, ?, 'Kemensos')",
                 (identifier_key(SECRET, "3171014101900001"),))
    conn.execute("CREATE TABLE snapshot_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    conn.executemany("INSERT INTO snapshot_meta VALUES (?, ?)",
                     [("id", "old"), ("rows", "1"), ("keys", "nik"), ("values", "instansi")])
    conn.commit()
    conn.close()
    snapshot = store.open("old")
    assert isinstance(snapshot, LegacySnapshot)
    assert snapshot.lookup("nik", ["3171014101900001", "3171014101900002"], ["instansi"]) == {
        "3171014101900001": ("Kemensos",)}
    snapshot.close()
    assert list(store.snapshot_ids()) == ["old"]


def test_an_identifier_column_left_empty_in_every_row(tmp_path: Path) -> None:
    store = RegisterStore(tmp_path, SECRET)
    builder = store.new_snapshot("s5", keys=("nik", "nkk"), unique=("nik",), values=("program",))
    for line in range(2, 50):
        builder.add(line, [nik_of(line), ""], ["PKH"])
    report = builder.finish()
    assert report.rows_loaded == 48
    snapshot = store.open("s5")
    assert snapshot.lookup("nkk", [nik_of(2)], ["program"]) == {}
    assert snapshot.lookup("nik", [nik_of(2)], ["program"]) == {nik_of(2): ("PKH",)}


@pytest.mark.parametrize("gather_chunk", [1 << 20, 1000, 7])
def test_keyed_values_that_share_their_top_bits_are_sorted_whole(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, gather_chunk: int) -> None:
    # the builder sorts by the first word's top bits and settles equal prefixes by the
    # whole value: values made to share prefixes (and repeats of one value) still come
    # out in (first word, second word, row) order, whatever the chunks they are
    # gathered in
    import exchanged.matching.register.builder as builder_module
    monkeypatch.setattr(builder_module, "GATHER_CHUNK", gather_chunk)
    store = RegisterStore(tmp_path, SECRET)
    builder = store.new_snapshot("s6", keys=("nik",), unique=(), values=("instansi",))
    rng = np.random.default_rng(7)
    n = 3000
    hi = rng.integers(0, 1 << 63, n, dtype=np.uint64)
    hi[:1000] = (hi[:1000] >> np.uint64(40)) % np.uint64(5) << np.uint64(40)  # equal tops
    hi[1000:1010] = hi[0]  # the same first word, other second words
    lo = rng.integers(0, 1 << 63, n, dtype=np.uint64)
    lo[2000:2005] = lo[1]
    hi[2000:2005] = hi[1]  # five repeats of row 1's value
    keyed = np.stack([hi, lo], axis=1)
    present = np.ones(n, dtype=np.bool_)
    present[::97] = False
    import pyarrow as pa
    half = n // 2
    for part in (slice(0, half), slice(half, n)):
        builder.add_block(np.arange(2, 2 + n)[part], {"nik": (keyed[part], present[part])},
                          {"instansi": pa.array([f"I{i}" for i in range(n)][part])})
    builder.finish()
    snapshot = store.open("s6")
    rows = np.flatnonzero(present)
    want = sorted(zip(hi[rows].tolist(), lo[rows].tolist(), rows.tolist()))
    got = list(zip(snapshot._arrays["hi.nik"].tolist(), snapshot._arrays["lo.nik"].tolist(),
                   snapshot._arrays["row.nik"].tolist()))
    assert got == want
    assert snapshot.values("instansi", snapshot.find("nik", keyed[[5, 1003]])).to_pylist() == [
        "I5", "I1003"]
    snapshot.close()
