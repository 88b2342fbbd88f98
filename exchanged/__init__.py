"""exchanged: a secure file-drop exchange daemon for data-sharing agreements.

Agencies upload OpenPGP-encrypted and signed batches over SFTP; the exchange
opens them, applies the agreement's policy, runs the matching and answers with
an encrypted and signed outcome, recording every step in an append-only,
hash-chained ledger.
"""

__version__ = "0.1.0"
