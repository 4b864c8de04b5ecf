"""The node process's garbage collector: paused while the state loads, tuned after."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from ledger_core.node.memory import THRESHOLDS, collection_paused, tune_gc


@pytest.fixture(autouse=True)
def restore_gc() -> Iterator[None]:
    enabled, thresholds = gc.isenabled(), gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)
    if enabled:
        gc.enable()
    else:
        gc.disable()


def test_collection_is_paused_while_loading_and_back_after_even_on_an_error() -> None:
    gc.enable()
    with collection_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(RuntimeError), collection_paused():
        raise RuntimeError("the state did not load")
    assert gc.isenabled()


def test_a_collector_that_was_off_stays_off() -> None:
    gc.disable()
    with collection_paused():
        assert not gc.isenabled()
    assert not gc.isenabled()


def test_tuning_freezes_what_is_alive_and_raises_the_thresholds() -> None:
    kept = [{"report": i} for i in range(1000)]
    tune_gc()
    assert gc.get_threshold() == THRESHOLDS
    assert gc.get_freeze_count() >= len(kept)
