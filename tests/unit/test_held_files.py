"""A database the process holds open is recognised under any other name (a hard link), so
that nothing opens (and closes) it there: closing any descriptor of it would drop SQLite's
POSIX locks of the whole process."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from exchanged.home.drop import database_files, is_held


def test_a_hard_link_to_the_database_or_its_wal_is_held(tmp_path: Path) -> None:
    db = tmp_path / "ledger.db"
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE t (x)")
    conn.execute("INSERT INTO t VALUES (1)")
    drop = tmp_path / "drop"
    drop.mkdir()
    os.link(db, drop / "a.result.csv.gpg")
    os.link(tmp_path / "ledger.db-wal", drop / "b.result.csv.gpg")
    (drop / "c.result.csv.gpg").write_bytes(b"x")
    held = database_files(db)
    assert [p.name for p in held] == ["ledger.db", "ledger.db-wal", "ledger.db-shm",
                                      "ledger.db-journal"]
    for name, expected in (("a", True), ("b", True), ("c", False)):
        st = os.stat(drop / f"{name}.result.csv.gpg", follow_symlinks=False)
        assert is_held(st, held) is expected, name
    conn.close()
