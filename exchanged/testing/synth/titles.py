"""Titles as the register writes them: academic and religious ones before a name, degrees after it.

Everything here is a constant tuple or a pure function of its arguments (see
:mod:`exchanged.testing.synth.names`).
"""

from __future__ import annotations

from typing import Final

__all__ = ["ACADEMIC_PREFIXES", "BACHELOR_DEGREES", "MASTER_DEGREES", "add_titles"]

# --------------------------------------------------------------------------
# Titles, written as the register writes them: academic and religious titles
# before the name, degrees after it behind a comma ("Dr. H. Ahmad Fauzi,
# S.Pd., M.Si.").  Such names exercise RFC 4180 quoting and name matching.
# --------------------------------------------------------------------------

BACHELOR_DEGREES: Final[tuple[str, ...]] = (
    "S.Pd.", "S.Sos.", "S.E.", "S.H.", "S.Kom.", "S.T.", "S.Ag.", "S.IP.", "S.Kep.",
    "S.Pd.I.", "S.Si.", "S.P.", "S.AP.", "S.Ak.", "S.K.M.", "A.Md.", "A.Md.Kep.", "S.Pd.SD.",
)
MASTER_DEGREES: Final[tuple[str, ...]] = (
    "M.Si.", "M.M.", "M.Pd.", "M.H.", "M.Kes.", "M.T.", "M.Ag.", "M.A.P.", "M.Kom.", "M.E.",
)
ACADEMIC_PREFIXES: Final[tuple[str, ...]] = ("Prof.", "Dr.", "Ir.", "Drs.", "Dra.", "dr.", "drg.")
_MEDICAL_SPECIALTIES: Final[tuple[str, ...]] = (
    "Sp.PD.", "Sp.A.", "Sp.OG.", "Sp.B.", "M.Kes.", "Sp.KJ.",
)


def add_titles(name: str, female: bool, muslim: bool, birth_year: int, bits: int) -> str:
    """Return ``name`` with a realistic combination of titles (at least one).

    Older graduates hold "Drs."/"Dra." (abolished for new graduates in the
    1990s); "Ir." is an engineer's title; "dr."/"drg." a physician's or
    dentist's; "H."/"Hj." mark a Muslim who made the hajj, so they go to
    Muslims old enough to have saved for it.
    """
    before: list[str] = []
    after: list[str] = []
    kind = bits % 100
    bits //= 100
    if kind < 25 and birth_year < 1970:
        before.append("Dra." if female else "Drs.")
        graduate = True
    elif 25 <= kind < 31 and birth_year < 1980:
        before.append("Ir.")
        graduate = True
    elif 31 <= kind < 35:
        before.append("drg." if kind == 34 else "dr.")
        if bits % 3 == 0:
            after.append(_MEDICAL_SPECIALTIES[(bits // 3) % len(_MEDICAL_SPECIALTIES)])
        bits //= 100
        graduate = False
    elif kind < 90:
        after.append(BACHELOR_DEGREES[bits % len(BACHELOR_DEGREES)])
        bits //= len(BACHELOR_DEGREES)
        graduate = True
    else:
        graduate = False
    if graduate and bits % 100 < 30:
        bits //= 100
        after.append(MASTER_DEGREES[bits % len(MASTER_DEGREES)])
        bits //= len(MASTER_DEGREES)
        if bits % 100 < 15:
            # A doctorate goes first of all; a few doctors are professors.
            before.insert(0, "Prof. Dr." if bits % 1000 < 80 else "Dr.")
    else:
        bits //= 100
    bits //= 1000
    hajj = muslim and birth_year < 1992 and bits % 100 < 35
    if hajj or not (before or after):
        if muslim:
            before.append("Hj." if female else "H.")
        else:
            after.append(BACHELOR_DEGREES[bits % len(BACHELOR_DEGREES)])
    text = " ".join([*before, name])
    if after:
        text += ", " + ", ".join(after)
    return text
