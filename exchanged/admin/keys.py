"""Rotating the exchange's own keys: its OpenPGP key and its SSH host key.

Both are rotated with the daemon stopped (it reads them once, at start), and
each rotation is recorded in the ledger (``exchange.key_rotated``, the old and
new fingerprints).

**OpenPGP.** A new key pair is made with the old key's user id; the old key
certifies the new one (so an agency that trusts the old key can check the new
one), and a notice signed by the *old* key, naming the new fingerprint, is
delivered to every agency's ``/outbox/notices/``. The old secret key is written
to a file the administrator moves offline and is then removed from the
exchange's keyring (the daemon wants exactly one secret key); its public key
stays, so that checkpoints and notices it signed remain verifiable. Batches
still encrypted to the old key are refused ``NOT_ENCRYPTED_TO_EXCHANGE``.

**SSH host key.** A new Ed25519 host key replaces the old one; the command
prints the ``known_hosts`` line to hand to the agencies by a second channel.

**Register key** (``keys/register.key``, when it may have leaked). Whoever holds it
can turn every keyed identifier of a reference snapshot back into the NIK or NIP
(and guess names and birth dates from the fuzzy index): a new key protects only
what is keyed under it from now on. Every snapshot goes with the old key — its
keyed values match nothing under the new one, and a snapshot read with the wrong
key would answer everybody "not found" — so each dataset answers
``NO_REFERENCE_DATA`` until its register is loaded again.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import secrets
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import TypeVar

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from exchanged.admin.reminders import Notice, deliver_notice
from exchanged.batch.state import State
from exchanged.crypto.keys import Keyring
from exchanged.errors import KeyProblem, UsageError
from exchanged.home import Home, atomic_write, load_config
from exchanged.home.agencies import Agencies, ssh_fingerprint
from exchanged.home.lock import daemon_running
from exchanged.ledger import Ledger, format_ts, utc_now

T = TypeVar("T")

_USER_ID = re.compile(r"^(?P<name>.*?)\s*(?:\((?P<comment>[^)]*)\))?\s*<(?P<email>[^>]+)>$")


@dataclass(frozen=True)
class KeyRotation:
    key: str  # "openpgp" | "ssh-host"
    old_fingerprint: str
    new_fingerprint: str
    notified: tuple[str, ...] = ()
    retired_to: Path | None = None
    known_hosts_line: str = ""


def _stopped(home: Home) -> None:
    home.require()
    if daemon_running(home):
        raise UsageError("the daemon is running: stop it first (systemctl stop exchanged), "
                         "it reads its keys only when it starts")


def rotate_openpgp(home: Home, ledger: Ledger, retire_to: Path,
                   now: datetime | None = None) -> KeyRotation:
    """A new exchange OpenPGP key; the old secret key written to ``retire_to`` and removed."""
    _stopped(home)
    if retire_to.exists() or retire_to.is_symlink():
        raise UsageError(f"{retire_to} already exists: name a new file for the old secret key")
    if not retire_to.parent.is_dir():
        raise UsageError(f"there is no folder {retire_to.parent} for the old secret key")
    now = now or utc_now()
    keyring = Keyring(home.gnupg)
    old = keyring.exchange_fingerprint()
    info = keyring.key(old)
    match = _USER_ID.match(info.uids[0]) if info is not None and info.uids else None
    if match is None:
        raise UsageError("the exchange's key has no user id of the form 'Name <email>'")
    new = keyring.generate_exchange_key(match["name"], match["email"])
    try:
        # the old key vouches for the new one: agencies that trust the old can check it
        _gpg("certify the new key with the old one", lambda: keyring.certify(new, by=old))
        secret = _gpg("export the old secret key; nothing was changed",
                      lambda: keyring.export_secret(old))
        fd = os.open(retire_to, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(secret)
            f.flush()
            os.fsync(f.fileno())
        agencies = sorted(Agencies(home).all())
        notice = Notice(
            kind="key_rotation", key=f"key_rotation:{new}", agreement=None,
            parties=tuple(agencies), due=date.fromisoformat(format_ts(now)[:10]),
            clause="Pasal 9",
            message=(f"The exchange's OpenPGP key changes from {old} to {new}. From now on "
                     f"encrypt batches to {new} and expect answers signed by it; this notice "
                     f"is signed by the old key, which has also certified the new one."),
            pesan=(f"Kunci OpenPGP exchange berganti dari {old} menjadi {new}. Mulai sekarang "
                   f"enkripsi batch untuk {new} dan periksa bahwa jawaban ditandatangani "
                   f"olehnya; pemberitahuan ini ditandatangani kunci lama, yang juga telah "
                   f"mensertifikasi kunci baru."),
        )
        notified = deliver_notice(home, old, notice, now, agencies)
    except BaseException:
        # the old key stays the exchange's: the new one goes (the retired copy is harmless)
        try:
            keyring.delete_secret_and_public(new)
        except KeyProblem:
            pass  # what failed first is what the administrator must see
        raise
    _gpg(f"remove the old secret key from the keyring (its copy is in {retire_to}); remove "
         f"it with gpg --homedir {home.gnupg} --delete-secret-keys {old} before starting",
         lambda: keyring.delete_secret(old))
    # not minimal: the export keeps the old key's certification of the new one
    public = _gpg("export the new public key", lambda: keyring.export_public(new, minimal=False))
    atomic_write(home.exchange_public, public.encode("ascii"))
    ledger.append("exchange.key_rotated", actor="admin", key="openpgp", old_fingerprint=old,
                  new_fingerprint=new, delivered_to=list(notified))
    return KeyRotation("openpgp", old, new, tuple(notified), retire_to)


def rotate_ssh_host(home: Home, ledger: Ledger) -> KeyRotation:
    """A new Ed25519 SSH host key for the embedded SFTP server."""
    _stopped(home)
    if load_config(home).front_door == "openssh":
        raise UsageError("in OpenSSH mode the host key is sshd's: rotate it there")
    public_path = home.ssh_host_key.with_suffix(".pub")
    old = _fingerprint_of(public_path.read_bytes())
    key = ed25519.Ed25519PrivateKey.generate()
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                           serialization.PublicFormat.OpenSSH)
    atomic_write(home.ssh_host_key, key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption()))
    atomic_write(public_path, public + b"\n")
    new = _fingerprint_of(public)
    listen = load_config(home).listen
    line = f"[{listen.host}]:{listen.port} {public.decode('ascii')}"
    # SSH fingerprints are SHA256:base64, not hex: named as exchange.initialised names them
    ledger.append("exchange.key_rotated", actor="admin", key="ssh-host", old_host_key=old,
                  new_host_key=new)
    return KeyRotation("ssh-host", old, new, known_hosts_line=line)


@dataclass(frozen=True)
class RegisterRotation:
    old_fingerprint: str
    new_fingerprint: str
    #: the datasets that had a current snapshot: each is to be loaded again
    datasets: tuple[str, ...]
    files_removed: int


def register_key_fingerprint(secret: bytes) -> str:
    """A name for a register key that says nothing of it (a keyed hash of a constant), so
    that the ledger can say which key was replaced by which."""
    return hashlib.blake2b(b"exchanged register key fingerprint", key=secret[:64],
                           digest_size=16).hexdigest()


def rotate_register(home: Home, ledger: Ledger) -> RegisterRotation:
    """A new register key; every reference snapshot removed with the old one.

    In this order, so that no snapshot is ever read with a key it was not made with:
    the datasets stop being current (in the transaction of the ledger entry), their files
    go, then the new key replaces the old. Stopped half-way, the command is run again.
    """
    _stopped(home)
    try:
        old: bytes | None = home.register_key.read_bytes()
    except FileNotFoundError:
        old = None  # a home restored from a backup that rightly left the key out
    except OSError as e:
        raise UsageError(f"cannot read {home.register_key}: {e.strerror}") from None
    new = secrets.token_bytes(32)
    state = State(ledger)
    datasets = tuple(name for name, _, _, _ in state.datasets())
    fingerprints = {"new_fingerprint": register_key_fingerprint(new)}
    if old is not None:
        fingerprints["old_fingerprint"] = register_key_fingerprint(old)
    with ledger.transaction() as txn:
        for dataset in datasets:
            state.remove_dataset(txn, dataset)
        txn.append("exchange.register_key_rotated", actor="admin", datasets=list(datasets),
                   **fingerprints)
    removed = 0
    if home.reference.is_dir():
        for folder in home.reference.iterdir():
            if folder.is_dir() and not folder.is_symlink():
                removed += sum(len(files) for _, _, files in os.walk(folder))
                shutil.rmtree(folder)
            else:
                removed += 1
                folder.unlink()
    atomic_write(home.register_key, new)
    return RegisterRotation(fingerprints.get("old_fingerprint", "none"),
                            fingerprints["new_fingerprint"], datasets, removed)


def _fingerprint_of(public_line: bytes) -> str:
    return ssh_fingerprint(base64.b64decode(public_line.split()[1]))


def _gpg(what: str, call: Callable[[], T]) -> T:
    """A keyring operation of the rotation; its failure said as what the administrator
    must know (what failed, what to do)."""
    try:
        return call()
    except KeyProblem:
        raise UsageError(f"gpg could not {what}") from None
