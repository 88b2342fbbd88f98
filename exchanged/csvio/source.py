"""The byte stream under the CSV reader: buffered, read as lines or as chunks of whole lines."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Protocol

from exchanged.csvio.rows import LINE_FLOOR

#: how much the reader asks of its stream at a time
READ_BYTES = 1 << 20

LINE_END = re.compile(rb"\r\n|\r|\n")


class LineTooLong(Exception):
    """A physical line over the source's bound was dropped (it is counted as read)."""


class ByteStream(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


class Source:
    """The byte stream, buffered, read as lines (for the csv module) or as chunks of
    whole lines (for Arrow); counts the physical lines consumed."""

    def __init__(self, stream: ByteStream) -> None:
        self._stream = stream
        self._buf = b""
        self._pos = 0
        self._eof = False
        self._consumed = 0
        self.line = 0
        self._bom_checked = False
        #: the longest physical line :meth:`lines` yields (set by the reader from the header)
        self.max_line = LINE_FLOOR

    @property
    def offset(self) -> int:
        """Bytes consumed since the start of the stream."""
        return self._consumed + self._pos

    def at_end(self) -> bool:
        return self._eof and self._pos >= len(self._buf)

    def _fill(self, want: int) -> None:
        have = len(self._buf) - self._pos
        if have < want and not self._eof:
            # what is read is joined once: appending each read to the buffer copied a
            # block's bytes once per read (a read-ahead stream hands over its pieces of
            # READ_BYTES as they are)
            parts = [self._buf[self._pos:]] if have else []
            while have < want:
                data = self._stream.read(READ_BYTES)
                if not data:
                    self._eof = True
                    break
                parts.append(data)
                have += len(data)
            self._consumed += self._pos
            self._buf = parts[0] if len(parts) == 1 else b"".join(parts)
            self._pos = 0
        if not self._bom_checked and (len(self._buf) >= 3 or self._eof):
            self._bom_checked = True
            if self._buf.startswith(b"\xef\xbb\xbf"):
                self._pos += 3

    def lines(self) -> Iterator[str]:
        """Lines ending in LF, CRLF or a lone CR, as ``open(newline="")`` splits them;
        bytes that are not UTF-8 become lone surrogates (caught per row). A line longer
        than :attr:`max_line` is dropped as it is read and :class:`LineTooLong` raised
        (which ends this generator: the caller starts another)."""
        while True:
            self._fill(1)
            if self._pos >= len(self._buf):
                return
            # how far (from the line's start) is known to hold no line end: each read is
            # searched once, not the whole line again after every read
            searched = 0
            while True:
                m = LINE_END.search(self._buf, self._pos + searched)
                # a CR at the end of what has been read may be the first half of a CRLF
                complete = m is not None and (m.group() != b"\r" or m.end() < len(self._buf))
                if complete or self._eof:
                    break
                held = len(self._buf) - self._pos
                if held > self.max_line + 1:  # over the bound even if it ends in CR LF
                    self._skip_line()
                    raise LineTooLong
                searched = max(held - 1, 0)  # a last CR is searched again
                self._fill(held + READ_BYTES)
            end = m.end() if m is not None else len(self._buf)
            if (m.start() if m is not None else end) - self._pos > self.max_line:
                self._pos = end
                self.line += 1
                raise LineTooLong
            raw = self._buf[self._pos:end]
            self._pos = end
            self.line += 1
            yield raw.decode("utf-8", "surrogateescape")

    def _skip_line(self) -> None:
        """Drop the rest of the current physical line, a read at a time."""
        while True:
            m = LINE_END.search(self._buf, self._pos)
            if m is not None and (m.group() != b"\r" or m.end() < len(self._buf) or self._eof):
                self._pos = m.end()
                break
            if self._eof:
                self._pos = len(self._buf)
                break
            # keep only a last CR, which may be the first half of a CRLF
            keep = len(self._buf) - 1 if self._buf.endswith(b"\r") else len(self._buf)
            self._consumed += keep
            self._buf = self._buf[keep:]
            self._pos = 0
            self._fill(len(self._buf) + 1)
        self.line += 1

    def peek_lines(self, size: int) -> memoryview | None:
        """Up to about ``size`` bytes of whole LF-ended lines from here (empty if the next
        line is longer, or has no LF); None at the end of the stream. A view of the
        buffer, not a copy of it (the parser copies what it keeps)."""
        self._fill(size)
        if self._pos >= len(self._buf):
            return None
        cut = self._buf.rfind(b"\n", self._pos, self._pos + size)
        if cut < 0:
            return memoryview(b"")
        # a CR at the cut's end could be the first half of a CRLF split by a read: no,
        # the cut ends at a LF, which is never the first half of anything
        return memoryview(self._buf)[self._pos:cut + 1]

    def advance(self, size: int, lines: int) -> None:
        self._pos += size
        self.line += lines
