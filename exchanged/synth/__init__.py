"""Synthetic, structurally valid test data with ground truth (never real people).

``SyntheticRegister`` is a deterministic ASN register addressable by row
index; ``kpm_batch`` streams a KPM batch drawing its ASN rows from such a
register and saying, row by row, what the answer must be.  Both stream, so
registers of millions and batches of tens of millions of rows are written
with constant memory.
"""

from exchanged.synth.generate import (
    INVALID_KINDS,
    KPM_COLUMNS,
    MAX_REGISTER_ROWS,
    REGISTER_COLUMNS,
    STATUS_ASN,
    STATUS_INVALID,
    STATUS_NOT_FOUND,
    TRUTH_COLUMNS,
    KpmRow,
    Person,
    SyntheticRegister,
    kpm_batch,
    write_kpm_csv,
    write_register_csv,
)
from exchanged.synth.names import FEMALE_NAMES, INSTANSI, MALE_NAMES

__all__ = [
    "FEMALE_NAMES",
    "INSTANSI",
    "INVALID_KINDS",
    "KPM_COLUMNS",
    "KpmRow",
    "MALE_NAMES",
    "MAX_REGISTER_ROWS",
    "Person",
    "REGISTER_COLUMNS",
    "STATUS_ASN",
    "STATUS_INVALID",
    "STATUS_NOT_FOUND",
    "SyntheticRegister",
    "TRUTH_COLUMNS",
    "kpm_batch",
    "write_kpm_csv",
    "write_register_csv",
]
