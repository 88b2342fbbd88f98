"""The front door: an SFTP server that lets an agency in and hands finished uploads on."""

from exchanged.sftp.door import Door
from exchanged.sftp.server import SFTPServer

__all__ = ["Door", "SFTPServer"]
