"""The catalogue of reasons a batch is refused: stable codes and their sentences.

Agencies script against these codes, so a code never changes meaning once
shipped. Each sentence says what was wrong and, where it helps, what to do;
none ever contains personal data (values from the batch): only column names,
line numbers, dates of the agreement and the like.
"""

from __future__ import annotations

from exchanged.errors import Reason

#: code -> sentence template (str.format placeholders)
CATALOGUE: dict[str, str] = {
    # the file and its name
    "BAD_FILE_NAME": (
        "The file name {name} does not follow the rule <batch-id>.csv.gpg (or .csv.pgp, "
        ".csv.asc) with a batch id of 1 to 64 characters A-Z a-z 0-9 . _ -; "
        "this outcome uses the exchange's id {batch} instead."
    ),
    "BATCH_ID_LOOKS_PERSONAL": (
        "The batch id contains a 16- or 18-digit number, which could be a NIK or NIP; "
        "batch ids must not carry personal data. Use another batch id."
    ),
    "EMPTY_UPLOAD": "The uploaded file is empty.",
    "UPLOAD_TOO_LARGE": "The upload is {size} bytes, over the flow's limit of {limit} bytes.",
    "REPLAY": (
        "Batch id {batch} was already used for flow {flow} by this agency (first received "
        "{first}); its first outcome stays as it was. Send the batch under a new batch id."
    ),
    # OpenPGP
    "NOT_OPENPGP": "The upload is not an OpenPGP message.",
    "CORRUPT_MESSAGE": (
        "The OpenPGP message is damaged or truncated and cannot be opened completely."
    ),
    "NOT_ENCRYPTED": (
        "The upload is not encrypted; encrypt it to the exchange's key (see exchange-public.asc)."
    ),
    "NOT_ENCRYPTED_TO_EXCHANGE": (
        "The upload is encrypted, but not to the exchange's key {fingerprint}."
    ),
    "NOT_SIGNED": "The upload is not signed; sign it with the agency's pinned key {fingerprint}.",
    "BAD_SIGNATURE": "The upload's signature does not verify: the content was altered or damaged.",
    "WRONG_SIGNER": (
        "The upload is signed by a key other than the agency's pinned key {fingerprint}."
    ),
    "SIGNER_KEY_EXPIRED": "The upload is signed with the agency's key, but that key has expired.",
    "SIGNER_KEY_REVOKED": "The upload is signed with the agency's key, but that key is revoked.",
    "TOO_LARGE_DECRYPTED": (
        "The batch decrypts to more than the flow's limit of {limit} bytes; it was not processed."
    ),
    # the CSV
    "BAD_ENCODING": "The batch is not valid UTF-8 text (line {line}).",
    "NO_HEADER": "The batch has no header row.",
    "BAD_HEADER": "The header row is not valid: {detail}.",
    "DUPLICATE_COLUMN": "The header names column {column} more than once.",
    "MISSING_COLUMN": "Required column {column} is missing (flow {flow} needs: {required}).",
    "COLUMN_NOT_ALLOWED": (
        "Column {column} is not listed for flow {flow} by the agreement ({clause}); send only "
        "the columns it lists: {allowed}."
    ),
    "TOO_MANY_ROWS": "The batch has more than the flow's limit of {limit} rows.",
    "NO_ROWS": "The batch has a header but no data rows.",
    "NO_VALID_ROWS": "No row of the register is valid; the previous snapshot stays in force.",
    # policy
    "AGREEMENT_NOT_IN_FORCE": (
        "Agreement {agreement} is not in force on {date}: it is valid from {start} to {end} "
        "({clause})."
    ),
    "AGREEMENT_TERMINATED": (
        "Agreement {agreement} was terminated on {date} ({reference}; {clause})."
    ),
    "FLOW_NOT_PERMITTED": (
        "Agency {agency} may not send flow {flow} under agreement {agreement} ({clause})."
    ),
    "NO_POLICY": "No agreement defines flow {flow} for agency {agency} (any more).",
    "NO_REFERENCE_DATA": (
        "The reference data this flow matches against ({dataset}) has not been loaded yet."
    ),
    # the exchange itself
    "EXCHANGE_ERROR": (
        "The exchange could not process this batch because of an internal error (recorded in "
        "ledger entry {seq}); the operator has been alerted. Send it again under a new batch id."
    ),
}


def reason(code: str, **params: object) -> Reason:
    """Build the :class:`Reason` for ``code`` with its sentence filled in.

    >>> reason("EMPTY_UPLOAD")
    Reason(code='EMPTY_UPLOAD', message='The uploaded file is empty.')
    """
    return Reason(code, CATALOGUE[code].format(**params))
