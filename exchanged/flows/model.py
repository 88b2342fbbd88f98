"""A flow as the policy describes it: its columns, its answer's statuses, its fuzzy fallback.

The flows own this model because a flow is what they run: the policy reads a
flow from an agreement's YAML into these values (:mod:`exchanged.policy.flows`)
and decides whether a batch may use it, the flows turn its rows into an answer.
Keeping the model here lets the policy import the flows, never the reverse.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

#: column types a flow may declare; each has a validator in :mod:`exchanged.flows.base`
COLUMN_TYPES = ("nik", "nip", "nkk", "date", "text", "enum", "integer")
#: identifier types: stored only as keyed hashes in reference snapshots
IDENTIFIER_TYPES = ("nik", "nip", "nkk")


@dataclass(frozen=True)
class Column:
    name: str
    type: str = "text"
    required: bool = False
    values: tuple[str, ...] = ()
    max_length: int | None = None
    pattern: str | None = None


@dataclass(frozen=True)
class Answer:
    """The statuses a flow answers with, and the clause that defines them."""

    clause: str = ""
    found: str = ""
    not_found: str = ""
    invalid: str = ""
    differs: str = ""


@dataclass(frozen=True)
class Fuzzy:
    """The fuzzy fallback of a nik-lookup flow (``fuzzy:`` in the policy).

    A valid NIK that is not in the reference data, on a row whose name and
    birth date closely match a person of it, is answered ``status`` with the
    score (0..1, at least ``min_score``) for manual confirmation, instead of
    the flow's ``not_found``; see docs/matching.md.
    """

    enabled: bool
    min_score: float
    status: str
    clause: str


@dataclass(frozen=True)
class ComparisonBound:
    """How often one agency may have one NIP compared (``max_comparisons_per_nip``).

    At most ``count`` rows of the agency's batches of the flow are compared with the
    reference data for the same NIP within any ``days`` days (the day a batch was
    received and the ``days - 1`` before it); a row over the bound is answered
    ``status`` and not compared. Without a bound, a nip-compare flow is an oracle: an
    agency that sends one NIP again and again, a value changed each time, learns the
    reference data's values from SESUAI and BERBEDA alone (docs/security.md).
    """

    count: int
    days: int
    status: str
    clause: str


@dataclass(frozen=True)
class Tokens:
    """Matching on keyed tokens (``tokens:`` in the policy, usually set by an addendum).

    The flow's ``nik`` column carries, instead of NIKs, keyed tokens the agencies
    make on their own machines with a key the exchange never holds
    (:mod:`exchanged.ids.token`); ``key_fingerprint`` names that key. A batch with
    a raw NIK (anything but a token of that key, or an empty cell for a NIK the
    agency found invalid) is refused; docs/security.md says what this hides.
    """

    key_fingerprint: str
    reference: str
    clause: str

    @property
    def key_id(self) -> str:
        return self.key_fingerprint[:8]


@dataclass(frozen=True)
class Flow:
    """One kind of exchange under an agreement."""

    name: str
    #: the name of its :class:`~exchanged.flows.kind.FlowKind` (``exchanged.flows.KINDS``)
    kind: str
    purpose: str
    clause: str
    sender: str
    recipients: tuple[str, ...]
    columns: tuple[Column, ...]
    columns_clause: str
    answer: Answer = Answer()
    discloses: tuple[str, ...] = ()
    never_disclose: tuple[str, ...] = ()
    disclosure_clause: str = ""
    compares: tuple[str, ...] = ()
    #: reference-load flows: the columns kept in the snapshot (identifiers are kept
    #: only as keyed hashes; every other column is checked, then dropped)
    keeps: tuple[str, ...] = ()
    reference: str | None = None
    dataset: str | None = None
    max_bytes: int | None = None
    max_rows: int | None = None
    limits_clause: str = ""
    #: suspensions by addenda: (from, until inclusive, reference, clause)
    suspensions: tuple[tuple[date, date, str, str], ...] = ()
    #: nik-lookup flows: the fuzzy fallback for rows whose NIK is not found
    fuzzy: Fuzzy | None = None
    #: nip-compare flows: how often one agency may have one NIP compared
    max_comparisons_per_nip: ComparisonBound | None = None
    #: the flow's nik column carries keyed tokens, not NIKs
    tokens: Tokens | None = None

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.required)

    @property
    def allowed(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def column(self, name: str) -> Column | None:
        for c in self.columns:
            if c.name == name:
                return c
        return None
