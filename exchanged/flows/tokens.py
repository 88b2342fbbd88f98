"""The exchange's side of matching on keyed tokens: a column of tokens checked and decoded.

A flow whose policy says ``tokens:`` receives, in its ``nik`` column, keyed
tokens the agencies made with their shared key (:mod:`exchanged.ids.token`),
or an empty cell where the agency found the NIK invalid before sending. Any
other value could be a raw NIK, so the whole batch is refused, naming the line
(never the value); a token made with another key than the addendum's is
refused too. A flow that matches plain NIKs refuses tokens the same way: a
token there would silently be answered "invalid" or "not found".

The checks are numpy's over a whole column of a block; only the first 16 bytes
of each token's HMAC are decoded, which is what a snapshot indexes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from exchanged.csvio import string_view
from exchanged.errors import Refused
from exchanged.flows.base import fixed_width
from exchanged.flows.model import Flow
from exchanged.ids import token as tk
from exchanged.reasons import reason

Mask = npt.NDArray[np.bool_]
#: where the base64url digest starts in a token
_DIGEST_AT = len(tk.PREFIX) + tk.KEY_ID_HEX + 1
#: the base64url characters decoded: 24 characters are 18 bytes, of which the first 16 are used
_DECODED_CHARS = 24


def _b64_table() -> npt.NDArray[np.int16]:
    table = np.full(256, -1, dtype=np.int16)
    for value, ch in enumerate(tk.B64URL_ALPHABET):
        table[ord(ch)] = value
    return table


_B64 = _b64_table()
_SHIFTS = np.arange(18, -1, -6, dtype=np.uint64)  # 4 characters of 6 bits: 24 bits
_BYTE_SHIFTS = np.arange(16, -1, -8, dtype=np.uint64)  # 24 bits: 3 bytes, high first


@dataclass(frozen=True)
class TokenColumn:
    """A block's column of tokens: which rows hold one, and their digests' first 16 bytes
    (one row of ``digests`` per row of ``rows``)."""

    rows: npt.NDArray[np.int64]
    digests: npt.NDArray[np.uint8]


def _refusal(of: Flow, code: str, **fields: object) -> Refused:
    rule = f"{of.name}.tokens"
    clause = of.tokens.clause if of.tokens is not None else of.clause
    return Refused(reason(code, **fields),
                   details={"decision": "deny", "rules": [rule], "clauses": [clause]})


def token_column(flow: Flow, column: str, values: pa.StringArray, readable: Mask,
                 lines: npt.NDArray[np.int64]) -> TokenColumn:
    """The tokens of a column of a token flow; refuses the batch on any value that is
    neither a token of the addendum's key nor empty."""
    tokens = flow.tokens
    assert tokens is not None
    offsets, _ = string_view(values)
    lengths = np.diff(offsets)
    candidates = np.flatnonzero(readable & (lengths == tk.WIDTH))
    m = fixed_width(values, candidates, tk.WIDTH)
    shaped = np.all(m[:, :len(tk.PREFIX)] == np.frombuffer(tk.PREFIX.encode(), np.uint8), axis=1)
    shaped &= m[:, _DIGEST_AT - 1] == ord(".")
    chars = _B64[m[:, _DIGEST_AT:]]
    shaped &= np.all(chars >= 0, axis=1)
    # 43 characters carry 258 bits: the last two are zero in the one right spelling
    shaped &= (chars[:, -1] & 3) == 0
    others = readable & (lengths > 0)
    others[candidates[shaped]] = False
    if others.any():
        first = int(np.flatnonzero(others)[0])
        raise _refusal(flow, "NIK_NOT_TOKENIZED", line=int(lines[first]), column=column,
                       flow=flow.name, addendum=tokens.reference)
    want = np.frombuffer(tokens.key_id.encode(), np.uint8)
    ours = np.all(m[:, len(tk.PREFIX):len(tk.PREFIX) + tk.KEY_ID_HEX] == want, axis=1)
    if not np.all(ours[shaped]):
        first = int(np.flatnonzero(shaped & ~ours)[0])
        theirs = bytes(m[first, len(tk.PREFIX):len(tk.PREFIX) + tk.KEY_ID_HEX]).decode("ascii")
        raise _refusal(flow, "TOKEN_KEY_MISMATCH", line=int(lines[candidates[first]]),
                       column=column, flow=flow.name, addendum=tokens.reference,
                       expected=tokens.key_id, found=theirs)
    groups = chars[:, :_DECODED_CHARS].astype(np.uint64).reshape(len(m), -1, 4)
    words = np.bitwise_or.reduce(groups << _SHIFTS, axis=2)  # (n, 6) values of 24 bits
    decoded = ((words[:, :, None] >> _BYTE_SHIFTS) & np.uint64(0xFF)).astype(np.uint8)
    return TokenColumn(candidates, decoded.reshape(len(m), -1)[:, :16])


def refuse_tokens(flow: Flow, column: str, values: pa.StringArray, readable: Mask,
                  lines: npt.NDArray[np.int64]) -> None:
    """On a flow that matches NIKs, refuse a batch whose column carries a token."""
    if not len(values):
        return
    hits = pc.match_substring_regex(values, r"^\s*[nN][tT]1\.").to_numpy(zero_copy_only=False)
    hits &= readable
    if hits.any():
        first = int(np.flatnonzero(hits)[0])
        raise _refusal(flow, "TOKEN_IN_PLAIN_FLOW", line=int(lines[first]), column=column,
                       flow=flow.name)
