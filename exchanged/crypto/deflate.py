"""Answers compressed by the exchange between gpg signing them and gpg encrypting them.

gpg compresses with zlib: at level 1 that was half of sealing an answer's CPU (a
1 M-row answer: 0.56 s with compression, 0.20 s without). ISA-L's deflate (Intel's
library, through ``python-isal``) makes the same kind of stream several times faster
and, at its level 1, a little smaller. So an answer sealed ``fast`` goes through two
gpg processes and this thread::

    flow → gpg --sign (not compressed) → Deflating → gpg --encrypt --no-literal → file

The sealed message is the one gpg itself writes: an encrypted packet holding a
compressed packet (old format, its length the rest of the data, as gpg writes it)
holding the one-pass signature, the literal data and the signature. Any OpenPGP
program opens it as it opens gpg's own.

The algorithm is the recipient's: the first of ZIP and ZLIB its key lists among its
preferred compression algorithms (:func:`compression_preferences`); ZIP if the key
lists none (RFC 4880, 5.2.3.9); not compressed at all if it lists others only.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import IO

#: OpenPGP's compression algorithms the exchange writes: deflate alone, or in zlib's wrapping
ZIP = 1
ZLIB = 2
#: the zlib level ("fast" in config.yaml) whose answers the exchange compresses itself
EXCHANGE_LEVEL = 1
#: ISA-L's level (0 to 3): level 1 compresses a 1 M-row answer smaller than zlib's level 1
#: (11.8 against 12.6 MB, synthetic answer) at about a fifth of its CPU
LEVEL = 1
#: what is read of gpg's signed output at a time
CHUNK_BYTES = 1 << 20

_SIGNATURE = 2
_PREFERRED_COMPRESSION = 22
_PRIMARY_USER_ID = 25
_USER_ID_CERTIFICATIONS = range(0x10, 0x14)
_DIRECT_KEY = 0x1F


def algorithm_for(preferences: Sequence[int] | None) -> int | None:
    """The compression a recipient with these preferences gets (None: not compressed).

    >>> algorithm_for((2, 3, 1)), algorithm_for((1,)), algorithm_for(None), algorithm_for((3, 0))
    (2, 1, 1, None)
    """
    if preferences is None:
        return ZIP
    return next((algo for algo in preferences if algo in (ZIP, ZLIB)), None)


def compression_preferences(key: bytes) -> tuple[int, ...] | None:
    """The preferred compression algorithms of an exported public key (binary, best
    exported minimal: its own signatures only), or None if it states none.

    The primary user id's self-signature says; failing that, the first user id's; then a
    direct-key signature's. Anything that is not a well-formed packet ends the reading
    (the key was imported by gpg: it is well-formed).
    """
    found: dict[str, tuple[int, ...]] = {}
    for tag, body in _packets(key):
        if tag != _SIGNATURE:
            continue
        parsed = _signature_subpackets(body)
        if parsed is None:
            continue
        kind, subpackets = parsed
        preferences = subpackets.get(_PREFERRED_COMPRESSION)
        if preferences is None:
            continue
        algorithms = tuple(preferences)
        if kind in _USER_ID_CERTIFICATIONS:
            if subpackets.get(_PRIMARY_USER_ID, b"\0")[:1] != b"\0":
                found.setdefault("primary", algorithms)
            found.setdefault("user id", algorithms)
        elif kind == _DIRECT_KEY:
            found.setdefault("direct", algorithms)
    for which in ("primary", "user id", "direct"):
        if which in found:
            return found[which]
    return None


def _packets(data: bytes) -> list[tuple[int, bytes]]:
    """The (tag, body) of each packet, old format or new (no partial lengths: a key has
    none)."""
    out: list[tuple[int, bytes]] = []
    at = 0
    while at < len(data):
        ctb = data[at]
        if not ctb & 0x80:
            break
        if ctb & 0x40:
            tag = ctb & 0x3F
            measured = _length(data, at + 1, packet=True)
            if measured is None:
                break
            length, at = measured
        else:
            tag, kind = (ctb >> 2) & 0x0F, ctb & 0x03
            if kind == 3:
                break
            size = 1 << kind
            length, at = int.from_bytes(data[at + 1:at + 1 + size], "big"), at + 1 + size
        if at + length > len(data):
            break
        out.append((tag, data[at:at + length]))
        at += length
    return out


def _length(data: bytes, at: int, *, packet: bool) -> tuple[int, int] | None:
    """An OpenPGP length at ``at`` (RFC 4880 4.2.2 for a packet's, 5.2.3.1 for a
    subpacket's): the length and where what it measures starts; None if it is cut short
    or a packet's partial length (a key has none)."""
    if at >= len(data):
        return None
    first = data[at]
    if first < 192:
        return first, at + 1
    if first < (224 if packet else 255):
        if at + 1 >= len(data):
            return None
        return ((first - 192) << 8) + data[at + 1] + 192, at + 2
    if first == 255 and at + 5 <= len(data):
        return int.from_bytes(data[at + 1:at + 5], "big"), at + 5
    return None


def _signature_subpackets(body: bytes) -> tuple[int, dict[int, bytes]] | None:
    """A version 4 (or 5, 6) signature's type and hashed subpackets, by type."""
    if len(body) < 6 or body[0] not in (4, 5, 6):
        return None
    kind = body[1]
    if body[0] == 4:
        size, at = int.from_bytes(body[4:6], "big"), 6
    else:
        size, at = int.from_bytes(body[4:8], "big"), 8
    area = body[at:at + size]
    subpackets: dict[int, bytes] = {}
    at = 0
    while at < len(area):
        measured = _length(area, at, packet=False)
        if measured is None:
            break
        length, at = measured
        if length == 0 or at + length > len(area):
            break
        subpackets.setdefault(area[at] & 0x7F, area[at + 1:at + length])
        at += length
    return kind, subpackets


class Deflating:
    """Compresses gpg's signed output (``source``) into an OpenPGP compressed packet
    written to the encrypting gpg (``sink``), on a thread; closes both at the end.

    :attr:`error` keeps what went wrong here (not gpg closing its end: gpg's status says
    why it stopped); ``on_error`` is then called at once, before ``sink`` is closed, so
    that the encrypting gpg is stopped before it could seal a truncated answer."""

    def __init__(self, source: IO[bytes], sink: IO[bytes], algorithm: int, *,
                 on_error: Callable[[], None]) -> None:
        from isal import isal_zlib  # the daemon's dependency (server extra), not the client's

        self._source = source
        self._sink = sink
        self._compressor = isal_zlib.compressobj(LEVEL, isal_zlib.DEFLATED,
                                                 -15 if algorithm == ZIP else 15)
        self._header = bytes((0xA3, algorithm))  # tag 8, old format, length: the rest
        self._on_error = on_error
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="answer-deflate", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._copy()
        except BrokenPipeError:
            pass  # the encrypting gpg stopped: its status says why
        except BaseException as e:
            self.error = e
            self._on_error()
        finally:
            for stream in (self._sink, self._source):
                try:
                    stream.close()
                except OSError:
                    pass

    def _copy(self) -> None:
        self._sink.write(self._header)
        while chunk := self._source.read(CHUNK_BYTES):
            if out := self._compressor.compress(chunk):
                self._sink.write(out)
        self._sink.write(self._compressor.flush())

    def join(self) -> None:
        self._thread.join()
