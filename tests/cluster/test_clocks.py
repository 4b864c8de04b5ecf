"""A validator whose clock is ten seconds off, with real node processes.

Four validators on 127.0.0.1 behind fault proxies (``tests/cluster/testnet.py``);
one of them runs with ``clock_offset`` +10 s or -10 s in its ``config.json``.
Transactions are submitted one at a time until the skewed validator has been the
first proposer of several heights. Proposer-based timestamps must keep the
chain's time on the others' clocks: the skewed validator's proposals are refused
(ahead: untimely where they arrive; behind: it waits for its clock to pass the last
block, too late for the round), each of its turns is decided in a later round by
another proposer, and every block holding a transaction is stamped between the
moment the transaction was submitted and the moment its commit was answered, by the
same wall clock the test reads.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.cluster.testnet import LocalNet, started

SKEWED = 2
TURNS = 3  # heights where the skewed validator is the first proposer
MAX_TXS = 40


@pytest.mark.parametrize("offset", [10.0, -10.0], ids=["ahead", "behind"])
async def test_a_validator_ten_seconds_off_cannot_move_the_chains_time(
    homes: Path, offset: float
) -> None:
    # No empty blocks: the chain moves for the test's transactions only, so the first
    # proposer of the next height is known before it starts.
    net: LocalNet = await started(
        homes,
        4,
        empty_block_every=120.0,
        overrides={SKEWED: {"clock_offset": offset}},
    )
    try:
        await net.register_people()
        skewed = net.nodes[SKEWED]
        honest = [n for i, n in enumerate(net.nodes) if i != SKEWED]
        turns = 0
        for i in range(MAX_TXS):
            if turns >= TURNS:
                break
            status = await net.status(honest[0])
            first = status["validators"]["proposer"]
            via = honest[i % len(honest)]
            submitted = time.time()
            [result] = await net.submit(via, net.deposits(1, i % len(net.people)))
            answered = time.time()
            code, block = await net.get(via, f"/blocks/{result['height']}")
            assert code == 200, block
            header = block["header"]
            assert header["proposer"] != skewed.validator, "the skewed validator proposed it"
            stamped = header["time_ms"] / 1000
            assert submitted - 0.005 <= stamped <= answered + 0.005, (
                f"block {header['height']} stamped {stamped - submitted:+.3f} s after the "
                f"submission, {answered - submitted:.3f} s before the answer"
            )
            # The status names round 0's proposer of the height it expects next; under load
            # another block can land first, and then that name is not this block's.
            if first == skewed.validator and status["validators"]["height"] == header["height"]:
                turns += 1
                assert block["commit"]["round"] >= 1, "its round went to nobody"
        assert turns >= TURNS, f"the skewed validator was first proposer {turns} times"
        top = max((await net.heights(honest)).values())
        await net.wait_height(top, [skewed])  # it follows the chain all along
        if offset > 0:
            refused = [n for n in honest if "not timely" in n.log_text()]
            assert refused, "its proposals were refused as untimely"
            assert skewed.validator is not None
            assert all(skewed.validator in n.log_text() for n in refused)
        else:
            assert "once this clock passes the last block's time" in skewed.log_text()
        await net.check()
        assert net.evidence == []
    finally:
        await net.close()
