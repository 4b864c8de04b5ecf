"""Node homes for the process tests: in RAM (``/dev/shm``) when there is one.

Validators fsync their write-ahead log and private-validator state several times
per height; on a disk shared with other jobs each fsync can take milliseconds. A
RAM folder keeps the same files and fsync calls. ``kill -9`` of a process loses
nothing the kernel holds either way, so crash tests test the same thing.
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
        folder = Path(tempfile.mkdtemp(prefix="transactiva-cluster-", dir=RAM))
        try:
            yield folder
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    else:
        yield tmp_path
