"""An agency's side of the exchange, done as an agency does it: plain ``gpg`` and OpenSSH ``sftp``.

Used by ``./scripts/demo``, the integration tests and the benchmarks, so all
three drive the exchange exactly as an agency would, with no shortcut through
exchanged's own code. Every command it runs is one the README shows (only gpg's
status lines are read with the exchange's parser, :class:`~exchanged.crypto.gpg.Status`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from exchanged.crypto.gpg import Status

GPG_BATCH = ["--batch", "--yes", "--no-tty", "--pinentry-mode", "loopback", "--passphrase", ""]


class DeskError(RuntimeError):
    pass


def run(cmd: list[str], *, input: bytes | None = None, check: bool = True,
        timeout: float = 300) -> subprocess.CompletedProcess[bytes]:
    result = subprocess.run(cmd, input=input, capture_output=True, timeout=timeout, check=False)
    if check and result.returncode != 0:
        raise DeskError(
            f"{cmd[0]} failed ({result.returncode}): "
            f"{result.stderr.decode(errors='replace')[-800:]}"
        )
    return result


@dataclass(frozen=True)
class Opened:
    data: bytes
    signer: str | None


class AgencyDesk:
    """One agency's workstation: its GnuPG home, its SSH key, its known_hosts."""

    def __init__(self, agency: str, workdir: Path) -> None:
        self.agency = agency
        self.dir = workdir
        self.gnupg = workdir / "gnupg"
        self.ssh_key = workdir / "id_ed25519"
        self.known_hosts = workdir / "known_hosts"
        self.fingerprint = ""

    # -- keys ------------------------------------------------------------------------------

    def create_keys(self, *, expire: str = "2y") -> None:
        """gpg --quick-gen-key (Ed25519 signing, Curve25519 encryption) and ssh-keygen."""
        self.dir.mkdir(parents=True, exist_ok=True)
        self.gnupg.mkdir(mode=0o700, exist_ok=True)
        uid = f"{self.agency} <{self.agency}@agency.example>"
        self.gpg("--quick-gen-key", uid, "ed25519", "sign,cert", expire)
        self.fingerprint = self.own_fingerprint()
        self.gpg("--quick-add-key", self.fingerprint, "cv25519", "encr", expire)
        if not self.ssh_key.exists():
            run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", self.agency,
                 "-f", str(self.ssh_key)])

    def own_fingerprint(self) -> str:
        out = self.gpg("--with-colons", "--list-secret-keys").stdout.decode()
        for line in out.splitlines():
            if line.startswith("fpr:"):
                return line.split(":")[9]
        raise DeskError("no secret key")

    def export_public(self, path: Path) -> Path:
        path.write_bytes(self.gpg("--armor", "--export", self.fingerprint).stdout)
        return path

    @property
    def ssh_public(self) -> Path:
        return self.ssh_key.with_suffix(".pub")

    def import_key(self, path: Path, *, certify: bool = False) -> str:
        """gpg --import; with ``certify``, also gpg --quick-lsign-key (the README's step
        once the fingerprint has been checked), so gpg will encrypt to it."""
        out = self.gpg("--status-fd", "1", "--import", str(path)).stdout.decode()
        for args in Status.parse(out).all("IMPORT_OK"):
            fingerprint = args[-1]
            if certify:
                self.gpg("--quick-lsign-key", fingerprint)
            return fingerprint
        raise DeskError("nothing imported")

    def trust_host(self, host: str, port: int, host_public_key: Path) -> None:
        """Pin the exchange's SSH host key (as an admin would hand it over)."""
        key = host_public_key.read_text().split()
        self.known_hosts.write_text(f"[{host}]:{port} {key[0]} {key[1]}\n")

    def gpg(self, *args: str, input: bytes | None = None, check: bool = True
            ) -> subprocess.CompletedProcess[bytes]:
        return run(["gpg", "--homedir", str(self.gnupg), *GPG_BATCH, *args], input=input,
                   check=check)

    # -- batches -----------------------------------------------------------------------------

    def seal(self, plaintext: Path, out: Path, *, recipient: str | None, sign: bool = True,
             armor: bool = False, signer: str | None = None) -> Path:
        """gpg --sign --encrypt: the way a batch must be prepared (the README's command)."""
        args = ["--output", str(out)]
        if armor:
            args.append("--armor")
        if sign:
            args += ["--sign", "--local-user", signer or self.fingerprint]
        if recipient:
            args += ["--encrypt", "--recipient", recipient]
        self.gpg(*args, str(plaintext))
        return out

    def open(self, sealed: Path) -> Opened:
        """gpg --decrypt; reports the primary fingerprint of a good signature."""
        result = self.gpg("--status-fd", "2", "--decrypt", str(sealed), check=False)
        signer = None
        for args in Status.parse(result.stderr.decode(errors="replace")).all("VALIDSIG"):
            if len(args) >= 10:
                signer = args[9]
        if result.returncode != 0:
            raise DeskError(f"gpg could not decrypt {sealed.name}")
        return Opened(result.stdout, signer)

    # -- SFTP ---------------------------------------------------------------------------------

    def sftp(self, host: str, port: int, commands: list[str], *, check: bool = True,
             key: Path | None = None, user: str | None = None
             ) -> subprocess.CompletedProcess[bytes]:
        """Run OpenSSH sftp in batch mode."""
        batch = "\n".join(commands) + "\n"
        cmd = [
            "sftp", "-q", "-b", "-", "-P", str(port),
            "-i", str(key or self.ssh_key),
            "-o", "BatchMode=yes",
            "-o", "IdentitiesOnly=yes",
            "-o", "StrictHostKeyChecking=yes",
            "-o", f"UserKnownHostsFile={self.known_hosts}",
            "-o", "ConnectTimeout=20",
            f"{user or self.agency}@{host}",
        ]
        return run(cmd, input=batch.encode(), check=check, timeout=600)

    def upload(self, host: str, port: int, local: Path, remote: str) -> None:
        self.sftp(host, port, [f'put "{local}" "{remote}"'])

    def listing(self, host: str, port: int, folder: str) -> list[str]:
        out = self.sftp(host, port, [f'ls -1 "{folder}"']).stdout.decode()
        return [line.strip().rsplit("/", 1)[-1] for line in out.splitlines()
                if line.strip() and not line.startswith("sftp>")]

    def wait_for(self, host: str, port: int, folder: str, name: str, *, timeout: float = 60,
                 interval: float = 0.2) -> None:
        """Poll the outbox over SFTP until ``name`` appears."""
        deadline = time.monotonic() + timeout
        while True:
            if name in self.listing(host, port, folder):
                return
            if time.monotonic() > deadline:
                raise DeskError(f"{name} did not appear in {folder} within {timeout} s")
            time.sleep(interval)

    def download(self, host: str, port: int, remote: str, local: Path) -> Path:
        self.sftp(host, port, [f'get "{remote}" "{local}"'])
        return local


def tools_present() -> list[str]:
    return [t for t in ("gpg", "gpgconf", "sftp", "ssh-keygen") if shutil.which(t) is None]


def stop_gpg_agent(gnupg: Path) -> None:
    if gnupg.exists():
        subprocess.run(["gpgconf", "--homedir", str(gnupg), "--kill", "gpg-agent"],
                       capture_output=True, check=False, env={**os.environ})
