"""Randomised faults on real node processes (``tests/cluster/chaos.py``).

By default one seed of a few steps; ``TRANSACTIVA_LONG=1`` runs five seeds of twelve
steps each (about seven minutes). The same runs by hand: ``python -m tests.cluster.chaos``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.cluster.chaos import run_seed

LONG = os.environ.get("TRANSACTIVA_LONG") == "1"
RUNS = [(seed, 12) for seed in range(1, 6)] if LONG else [(7, 3)]


@pytest.mark.timeout(1200 if LONG else 300)
@pytest.mark.parametrize(("seed", "steps"), RUNS)
async def test_random_faults_never_fork_or_lose_a_committed_transaction(
    homes: Path, seed: int, steps: int
) -> None:
    said: list[str] = []
    await run_seed(homes, seed, steps, said.append)
    steps_done = {line.split(":")[0] for line in said if " step " in line}
    assert len(steps_done) == steps, said
    assert said[-1].startswith(f"seed {seed}: "), said
    assert " committed, " in said[-1]
