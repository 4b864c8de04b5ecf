"""The consensus write-ahead log: every message of the current height, in order.

One file per height, ``DIR/<height, 12 digits>.wal``, of records
``length (4 bytes, big-endian) | CRC-32 of the payload (4 bytes) | payload``.
A payload is the canonical JSON of a consensus message as sent on the wire
(``{"proposal": ...}`` or ``{"vote": ...}``) or of a fired timeout
(``{"timeout": {"height", "round", "step"}}``).

The node writes what it receives before handing it to the engine, and writes
and fsyncs its own proposals and votes before sending them, so after a crash
the replay of the file brings the engine back to the round, step, lock and
votes it had, and it re-signs nothing new (the private validator refuses to
sign anything else for a height, round and step it already signed).

Opening a height's file reads it back. A record cut short or failing its CRC
(a crash in the middle of a write, a damaged disk) ends the log: the file is
truncated to the last whole record and the loss is logged. Files of heights
before the previous one are deleted when a new height opens.
"""

from __future__ import annotations

import logging
import os
import struct
import zlib
from pathlib import Path
from typing import Final

from ledger_core.types.vote import MAX_MESSAGE_BYTES

LOG = logging.getLogger(__name__)
_HEADER: Final = struct.Struct(">II")
MAX_RECORD_BYTES: Final = MAX_MESSAGE_BYTES + 1024


def frame(payload: bytes) -> bytes:
    """A record's bytes."""
    return _HEADER.pack(len(payload), zlib.crc32(payload)) + payload


def read_records(data: bytes) -> tuple[list[bytes], int, str]:
    """The whole records at the start of ``data``, the length they take, and why
    reading stopped early ("" when it did not)."""
    records: list[bytes] = []
    offset = 0
    while offset < len(data):
        if len(data) - offset < _HEADER.size:
            return records, offset, f"a record header is cut short at byte {offset}"
        length, crc = _HEADER.unpack_from(data, offset)
        if length > MAX_RECORD_BYTES:
            return records, offset, f"a record at byte {offset} claims {length} bytes"
        start = offset + _HEADER.size
        payload = data[start : start + length]
        if len(payload) < length:
            return records, offset, f"the record at byte {offset} is cut short"
        if zlib.crc32(payload) != crc:
            return records, offset, f"the record at byte {offset} fails its CRC"
        records.append(payload)
        offset = start + length
    return records, offset, ""


class WAL:
    """The write-ahead log of one node, in ``directory``."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.height = 0
        self._fd: int | None = None

    def path(self, height: int) -> Path:
        """The file of ``height``."""
        return self.directory / f"{height:012d}.wal"

    def open(self, height: int) -> list[bytes]:
        """Switch to ``height``'s file; the records already in it (a truncated or
        corrupt tail is cut off and logged)."""
        self.close()
        path = self.path(height)
        records: list[bytes] = []
        if path.exists():
            data = path.read_bytes()
            records, good, problem = read_records(data)
            if problem:
                LOG.warning(
                    "WAL %s: %s; dropping %d bytes after %d whole records",
                    path,
                    problem,
                    len(data) - good,
                    len(records),
                )
                with path.open("r+b") as handle:
                    handle.truncate(good)
                    handle.flush()
                    os.fsync(handle.fileno())
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.fchmod(self._fd, 0o600)  # the log holds the chain's transactions: owner only
        self.height = height
        self._sync_directory()
        for old in self.directory.glob("*.wal"):
            stem = old.stem
            if stem.isdigit() and int(stem) < height - 1:
                old.unlink()
        return records

    def write(self, payload: bytes, *, sync: bool) -> None:
        """Append a record; with ``sync``, on disk before returning."""
        assert self._fd is not None, "open a height first"
        data = frame(payload)
        written = os.write(self._fd, data)
        while written < len(data):
            written += os.write(self._fd, data[written:])
        if sync:
            os.fsync(self._fd)

    def close(self) -> None:
        """Close the current file."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _sync_directory(self) -> None:
        fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
