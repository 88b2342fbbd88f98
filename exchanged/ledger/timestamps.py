"""RFC 3161 trusted timestamps on checkpoints, from a configured timestamping authority.

A checkpoint signed by the exchange carries the exchange's own clock; a timestamp
token from an independent authority (TSA) proves to anyone — a court, an auditor, the
other party — that the checkpoint existed at that time, whatever the exchange's clock
said. The token is over the checkpoint note's text (origin, size, root hash: the part
that cosignatures do not change), kept as ``checkpoint-<size>.tsr`` (the DER
TimeStampResp, what ``openssl ts -verify -in`` reads) beside the note in
``HOME/checkpoints/`` and every agency's ``/outbox/ledger/``.

Off unless ``timestamp_url`` is set. A failed authority never blocks the exchange: the
failure is recorded (``ledger.timestamp_failed``) and every checkpoint without a token is
asked for again later (the daemon, every ``timestamp_retry_minutes``; or
``exchanged ledger timestamp``). Tokens are checked before they are kept, and by anyone
afterwards, with ``rfc3161-client`` (the CMS signature, the chain to the configured
authority's root, the nonce, the message imprint).
"""

from __future__ import annotations

import hashlib
import logging
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import cryptography.x509
from rfc3161_client import (
    HashAlgorithm,
    TimestampRequestBuilder,
    TimeStampResponse,
    VerificationError,
    VerifierBuilder,
    decode_timestamp_response,
)

from exchanged.errors import CheckFailed, ConfigError
from exchanged.home import Config, Home, atomic_write
from exchanged.home.agencies import Agencies
from exchanged.home.drop import PlantedLink, deliver
from exchanged.ledger.notes import parse_note
from exchanged.ledger.store import Ledger
from exchanged.ledger.witness import LEDGER_FOLDER, notes

log = logging.getLogger("exchanged.ledger.timestamps")

#: a token is a few kilobytes; an answer larger than this is not one
MAX_RESPONSE_BYTES = 1 << 20
#: checkpoints asked for in one run, newest first (an authority down for a long time
#: leaves older ones without a token rather than a run that never ends)
MAX_PER_RUN = 10


def tsr_name(size: int) -> str:
    return f"checkpoint-{size:010d}.tsr"


@dataclass(frozen=True)
class Stamped:
    size: int
    gen_time: str
    serial: int
    sha256: str


@dataclass(frozen=True)
class Run:
    """What one run did: the checkpoints stamped, and why the authority failed (if it did)."""

    stamped: tuple[Stamped, ...]
    failed: str | None


def load_chain(path: Path) -> tuple[list[cryptography.x509.Certificate],
                                    list[cryptography.x509.Certificate]]:
    """The roots (self-signed) and the intermediates of a PEM file."""
    try:
        certs = cryptography.x509.load_pem_x509_certificates(path.read_bytes())
    except (OSError, ValueError):
        raise ConfigError(f"{path} is not a readable PEM file of certificates") from None
    roots = [c for c in certs if c.issuer == c.subject]
    if not roots:
        raise ConfigError(f"{path} holds no root (self-signed) certificate")
    return roots, [c for c in certs if c.issuer != c.subject]


def verify_token(data: bytes, message: bytes, chain: Path, *, nonce: int | None = None
                 ) -> TimeStampResponse:
    """The token, checked: granted, signed by a certificate that chains to a root of
    ``chain``, over SHA-256 (or stronger) of ``message``; CheckFailed otherwise."""
    roots, intermediates = load_chain(chain)
    try:
        response = decode_timestamp_response(data)
        builder = VerifierBuilder(nonce=nonce)
        for root in roots:
            builder = builder.add_root_certificate(root)
        for cert in intermediates:
            builder = builder.add_intermediate_certificate(cert)
        builder.build().verify_message(response, message)
    except (VerificationError, ValueError) as e:
        raise CheckFailed(f"the timestamp token does not verify: {e}") from None
    return response


def _ask(config: Config, home: Home, message: bytes) -> bytes:
    """A verified token for ``message`` from the configured authority; RuntimeError (why)
    if the authority cannot give one now."""
    request = (TimestampRequestBuilder().data(message).hash_algorithm(HashAlgorithm.SHA256)
               .cert_request(cert_request=True).nonce(nonce=True).build())
    http = urllib.request.Request(config.timestamp_url, data=request.as_bytes(), method="POST",
                                  headers={"Content-Type": "application/timestamp-query"})
    try:
        with urllib.request.urlopen(http, timeout=config.timestamp_timeout_seconds) as answer:
            data: bytes = answer.read(MAX_RESPONSE_BYTES + 1)
    except (urllib.error.URLError, OSError, ValueError) as e:
        raise RuntimeError(f"the timestamping authority did not answer "
                           f"({type(e).__name__}: {getattr(e, 'reason', e)})") from None
    if len(data) > MAX_RESPONSE_BYTES:
        raise RuntimeError("the timestamping authority's answer is too large")
    try:
        verify_token(data, message, home.root / config.timestamp_ca, nonce=request.nonce)
    except CheckFailed as e:
        raise RuntimeError(e.message) from None
    return data


def pending(home: Home) -> list[int]:
    """Checkpoint notes without a token, newest first."""
    return [size for size, _ in reversed(notes(home))
            if not (home.checkpoints / tsr_name(size)).exists()][:MAX_PER_RUN]


def stamp_pending(home: Home, ledger: Ledger, config: Config) -> Run:
    """Ask for a token for every checkpoint that has none (off without ``timestamp_url``).
    The first failure ends the run, on record; the exchange goes on."""
    if not config.timestamp_url:
        return Run((), None)
    home = home.configured(config)  # the agencies' folders where the config puts them
    done: list[Stamped] = []
    for size in pending(home):
        message = parse_note((home.checkpoints / f"checkpoint-{size:010d}.note")
                             .read_bytes()).text.encode()
        try:
            data = _ask(config, home, message)
        except RuntimeError as e:
            ledger.append("ledger.timestamp_failed", actor="exchange", tree_size=size,
                          why=str(e), retry_minutes=config.timestamp_retry_minutes)
            log.warning("checkpoint %d not timestamped: %s; tried again later", size, e)
            return Run(tuple(done), str(e))
        info = decode_timestamp_response(data).tst_info
        stamped = Stamped(size, info.gen_time.isoformat(), info.serial_number,
                          hashlib.sha256(data).hexdigest())
        # the entry first: a crash before the file costs a second token, never a token
        # kept without its entry. (Not the serial: a TSA's may be a run of 16 digits, which
        # the ledger refuses as possibly personal; the token's hash names it.)
        ledger.append("ledger.timestamped", actor="exchange", tree_size=size,
                      gen_time=stamped.gen_time, token_sha256=stamped.sha256,
                      authority=config.timestamp_url)
        atomic_write(home.checkpoints / tsr_name(size), data)
        for agency in Agencies(home).all():
            try:
                deliver(home, agency, LEDGER_FOLDER, tsr_name(size), data)
            except PlantedLink as e:
                log.error("a timestamp not delivered to %s: %s", agency, e)
        done.append(stamped)
    return Run(tuple(done), None)
