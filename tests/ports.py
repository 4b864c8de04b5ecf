"""The port window of one pytest-xdist worker (see ``tests/conftest.py``)."""

from __future__ import annotations

from ledger_core.demo.chain import PORT_RANGE


def worker_window(worker: str, count: int) -> tuple[int, int] | None:
    """Worker ``gwN`` of ``count``: its slice of :data:`PORT_RANGE` (LOW included, HIGH
    not); ``None`` outside xdist or with one worker, where the whole window is the
    process's own."""
    if count < 2 or not worker.startswith("gw") or not worker[2:].isdigit():
        return None
    index = int(worker[2:])
    low, high = PORT_RANGE
    width = (high - low) // count
    if index >= count:
        raise ValueError(f"worker {worker} of {count}")
    return low + index * width, low + (index + 1) * width
