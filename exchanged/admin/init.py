"""``exchanged init``: a new home with its keys, its policies and an empty ledger."""

from __future__ import annotations

import base64
import importlib.resources
import shutil
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from exchanged import __version__
from exchanged.batch.state import SCHEMA as STATE_SCHEMA
from exchanged.crypto.keys import Keyring, create_gnupg_home
from exchanged.errors import ConfigError
from exchanged.home import (
    Home,
    Listen,
    atomic_write,
    config_text,
    make_private_dir,
    new_secret,
)
from exchanged.home.agencies import known_hosts_line, ssh_fingerprint
from exchanged.ledger import Ledger, format_ts, utc_now
from exchanged.ledger.archive import archive_policy_set
from exchanged.policy.loader import load_policy_files, read_policy_files


def shipped_policies() -> Path:
    """The policies shipped with exchanged (``policies/`` of the source tree)."""
    path = Path(str(importlib.resources.files("exchanged") / "data" / "policies"))
    if not path.is_dir():
        raise ConfigError("the shipped policies are missing from this installation")
    return path


@dataclass(frozen=True)
class InitReport:
    home: Path
    fingerprint: str
    host_key_fingerprint: str
    ledger_id: str
    known_hosts_line: str


def init_home(home: Home, *, name: str = "exchanged", listen: str = "127.0.0.1:2222") -> InitReport:
    """Create a new home; refuses one that already holds a deployment."""
    listen_addr = Listen.parse(listen)
    if home.root.exists() and any(home.root.iterdir()):
        raise ConfigError(f"{home.root} already exists and is not empty; refusing to overwrite it")
    created_root = not home.root.exists()
    try:
        return _init(home, name, listen_addr)
    except BaseException:
        # leave nothing half-made: a second 'init' must be able to start afresh
        if created_root:
            shutil.rmtree(home.root, ignore_errors=True)
        elif home.root.exists():
            for child in home.root.iterdir():
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child, ignore_errors=True)
                else:
                    child.unlink()
        raise


def _init(home: Home, name: str, listen_addr: Listen) -> InitReport:
    for d in home.directories():
        make_private_dir(d)
    create_gnupg_home(home.gnupg)
    atomic_write(home.config_file, config_text(name, listen_addr).encode("utf-8"))

    openpgp = Keyring(home.gnupg)
    slug = "".join(ch if ch.isalnum() else "-" for ch in name.lower()).strip("-") or "exchange"
    fingerprint = openpgp.generate_exchange_key(name, f"{slug}@exchanged.invalid")
    atomic_write(home.exchange_public, openpgp.export_public(fingerprint).encode("ascii"))

    host_key = ed25519.Ed25519PrivateKey.generate()
    atomic_write(
        home.ssh_host_key,
        host_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.OpenSSH,
            serialization.NoEncryption(),
        ),
    )
    public = host_key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    atomic_write(home.ssh_host_key.with_suffix(".pub"), public + b"\n")
    host_fp = ssh_fingerprint(base64.b64decode(public.split()[1]))
    new_secret(home.register_key)
    new_secret(home.ledger_hmac_key)

    for source in sorted(shipped_policies().glob("*.yaml")):
        atomic_write(home.policies / source.name, source.read_bytes())
    # the example agreement and the policy tests, beside (not among) the policies in force
    for sub in ("examples", "examples/tests", "tests"):
        source_dir = shipped_policies() / sub
        if source_dir.is_dir():
            make_private_dir(home.policies / sub)
            for source in sorted(source_dir.glob("*.yaml")):
                atomic_write(home.policies / sub / source.name, source.read_bytes())
    files = read_policy_files(home.policies)
    policy = load_policy_files(files)

    ledger = Ledger(home.ledger, extra_schema=STATE_SCHEMA)
    ledger_id = ledger.create(exchange_name=name)
    ledger.open_checked()
    with ledger.transaction() as txn:
        archive_policy_set(txn, files, format_ts(utc_now()))
        txn.append(
            "exchange.initialised",
            actor="admin",
            version=__version__,
            exchange_fingerprint=fingerprint,
            host_key=host_fp,
            policy_sha256=policy.sha256,
        )
    ledger.close()
    openpgp.stop_agent()
    return InitReport(home.root, fingerprint, host_fp, ledger_id,
                      known_hosts_line(listen_addr, public.decode("ascii")))
