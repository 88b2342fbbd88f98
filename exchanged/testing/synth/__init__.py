"""Synthetic, structurally valid test data with ground truth (never real people).

``SyntheticRegister`` is a deterministic ASN register addressable by row
index; ``kpm_batch`` streams a KPM batch drawing its ASN rows from such a
register and saying, row by row, what the answer must be. ``jabfung_batch``
does the same for the functional-position flow (the register then carries
positions: ``write_register_csv(..., functional_positions=True)``), and
``fuzzy_cases`` gives a labelled set for the fuzzy fallback: register people
written differently, under NIKs the register does not hold, and look-alikes.  Both stream, so
registers of millions and batches of tens of millions of rows are written
with constant memory.
"""

from exchanged.testing.synth.files import (
    StrPath,
    write_fuzzy_csv,
    write_jabfung_csv,
    write_kpm_csv,
    write_register_csv,
)
from exchanged.testing.synth.instansi import INSTANSI
from exchanged.testing.synth.invalid import INVALID_KINDS
from exchanged.testing.synth.jabfung import (
    FUNCTIONAL_COLUMNS,
    JABFUNG_COLUMNS,
    JABFUNG_TRUTH_COLUMNS,
    FunctionalPosition,
    JabfungRow,
    functional_position,
    jabfung_batch,
)
from exchanged.testing.synth.kpm import (
    KPM_COLUMNS,
    STATUS_ASN,
    STATUS_INVALID,
    STATUS_NOT_FOUND,
    TRUTH_COLUMNS,
    KpmRow,
    kpm_batch,
)
from exchanged.testing.synth.names import FEMALE_NAMES, MALE_NAMES
from exchanged.testing.synth.register import (
    MAX_REGISTER_ROWS,
    REGISTER_COLUMNS,
    Person,
    SyntheticRegister,
)
from exchanged.testing.synth.variants import (
    FUZZY_STATUS,
    FUZZY_TRUTH_COLUMNS,
    FuzzyCase,
    fuzzy_cases,
)

__all__ = [
    "FEMALE_NAMES",
    "FUNCTIONAL_COLUMNS",
    "FUZZY_STATUS",
    "FUZZY_TRUTH_COLUMNS",
    "FunctionalPosition",
    "FuzzyCase",
    "JABFUNG_COLUMNS",
    "JABFUNG_TRUTH_COLUMNS",
    "JabfungRow",
    "functional_position",
    "fuzzy_cases",
    "jabfung_batch",
    "write_fuzzy_csv",
    "write_jabfung_csv",
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
    "StrPath",
    "SyntheticRegister",
    "TRUTH_COLUMNS",
    "kpm_batch",
    "write_kpm_csv",
    "write_register_csv",
]
