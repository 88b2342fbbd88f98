"""Errors that reach a person, and the reasons a batch is refused.

Every error a user can see derives from :class:`Error`; its
:meth:`Error.diagnostics` is the one sentence the CLI prints. A batch that is
refused carries one or more :class:`Reason` values (a stable code and a
sentence) that end up, encrypted, in the agency's outbox.

Nothing in this module, nor any message built with it, may contain personal
data (NIK, NIP, names, birth dates): messages name columns, line numbers and
codes, never values.
"""

from __future__ import annotations

import errno
import os
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass


class Error(Exception):
    """Base class of every error exchanged reports to a person."""

    #: the CLI's exit code for this error (2: usage or configuration)
    exit_code = 2

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def diagnostics(self) -> str:
        """The user's text: one sentence, no traceback."""
        return self.message


class UsageError(Error):
    """The command was called wrongly."""


class ConfigError(Error):
    """The home, its configuration or its keys are missing or wrong."""


class CheckFailed(Error):
    """A check the user asked for failed (a broken chain, an invalid policy)."""

    exit_code = 1


class PolicyError(CheckFailed):
    """A policy file is invalid; names the file and, where known, the line."""

    def __init__(self, message: str, file: str | None = None, line: int | None = None) -> None:
        where = ""
        if file is not None:
            where = f"{file}:{line}: " if line is not None else f"{file}: "
        super().__init__(where + message)
        self.file = file
        self.line = line
        self.bare_message = message


class LedgerError(Error):
    """The ledger cannot be written or read as it must be."""


class KeyProblem(Error):
    """An OpenPGP or SSH key cannot be used."""


@dataclass(frozen=True)
class Reason:
    """Why a batch was refused: a stable code, an English and an Indonesian sentence."""

    code: str
    message: str
    #: the same sentence in Indonesian (``pesan``: message)
    pesan: str = ""

    def as_dict(self) -> dict[str, str]:
        """The form the rejection file carries: the contract's ``{code, message}`` and the
        Indonesian sentence beside it (``pesan``)."""
        return {"code": self.code, "message": self.message, "pesan": self.pesan}


class Problem(Exception):
    """Why a piece of the exchange's work (a batch, an upload, a login) cannot go on.

    The internal family, never shown to a person as it is; each kind says whose the
    problem is and what happens next, and is raised with its type where it arises
    (never recognised afterwards from the text of an SQLite or gpg message):

    - :class:`Refused`: the sender's: the batch is answered with the reasons;
    - :class:`Unavailable`: the exchange's own (a full disk, an unwritable ledger):
      intake stops, the work waits where it is and is retried once the exchange can
      write again;
    - :class:`RetryLater`: this one piece of work only (an outbox that is a link, gpg
      unable to seal for an agency's key): it keeps its stage and is tried again, a
      bounded number of times.
    """


class Refused(Problem):
    """A batch is refused; carries the reasons sent back to the agency.

    ``details`` are what the ledger records of the decision (rule ids,
    clauses, the policy's hash), never values from the batch.
    """

    def __init__(self, *reasons: Reason, details: Mapping[str, object] | None = None) -> None:
        super().__init__("; ".join(r.code for r in reasons))
        self.reasons = reasons
        self.details: Mapping[str, object] = details or {}


class Unavailable(Problem):
    """The exchange itself cannot work right now (disk full, ledger unwritable).

    Not the sender's fault: the batch stays where it is and is retried; intake
    stops until the condition clears (fail closed).
    """


class RetryLater(Problem):
    """This piece of work cannot go on now (not the exchange as a whole): try it again later
    (after ``delay`` seconds, when whoever raised it knows how long)."""

    def __init__(self, message: str, *, delay: float | None = None) -> None:
        super().__init__(message)
        self.delay = delay


#: what an OSError's errno says when the exchange's own disk or process limits fail it
RESOURCE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO, errno.EACCES,
                             errno.EMFILE, errno.ENFILE})
#: SQLite's primary result codes that mean the exchange's own storage failed it (busy or
#: locked past the timeout, read-only, an I/O error, full, cannot be opened), not a bug
SQLITE_RESOURCE_CODES = frozenset({5, 6, 8, 10, 13, 14})


def as_unavailable(error: BaseException) -> Unavailable | None:
    """``error`` as the exchange's own resources failing, by its type and code; else None.

    An :class:`Unavailable` is one already; an :class:`OSError` is one when its errno
    says so (a full disk, a read-only file system, an I/O error, no file handles left),
    and an SQLite error when its result code does (never its message's text).

    >>> as_unavailable(OSError(errno.ENOSPC, "x")) is not None, as_unavailable(KeyError("x"))
    (True, None)
    """
    if isinstance(error, Unavailable):
        return error
    if isinstance(error, OSError) and error.errno in RESOURCE_ERRNOS:
        return Unavailable(os.strerror(error.errno or 0))
    if isinstance(error, sqlite3.Error):
        code = getattr(error, "sqlite_errorcode", None)
        if code is not None and code & 0xFF in SQLITE_RESOURCE_CODES:
            name = getattr(error, "sqlite_errorname", str(code))
            return Unavailable(f"the ledger cannot be written ({name})")
    return None
