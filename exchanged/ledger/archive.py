"""The policy archive: every policy set the exchange has used, kept by its SHA-256.

A policy decision in the ledger records the SHA-256 of the policy set it used; the
archive keeps that set's exact files, so that any past decision can be replayed
against the policy of its day (``exchanged policy explain --seq N``). The archive is
append-only like the ledger (its table and triggers are created with the ledger's,
:data:`exchanged.ledger.store.SCHEMA`, and verified with them), and a text is
trusted only if it still hashes to the SHA-256 it is kept under: when it is read, and
for every set in ``exchanged ledger verify``. Policy files hold no personal data.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from exchanged.errors import CheckFailed
from exchanged.home.files import files_sha256


class Executor(Protocol):
    """An SQLite connection, or a ledger transaction (whose writes commit with its entries)."""

    def execute(self, sql: str, params: Sequence[Any] = ..., /) -> sqlite3.Cursor: ...

def archive_policy_set(txn: Executor, files: Mapping[str, bytes], now: str) -> str:
    """Keep the exact files of a policy set (once per SHA-256); returns the SHA-256."""
    sha256 = files_sha256(files)
    body = json.dumps({name: files[name].decode("utf-8") for name in sorted(files)},
                      ensure_ascii=False)
    txn.execute("INSERT OR IGNORE INTO policy_sets (sha256, archived_at, files) VALUES (?, ?, ?)",
                (sha256, now, body))
    return sha256


def archived_policy_set(db: Executor, sha256: str) -> dict[str, bytes] | None:
    """The files of the policy set kept under ``sha256``; CheckFailed if they were altered."""
    row = db.execute(
        "SELECT files FROM policy_sets WHERE sha256 = ?", (sha256,)).fetchone()
    if row is None:
        return None
    files = _files(str(row[0]))
    if files is None or files_sha256(files) != sha256:
        raise CheckFailed(f"the archived policy set {sha256[:12]} was altered: its files no "
                          "longer match the SHA-256 it is kept under")
    return files


def altered_policy_sets(db: Executor) -> list[str]:
    """The SHA-256 of every archived set whose files no longer match it (for verify)."""
    try:
        rows = db.execute("SELECT sha256, files FROM policy_sets").fetchall()
    except sqlite3.OperationalError:
        return ["(the policy archive is missing)"]
    altered = []
    for sha256, text in rows:
        files = _files(str(text))
        if files is None or files_sha256(files) != sha256:
            altered.append(str(sha256))
    return altered


def _files(text: str) -> dict[str, bytes] | None:
    try:
        raw = json.loads(text)
    except ValueError:
        return None
    if not isinstance(raw, dict) or not all(isinstance(v, str) for v in raw.values()):
        return None
    return {str(name): value.encode("utf-8") for name, value in raw.items()}
