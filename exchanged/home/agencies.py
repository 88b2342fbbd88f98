"""Registered agencies: their SFTP login keys and their pinned OpenPGP key.

Each agency is one file ``HOME/agencies/<id>.yaml``. Its id is its SFTP user
name and must be the party id it has in the agreements (``kemensos``,
``bkn``), so that the policy knows which flows it may use.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import paramiko
import yaml

from exchanged.errors import ConfigError, KeyProblem, UsageError
from exchanged.home.config import Listen
from exchanged.home.files import atomic_write, make_private_dir
from exchanged.home.paths import Home

AGENCY_ID_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,31}")
SSH_KEY_TYPES = (
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "ssh-rsa",
)
MIN_RSA_BITS = 3072


@dataclass(frozen=True)
class SshKey:
    type: str
    data: str  # base64 of the public key blob

    @property
    def line(self) -> str:
        return f"{self.type} {self.data}"

    def matches(self, key: paramiko.PKey) -> bool:
        return (key.get_name() in (self.type, _cert_base(self.type))
                and key.get_base64() == self.data)


def _cert_base(name: str) -> str:
    # RSA keys sign with rsa-sha2-256/512 but are named ssh-rsa
    return "ssh-rsa" if name.startswith("rsa-sha2") else name


@dataclass(frozen=True)
class Agency:
    id: str
    name: str
    ssh_keys: tuple[SshKey, ...]
    gpg_fingerprint: str
    added: str

    def accepts(self, key: paramiko.PKey) -> bool:
        return any(k.matches(key) for k in self.ssh_keys)


def check_agency_id(agency_id: str) -> str:
    if not AGENCY_ID_RE.fullmatch(agency_id):
        raise UsageError(
            f"agency id {agency_id!r} must be 1-32 lower-case letters, digits and dashes"
        )
    return agency_id


def parse_ssh_public_key(text: str) -> SshKey:
    """Parse one OpenSSH public key line (``type base64 [comment]``), refusing weak keys."""
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    if len(lines) != 1:
        raise KeyProblem("the SSH key file must hold exactly one public key line")
    parts = lines[0].split()
    if len(parts) < 2:
        raise KeyProblem("the SSH key file is not an OpenSSH public key (type and key expected)")
    key_type, data = parts[0], parts[1]
    if key_type not in SSH_KEY_TYPES:
        raise KeyProblem(
            f"SSH key type {key_type} is not accepted (use one of: {', '.join(SSH_KEY_TYPES)})"
        )
    try:
        blob = base64.b64decode(data, validate=True)
        key = paramiko.PKey.from_type_string(key_type, blob)
    except (binascii.Error, ValueError, paramiko.SSHException) as e:
        raise KeyProblem(f"the SSH public key cannot be read ({type(e).__name__})") from None
    if key_type == "ssh-rsa" and key.get_bits() < MIN_RSA_BITS:
        raise KeyProblem(f"RSA keys must have at least {MIN_RSA_BITS} bits")
    return SshKey(key_type, data)


def ssh_fingerprint(blob: bytes) -> str:
    """OpenSSH's SHA256 fingerprint of a public key blob."""
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def known_hosts_line(listen: Listen, public_key: str) -> str:
    """The line an agency adds to ~/.ssh/known_hosts to pin the exchange's host key."""
    host = listen.host
    if host in ("0.0.0.0", "::", ""):
        host = "EXCHANGE-HOST-NAME"
    key_type, key = public_key.split()[:2]
    where = host if listen.port == 22 else f"[{host}]:{listen.port}"
    return f"{where} {key_type} {key}"


class Agencies:
    """The agency files of a home."""

    def __init__(self, home: Home) -> None:
        self.home = home

    def path(self, agency_id: str) -> Path:
        return self.home.agencies / f"{agency_id}.yaml"

    def all(self) -> dict[str, Agency]:
        out = {}
        for p in sorted(self.home.agencies.glob("*.yaml")):
            agency = self._read(p)
            out[agency.id] = agency
        return out

    def get(self, agency_id: str) -> Agency | None:
        if not AGENCY_ID_RE.fullmatch(agency_id):
            return None
        p = self.path(agency_id)
        return self._read(p) if p.exists() else None

    def _read(self, path: Path) -> Agency:
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8"))
            return Agency(
                id=str(raw["id"]),
                name=str(raw["name"]),
                ssh_keys=tuple(
                    SshKey(*str(line).split()[:2]) for line in raw.get("ssh_keys", [])
                ),
                gpg_fingerprint=str(raw["gpg_fingerprint"]).upper(),
                added=str(raw.get("added", "")),
            )
        except (OSError, yaml.YAMLError, KeyError, TypeError, ValueError):
            raise ConfigError(f"agency file {path} is damaged") from None

    def write(self, agency: Agency) -> None:
        data = {
            "id": agency.id,
            "name": agency.name,
            "ssh_keys": [k.line for k in agency.ssh_keys],
            "gpg_fingerprint": agency.gpg_fingerprint,
            "added": agency.added,
        }
        text = (
            f"# Agency {agency.id}, registered with 'exchanged agency add'.\n"
            + yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
        )
        atomic_write(self.path(agency.id), text.encode("utf-8"))

    def prepare_tree(self, agency_id: str, inbox: tuple[str, ...], outbox: tuple[str, ...]) -> None:
        """Create the agency's drop folders for the flows it may use."""
        for flow in inbox:
            make_private_dir(self.home.inbox(agency_id, flow))
        for flow in outbox:
            make_private_dir(self.home.outbox(agency_id, flow))
