"""Administration behind the CLI: create a home, register agencies, record addenda, check policies.

Each function here is what one command does; the CLI only parses options and
prints. Every change is recorded in the ledger.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.resources
import shutil
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from exchanged import __version__
from exchanged.agencies import Agencies, Agency, SshKey, check_agency_id, parse_ssh_public_key
from exchanged.errors import ConfigError, KeyProblem, UsageError
from exchanged.home import (
    Home,
    Listen,
    atomic_write,
    config_text,
    load_config,
    make_private_dir,
    new_secret,
)
from exchanged.ledger import Ledger, format_ts, utc_now
from exchanged.openpgp import KeyInfo, OpenPGP, create_gnupg_home
from exchanged.policy import load_policies
from exchanged.policy.loader import load_policy_files, read_policy_files
from exchanged.state import SCHEMA as STATE_SCHEMA
from exchanged.state import archive_policy_set


def open_ledger(home: Home, *, readonly: bool = False) -> Ledger:
    """The home's ledger, with the working-state tables beside it."""
    ledger = Ledger(home.ledger, extra_schema="" if readonly else STATE_SCHEMA, readonly=readonly)
    if not readonly:
        ledger.open_checked()
    return ledger


def shipped_policies() -> Path:
    """The policies shipped with exchanged (``policies/`` of the source tree)."""
    path = Path(str(importlib.resources.files("exchanged") / "data" / "policies"))
    if not path.is_dir():
        raise ConfigError("the shipped policies are missing from this installation")
    return path


def ssh_fingerprint(blob: bytes) -> str:
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def known_hosts_line(listen: Listen, public_key: str) -> str:
    """The line an agency adds to ~/.ssh/known_hosts to pin the exchange's host key."""
    host = listen.host
    if host in ("0.0.0.0", "::", ""):
        host = "EXCHANGE-HOST-NAME"
    key_type, key = public_key.split()[:2]
    where = host if listen.port == 22 else f"[{host}]:{listen.port}"
    return f"{where} {key_type} {key}"


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

    openpgp = OpenPGP(home.gnupg)
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
        archive_policy_set(txn, policy.sha256, files, format_ts(utc_now()))
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


@dataclass(frozen=True)
class AgencyReport:
    agency: Agency
    inbox: tuple[str, ...]
    outbox: tuple[str, ...]
    ssh_fingerprint: str
    #: OpenSSH mode: the lines to add to sshd_config for this agency
    sshd_config: str | None = None


def _prepare_drop(home: Home, agency: Agency, inbox: tuple[str, ...],
                  outbox: tuple[str, ...]) -> str | None:
    """The agency's drop folders: in the home (embedded SFTP) or as an sshd chroot."""
    config = load_config(home)
    everything = (*outbox, "ledger", "notices")
    if config.front_door != "openssh":
        Agencies(home).prepare_tree(agency.id, inbox, everything)
        return None
    from exchanged.openssh import ensure_account, match_block, prepare_tree

    ensure_account(config, agency.id)
    prepare_tree(config, agency.id, [k.line for k in agency.ssh_keys], inbox, everything)
    return match_block(config, agency.id)


def _read_ssh_key(path: Path, agencies: Agencies, agency_id: str) -> SshKey:
    """An SSH public key file, refused if weak or if it already logs in another agency."""
    try:
        key = parse_ssh_public_key(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(f"cannot read the SSH key {path}: "
                         f"{getattr(e, 'strerror', None) or 'not text'}") from None
    for other in agencies.all().values():
        if other.id != agency_id and any(k.data == key.data for k in other.ssh_keys):
            raise KeyProblem(f"that SSH key already logs in agency {other.id}")
    return key


def _import_gpg_key(home: Home, path: Path, agencies: Agencies, agency_id: str,
                    refresh_of: str | None = None) -> KeyInfo:
    """Import an agency's OpenPGP key, refused if it is the exchange's or another agency's."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise UsageError(f"cannot read the OpenPGP key {path}: {e.strerror}") from None
    openpgp = OpenPGP(home.gnupg)
    try:
        info = openpgp.import_agency_key(data, refresh_of=refresh_of)
        own = openpgp.exchange_fingerprint()
    finally:
        openpgp.stop_agent()
    if info.fingerprint == own:
        raise KeyProblem("that is the exchange's own key, not the agency's")
    for other in agencies.all().values():
        if other.id != agency_id and other.gpg_fingerprint == info.fingerprint:
            raise KeyProblem(f"that OpenPGP key is already pinned for agency {other.id}")
    return info


def add_agency(
    home: Home, agency_id: str, *, name: str, ssh_key: Path, gpg_key: Path
) -> AgencyReport:
    """Register an agency: its SFTP login key, its pinned OpenPGP key, its drop folders."""
    home.require()
    check_agency_id(agency_id)
    agencies = Agencies(home)
    if agencies.get(agency_id) is not None:
        raise UsageError(f"agency {agency_id} is already registered")
    if not name.strip():
        raise UsageError("--name must not be empty")
    key = _read_ssh_key(ssh_key, agencies, agency_id)
    policy = load_policies(home.policies)
    info = _import_gpg_key(home, gpg_key, agencies, agency_id)

    agency = Agency(
        id=agency_id,
        name=name.strip(),
        ssh_keys=(key,),
        gpg_fingerprint=info.fingerprint,
        added=format_ts(utc_now()),
    )
    inbox, outbox = policy.inbox_flows(agency_id), policy.outbox_flows(agency_id)
    ledger = open_ledger(home)
    sshd_config = _prepare_drop(home, agency, inbox, outbox)
    agencies.write(agency)
    ssh_fp = ssh_fingerprint(base64.b64decode(key.data))
    ledger.append(
        "agency.added",
        agency=agency_id,
        actor="admin",
        gpg_fingerprint=info.fingerprint,
        ssh_key=ssh_fp,
        inbox=list(inbox),
        outbox=list(outbox),
    )
    ledger.close()
    return AgencyReport(agency, inbox, outbox, ssh_fp, sshd_config)


@dataclass(frozen=True)
class UpdateReport:
    agency: Agency
    changes: tuple[str, ...]


def update_agency(home: Home, agency_id: str, *, ssh_key: Path | None = None,
                  add_ssh_key: bool = False, gpg_key: Path | None = None) -> UpdateReport:
    """Change an agency's keys: a new SSH login key (replacing or added), a new pinned
    OpenPGP key, or a refreshed copy of the pinned one (a revocation, a new expiry)."""
    home.require()
    agencies = Agencies(home)
    agency = agencies.get(agency_id)
    if agency is None:
        raise UsageError(f"there is no agency {agency_id}")
    if ssh_key is None and gpg_key is None:
        raise UsageError("give --ssh-key and/or --gpg-key")
    changes: list[str] = []
    fields: dict[str, object] = {}
    ssh_keys = agency.ssh_keys
    if ssh_key is not None:
        key = _read_ssh_key(ssh_key, agencies, agency_id)
        ssh_keys = (*ssh_keys, key) if add_ssh_key else (key,)
        fingerprint = ssh_fingerprint(base64.b64decode(key.data))
        changes.append(f"SSH login key {'added' if add_ssh_key else 'replaced'}: {fingerprint}")
        fields["ssh_key"] = fingerprint
        fields["ssh_keys"] = len(ssh_keys)
    pinned = agency.gpg_fingerprint
    if gpg_key is not None:
        info = _import_gpg_key(home, gpg_key, agencies, agency_id,
                               refresh_of=agency.gpg_fingerprint)
        if info.fingerprint == agency.gpg_fingerprint:
            state = "revoked" if info.revoked else "expired" if info.expired else "valid"
            changes.append(f"pinned OpenPGP key refreshed: {info.fingerprint} is {state}")
            fields["gpg_refreshed"] = state
        else:
            changes.append(f"pinned OpenPGP key changed: {agency.gpg_fingerprint} -> "
                           f"{info.fingerprint}")
            fields["gpg_previous_fingerprint"] = agency.gpg_fingerprint
        pinned = info.fingerprint
        fields["gpg_fingerprint"] = pinned
    updated = Agency(agency.id, agency.name, ssh_keys, pinned, agency.added)
    ledger = open_ledger(home)
    if ssh_key is not None and load_config(home).front_door == "openssh":
        policy = load_policies(home.policies)
        _prepare_drop(home, updated, policy.inbox_flows(agency_id),
                      policy.outbox_flows(agency_id))
    agencies.write(updated)
    ledger.append("agency.updated", agency=agency_id, actor="admin", **fields)
    ledger.close()
    return UpdateReport(updated, tuple(changes))

