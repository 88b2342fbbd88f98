"""What a flow does: turn the rows of an opened batch into an answer (no SFTP, OpenPGP or spool)."""

from collections.abc import Mapping

from exchanged.flows.base import DatasetUpdate, FlowContext, FlowHandler, FlowResult, References
from exchanged.flows.nik_lookup import nik_lookup
from exchanged.flows.nip_compare import nip_compare
from exchanged.flows.register_load import register_load

#: flow kind (as the policy names it) -> its handler
HANDLERS: Mapping[str, FlowHandler] = {
    "nik-lookup": nik_lookup,
    "nip-compare": nip_compare,
    "reference-load": register_load,
}

__all__ = [
    "HANDLERS",
    "DatasetUpdate",
    "FlowContext",
    "FlowHandler",
    "FlowResult",
    "References",
]
