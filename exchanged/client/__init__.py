"""The agency's side: ``exchanged submit`` (also ``--tokenize``), ``exchanged fetch`` and
``exchanged client token-key``."""

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
from exchanged.client.tokens import TokenError, Tokenized, new_token_key, read_token_key

__all__ = ["Client", "ClientError", "Submitted", "default_batch_id", "default_state", "fetch",
           "progress_stream", "submit", "Tokenized", "TokenError", "new_token_key",
           "read_token_key", "witness"]
