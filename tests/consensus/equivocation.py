"""What an equivocating validator signs besides its honest messages.

Shared by the in-process Byzantine scenario (``tests/consensus/test_scenarios.py``)
and the Byzantine validator process of the fault tests (``tests/cluster/byzantine.py``).
"""

from __future__ import annotations

from dataclasses import replace

from ledger_core.node.host import Node
from ledger_core.types.abci import BlockContext
from ledger_core.types.block import Block, make_block
from ledger_core.types.crypto import SigningKey
from ledger_core.types.proposal import Proposal, decode_message, encode_message
from ledger_core.types.tx import decode
from ledger_core.types.vote import Vote


def conflicting(
    payload: bytes, node: Node, key: SigningKey, *, split_votes: bool = True
) -> bytes | None:
    """A second, conflicting version of ``key``'s own proposal or vote in ``payload``
    (a vote for the other block or for nil; a block with one transaction fewer), or
    None when there is none to make. Votes are split only when ``split_votes``."""
    chain_id = node.genesis.chain_id
    message = decode_message(payload)
    if isinstance(message, Vote) and message.validator == key.address:
        if not split_votes:
            return None
        twin = replace(message, block_hash=None if message.block_hash else "ab" * 32)
        return encode_message(twin.signed(key, chain_id))
    if isinstance(message, Proposal) and message.proposer == key.address:
        block = other_block(node, key, message.block)
        if block is None:
            return None
        return encode_message(replace(message, block=block).signed(key, chain_id))
    return None


def other_block(node: Node, key: SigningKey, block: Block) -> Block | None:
    """A different valid block for the same height: one transaction fewer."""
    if not block.txs:
        return None
    header = block.header
    txs = [decode(wire) for wire in block.txs[:-1]]
    execution = node.app.execute(BlockContext(header.height, header.time), txs, block.evidence)
    return make_block(
        key,
        chain_id=header.chain_id,
        height=header.height,
        time_ms=header.time_ms,
        previous_hash=header.previous_hash,
        txs=list(block.txs[:-1]),
        app_hash=execution.app_hash,
        validators_hash=header.validators_hash,
        next_validators_hash=header.next_validators_hash,
        last_commit=block.last_commit,
        evidence=block.evidence,
    )
