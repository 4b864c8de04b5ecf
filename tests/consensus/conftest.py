"""Node homes for the consensus tests.

Validators fsync their write-ahead log and private-validator state several
times per height; on a shared disk each fsync can take milliseconds. The homes
go to a RAM-backed folder (``/dev/shm``) when there is one: the same files and
the same fsync calls, without waiting for a disk. In-process crashes lose
nothing the kernel holds, so the crash scenarios test the same thing either way.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

RAM = Path("/dev/shm")  # noqa: S108 - a private folder is made inside, mode 0700


@pytest.fixture
def homes(tmp_path: Path) -> Iterator[Path]:
    """A fresh folder for node homes, removed afterwards."""
    if RAM.is_dir() and RAM.stat().st_mode & 0o002:
        folder = Path(tempfile.mkdtemp(prefix="transactiva-", dir=RAM))
        try:
            yield folder
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    else:
        yield tmp_path
