"""Errors raised when an Indonesian identifier fails validation.

Every validator in :mod:`exchanged.ids` raises a subclass of
:class:`ValidationError`, which is itself a :class:`ValueError` so that
callers which only know about ``ValueError`` still catch it.

Each class carries a stable machine-readable ``code`` (sent back to the
agency in outcome files, so it must never change) and a one-sentence
English ``message``.

The numbers validated here are personal data and these errors end up in
logs and in outcome files, so a message must never contain the number or
any part of it.  Messages say which *part* is wrong ("the birth date in
the NIK is not a real date"), never what the digits were.

>>> err = InvalidLength()
>>> err.code
'INVALID_LENGTH'
>>> str(err)
'The number has the wrong number of digits.'
>>> str(InvalidComponent('The birth date in the NIK is not a real date.'))
'The birth date in the NIK is not a real date.'
>>> isinstance(err, ValueError)
True
"""

from __future__ import annotations

from typing import ClassVar

__all__ = ["ValidationError", "InvalidFormat", "InvalidLength", "InvalidComponent"]


class ValidationError(ValueError):
    """Base class of every identifier validation error.

    Validators never raise this class directly, only its subclasses, so
    that ``code`` always says what kind of problem it was.
    """

    # ClassVar: the code identifies the class and must not be overridden per
    # instance, otherwise two errors of the same type could disagree.
    code: ClassVar[str] = "INVALID"
    # A class-level default that an instance may replace with a more
    # specific sentence (which part of which identifier is wrong).
    message: str = "The number is not valid."

    def __init__(self, message: str | None = None) -> None:
        if message is not None:
            self.message = message
        # Only the message goes into ``args``: ``str()``, ``repr()``,
        # pickling and tracebacks all read ``args``, and keeping the number
        # out of it is what keeps it out of the logs.
        super().__init__(self.message)


class InvalidFormat(ValidationError):
    """The number contains something other than the ASCII digits 0-9.

    This includes separators inside the number, non-ASCII digits (such as
    Arabic-Indic or full-width digits) and non-text input.
    """

    code: ClassVar[str] = "INVALID_FORMAT"
    message: str = "The number contains characters other than the digits 0-9."


class InvalidLength(ValidationError):
    """The number has the wrong number of digits."""

    code: ClassVar[str] = "INVALID_LENGTH"
    message: str = "The number has the wrong number of digits."


class InvalidComponent(ValidationError):
    """A part of the number, such as a date or a serial, is impossible."""

    code: ClassVar[str] = "INVALID_COMPONENT"
    message: str = "A part of the number is not valid."
