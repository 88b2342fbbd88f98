"""Memory and proof: the append-only, hash-chained ledger of everything that happens."""

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

__all__ = [
    "Entry",
    "Ledger",
    "Query",
    "Transaction",
    "VerifyReport",
    "check_no_personal_data",
    "format_ts",
    "utc_now",
]
