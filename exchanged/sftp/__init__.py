"""The front door: an embedded SFTP server that lets an agency in and hands finished uploads to the spool."""

from exchanged.sftp.door import Door
from exchanged.sftp.server import SFTPServer

__all__ = ["Door", "SFTPServer"]
