"""Reference data snapshots: what a flow matches against, without identifiers in the clear."""

from exchanged.matching.register.builder import CHUNK, BuildReport, Duplicate, SnapshotBuilder
from exchanged.matching.register.keys import (
    KEY_BYTES,
    MAX_DIGITS,
    IdentifierCipher,
    Rows,
    U64Pairs,
    identifier_key,
    token_key,
)
from exchanged.matching.register.layout import (
    ALIGN,
    FUZZY_SUFFIX,
    MAGIC,
    SQLITE_MAGIC,
    SUFFIX,
    SnapshotPlace,
)
from exchanged.matching.register.snapshot import IN_CHUNK, LegacySnapshot, Snapshot
from exchanged.matching.register.store import RegisterStore

__all__ = [
    "ALIGN",
    "CHUNK",
    "FUZZY_SUFFIX",
    "IN_CHUNK",
    "KEY_BYTES",
    "MAGIC",
    "MAX_DIGITS",
    "SQLITE_MAGIC",
    "SUFFIX",
    "BuildReport",
    "Duplicate",
    "IdentifierCipher",
    "LegacySnapshot",
    "RegisterStore",
    "Rows",
    "Snapshot",
    "SnapshotBuilder",
    "SnapshotPlace",
    "U64Pairs",
    "identifier_key",
    "token_key",
]
