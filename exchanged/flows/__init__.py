"""What a flow does: turn the rows of an opened batch into an answer (no SFTP, OpenPGP or spool).

Each kind of flow is one :class:`~exchanged.flows.kind.FlowKind`, defined in the
module of its handler; :data:`KINDS` is the one registry of them. The flows sit
below the policy: they own the model of a flow (:mod:`exchanged.flows.model`)
and never import :mod:`exchanged.policy`.
"""

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from exchanged.flows.base import (
    ComparisonBudget,
    Comparisons,
    DatasetUpdate,
    FlowContext,
    FlowResult,
    References,
)
from exchanged.flows.kind import FlowKind, FlowProblem
from exchanged.flows.nik_lookup import NIK_LOOKUP
from exchanged.flows.nip_compare import NIP_COMPARE
from exchanged.flows.register_load import REGISTER_LOAD

#: flow kind (as the policy names it) -> the kind; read-only, and in the order the
#: loader lists the kinds when a policy names an unknown one
KINDS: Final[Mapping[str, FlowKind]] = MappingProxyType(
    {kind.name: kind for kind in (REGISTER_LOAD, NIK_LOOKUP, NIP_COMPARE)})

__all__ = [
    "KINDS",
    "ComparisonBudget",
    "Comparisons",
    "DatasetUpdate",
    "FlowContext",
    "FlowKind",
    "FlowProblem",
    "FlowResult",
    "References",
]
