"""Indonesian identifiers: NIK, NIP (PNS and PPPK), NKK."""

from exchanged.ids.exceptions import (
    InvalidComponent,
    InvalidFormat,
    InvalidLength,
    ValidationError,
)

__all__ = ["ValidationError", "InvalidFormat", "InvalidLength", "InvalidComponent"]
