"""gpg in one place: the status parser, typed failures, the keyring, signed documents."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from exchanged.crypto.gpg import Gpg, Status
from exchanged.crypto.keys import Keyring
from exchanged.crypto.packets import classify_open, unusable_own_key, valid_signatures
from exchanged.crypto.signing import sign_document, verify_document, verify_with_key_file
from exchanged.crypto.streams import Decryption, SealFailed
from exchanged.errors import CheckFailed, Refused, Unavailable

PACKAGE = Path(__file__).resolve().parents[2] / "exchanged"

# status lines gpg 2.2.40 wrote in the experiments that found the codes (see gpg.py)
FULL_DISK = "[GNUPG:] ERROR add_keyblock_resource 33587291\n"
READ_ONLY = "[GNUPG:] ERROR add_keyblock_resource 33587322\n"
NO_AGENT = "[GNUPG:] INV_SGNR 0 ABCD\n[GNUPG:] FAILURE sign-encrypt 33554509\n"


# -- the one status parser -----------------------------------------------------------------


def test_the_status_parser_is_the_only_one() -> None:
    """Nothing in the package reads gpg's status lines but crypto/gpg.py."""
    readers = sorted(str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py")
                     if "[GNUPG:]" in p.read_text(encoding="utf-8"))
    assert readers == ["crypto/gpg.py"]


def test_gpg_is_started_in_one_place() -> None:
    """python-gnupg is built, and gpg's command line is put together, only in crypto/gpg.py
    (the agency desk of the tests runs gpg as an agency would, by hand)."""
    builders = sorted(str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py")
                      if re.search(r"^import gnupg|gnupg\.GPG\(|\[\"gpg\"|--status-fd\", \"2",
                                   p.read_text(encoding="utf-8"), re.M)
                      and "testing" not in p.parts)
    assert builders == ["crypto/gpg.py"]
    assert "subprocess" not in (PACKAGE / "admin" / "keys.py").read_text(encoding="utf-8")


def test_status_lines_are_keyword_and_arguments() -> None:
    status = Status.parse("[GNUPG:] NEWSIG\n[GNUPG:] VALIDSIG A 2026-01-01 1767225600 0 4 0 22"
                          " 10 00 B\n[GNUPG:] \nnot a status line [GNUPG:] BADSIG\n")
    assert status.lines == (("NEWSIG", ()), ("VALIDSIG", ("A", "2026-01-01", "1767225600", "0",
                                                          "4", "0", "22", "10", "00", "B")))
    assert not status.has("BADSIG")
    assert [s.primary for s in valid_signatures(status)] == ["B"]


def test_resource_failures_are_read_from_gpg_error_codes() -> None:
    assert Status.parse(FULL_DISK).resource_failure() == "ENOSPC"
    assert Status.parse(READ_ONLY).resource_failure() == "EROFS"
    assert Status.parse(NO_AGENT).resource_failure() == "NO_AGENT"
    # the message's own failures are not the machine's: no secret key (17), bad data, an
    # unknown error (-1), out of memory (a hostile message can cause it)
    for line in ("FAILURE sign 17", "ERROR keydb_search 33554445", "FAILURE decrypt 4294967295",
                 "ERROR pkdecrypt_failed 33587286", "ERROR x y", "FAILURE gpg-exit"):
        assert Status.parse(f"[GNUPG:] {line}\n").resource_failure() is None, line
    # the words of a human message are never read
    assert Status.parse("gpg: x: write error: No space left on device\n").resource_failure() \
        is None


def test_own_key_unusable_only_for_the_exchange_key() -> None:
    own = frozenset({"7C52C28C6E6BE2A3", "93516FD00B49C026"})
    lost = Status.parse("[GNUPG:] ENC_TO 93516FD00B49C026 18 0\n"
                        "[GNUPG:] NO_SECKEY 93516FD00B49C026\n[GNUPG:] DECRYPTION_FAILED\n")
    assert unusable_own_key(lost, own)
    other = Status.parse("[GNUPG:] ENC_TO 1111222233334444 18 0\n"
                         "[GNUPG:] NO_SECKEY 1111222233334444\n")
    assert not unusable_own_key(other, own)
    with pytest.raises(Refused) as refused:
        classify_open(other, "B" * 40, exchange="A" * 40, hit_limit=False, limit=None)
    assert refused.value.reasons[0].code == "NOT_ENCRYPTED_TO_EXCHANGE"


# a batch signed by the pinned key (primary P), as gpg 2.2.40 reports it: SHA-1 and RIPEMD-160
# are checked (VALIDSIG, field 8 the hash), MD5 it refuses itself (ERRSIG, code 5); a key it
# does not have at all is ERRSIG code 9
PINNED = "6A16051FD156EB15F57162E24B444EFFC71A7855"
OPENED = ("[GNUPG:] ENC_TO 21CA417BDDFE233C 18 0\n[GNUPG:] DECRYPTION_KEY X Y u\n"
          "[GNUPG:] BEGIN_DECRYPTION\n[GNUPG:] DECRYPTION_OKAY\n[GNUPG:] PLAINTEXT 62 0 p.csv\n")


def _signed(*hashes: int, by: str = PINNED) -> Status:
    lines = "".join(f"[GNUPG:] NEWSIG\n[GNUPG:] GOODSIG {by[-16:]} A\n[GNUPG:] VALIDSIG {by} "
                    f"2026-12-04 1796342876 0 4 0 22 {h} 00 {by}\n" for h in hashes)
    return Status.parse(OPENED + lines + "[GNUPG:] END_DECRYPTION\n")


def _md5(code: int) -> Status:
    return Status.parse(OPENED + f"[GNUPG:] NEWSIG\n[GNUPG:] ERRSIG 4B444EFFC71A7855 22 1 00 "
                        f"1796342876 {code} {PINNED}\n[GNUPG:] END_DECRYPTION\n")


def _code(status: Status) -> str:
    with pytest.raises(Refused) as refused:
        classify_open(status, PINNED, exchange="A" * 40, hit_limit=False, limit=None)
    [why] = refused.value.reasons
    return f"{why.code} {why.message}"


def test_a_weak_hash_is_refused_with_its_own_code() -> None:
    assert _code(_signed(2)).startswith("WEAK_SIGNATURE The upload is signed with the SHA1 ")
    assert _code(_signed(3)).startswith("WEAK_SIGNATURE The upload is signed with the RIPEMD160")
    assert _code(_md5(5)).startswith("WEAK_SIGNATURE The upload is signed with the MD5 ")
    # a key gpg does not have, or another key's signature, is still the wrong signer
    assert _code(_md5(9)).startswith("WRONG_SIGNER")
    assert _code(_signed(2, by="B" * 40)).startswith("WRONG_SIGNER")
    # SHA-2 counts, also beside a weak signature of the same key
    for hashes in ((8,), (10,), (2, 8)):
        opened = classify_open(_signed(*hashes), PINNED, exchange="A" * 40, hit_limit=False,
                               limit=None)
        assert opened.signer_fingerprint == PINNED
    assert [(s.hash_algo, s.weak) for s in valid_signatures(_signed(1, 8))] == [(1, True),
                                                                               (8, False)]


# -- a real keyring ------------------------------------------------------------------------


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs (root only, like the fault tests)."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs", str(mount)],
                       capture_output=True, text=True, check=False)
    if r.returncode != 0:
        pytest.skip(f"a tmpfs cannot be mounted here: {r.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True, check=False)


def _incompressible(size: int) -> bytes:
    # random bytes as hex: gpg cannot compress them below half their size
    import os
    return os.urandom(size // 2).hex().encode()


def test_seal_and_open_round_trip(keyring: Keyring, tmp_path: Path) -> None:
    fpr = keyring.exchange_fingerprint()
    plain = tmp_path / "a.csv"
    plain.write_bytes(b"nik\n" + _incompressible(3 << 20))
    sealed = tmp_path / "a.csv.gpg"
    keyring.seal(plain, sealed, recipient=fpr, signer=fpr, filename="a.csv")
    assert sealed.stat().st_mode & 0o777 == 0o600
    opening = keyring.decrypting(sealed, pinned=fpr, exchange=fpr, max_bytes=8 << 20)
    try:
        got = b"".join(iter(lambda: opening.read(1 << 20), b""))
        opened = opening.finish()
    finally:
        opening.close()
    assert got == plain.read_bytes()
    assert opened.signer_fingerprint == fpr and opened.plaintext_bytes == len(got)


@pytest.mark.parametrize(("level", "compressed"), [(0, False), (1, True), (None, True)])
def test_answers_are_sealed_at_the_compression_level_asked(
        keyring: Keyring, tmp_path: Path, level: int | None, compressed: bool) -> None:
    fpr = keyring.exchange_fingerprint()
    plain = tmp_path / "a.csv"
    plain.write_bytes(b'"nik","status"\r\n' * 20_000)
    sealed = tmp_path / "a.csv.gpg"
    sealing = keyring.sealing(sealed, recipient=fpr, signer=fpr, filename="a.csv",
                              compress_level=level)
    sealing.stream.write(plain.read_bytes())
    sealing.finish()
    packets = subprocess.run(
        ["gpg", "--homedir", str(keyring.gpg.home), "--batch", "--list-packets", str(sealed)],
        capture_output=True, text=True, check=True).stdout
    assert ("compressed packet" in packets) is compressed
    # uncompressed, the message is as large as the answer; compressed, far smaller
    assert (sealed.stat().st_size < plain.stat().st_size // 4) is compressed


def test_a_full_disk_while_sealing_is_unavailable(keyring: Keyring, tiny_disk: Path,
                                                  tmp_path: Path) -> None:
    """The exchange writes gpg's sealed output itself: a full disk is ENOSPC, where it
    happens, as Unavailable — while the flow writes, and when it has written all."""
    fpr = keyring.exchange_fingerprint()
    dst = tiny_disk / "outcome.tmp"
    sealing = keyring.sealing(dst, recipient=fpr, signer=fpr, filename="x.csv")
    with pytest.raises(Unavailable, match="No space left on device"):
        for _ in range(64):
            sealing.stream.write(_incompressible(1 << 20))
    sealing.abort()
    assert not dst.exists()

    plain = tmp_path / "big.csv"
    plain.write_bytes(_incompressible(3 << 20))
    with pytest.raises(Unavailable, match="No space left on device"):
        keyring.seal(plain, dst, recipient=fpr, signer=fpr, filename="big.csv")
    assert not dst.exists()


def test_a_sealing_gpg_refuses_is_retried_later(keyring: Keyring, tmp_path: Path) -> None:
    fpr = keyring.exchange_fingerprint()
    plain = tmp_path / "p.csv"
    plain.write_bytes(b"x\n")
    with pytest.raises(SealFailed) as failed:
        keyring.seal(plain, tmp_path / "o.gpg", recipient="0" * 40, signer=fpr, filename="p")
    assert failed.value.problems and "INV_RECP" in failed.value.problems
    assert not (tmp_path / "o.gpg").exists()


def test_an_unreadable_upload_is_unavailable(keyring: Keyring) -> None:
    """The exchange, not gpg, reads the upload: an I/O error is EIO, typed (reading
    /proc/self/mem at offset 0, an address never mapped, fails with EIO)."""
    fpr = keyring.exchange_fingerprint()
    opening = Decryption(keyring.gpg, Path("/proc/self/mem"), pinned=fpr, exchange=fpr,
                         max_bytes=None)
    try:
        with pytest.raises(Unavailable, match="Input/output error"):
            opening.finish()
    finally:
        opening.close()


def test_a_full_gnupg_home_is_the_exchanges_problem(keyring: Keyring, tiny_disk: Path,
                                                    tmp_path: Path) -> None:
    """gpg cannot start its agent in a full home: decrypting says NO_SECKEY for the
    exchange's own key, sealing FAILURE with GPG_ERR_NO_AGENT — the exchange's problem
    (Unavailable), never the sender's (Refused)."""
    fpr = keyring.exchange_fingerprint()
    plain = tmp_path / "p.csv"
    plain.write_bytes(b"nik\n1\n")
    sealed = tmp_path / "p.csv.gpg"
    keyring.seal(plain, sealed, recipient=fpr, signer=fpr, filename="p.csv")
    home = tiny_disk / "g"
    subprocess.run(["cp", "-a", str(keyring.home), str(home)], check=True)
    for socket in home.glob("S.*"):
        socket.unlink()
    with open(tiny_disk / "filler", "wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError:
            pass
    full = Keyring(home)
    try:
        opening = full.decrypting(sealed, pinned=fpr, exchange=fpr)
        try:
            with pytest.raises(Unavailable, match="secret key could not be used"):
                opening.finish()
        finally:
            opening.close()
        with pytest.raises(Unavailable, match="NO_AGENT|secret key could not be used"):
            full.seal(plain, tmp_path / "o.gpg", recipient=fpr, signer=fpr, filename="p")
    finally:
        full.stop_agent()


# -- signed documents ----------------------------------------------------------------------


def test_a_signed_document_verifies_with_the_home_and_with_the_key_file(
        keyring: Keyring, tmp_path: Path) -> None:
    fpr = keyring.exchange_fingerprint()
    signed = sign_document(keyring.home, fpr, b'{"size": 3}')
    assert signed.startswith(b"-----BEGIN PGP MESSAGE-----")
    assert verify_document(signed, keyring.home, {fpr, "0" * 40}).content == b'{"size": 3}'
    key = tmp_path / "exchange.asc"
    key.write_text(keyring.export_public(fpr))
    assert verify_with_key_file(signed, key).signer == fpr
    with pytest.raises(CheckFailed, match="not by the exchange's key"):
        verify_document(signed, keyring.home, "0" * 40)
    with pytest.raises(CheckFailed, match="not signed"):
        verify_document(b"-----BEGIN PGP MESSAGE-----\n\nnothing\n", keyring.home, fpr)


def test_a_document_signed_with_a_weak_hash_is_refused(keyring: Keyring) -> None:
    fpr = keyring.exchange_fingerprint()
    for algo in ("SHA1", "MD5"):
        weak = Gpg(keyring.home).run(["--allow-weak-digest-algos", "--digest-algo", algo,
                                      "--armor", "--sign", "--local-user", fpr], input=b"{}")
        assert weak.ok
        with pytest.raises(CheckFailed, match=f"weak hash algorithm {algo}, which proves"):
            verify_document(weak.stdout, keyring.home, fpr)


def test_the_runner_reports_status_and_exit(keyring: Keyring) -> None:
    result = Gpg(keyring.home).run(["--armor", "--export", keyring.exchange_fingerprint()])
    assert result.ok and result.stdout.startswith(b"-----BEGIN PGP PUBLIC KEY BLOCK-----")
    missing = Gpg(keyring.home).run(["--decrypt"], input=b"not openpgp")
    assert not missing.ok and missing.status.has("NODATA")
