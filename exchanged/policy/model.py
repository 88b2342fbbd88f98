"""The policy model: agreements, their parties, flows and obligations, as frozen values.

A policy file describes one agreement the way a legal officer reads it; the
engine derives its rules from these values (see :mod:`exchanged.policy.engine`).
A flow's own model lives with the flows (:mod:`exchanged.flows.model`), below
the policy; its names are re-exported here for the policy's callers.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date

from exchanged.flows.model import COLUMN_TYPES, IDENTIFIER_TYPES, Answer, Column, Flow, Fuzzy

__all__ = [
    "COLUMN_TYPES",
    "IDENTIFIER_TYPES",
    "Addendum",
    "Agreement",
    "Answer",
    "Column",
    "Confidentiality",
    "Contact",
    "Flow",
    "Fuzzy",
    "Monitoring",
    "Party",
    "PolicySet",
    "Purpose",
    "Retention",
    "Validity",
]


@dataclass(frozen=True)
class Contact:
    """A party's correspondence contact (Pasal 8)."""

    unit: str
    address: str = ""
    phone: str = ""
    email: str = ""
    clause: str = ""


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
class Purpose:
    id: str
    text: str
    clause: str


@dataclass(frozen=True)
class Validity:
    start: date
    end: date
    clause: str


@dataclass(frozen=True)
class Confidentiality:
    answers_only_to_requester: bool = True
    answers_clause: str = ""
    purpose_limitation: bool = True
    purpose_clause: str = ""
    survives_end: bool = True
    survives_clause: str = ""
    security_clause: str = ""


@dataclass(frozen=True)
class Retention:
    """How long each artefact is kept (enforced by the scheduler)."""

    clause: str = ""
    plaintext: str = "after-processing"
    encrypted_uploads_days: int = 90
    outcomes_days: int = 30
    reference_snapshots: str = "current-only"
    after_end_days: int = 30


@dataclass(frozen=True)
class Monitoring:
    evaluations_per_year: int = 2
    evaluations_clause: str = ""
    minutes_per_year: int = 2
    minutes_clause: str = ""
    renewal_notice_days: int = 30
    renewal_clause: str = ""
    force_majeure_notice_days: int = 14
    force_majeure_clause: str = ""


@dataclass(frozen=True)
class Addendum:
    """A written change to an agreement (Pasal 6(2), 12(2)): a file of its own."""

    agreement: str
    number: int
    reference: str
    file: str
    recorded: str
    clause: str
    sha256: str = ""
    extend_until: date | None = None
    terminate_on: date | None = None
    #: flows suspended: (flow, from, until)
    suspend: tuple[tuple[str, date, date], ...] = ()
    #: changes to flows: flow -> changed keys (already applied to the agreement)
    amends: tuple[str, ...] = ()
    example: bool = False


@dataclass(frozen=True)
class Agreement:
    id: str
    title: str
    numbers: tuple[tuple[str, str], ...]
    signed_on: date
    signed_at: str
    purposes: tuple[Purpose, ...]
    #: the validity after every addendum is applied
    validity: Validity
    #: the validity as signed
    original_validity: Validity
    parties: tuple[Party, ...]
    flows: tuple[Flow, ...]
    file: str
    confidentiality: Confidentiality = Confidentiality()
    retention: Retention = Retention()
    monitoring: Monitoring = Monitoring()
    addenda: tuple[Addendum, ...] = ()
    #: the clause under which addenda change the agreement
    changes_clause: str = ""
    terminated_on: date | None = None
    termination_reference: str = ""
    termination_clause: str = ""
    sha256: str = ""

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

    def purpose(self, purpose_id: str) -> Purpose | None:
        for p in self.purposes:
            if p.id == purpose_id:
                return p
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

    def with_changes(self, **changes: object) -> Agreement:
        return replace(self, **changes)  # type: ignore[arg-type]


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
        return tuple(sorted({f.name for a in self.agreements for f in a.flows
                             if f.sender == agency}))

    def outbox_flows(self, agency: str) -> tuple[str, ...]:
        """Flows whose outcomes the agency receives (its /outbox/<flow>/ folders)."""
        names = set(self.inbox_flows(agency))
        names |= {f.name for a in self.agreements for f in a.flows if agency in f.recipients}
        return tuple(sorted(names))

    def parties(self) -> tuple[str, ...]:
        return tuple(sorted({p.id for a in self.agreements for p in a.parties}))
