"""Synthetic data written to CSV files as the real thing would be: private (0600), UTF-8.

Registers, KPM batches, jabfung-integration batches and the fuzzy fallback's
labelled rows, each streamed row by row, optionally with a truth file beside
the batch that says what the answer to each row must be.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable, Sequence
from operator import attrgetter
from typing import TextIO

from exchanged.testing.synth.jabfung import (
    FUNCTIONAL_COLUMNS,
    JABFUNG_COLUMNS,
    JABFUNG_TRUTH_COLUMNS,
    JabfungRow,
    functional_position,
)
from exchanged.testing.synth.kpm import KPM_COLUMNS, TRUTH_COLUMNS, KpmRow
from exchanged.testing.synth.register import REGISTER_COLUMNS, SyntheticRegister
from exchanged.testing.synth.variants import FUZZY_TRUTH_COLUMNS, FuzzyCase

StrPath = str | os.PathLike[str]


def open_private(path: StrPath) -> TextIO:
    """Open for writing a file only its owner can read: synthetic data is
    handled like the real thing, so tests exercise the same file modes."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(path, flags, 0o600)
    try:
        # O_CREAT's mode does not apply to a file that already existed.
        os.fchmod(fd, 0o600)
        return open(fd, "w", encoding="utf-8", newline="", buffering=1 << 20)
    except BaseException:
        os.close(fd)
        raise


def write_register_csv(path: StrPath, register: SyntheticRegister, *,
                       functional_positions: bool = False) -> int:
    """Write the register as CSV (REGISTER_COLUMNS); return the row count.

    With ``functional_positions`` the rows also carry each person's
    functional position (``jabatan, jenjang_jabatan, unit_kerja,
    tmt_jabatan``, empty for those who hold none; see
    :mod:`exchanged.testing.synth.jabfung`), as the register of the
    jabfung-integration flow needs.
    """
    with open_private(path) as stream:
        writer = csv.writer(stream, lineterminator="\n")
        fields = register.fields
        if not functional_positions:
            writer.writerow(REGISTER_COLUMNS)
            writer.writerows(fields(i)[:6] for i in range(len(register)))
            return len(register)
        writer.writerow(REGISTER_COLUMNS + FUNCTIONAL_COLUMNS)
        writer.writerows(fields(i)[:6] + functional_position(register, i).fields()
                         for i in range(len(register)))
    return len(register)


def write_kpm_csv(
    path: StrPath,
    rows: Iterable[KpmRow],
    columns: Sequence[str] = ("ref", "nik"),
    truth_path: StrPath | None = None,
) -> int:
    """Write a KPM batch as CSV and, if asked, its ground truth beside it.

    ``columns`` is any non-empty subset of KPM_COLUMNS in any order.  The
    truth file has TRUTH_COLUMNS, row for row in the same order.  Returns
    the number of rows written (the header not counted).
    """
    columns = tuple(columns)
    unknown = [c for c in columns if c not in KPM_COLUMNS]
    if not columns or unknown or len(set(columns)) != len(columns):
        raise ValueError(
            f"columns must be distinct names from {', '.join(KPM_COLUMNS)}; got {columns!r}"
        )
    getters = [attrgetter(c) for c in columns]
    truth_get = attrgetter(*TRUTH_COLUMNS)
    count = 0
    with open_private(path) as stream:
        writer = csv.writer(stream, lineterminator="\n")
        writer.writerow(columns)
        if truth_path is None:
            for row in rows:
                writer.writerow([get(row) for get in getters])
                count += 1
            return count
        with open_private(truth_path) as truth_stream:
            truth = csv.writer(truth_stream, lineterminator="\n")
            truth.writerow(TRUTH_COLUMNS)
            for row in rows:
                writer.writerow([get(row) for get in getters])
                truth.writerow(truth_get(row))
                count += 1
    return count


def write_jabfung_csv(path: StrPath, rows: Iterable[JabfungRow],
                      truth_path: StrPath | None = None) -> int:
    """Write a jabfung-integration batch (JABFUNG_COLUMNS) and, if asked, its truth file."""
    count = 0
    with open_private(path) as stream:
        writer = csv.writer(stream, lineterminator="\n")
        writer.writerow(JABFUNG_COLUMNS)
        truth_stream = open_private(truth_path) if truth_path is not None else None
        try:
            truth = csv.writer(truth_stream, lineterminator="\n") if truth_stream else None
            if truth is not None:
                truth.writerow(JABFUNG_TRUTH_COLUMNS)
            for row in rows:
                writer.writerow([row.ref, row.nip, row.nama, row.jabatan, row.jenjang_jabatan,
                                 row.unit_kerja, row.tmt_jabatan])
                if truth is not None:
                    truth.writerow([row.ref, row.nip, row.expected_status,
                                    row.expected_berbeda])
                count += 1
        finally:
            if truth_stream is not None:
                truth_stream.close()
    return count


def write_fuzzy_csv(path: StrPath, cases: Iterable[FuzzyCase],
                    truth_path: StrPath | None = None) -> int:
    """Write labelled rows as a kpm-verification batch (ref, nik, nama, tanggal_lahir), and
    the truth.

    The truth file has FUZZY_TRUTH_COLUMNS: the status the fallback should
    give and the kind of row.
    """
    count = 0
    with open_private(path) as stream:
        writer = csv.writer(stream, lineterminator="\n")
        writer.writerow(("ref", "nik", "nama", "tanggal_lahir"))
        truth_stream = open_private(truth_path) if truth_path is not None else None
        try:
            truth = csv.writer(truth_stream, lineterminator="\n") if truth_stream else None
            if truth is not None:
                truth.writerow(FUZZY_TRUTH_COLUMNS)
            for case in cases:
                writer.writerow((case.ref, case.nik, case.nama, case.tanggal_lahir))
                if truth is not None:
                    truth.writerow((case.ref, case.nik, case.expected_status, case.kind))
                count += 1
        finally:
            if truth_stream is not None:
                truth_stream.close()
    return count
