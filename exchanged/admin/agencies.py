"""``exchanged agency add`` and ``agency update``: an agency's keys and drop folders, on record."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path

from exchanged.crypto.keys import KeyInfo, Keyring
from exchanged.errors import CheckFailed, KeyProblem, UsageError
from exchanged.home import Home, load_config
from exchanged.home.agencies import (
    Agencies,
    Agency,
    SshKey,
    check_agency_id,
    parse_ssh_public_key,
    ssh_fingerprint,
)
from exchanged.ledger import format_ts, open_ledger, utc_now, witness
from exchanged.policy import load_policies
from exchanged.sftp.openssh import (
    check_daemon_user,
    end_sessions,
    ensure_account,
    match_block,
    prepare_tree,
    systemd_dropin,
)


@dataclass(frozen=True)
class AgencyReport:
    agency: Agency
    inbox: tuple[str, ...]
    outbox: tuple[str, ...]
    ssh_fingerprint: str
    #: OpenSSH mode: the lines to add to sshd_config for this agency
    sshd_config: str | None = None
    #: OpenSSH mode: the systemd drop-in that lets the daemon write into the chroots
    systemd_dropin: str | None = None


def _prepare_drop(home: Home, agency: Agency, inbox: tuple[str, ...],
                  outbox: tuple[str, ...]) -> str | None:
    """The agency's drop folders: in the home (embedded SFTP) or as an sshd chroot."""
    config = load_config(home)
    everything = (*outbox, "ledger", "notices")
    if config.front_door != "openssh":
        Agencies(home).prepare_tree(agency.id, inbox, everything)
        return None
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
    openpgp = Keyring(home.gnupg)
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
    config = load_config(home)
    if config.front_door == "openssh":
        # before anything is created: an agency the daemon cannot reach is no agency
        check_daemon_user(config)
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
    return AgencyReport(agency, inbox, outbox, ssh_fp, sshd_config,
                        systemd_dropin(config) if sshd_config else None)


@dataclass(frozen=True)
class UpdateReport:
    agency: Agency
    changes: tuple[str, ...]


def update_agency(home: Home, agency_id: str, *, ssh_key: Path | None = None,
                  add_ssh_key: bool = False, gpg_key: Path | None = None,
                  witness_key: str | None = None) -> UpdateReport:
    """Change an agency's keys: a new SSH login key (replacing or added), a new pinned
    OpenPGP key, or a refreshed copy of the pinned one (a revocation, a new expiry)."""
    home.require()
    agencies = Agencies(home)
    agency = agencies.get(agency_id)
    if agency is None:
        known = ", ".join(sorted(p.stem for p in home.agencies.glob("*.yaml"))) or "none yet"
        raise UsageError(f"there is no agency {agency_id!r} (registered: {known})")
    if ssh_key is None and gpg_key is None and witness_key is None:
        raise UsageError("give --ssh-key, --gpg-key and/or --witness-key")
    if witness_key is not None:
        ledger = open_ledger(home)
        try:
            verifier = witness.register_witness_key(home, ledger, agency_id, witness_key,
                                                    actor="admin")
        except CheckFailed as e:
            raise UsageError(e.message) from None
        finally:
            ledger.close()
        if ssh_key is None and gpg_key is None:
            return UpdateReport(agency, (f"witness key registered: {verifier.vkey()}",))
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
    config = load_config(home)
    if ssh_key is not None and config.front_door == "openssh":
        policy = load_policies(home.policies)
        _prepare_drop(home, updated, policy.inbox_flows(agency_id),
                      policy.outbox_flows(agency_id))
    agencies.write(updated)
    # a removed key's sessions end at once: the embedded server sees the agency file change
    # (each session checks its key every second); sshd's sessions are ended here
    if set(agency.ssh_keys) - set(ssh_keys):
        if config.front_door == "openssh":
            fields["sessions_ended"] = end_sessions(config, agency_id)
            changes.append(f"open sessions of the agency ended: {fields['sessions_ended']}")
        else:
            changes.append("open sessions of the replaced key end within a second")
    ledger.append("agency.updated", agency=agency_id, actor="admin", **fields)
    ledger.close()
    return UpdateReport(updated, tuple(changes))
