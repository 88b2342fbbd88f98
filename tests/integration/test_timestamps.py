"""RFC 3161 timestamps on checkpoints, from a local timestamping authority the test runs:
a CA and a TSA certificate made with openssl, 'openssl ts -reply' behind a tiny HTTP
server (issue 16, part 2)."""

from __future__ import annotations

import http.server
import os
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from exchanged.ledger.notes import parse_note
from exchanged.testing.agencydesk import AgencyDesk, stop_gpg_agent
from tests.integration.support import HOST, Exchange, exchanged, free_port, make_exchange

TSA_CONFIG = """\
[ tsa ]
default_tsa = tsa_config1
[ tsa_config1 ]
dir = {dir}
serial = {dir}/serial
crypto_device = builtin
signer_cert = {dir}/tsa.pem
certs = {dir}/tsa.pem
signer_key = {dir}/tsa.key
signer_digest = sha256
default_policy = 1.2.3.4.1
digests = sha256, sha384, sha512
accuracy = secs:1
ordering = yes
tsa_name = yes
ess_cert_id_alg = sha256
[ tsa_ext ]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = critical,timeStamping
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
"""


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_authority(folder: Path) -> Path:
    """A root CA and a TSA certificate it issued; the CA's certificate (what the exchange
    and anyone checking a token trust)."""
    folder.mkdir()
    (folder / "tsa.cnf").write_text(TSA_CONFIG.format(dir=folder))
    (folder / "serial").write_text("01\n")
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", "ca.key", "-out", "ca.pem", "-days", "30", "-subj", "/CN=Test Root CA",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=folder)
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", "tsa.key", "-out", "tsa.csr", "-subj", "/CN=Test TSA", cwd=folder)
    openssl("x509", "-req", "-in", "tsa.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "tsa.pem", "-days", "30", "-extfile", "tsa.cnf",
            "-extensions", "tsa_ext", cwd=folder)
    return folder / "ca.pem"


@contextmanager
def authority(folder: Path, port: int) -> Iterator[list[int]]:
    """The TSA over HTTP on ``port``: each POSTed query answered by 'openssl ts -reply'."""
    served: list[int] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (the http.server's name)
            query = self.rfile.read(int(self.headers["Content-Length"]))
            with tempfile.TemporaryDirectory(dir=folder) as work:
                q, r = Path(work) / "q.tsq", Path(work) / "r.tsr"
                q.write_bytes(query)
                openssl("ts", "-reply", "-queryfile", str(q), "-config", "tsa.cnf",
                        "-section", "tsa_config1", "-out", str(r), cwd=folder)
                reply = r.read_bytes()
            served.append(len(reply))
            self.send_response(200)
            self.send_header("Content-Type", "application/timestamp-reply")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer((HOST, port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield served
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory, desks: dict[str, AgencyDesk]
         ) -> Iterator[Exchange]:
    ex = make_exchange(tmp_path_factory.mktemp("stamped"), desks, extend=False)
    yield ex
    stop_gpg_agent(ex.home / "keys" / "gnupg")


def test_checkpoints_are_timestamped_and_a_failed_authority_blocks_nothing(
        home: Exchange, tmp_path: Path) -> None:
    ca = make_authority(tmp_path / "tsa")
    port = free_port()  # nothing listens there yet: the authority is down
    config = home.home / "config.yaml"
    os.chmod(config, 0o600)
    with config.open("a") as f:
        f.write(f"timestamp_url: http://{HOST}:{port}/tsr\ntimestamp_ca: {ca}\n"
                "timestamp_timeout_seconds: 5\n")
    r = exchanged("ledger", "checkpoint", "--home", str(home.home))
    assert "signed into" in r.stdout  # the checkpoint is made all the same
    assert "warning: not timestamped now (the timestamping authority did not answer" in r.stderr
    failed = home.ledger("--kind", "ledger.timestamp_failed")
    assert len(failed) == 1 and failed[0]["data"]["retry_minutes"] == 15  # type: ignore[index]
    checkpoints = home.home / "checkpoints"
    assert not list(checkpoints.glob("*.tsr"))
    with authority(tmp_path / "tsa", port) as served:
        # tried again later: the one that failed is stamped now
        r = exchanged("ledger", "timestamp", "--home", str(home.home))
        first = sorted(checkpoints.glob("*.note"))[-1]
        size = int(first.name[11:21])
        assert f"checkpoint {size} timestamped by the authority" in r.stdout and not r.stderr
        # and a new checkpoint is stamped as it is made
        r = exchanged("ledger", "checkpoint", "--home", str(home.home))
        assert r.stdout.count("timestamped by the authority") == 1
        assert len(served) == 2
    stamped = home.ledger("--kind", "ledger.timestamped")
    assert [e["data"]["tree_size"] for e in stamped][0] == size  # type: ignore[index]
    token = checkpoints / f"checkpoint-{size:010d}.tsr"
    # every agency holds the token beside the note
    for agency in ("kemensos", "bkn"):
        outbox = home.home / "drop" / agency / "outbox" / "ledger"
        assert (outbox / token.name).read_bytes() == token.read_bytes()
    # anyone checks it with the authority's certificate: exchanged, and openssl alone
    r = exchanged("ledger", "check-timestamp", "--token", str(token), "--note", str(first),
                  "--tsa-chain", str(ca))
    assert f"checkpoint {size} existed at " in r.stdout
    body = tmp_path / "body"
    body.write_text(parse_note(first.read_bytes()).text)
    subprocess.run(["openssl", "ts", "-verify", "-in", str(token), "-data", str(body),
                    "-CAfile", str(ca)], check=True, capture_output=True, timeout=60)
    # a token does not fit another checkpoint, nor verify under another authority
    other = sorted(checkpoints.glob("*.note"))[-1]
    r = exchanged("ledger", "check-timestamp", "--token", str(token), "--note", str(other),
                  "--tsa-chain", str(ca), check=False)
    assert r.returncode == 1 and "does not verify" in r.stderr and "Traceback" not in r.stderr
    stranger = make_authority(tmp_path / "other-tsa")
    r = exchanged("ledger", "check-timestamp", "--token", str(token), "--note", str(first),
                  "--tsa-chain", str(stranger), check=False)
    assert r.returncode == 1 and "does not verify" in r.stderr
    home.verify()
