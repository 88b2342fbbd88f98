"""The agency's side of matching on keyed tokens: ``submit --tokenize`` and ``client token-key``.

Before a batch leaves the agency's machine, every NIK is checked with the
exchange's own validator (:func:`exchanged.ids.nik.validate`); a valid NIK is
replaced by its keyed token (:mod:`exchanged.ids.token`), an invalid one by an
empty cell, so the exchange never sees a NIK, not even a mistyped one. Every
other cell and every line stays as it was, so the exchange's answer has one
row per row of the batch, in order, and its line numbers are the batch's.

When the answer comes back, :func:`restore` reads it beside the original
batch, row by row, and gives each row its NIK back: a token is checked to be
the row's own (an answer that belongs to another batch is refused), an empty
cell is the NIK the agency found invalid, which the exchange answered with its
invalid status (``TIDAK_VALID``), and which gets the value as written back,
trimmed, as the plain path writes it. A register load's summary says
``INVALID_NIK`` for such a line, as the plain path would. The answer keeps the
contract's format exactly. Both passes stream: memory does not grow with the
batch.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from exchanged.csvrow import CsvWriter
from exchanged.errors import Error, UsageError
from exchanged.ids import nik as nik_id
from exchanged.ids import token as tk

#: the register load's answer (exchanged.flows.register_load)
LOAD_HEADER = ["record", "line", "code", "detail"]


class TokenError(Error):
    """The token key or the answer does not fit (exit 2)."""


@dataclass(frozen=True)
class Tokenized:
    """What tokenizing a batch did: rows read, NIKs found invalid here, the key used."""

    rows: int
    invalid: int
    fingerprint: str


def new_token_key(path: Path) -> str:
    """Write a new token key to ``path`` (a new file, 0600); returns its fingerprint."""
    key = tk.new_key()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        raise UsageError(f"{path} already exists: a token key is never written over") from None
    except OSError as e:
        raise UsageError(f"cannot create {path}: {e.strerror}") from None
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(tk.key_file_text(key))
        f.flush()
        os.fsync(f.fileno())
    return tk.fingerprint(key)


def read_token_key(path: Path) -> bytes:
    """The key of a token key file, which must be the user's alone (like an SSH key)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as e:
        raise UsageError(f"cannot open the token key {path}: {e.strerror}") from None
    with os.fdopen(fd, "r", encoding="ascii", errors="replace") as f:
        if os.fstat(f.fileno()).st_mode & 0o077:
            raise TokenError(f"the token key {path} can be read by others: make it private "
                             f"(chmod 600 {path})")
        text = f.read(4096)
    try:
        return tk.parse_key_file(text)
    except tk.TokenKeyError as e:
        raise TokenError(f"{path} is not a usable token key: {e}") from None


def _open_csv(path: Path) -> IO[str]:
    try:
        return open(path, encoding="utf-8-sig", newline="")
    except OSError as e:
        raise UsageError(f"cannot read {path}: {e.strerror}") from None


def _nik_column(header: list[str], path: Path) -> int:
    names = [h.strip().lower() for h in header]
    if "nik" not in names:
        raise UsageError(f"{path} has no nik column to tokenize")
    return names.index("nik")


def tokenize(source: Path, target: Path, key: bytes) -> Tokenized:
    """Write ``source`` to ``target`` (a new file, 0600) with every NIK replaced by its token
    and every invalid NIK by an empty cell; nothing else changes, line for line."""
    tokenizer = tk.Tokenizer(key)
    rows = invalid = 0
    with _open_csv(source) as f:
        records = csv.reader(f, strict=False)
        try:
            header = next(records)
        except StopIteration:
            raise UsageError(f"{source} is empty") from None
        except csv.Error:
            raise UsageError(f"{source} is not a CSV file the client can read") from None
        at = _nik_column(header, source)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as out:
            writer = csv.writer(out, lineterminator="\n")
            writer.writerow(header)
            try:
                for record in records:
                    if record and len(record) > at:
                        rows += 1
                        value = record[at]
                        if tk.looks_like_token(value):
                            raise UsageError(f"{source} line {records.line_num}: the batch is "
                                             "already tokenized")
                        try:
                            record[at] = tokenizer.token(nik_id.validate(value))
                        except ValueError:
                            record[at] = ""
                            invalid += 1
                    elif record:
                        rows += 1
                    writer.writerow(record)
            except csv.Error:
                raise UsageError(f"{source} line {records.line_num}: the client cannot read "
                                 "this CSV line (fix the file)") from None
    return Tokenized(rows, invalid, tokenizer.fingerprint)


def _records(path: Path) -> Iterator[tuple[int, list[str]]]:
    """The original batch's data records with the line each starts on (blank lines, which
    the exchange does not count as rows, left out)."""
    with _open_csv(path) as f:
        records = csv.reader(f, strict=False)
        next(records, None)
        line = records.line_num
        for record in records:
            start, line = line + 1, records.line_num
            if record:
                yield start, record


def restore(answer: Path, source: Path, target: Path, key: bytes) -> None:
    """Write the answer (a file) to a tokenized ``source`` to ``target`` (a new file, 0600)
    with the NIKs of ``source`` in place of its tokens."""
    with open(answer, encoding="utf-8", newline="") as text:
        _restore(csv.reader(text), source, target, key)


def _restore(rows: Iterator[list[str]], source: Path, target: Path, key: bytes) -> None:
    header = next(rows, None)
    if header is None:
        raise TokenError("the exchange's answer is empty")
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as out:
        writer = CsvWriter(out, header)
        if header == LOAD_HEADER:
            _restore_load(rows, source, writer)
        elif "nik" in header:
            why_at = header.index("alasan") if "alasan" in header else -1
            _restore_rows(rows, header.index("nik"), source, writer, tk.Tokenizer(key), why_at)
        else:
            raise TokenError("the exchange's answer has no nik column to restore")
        writer.close()


def _original_nik(record: list[str], at: int) -> str:
    return record[at] if len(record) > at else ""


def _restore_rows(rows: Iterator[list[str]], at: int, source: Path, writer: CsvWriter,
                  tokenizer: tk.Tokenizer, why_at: int = -1) -> None:
    with _open_csv(source) as f:
        header = next(csv.reader(f), [])
    nik_at = _nik_column(header, source)
    originals = _records(source)
    for row in rows:
        original = next(originals, None)
        if original is None or len(row) <= at:
            raise TokenError("the answer has more rows than the batch: it is not this "
                             "batch's answer")
        value = _original_nik(original[1], nik_at)
        try:
            canonical: str | None = nik_id.validate(value)
        except ValueError:
            canonical = None
        if row[at] == "":
            # a NIK found invalid here (the exchange saw an empty cell), or a row the exchange
            # could not read: as the plain path, the value as written, trimmed
            row[at] = value.strip() if canonical is None else ""
            if canonical is None and 0 <= why_at < len(row) and row[why_at] == "NIK_EMPTY":
                # the exchange saw the empty cell sent in its place; the reason is the NIK's
                row[why_at] = nik_id.problem(value) or row[why_at]
        elif canonical is not None and row[at] == tokenizer.token(canonical):
            row[at] = canonical
        else:
            raise TokenError(f"the answer's row for line {original[0]} does not carry that "
                             "line's token: it is not this batch's answer")
        writer.write(row)
    if next(originals, None) is not None:
        raise TokenError("the answer has fewer rows than the batch: it is not this batch's "
                         "answer")


def _restore_load(rows: Iterator[list[str]], source: Path, writer: CsvWriter) -> None:
    """A register load's summary: a line whose NIK was found invalid here was sent empty, and
    is named as the plain path names it (the exchange said the nik was empty)."""
    with _open_csv(source) as f:
        header = next(csv.reader(f), [])
    nik_at = _nik_column(header, source)
    originals = _records(source)
    current: tuple[int, list[str]] | None = None
    for row in rows:
        if len(row) == 4 and row[0] == "invalid" and row[2] == "EMPTY_VALUE" \
                and row[3] == "nik is empty" and row[1].isdigit():
            line = int(row[1])
            while current is None or current[0] < line:
                current = next(originals, None)
                if current is None:
                    raise TokenError("the answer names a line the batch does not have")
            if current[0] == line and _original_nik(current[1], nik_at).strip():
                row = ["invalid", row[1], "INVALID_NIK", "nik is not a structurally valid NIK"]
        writer.write(row)
