"""Messages of the ``blocks`` channel: decided blocks, block sync and state snapshots.

All are canonical JSON objects with one key naming the message:

* ``{"committed": {"block", "commit"}}`` — a decided block with the commit that
  decides it (the proposer announces each block it got decided, for followers);
* ``{"get_status": {}}`` / ``{"status": {"height", "base"}}`` — how far a node
  is, and where its block history starts (a node restored from a snapshot has
  no blocks below its ``base``);
* ``{"get_blocks": {"from", "to"}}`` / ``{"blocks": [{"block", "commit"}, ...]}``
  — block sync, at most :data:`MAX_SYNC_BLOCKS` per answer;
* ``{"get_snapshot": {}}`` / ``{"snapshot": {"header", "signature", "commit",
  "validators", "next_validators", "state"}}`` — the whole state at the sender's
  height as ``[[key, value], ...]`` in key order, with the header and commit that
  prove its app hash and the validator sets of that height and the next.

Requests and answers are ordinary messages sent to one peer, so any transport
that can send to a peer carries them. Nothing here is trusted: the receiver
verifies commits against the validator sets it knows (``light``) and state
against the header's app hash.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from typing import Final

from ledger_core.types import codec
from ledger_core.types.block import Block, Header
from ledger_core.types.crypto import SIGNATURE_RE
from ledger_core.types.fields import expect_int, expect_keys, expect_object, expect_str
from ledger_core.types.validators import ValidatorSet
from ledger_core.types.vote import MAX_HEIGHT, MAX_MESSAGE_BYTES, Commit, MessageError

MAX_SYNC_BLOCKS: Final = 64
MAX_STATE_KEY: Final = 1024
# Where a canonical ``committed`` message names its block's height: the header's
# keys come sorted, and nothing before the header (evidence) holds '"header":'.
_COMMITTED_HEIGHT: Final = re.compile(
    rb'"header":\{"app_hash":"[0-9a-f]{64}","chain_id":"[^"]{1,64}",'
    rb'"evidence_hash":"[0-9a-f]{64}","height":([1-9][0-9]{0,18}),'
)
_PEEK_BYTES: Final = 1 << 16


@dataclass(frozen=True, slots=True)
class Committed:
    """A decided block and its commit."""

    block: Block
    commit: Commit


@dataclass(frozen=True, slots=True)
class GetStatus:
    """Ask a peer how far it is."""


@dataclass(frozen=True, slots=True)
class Status:
    """A node's last committed height and the first height it holds blocks for."""

    height: int
    base: int


@dataclass(frozen=True, slots=True)
class GetBlocks:
    """Ask for the blocks ``start`` to ``end`` inclusive."""

    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Blocks:
    """Consecutive decided blocks with their commits."""

    items: tuple[Committed, ...]


@dataclass(frozen=True, slots=True)
class GetSnapshot:
    """Ask for the state at the peer's height."""


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The whole state at ``header.height`` with what proves it."""

    header: Header
    signature: bytes
    commit: Commit
    validators: ValidatorSet
    next_validators: ValidatorSet
    state: tuple[tuple[str, codec.Value], ...]


type SyncMessage = Committed | GetStatus | Status | GetBlocks | Blocks | GetSnapshot | Snapshot


def committed_height(payload: bytes) -> int | None:
    """The block height a ``committed`` message claims, read without decoding it (None
    for other messages or when it cannot be read). Only for skipping the blocks a node
    already has: nothing here is verified."""
    if not payload.startswith(b'{"committed":{"block":{'):
        return None
    found = _COMMITTED_HEIGHT.search(payload, 0, _PEEK_BYTES)
    return None if found is None else int(found.group(1))


def _committed_json(item: Committed) -> codec.Value:
    return {"block": item.block.to_json(), "commit": item.commit.to_json()}


def encode_sync(message: SyncMessage) -> bytes:
    """The bytes sent on the ``blocks`` channel."""
    value: codec.Value
    if isinstance(message, Committed):
        value = {"committed": _committed_json(message)}
    elif isinstance(message, GetStatus):
        value = {"get_status": {}}
    elif isinstance(message, Status):
        value = {"status": {"height": message.height, "base": message.base}}
    elif isinstance(message, GetBlocks):
        value = {"get_blocks": {"from": message.start, "to": message.end}}
    elif isinstance(message, Blocks):
        value = {"blocks": [_committed_json(item) for item in message.items]}
    elif isinstance(message, GetSnapshot):
        value = {"get_snapshot": {}}
    else:
        value = {
            "snapshot": {
                "header": message.header.to_json(),
                "signature": message.signature.hex(),
                "commit": message.commit.to_json(),
                "validators": message.validators.to_json(),
                "next_validators": message.next_validators.to_json(),
                "state": [[key, item] for key, item in message.state],
            }
        }
    return codec.encode(value)


def _committed(value: object, field: str) -> Committed:
    obj = expect_object(value, field)
    expect_keys(obj, field, {"block", "commit"}, set())
    block = Block.from_json(obj["block"], f"{field}.block")
    commit = Commit.from_json(obj["commit"], f"{field}.commit")
    if (commit.height, commit.block_hash) != (block.header.height, block.header.hash):
        raise MessageError(f"{field}.commit", "is not the commit of the block")
    return Committed(block, commit)


def _validators(value: object, field: str) -> ValidatorSet:
    try:
        return ValidatorSet.from_json(value)
    except ValueError as err:
        raise MessageError(field, str(err)) from None


def _snapshot(value: object) -> Snapshot:
    obj = expect_object(value, "snapshot")
    names = {"header", "signature", "commit", "validators", "next_validators", "state"}
    expect_keys(obj, "snapshot", names, set())
    header = Header.from_json(obj["header"], "snapshot.header")
    signature = bytes.fromhex(expect_str(obj["signature"], "snapshot.signature", SIGNATURE_RE))
    commit = Commit.from_json(obj["commit"], "snapshot.commit")
    raw_state = obj["state"]
    if not isinstance(raw_state, list):
        raise MessageError("snapshot.state", "must be a list of [key, value]")
    state: list[tuple[str, codec.Value]] = []
    for i, item in enumerate(raw_state):
        if not isinstance(item, list) or len(item) != 2:
            raise MessageError(f"snapshot.state[{i}]", "must be [key, value]")
        key = item[0]
        if not isinstance(key, str) or not 0 < len(key) <= MAX_STATE_KEY:
            raise MessageError(f"snapshot.state[{i}]", "the key must be a non-empty string")
        if state and key <= state[-1][0]:
            raise MessageError(f"snapshot.state[{i}]", "keys must be in increasing order")
        if item[1] is None:
            raise MessageError(f"snapshot.state[{i}]", "a value cannot be null")
        state.append((key, item[1]))
    return Snapshot(
        header,
        signature,
        commit,
        _validators(obj["validators"], "snapshot.validators"),
        _validators(obj["next_validators"], "snapshot.next_validators"),
        tuple(state),
    )


def decode_sync(data: bytes) -> SyncMessage:
    """A ``blocks`` channel message, or FieldError / MessageError naming the field."""
    try:
        value = codec.decode(data, MAX_MESSAGE_BYTES)
    except codec.DecodeError as err:
        raise MessageError("message", str(err)) from None
    if not isinstance(value, dict) or len(value) != 1:
        raise MessageError("message", "must be an object with one key")
    ((kind, body),) = value.items()
    if kind == "committed":
        return _committed(body, "committed")
    if kind in ("get_status", "get_snapshot"):
        expect_keys(expect_object(body, kind), kind, set(), set())
        return GetStatus() if kind == "get_status" else GetSnapshot()
    if kind == "status":
        obj = expect_object(body, kind)
        expect_keys(obj, kind, {"height", "base"}, set())
        return Status(
            expect_int(obj["height"], "status.height", 0, MAX_HEIGHT),
            expect_int(obj["base"], "status.base", 0, MAX_HEIGHT),
        )
    if kind == "get_blocks":
        obj = expect_object(body, kind)
        expect_keys(obj, kind, {"from", "to"}, set())
        start = expect_int(obj["from"], "get_blocks.from", 1, MAX_HEIGHT)
        end = expect_int(obj["to"], "get_blocks.to", start, start + MAX_SYNC_BLOCKS - 1)
        return GetBlocks(start, end)
    if kind == "blocks":
        if not isinstance(body, list) or len(body) > MAX_SYNC_BLOCKS:
            raise MessageError("blocks", f"must be a list of at most {MAX_SYNC_BLOCKS}")
        items = tuple(_committed(item, f"blocks[{i}]") for i, item in enumerate(body))
        for earlier, later in itertools.pairwise(items):
            if later.block.header.height != earlier.block.header.height + 1:
                raise MessageError("blocks", "the blocks must be consecutive")
        return Blocks(items)
    if kind == "snapshot":
        return _snapshot(body)
    raise MessageError("message", f"unknown message kind {kind!r}")
