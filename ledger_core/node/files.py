"""Private files: everything in a node's home is its owner's alone.

A home holds keys, the API token, the ledger (every transfer, memo and meter
report of the chain), the home's action log and meter readings. Files are
created with mode 0600 and folders with 0700, whatever the process umask, and
SQLite's ``-wal`` and ``-shm`` files take the mode of their database.

At start-up :func:`secure_home` goes through the home: a secret (the API token,
a key file) that others can read is refused with the command that fixes it --
it may already have been read, so its owner must know (and may want a new
one) -- while the node's own data files and folders from before this rule are
tightened, with a warning in the log.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Final

LOG: Final = logging.getLogger(__name__)
FILE_MODE: Final = 0o600
DIR_MODE: Final = 0o700
_OTHERS: Final = 0o077


class InsecureFileError(Exception):
    """A secret file that others can read or write; the message says how to fix it."""


def private_dir(path: Path) -> Path:
    """``path`` (and missing parents) as a folder only its owner can enter (0700)."""
    path.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    _tighten(path)
    return path


def private_file(path: Path) -> Path:
    """``path`` as a file only its owner can read (0600), created empty if missing.

    Call it before SQLite opens a database: SQLite creates its ``-wal`` and
    ``-shm`` files with the database's mode.
    """
    if str(path) in ("", ":memory:"):
        return path  # SQLite's in-memory database: no file
    fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), FILE_MODE)
    try:
        if stat.S_IMODE(os.fstat(fd).st_mode) & _OTHERS:
            os.fchmod(fd, FILE_MODE)
    finally:
        os.close(fd)
    return path


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` (replaced whole, never half-written), mode 0600."""
    temporary = path.with_name(f".{path.name}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(temporary, flags, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    temporary.replace(path)


def check_secret(path: Path, what: str) -> None:
    """InsecureFileError when ``path`` (an existing secret) is open to group or others."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return  # a missing secret is its reader's error to report
    if mode & _OTHERS:
        raise InsecureFileError(
            f"{path}: {what} is readable by others (mode {mode:04o}); "
            f"run: chmod 600 {path} (and consider a new one: it may have been read)"
        )


def secure_home(home: Path, secrets: Mapping[Path, str]) -> list[Path]:
    """Refuse ``secrets`` (path: what it is) open to others; tighten every other file
    (0600) and folder (0700) of ``home``, itself included. The paths tightened, each
    logged once."""
    for secret, what in secrets.items():
        check_secret(secret, what)
    keep = {s.resolve() for s in secrets}
    tightened: list[Path] = []
    if _tighten(home):
        tightened.append(home)
    for folder, folders, files in os.walk(home):
        base = Path(folder)
        for name in [*folders, *files]:
            path = base / name
            if path.resolve() not in keep and _tighten(path):
                tightened.append(path)
    for path in tightened:
        LOG.warning("%s was open to others; its mode is now %s", path, _mode_text(path))
    return tightened


def _tighten(path: Path) -> bool:
    """Clear the group and other bits of a real file or folder (never through a link)."""
    info = path.lstat()
    if stat.S_ISLNK(info.st_mode) or not stat.S_IMODE(info.st_mode) & _OTHERS:
        return False
    path.chmod(stat.S_IMODE(info.st_mode) & ~_OTHERS)
    return True


def _mode_text(path: Path) -> str:
    return f"{stat.S_IMODE(path.lstat().st_mode):04o}"
