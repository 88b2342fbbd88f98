"""The agency's client, 'exchanged submit' and 'fetch', against the real daemon."""

from __future__ import annotations

import csv
import io
import json
import os
import socket
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import paramiko

from exchanged.testing import synth
from exchanged.testing.agencydesk import AgencyDesk
from tests.integration.support import HOST, Agency, Exchange, exchanged, write_csv


def client_args(exchange: Exchange, desk: AgencyDesk, state: Path, *extra: str) -> list[str]:
    return ["--server", f"{HOST}:{exchange.port}", "--agency", desk.agency,
            "--ssh-key", str(desk.ssh_key), "--gnupghome", str(desk.gnupg),
            "--state", str(state), "--quiet", *extra]


def test_submit_and_get_the_answer(exchange: Exchange, bkn: Agency, desks: dict[str, AgencyDesk],
                                   work: Path) -> None:
    state = work / "state"
    register = synth.SyntheticRegister(500, seed=12)
    reg = work / "register.csv"
    synth.write_register_csv(str(reg), register)
    r = exchanged("submit", *client_args(exchange, desks["bkn"], state, "--exchange-key",
                                         str(exchange.public_key)),
                  "--flow", "asn-register", "--batch-id", "client-reg", str(reg))
    assert "batch client-reg answered" in r.stdout
    pins = json.loads((state / "pins.json").read_text())
    assert pins[f"{HOST}:{exchange.port}"]["exchange_fingerprint"] == exchange.fingerprint
    kemensos_state = work / "kstate"
    batch, truth = work / "kpm.csv", work / "truth.csv"
    synth.write_kpm_csv(str(batch), synth.kpm_batch(register, 120, seed=4), truth_path=str(truth))
    out = work / "answer.csv"
    r = exchanged("submit", *client_args(exchange, desks["kemensos"], kemensos_state,
                                         "--exchange-key", str(exchange.public_key)),
                  "--flow", "kpm-verification", "--output", str(out), str(batch))
    assert "answered" in r.stdout and out.exists()
    answer = list(csv.DictReader(io.StringIO(out.read_text())))
    expected = list(csv.DictReader(truth.open()))
    assert [a["status"] for a in answer] == [t["expected_status"] for t in expected]
    # the pin is remembered: no key needed the second time
    r = exchanged("submit", *client_args(exchange, desks["kemensos"], kemensos_state),
                  "--flow", "kpm-verification", "--output", str(work / "a2.csv"), str(batch))
    assert r.returncode == 0


def test_a_rejection_prints_the_reasons(exchange: Exchange, desks: dict[str, AgencyDesk],
                                        work: Path) -> None:
    bad = write_csv(work / "bad.csv", "nik,alamat\n3171014101900001,x\n")
    r = exchanged("submit", *client_args(exchange, desks["kemensos"], work / "s",
                                         "--exchange-key", str(exchange.public_key)),
                  "--flow", "kpm-verification", str(bad), check=False)
    assert r.returncode == 1
    assert "REJECTED" in r.stdout and "COLUMN_NOT_ALLOWED" in r.stdout


def test_a_changed_host_key_or_exchange_key_is_refused(exchange: Exchange,
                                                       desks: dict[str, AgencyDesk],
                                                       work: Path, tmp_path: Path) -> None:
    state = work / "pins"
    good = write_csv(work / "g.csv", "nik\n3171014101900001\n")
    exchanged("submit", *client_args(exchange, desks["kemensos"], state, "--exchange-key",
                                     str(exchange.public_key)),
              "--flow", "kpm-verification", "--no-wait", str(good))
    other = tmp_path / "other"
    exchanged("init", "--home", str(other))
    r = exchanged("submit", *client_args(exchange, desks["kemensos"], state, "--exchange-key",
                                         str(other / "exchange-public.asc")),
                  "--flow", "kpm-verification", "--no-wait", str(good), check=False)
    assert r.returncode == 2 and "CHANGED" in r.stderr
    pins_file = state / "pins.json"
    pins = json.loads(pins_file.read_text())
    host_pub = (other / "keys" / "ssh_host_ed25519_key.pub").read_text().split()
    pins[f"{HOST}:{exchange.port}"]["host_key"] = f"{host_pub[0]} {host_pub[1]}"
    pins_file.write_text(json.dumps(pins))
    r = exchanged("submit", *client_args(exchange, desks["kemensos"], state),
                  "--flow", "kpm-verification", "--no-wait", str(good), check=False)
    assert r.returncode == 2 and "host key" in r.stderr and "CHANGED" in r.stderr


def test_fetch_collects_what_is_waiting(exchange: Exchange, desks: dict[str, AgencyDesk],
                                        kemensos: Agency, work: Path) -> None:
    sealed = kemensos.seal(write_csv(work / "b.csv", "nik\n3171014101900001\n"), "to-fetch.csv.gpg")
    kemensos.submit("kpm-verification", sealed)
    kemensos.desk.wait_for(HOST, exchange.port, "/outbox/kpm-verification",
                           "to-fetch.result.csv.gpg")
    out = work / "fetched"
    r = exchanged("fetch", *client_args(exchange, desks["kemensos"], work / "fs",
                                        "--exchange-key", str(exchange.public_key)),
                  "--flow", "kpm-verification", "--output-dir", str(out), "--remove")
    assert "to-fetch.result.csv.gpg" in r.stdout
    assert (out / "to-fetch.result.csv").read_text().startswith('"nik","status"')
    assert "to-fetch.result.csv.gpg" not in kemensos.desk.listing(HOST, exchange.port,
                                                                  "/outbox/kpm-verification")


# -- a hostile server: 'exchanged fetch' writes nothing outside --output-dir ------------------


class _LetAnyoneIn(paramiko.ServerInterface):
    def get_allowed_auths(self, username: str) -> str:
        return "publickey"

    def check_auth_publickey(self, username: str, key: paramiko.PKey) -> int:
        return paramiko.AUTH_SUCCESSFUL

    def check_channel_request(self, kind: str, chanid: int) -> int:
        return (paramiko.OPEN_SUCCEEDED if kind == "session"
                else paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED)


class _HostileOutbox(paramiko.SFTPServerInterface):
    """A compromised exchange: /outbox lists whatever it likes, and every file it serves is
    a real outcome (sealed by the exchange's key, for the agency): only the client's own
    checks stand between a hostile name and the agency's disk."""

    def __init__(self, server: paramiko.ServerInterface, tree: dict[str, list[str]],
                 sealed: bytes, removed: list[str]) -> None:
        super().__init__(server)
        self.tree, self.sealed, self.removed = tree, sealed, removed

    def _attributes(self, name: str, mode: int) -> paramiko.SFTPAttributes:
        attr = paramiko.SFTPAttributes()
        attr.filename, attr.st_mode, attr.st_size = name, mode, len(self.sealed)
        return attr

    def list_folder(self, path: str) -> list[paramiko.SFTPAttributes] | int:
        if path == "/outbox":
            return [self._attributes(f, stat.S_IFDIR | 0o700) for f in self.tree]
        names = self.tree.get(path.removeprefix("/outbox/"))
        if names is None:
            return paramiko.SFTP_NO_SUCH_FILE
        return [self._attributes(n, stat.S_IFREG | 0o600) for n in names]

    def stat(self, path: str) -> paramiko.SFTPAttributes:
        return self._attributes(path.rsplit("/", 1)[-1], stat.S_IFREG | 0o600)

    lstat = stat

    def open(self, path: str, flags: int, attr: paramiko.SFTPAttributes) -> paramiko.SFTPHandle:
        handle = paramiko.SFTPHandle(flags)
        handle.readfile = io.BytesIO(self.sealed)  # type: ignore[attr-defined]
        return handle

    def remove(self, path: str) -> int:
        self.removed.append(path)
        return paramiko.SFTP_OK


@contextmanager
def hostile_server(tree: dict[str, list[str]], sealed: bytes, removed: list[str]
                   ) -> Iterator[int]:
    """A paramiko SFTP server on a loopback port serving ``tree`` as its /outbox."""
    host_key = paramiko.ECDSAKey.generate()
    listener = socket.create_server((HOST, 0))
    transports: list[paramiko.Transport] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            transport = paramiko.Transport(conn)
            transport.add_server_key(host_key)
            transport.set_subsystem_handler("sftp", paramiko.SFTPServer, _HostileOutbox,
                                            tree, sealed, removed)
            transport.start_server(server=_LetAnyoneIn())
            transports.append(transport)

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        listener.close()
        for transport in transports:
            transport.close()


def test_fetch_never_writes_outside_the_output_dir(exchange: Exchange,
                                                   desks: dict[str, AgencyDesk],
                                                   work: Path) -> None:
    desk = desks["kemensos"]
    plain = write_csv(work / "answer.csv", "nik,status\n3171014101900001,TIDAK_DITEMUKAN\n")
    sealed = subprocess.run(
        ["gpg", "--homedir", str(exchange.home / "keys" / "gnupg"), "--batch", "--trust-model",
         "always", "--sign", "--local-user", exchange.fingerprint, "--encrypt", "--recipient",
         desk.fingerprint, "--output", "-", str(plain)],
        check=True, capture_output=True).stdout
    out = work / "out"
    out.mkdir()
    (out / "planted.result.csv").symlink_to(work / "target.csv")  # a link left to lead out
    victim = write_csv(work / "victim.csv", "victim\n")
    os.link(victim, out / "hard.result.csv")  # and a hard link to a file elsewhere
    good = ["good.result.csv.gpg", "good.replay-2.rejected.json.gpg"]
    hostile = ["../up.result.csv.gpg", f"{work}/abs.result.csv.gpg", "a\0b.result.csv.gpg",
               "a\\b.result.csv.gpg", "x" * 300 + ".result.csv.gpg", ".", "..",
               ".result.csv.gpg", ".hidden.result.csv.gpg", "sub/in.result.csv.gpg",
               "\x1b]0;owned\x07.result.csv.gpg", "planted.result.csv.gpg",
               "hard.result.csv.gpg"]
    tree = {"kpm-verification": good + hostile, "../../up": ["x.result.csv.gpg"]}
    before = set(work.iterdir())
    removed: list[str] = []
    with hostile_server(tree, sealed, removed) as port:
        r = subprocess.run(
            [sys.executable, "-m", "exchanged", "fetch", "--server", f"{HOST}:{port}",
             "--agency", desk.agency, "--ssh-key", str(desk.ssh_key), "--gnupghome",
             str(desk.gnupg), "--state", str(work / "state"), "--quiet", "--exchange-key",
             str(exchange.public_key), "--output-dir", str(out), "--remove"],
            capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    # what is an outcome's name is written, inside the folder, 0600; the rest is skipped
    # with one warning line each (".", ".." and the non-outcomes are not outcomes at all)
    assert sorted(os.listdir(out)) == ["good.replay-2.rejected.json", "good.result.csv",
                                       "hard.result.csv", "planted.result.csv"]
    assert (out / "good.result.csv").read_text().startswith("nik,status")
    assert stat.S_IMODE((out / "good.result.csv").stat().st_mode) == 0o600
    warnings = r.stderr.splitlines()
    assert len(warnings) == len(hostile) - 2 + 1 and all(w.startswith("warning: skipped")
                                                         for w in warnings), warnings
    assert "\x1b" not in r.stderr and "\x1b" not in r.stdout
    # nothing written elsewhere, nothing followed, nothing written over
    assert set(work.iterdir()) - before == {work / "state"}
    assert (out / "planted.result.csv").is_symlink() and not (work / "target.csv").exists()
    assert victim.read_text() == "victim\n"
    # only what was safely written is removed from the server
    assert sorted(removed) == sorted(f"/outbox/kpm-verification/{n}" for n in good)
