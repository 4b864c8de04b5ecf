"""The node process's garbage collector, tuned for a large, acyclic, long-lived state.

The committed state is hundreds of thousands of small dicts, lists and strings that
live for the whole run and hold no reference cycles (values are JSON), and every
block allocates tens of thousands more. CPython's collector would walk the whole
heap again and again as they pile up (at 100,000 orders it added about half to a
market block, docs/performance.md): so after start-up the loaded heap is moved out
of its sight (``gc.freeze``; objects in it are still freed when their count drops,
since they form no cycles), and young collections run every 20,000 allocations
instead of every 700. Cycles (asyncio keeps some) are still found.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

THRESHOLDS: Final = (20_000, 20, 20)


def tune_gc() -> None:
    """Collect once, freeze what is alive now, and raise the young generation's threshold
    (call after start-up, once the state is loaded)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)


@contextmanager
def collection_paused() -> Iterator[None]:
    """No collection while the committed state loads: it is hundreds of thousands of
    acyclic objects, which young collections would walk again and again as they pile up
    (about a tenth of a start-up). Call :func:`tune_gc` after."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
