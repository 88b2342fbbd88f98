"""The policy model: agreements, their parties and flows, as frozen values.

A policy file describes one agreement the way a legal officer reads it; the
engine derives its rules from these values (see :mod:`exchanged.policy.engine`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

#: column types a flow may declare; each has a validator in the flows
COLUMN_TYPES = ("nik", "nip", "nkk", "date", "text", "enum", "integer")


@dataclass(frozen=True)
class Contact:
    """A party's correspondence contact (Pasal 8)."""

    unit: str
    address: str = ""
    phone: str = ""
    email: str = ""


@dataclass(frozen=True)
class Party:
    id: str
    role: str
    name: str
    address: str = ""
    signatory: str = ""
    signatory_position: str = ""
    contact: Contact | None = None


@dataclass(frozen=True)
class Column:
    name: str
    type: str = "text"
    required: bool = False
    values: tuple[str, ...] = ()
    max_length: int | None = None


@dataclass(frozen=True)
class Flow:
    """One kind of exchange under an agreement."""

    name: str
    kind: str
    purpose: str
    clause: str
    sender: str
    answer_to: tuple[str, ...]
    columns: tuple[Column, ...]
    columns_clause: str
    discloses: tuple[str, ...] = ()
    disclosure_clause: str = ""
    reference: str | None = None
    dataset: str | None = None
    max_bytes: int | None = None
    max_rows: int | None = None

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


@dataclass(frozen=True)
class Validity:
    start: date
    end: date
    clause: str


@dataclass(frozen=True)
class Addendum:
    """A written change to an agreement (Pasal 6(2), 12(2)): its own file."""

    agreement: str
    number: int
    reference: str
    file: str
    recorded: str
    clause: str
    extend_until: date | None = None
    terminate_on: date | None = None


@dataclass(frozen=True)
class Agreement:
    id: str
    title: str
    numbers: tuple[tuple[str, str], ...]
    signed_on: date
    signed_at: str
    purpose: str
    purpose_clause: str
    #: the validity after every addendum is applied
    validity: Validity
    #: the validity as signed
    original_validity: Validity
    parties: tuple[Party, ...]
    flows: tuple[Flow, ...]
    file: str
    addenda: tuple[Addendum, ...] = ()
    terminated_on: date | None = None
    termination_reference: str = ""
    termination_clause: str = ""

    def party(self, party_id: str) -> Party | None:
        for p in self.parties:
            if p.id == party_id:
                return p
        return None

    def flow(self, name: str) -> Flow | None:
        for f in self.flows:
            if f.name == name:
                return f
        return None

    def in_force(self, on: date) -> bool:
        if self.terminated_on is not None and on >= self.terminated_on:
            return False
        return self.validity.start <= on <= self.validity.end

    @property
    def last_day(self) -> date:
        if self.terminated_on is not None:
            return min(self.validity.end, self.terminated_on)
        return self.validity.end


@dataclass(frozen=True)
class PolicySet:
    """Every agreement loaded from a policies directory, and the hash of the files."""

    agreements: tuple[Agreement, ...]
    sha256: str
    files: tuple[str, ...] = field(default=())

    def agreement(self, agreement_id: str) -> Agreement | None:
        for a in self.agreements:
            if a.id == agreement_id:
                return a
        return None

    def find_flow(self, name: str) -> tuple[Agreement, Flow] | None:
        for a in self.agreements:
            f = a.flow(name)
            if f is not None:
                return a, f
        return None

    def inbox_flows(self, agency: str) -> tuple[str, ...]:
        """Flows the agency may upload to (its /inbox/<flow>/ folders)."""
        return tuple(sorted({f.name for a in self.agreements for f in a.flows if f.sender == agency}))

    def outbox_flows(self, agency: str) -> tuple[str, ...]:
        """Flows whose outcomes the agency receives (its /outbox/<flow>/ folders)."""
        names = set(self.inbox_flows(agency))
        names |= {f.name for a in self.agreements for f in a.flows if agency in f.answer_to}
        return tuple(sorted(names))

    def parties(self) -> tuple[str, ...]:
        return tuple(sorted({p.id for a in self.agreements for p in a.parties}))
