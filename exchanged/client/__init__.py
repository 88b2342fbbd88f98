"""The agency's side: ``exchanged submit`` and ``exchanged fetch``."""

from exchanged.client import witness
from exchanged.client.agency import (
    Client,
    ClientError,
    Submitted,
    default_batch_id,
    default_state,
    fetch,
    progress_stream,
    submit,
)

__all__ = ["Client", "ClientError", "Submitted", "default_batch_id", "default_state", "fetch",
           "progress_stream", "submit", "witness"]
