"""The spool's upload bookkeeping and the pipeline's sorting of errors."""

from __future__ import annotations

import errno
import hashlib
import os
import sqlite3
import stat
from pathlib import Path

import pytest

from exchanged.batch.names import batch_id_looks_personal
from exchanged.batch.spool import NotAPlainFile, Spool
from exchanged.errors import Unavailable, as_unavailable
from exchanged.home import Home


def spool(tmp_path: Path) -> Spool:
    home = Home(tmp_path)
    for d in home.directories():
        d.mkdir(parents=True, exist_ok=True)
    return Spool(home)


def test_the_recorded_hash_is_of_the_bytes_kept(tmp_path: Path) -> None:
    s = spool(tmp_path)
    up = s.new_upload("kemensos", "kpm-verification", "b.csv.gpg")
    up.write(0, b"aaaa")
    up.write(4, b"bbbb")
    up.write(0, b"XX")  # a client rewrites a range it already sent
    meta = up.finish("2026-01-01T00:00:00Z")
    assert meta.sha256 == hashlib.sha256(b"XXaabbbb").hexdigest()


def test_in_order_writes_are_hashed_as_they_come(tmp_path: Path) -> None:
    s = spool(tmp_path)
    up = s.new_upload("kemensos", "kpm-verification", "b.csv.gpg")
    for i in range(10):
        up.write(i * 3, b"abc")
    meta = up.finish("2026-01-01T00:00:00Z")
    assert meta.sha256 == hashlib.sha256(b"abc" * 10).hexdigest()
    assert not meta.name_personal


def test_a_personal_number_in_a_file_name_is_masked(tmp_path: Path) -> None:
    s = spool(tmp_path)
    up = s.new_upload("kemensos", "kpm-verification", "kpm-3171014101900001.csv.gpg")
    up.write(0, b"x")
    meta = up.finish("2026-01-01T00:00:00Z")
    assert meta.name_personal and "3171014101900001" not in meta.name
    assert "3171014101900001" not in (s.batch_dir(meta.uid) / "meta.json").read_text()


def test_the_copy_out_of_a_chroot_refuses_links(tmp_path: Path) -> None:
    """OpenSSH mode: what the watcher found a plain file may be a link by the time the spool
    takes it. The spool opens it without following links and checks the descriptor: a
    symbolic link, a hard link or a FIFO is refused and left alone; a plain file is copied
    (the exchange's own, 0600) and its name removed."""
    chroots = tmp_path / "srv"
    home = Home(tmp_path / "home", chroots)
    for d in home.directories():
        d.mkdir(parents=True, exist_ok=True)
    s = Spool(home)
    inbox = home.inbox("kemensos", "kpm-verification")
    inbox.mkdir(parents=True)
    secret = tmp_path / "register.key"
    secret.write_bytes(b"secret")
    (inbox / "sym.csv.gpg").symlink_to(secret)
    os.link(secret, inbox / "hard.csv.gpg")
    os.mkfifo(inbox / "fifo.csv.gpg")
    for name in ("sym.csv.gpg", "hard.csv.gpg", "fifo.csv.gpg"):
        with pytest.raises(NotAPlainFile):
            s.adopt(inbox / name, "kemensos", "kpm-verification", name)
        assert os.path.lexists(inbox / name), name
    assert secret.read_bytes() == b"secret" and secret.stat().st_nlink == 2
    assert not list(home.uploads.iterdir())
    (inbox / "good.csv.gpg").write_bytes(b"sealed batch")
    os.chmod(inbox / "good.csv.gpg", 0o660)
    upload = s.adopt(inbox / "good.csv.gpg", "kemensos", "kpm-verification", "good.csv.gpg")
    assert not (inbox / "good.csv.gpg").exists()
    assert upload.path.read_bytes() == b"sealed batch" and upload.size == 12
    assert stat.S_IMODE(upload.path.stat().st_mode) == 0o600
    meta = upload.finish("2026-01-01T00:00:00Z")
    assert meta.sha256 == hashlib.sha256(b"sealed batch").hexdigest()


def sqlite_error(tmp_path: Path, readonly: bool = False, full: bool = False) -> sqlite3.Error:
    """A real SQLite error (its result code set by SQLite, not by the test)."""
    path = tmp_path / "db.sqlite"
    sqlite3.connect(path).executescript("CREATE TABLE IF NOT EXISTS t (x BLOB)")
    conn = (sqlite3.connect(f"file:{path}?mode=ro", uri=True) if readonly
            else sqlite3.connect(path))
    try:
        if full:
            conn.execute("PRAGMA max_page_count = 2")
            conn.execute("INSERT INTO t VALUES (zeroblob(100000))")
        elif readonly:
            conn.execute("INSERT INTO t VALUES (1)")
        else:
            conn.execute("SELECT nosuchcolumn FROM t")
    except sqlite3.Error as e:
        return e
    finally:
        conn.close()
    raise AssertionError("SQLite did not fail")


def test_resource_errors_stop_intake_and_bugs_do_not(tmp_path: Path) -> None:
    assert as_unavailable(OSError(errno.ENOSPC, "full"))
    assert as_unavailable(OSError(errno.EIO, "io"))
    assert as_unavailable(sqlite_error(tmp_path, full=True))
    assert as_unavailable(sqlite_error(tmp_path, readonly=True))
    assert as_unavailable(Unavailable("x"))
    assert as_unavailable(OSError(errno.ENOENT, "no such file")) is None
    assert as_unavailable(KeyError("x")) is None
    assert as_unavailable(sqlite_error(tmp_path)) is None
    # the text of an error says nothing: only SQLite's own result code does
    assert as_unavailable(sqlite3.OperationalError("database or disk is full")) is None


def test_batch_ids_hiding_a_number() -> None:
    assert batch_id_looks_personal("3171.0141.0190.0001")
    assert batch_id_looks_personal("x_1990010120150310_01")
    assert not batch_id_looks_personal("kpm-2026-11-w4")
