"""Memory and proof: the append-only, hash-chained ledger of everything that happens."""

from exchanged.home.paths import Home
from exchanged.ledger.store import (
    Entry,
    Ledger,
    Query,
    Transaction,
    VerifyReport,
    check_no_personal_data,
    format_ts,
    utc_now,
)


def open_ledger(home: Home, *, readonly: bool = False, extra_schema: str = "") -> Ledger:
    """The home's ledger (``extra_schema``: tables kept beside it, created if missing)."""
    ledger = Ledger(home.ledger, extra_schema=extra_schema, readonly=readonly)
    if not readonly:
        ledger.open_checked()
    return ledger


__all__ = [
    "open_ledger",
    "Entry",
    "Ledger",
    "Query",
    "Transaction",
    "VerifyReport",
    "check_no_personal_data",
    "format_ts",
    "utc_now",
]
