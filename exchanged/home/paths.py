"""The home: one directory that holds a deployment, its configuration and files.

Layout (folders 0700, files 0600)::

    config.yaml            the daemon's settings
    policies/              agreements and their addenda (YAML)
    agencies/<id>.yaml     registered agencies: SSH keys, pinned OpenPGP key
    keys/gnupg/            the exchange's GnuPG home (its key pair, agencies' keys)
    keys/ssh_host_ed25519_key
    keys/register.key      secret for the keyed hashes of NIK and NIP at rest
    keys/ledger-hmac.key   secret for the keyed hashes of untrusted text in the ledger
    exchange-public.asc    the exchange's public key, for agencies
    ledger.db              the append-only ledger and the batches' stages
    checkpoints/           signed ledger tree heads (also delivered to every agency)
    spool/uploads/         uploads being written (never processed if cut off)
    spool/batches/<uid>/   each received batch: its encrypted upload and outcome
    reference/<dataset>/   reference data snapshots (the ASN register)
    drop/<agency>/         each agency's SFTP tree: inbox/<flow>/, outbox/<flow>/
    work/                  the private work area: plaintext only while processing
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from exchanged.errors import ConfigError

DEFAULT_HOME = "/var/lib/exchanged"


class DropSettings(Protocol):
    """What of the configuration says where the agencies' drop folders are."""

    @property
    def front_door(self) -> str: ...

    @property
    def openssh_root(self) -> str: ...

@dataclass(frozen=True)
class Home:
    """Paths of one deployment."""

    root: Path
    #: in OpenSSH mode, the agencies' chroots (their drop folders) live here, outside the home
    drop_root: Path | None = None

    @classmethod
    def resolve(cls, arg: str | None) -> Home:
        """``--home``, else ``$EXCHANGED_HOME``, else ``/var/lib/exchanged``."""
        raw = arg or os.environ.get("EXCHANGED_HOME") or DEFAULT_HOME
        return cls(Path(raw).expanduser().absolute())

    @property
    def config_file(self) -> Path:
        return self.root / "config.yaml"

    @property
    def policies(self) -> Path:
        return self.root / "policies"

    @property
    def agencies(self) -> Path:
        return self.root / "agencies"

    @property
    def keys(self) -> Path:
        return self.root / "keys"

    @property
    def gnupg(self) -> Path:
        return self.keys / "gnupg"

    @property
    def ssh_host_key(self) -> Path:
        return self.keys / "ssh_host_ed25519_key"

    @property
    def register_key(self) -> Path:
        return self.keys / "register.key"

    @property
    def ledger_hmac_key(self) -> Path:
        return self.keys / "ledger-hmac.key"

    @property
    def exchange_public(self) -> Path:
        return self.root / "exchange-public.asc"

    @property
    def ledger(self) -> Path:
        return self.root / "ledger.db"

    @property
    def spool(self) -> Path:
        return self.root / "spool"

    @property
    def uploads(self) -> Path:
        return self.spool / "uploads"

    @property
    def batches(self) -> Path:
        return self.spool / "batches"

    @property
    def reference(self) -> Path:
        return self.root / "reference"

    @property
    def drop(self) -> Path:
        return self.drop_root if self.drop_root is not None else self.root / "drop"

    @property
    def shared_drop(self) -> bool:
        """Drop folders shared with agencies' system users (OpenSSH mode): group-readable."""
        return self.drop_root is not None

    def configured(self, config: DropSettings) -> Home:
        """This home with the drop folders where the configuration puts them."""
        if config.front_door == "openssh":
            return Home(self.root, Path(config.openssh_root))
        return Home(self.root)

    @property
    def work(self) -> Path:
        return self.root / "work"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def daemon_file(self) -> Path:
        """What the running daemon says of itself (for 'exchanged status')."""
        return self.root / "daemon.json"

    def agency_tree(self, agency: str) -> Path:
        return self.drop / agency

    def inbox(self, agency: str, flow: str) -> Path:
        return self.drop / agency / "inbox" / flow

    def outbox(self, agency: str, flow: str) -> Path:
        return self.drop / agency / "outbox" / flow

    def directories(self) -> tuple[Path, ...]:
        return (
            self.root,
            self.policies,
            self.agencies,
            self.keys,
            self.gnupg,
            self.spool,
            self.uploads,
            self.batches,
            self.reference,
            self.drop,
            self.work,
            self.checkpoints,
        )

    def require(self) -> None:
        """Refuse to go on unless this is an initialised home."""
        if not self.config_file.is_file():
            raise ConfigError(
                f"{self.root} is not an exchanged home (no config.yaml); "
                "create one with 'exchanged init --home DIR'"
            )
