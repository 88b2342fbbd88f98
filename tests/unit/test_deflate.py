"""Answers sealed ``fast``: compressed by the exchange between gpg signing and gpg
encrypting, in the algorithm the recipient's key prefers; real gpg throughout."""

from __future__ import annotations

import os
import random
import subprocess
import threading
from pathlib import Path

import pytest

from exchanged.crypto.deflate import ZIP, ZLIB, Deflating, algorithm_for, compression_preferences
from exchanged.crypto.keys import Keyring, create_gnupg_home
from exchanged.errors import Unavailable

FAST = 1
ANSWER = b'"ref","nik","status"\r\n' + b"".join(
    b'"KPM-%08d","%016d","not found"\r\n' % (i, 3171010101900000 + i) for i in range(50_000))


def _recipient(keyring: Keyring, tmp_path: Path, preferences: str) -> str:
    """A recipient key made by gpg with these preferences (``setpref``'s syntax), imported
    into the exchange's home; its fingerprint."""
    home = tmp_path / "agency"
    create_gnupg_home(home)
    gpg = ["gpg", "--homedir", str(home), "--batch", "--pinentry-mode", "loopback",
           "--passphrase", ""]
    subprocess.run([*gpg, "--default-preference-list", preferences, "--quick-gen-key",
                    "agency@x.invalid", "ed25519", "sign", "1y"],
                   check=True, capture_output=True)
    fpr = subprocess.run([*gpg, "--with-colons", "--list-keys"], check=True,
                         capture_output=True, text=True).stdout.split("fpr:::::::::")[1][:40]
    # a signing primary key with an encryption subkey, as agencies' keys are
    subprocess.run([*gpg, "--quick-add-key", fpr, "cv25519", "encr", "1y"], check=True,
                   capture_output=True)
    exported = subprocess.run([*gpg, "--export", fpr], check=True, capture_output=True).stdout
    keyring.import_keys(exported)
    subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"], check=False)
    return fpr


def _seal(keyring: Keyring, dst: Path, recipient: str, level: int | None) -> None:
    sealing = keyring.sealing(dst, recipient=recipient, signer=keyring.exchange_fingerprint(),
                              filename="b1.result.csv", compress_level=level)
    try:
        for at in range(0, len(ANSWER), 100_000):
            sealing.stream.write(ANSWER[at:at + 100_000])
    except BaseException:
        sealing.abort()
        raise
    sealing.finish()


def _packets(keyring: Keyring, sealed: Path) -> str:
    """What gpg lists of a sealed answer (the exchange's home holds no secret key of the
    recipient: gpg lists the outer packets only)."""
    return subprocess.run(["gpg", "--homedir", str(keyring.gpg.home), "--batch",
                           "--list-packets", str(sealed)], capture_output=True, text=True,
                          check=False).stdout


def test_the_recipients_preference_picks_the_algorithm() -> None:
    assert algorithm_for((ZLIB, 3, ZIP)) == ZLIB
    assert algorithm_for((3, ZIP, ZLIB)) == ZIP
    assert algorithm_for(None) == ZIP  # RFC 4880 5.2.3.9: no preferences, ZIP
    assert algorithm_for((0,)) is None and algorithm_for(()) is None


@pytest.mark.parametrize(("preferences", "expected"), [
    ("AES256 SHA512 ZLIB BZIP2 ZIP", (2, 3, 1)),
    ("AES256 SHA512 BZIP2 ZIP", (3, 1)),
    ("AES256 SHA512 Uncompressed", (0,)),
])
def test_a_keys_preferences_are_read_from_its_export(keyring: Keyring, tmp_path: Path,
                                                     preferences: str,
                                                     expected: tuple[int, ...]) -> None:
    fpr = _recipient(keyring, tmp_path, preferences)
    exported = keyring.gpg.run(["--export-options", "export-minimal", "--export", fpr]).stdout
    assert compression_preferences(exported) == expected


def _signature(*subpackets: tuple[int, bytes], kind: int = 0x13) -> bytes:
    area = b"".join(bytes((len(data) + 1, sub)) + data for sub, data in subpackets)
    body = bytes((4, kind, 22, 10)) + len(area).to_bytes(2, "big") + area + b"\0\0" + b"\0\0"
    return bytes((0xC2, len(body))) + body


def test_the_primary_user_ids_preferences_come_first() -> None:
    first = _signature((22, bytes((1,))))
    primary = _signature((22, bytes((2, 1))), (25, b"\1"))
    direct = _signature((22, bytes((3,))), kind=0x1F)
    assert compression_preferences(direct + first + primary) == (2, 1)
    assert compression_preferences(direct + first) == (1,)
    assert compression_preferences(direct) == (3,)
    assert compression_preferences(_signature((2, b"\0\0\0\0"))) is None


def test_junk_never_breaks_the_reading() -> None:
    rng = random.Random(14)
    for size in range(0, 400):
        junk = bytes(rng.randrange(256) for _ in range(size))
        result = compression_preferences(junk)
        assert result is None or isinstance(result, tuple)
        # a real header followed by junk, too
        compression_preferences(_signature((22, b"\2")) + junk)


@pytest.mark.parametrize(("preferences", "algo"), [
    ("AES256 SHA512 ZLIB BZIP2 ZIP", 2),
    ("AES256 SHA512 ZIP", 1),
    ("AES256 SHA512 Uncompressed", None),
])
def test_fast_answers_are_compressed_as_the_recipient_prefers_and_open_as_gpgs_own(
        keyring: Keyring, tmp_path: Path, preferences: str, algo: int | None) -> None:
    fpr = _recipient(keyring, tmp_path, preferences)
    sealed = tmp_path / "b1.result.csv.gpg"
    _seal(keyring, sealed, fpr, FAST)
    assert sealed.stat().st_mode & 0o777 == 0o600
    listed = _packets(keyring, sealed)
    assert "encrypted data packet" in listed
    # the recipient opens it with plain gpg: the answer itself, signed by the exchange,
    # under its name, and compressed only if the key takes ZIP or ZLIB
    agency = tmp_path / "agency"
    exchange_key = keyring.export_public(keyring.exchange_fingerprint()).encode()
    gpg = ["gpg", "--homedir", str(agency), "--batch"]
    subprocess.run([*gpg, "--import"], input=exchange_key, check=True, capture_output=True)
    opened = subprocess.run([*gpg, "--status-fd", "2", "--decrypt", str(sealed)],
                            capture_output=True, check=True)
    assert opened.stdout == ANSWER
    status = opened.stderr.decode()
    assert f"VALIDSIG {keyring.exchange_fingerprint()}" in status
    assert "PLAINTEXT 62" in status and "b1.result.csv" in status
    inner = subprocess.run([*gpg, "--list-packets", str(sealed)], capture_output=True,
                           text=True, check=True).stdout
    if algo is None:
        assert "compressed packet" not in inner
        assert sealed.stat().st_size > len(ANSWER)
    else:
        assert f"compressed packet: algo={algo}" in inner
        assert sealed.stat().st_size < len(ANSWER) // 4
    subprocess.run(["gpgconf", "--homedir", str(agency), "--kill", "gpg-agent"], check=False)


def test_a_fast_answer_to_a_key_the_exchange_lacks_is_refused_for_gpgs_reason(
        keyring: Keyring, tmp_path: Path) -> None:
    from exchanged.crypto.streams import SealFailed
    with pytest.raises(SealFailed) as failed:
        _seal(keyring, tmp_path / "o.gpg", "0" * 40, FAST)
    assert "INV_RECP" in failed.value.problems
    assert not (tmp_path / "o.gpg").exists()


def test_a_compression_that_fails_stops_the_encrypting_gpg_first() -> None:
    """An error while compressing (here: the signing gpg's output unreadable, EIO from
    /proc/self/mem) must not leave the encrypting gpg to seal a truncated answer: it is
    stopped (``on_error``) while its input is still open."""
    read_end, write_end = os.pipe()
    sink = os.fdopen(write_end, "wb")
    seen: list[bool] = []
    done = threading.Event()

    def stop() -> None:
        seen.append(sink.closed)
        done.set()

    deflating = Deflating(open("/proc/self/mem", "rb"), sink, ZIP, on_error=stop)
    deflating.join()
    assert done.is_set() and seen == [False]
    assert isinstance(deflating.error, OSError)
    assert sink.closed
    os.close(read_end)


def test_a_full_disk_while_sealing_fast_is_unavailable(keyring: Keyring, tmp_path: Path
                                                       ) -> None:
    mount = tmp_path / "tiny"
    mount.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs",
                        str(mount)], capture_output=True, check=False)
    if r.returncode != 0:
        pytest.skip("a tmpfs cannot be mounted here")
    try:
        fpr = keyring.exchange_fingerprint()
        with pytest.raises(Unavailable, match="No space left on device"):
            _seal(keyring, mount / "o.gpg", fpr, FAST)
        assert not (mount / "o.gpg").exists()
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True, check=False)


def _gpg_children() -> set[int]:
    """This process's living gpg children (Linux: /proc)."""
    found = set()
    for task in Path("/proc/self/task").iterdir():
        for pid in (task / "children").read_text().split():
            try:
                stat = Path(f"/proc/{pid}/stat").read_text()
            except FileNotFoundError:
                continue
            name, state = stat[stat.index("(") + 1:stat.rindex(")")], stat[stat.rindex(")") + 2]
            if name == "gpg" and state != "Z":
                found.add(int(pid))
    return found


def test_a_compressor_that_cannot_start_leaves_no_gpg_and_no_file(
        keyring: Keyring, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Both gpg processes are started before the compressor: if it cannot start (no memory
    for ISA-L's state), they are stopped and waited for, and the file is removed."""
    from exchanged.crypto import streams

    def cannot_start(*args: object, **kwargs: object) -> Deflating:
        raise MemoryError

    monkeypatch.setattr(streams, "Deflating", cannot_start)
    before = _gpg_children()
    with pytest.raises(MemoryError):
        _seal(keyring, tmp_path / "o.gpg", keyring.exchange_fingerprint(), FAST)
    assert _gpg_children() <= before
    assert not (tmp_path / "o.gpg").exists()
