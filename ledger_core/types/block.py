"""Blocks: a signed header over ordered transactions, the last commit and evidence.

The header holds the chain id, height, time, the previous
block's hash, the RFC 6962 root of the transactions' wire bytes, the app hash
*after* executing the block, the proposer's address, and four consensus
fields: the hash of the validator set of this height (``validators_hash``) and
of the next (``next_validators_hash``), the hash of the commit of the previous
block this block carries (``last_commit_hash``; the empty-string SHA-256 at
height 1) and the RFC 6962 root of the duplicate-vote evidence it carries
(``evidence_hash``). The proposer signs the header's canonical bytes; the block
hash is their SHA-256, and it is what validators vote for.

The block's time is the proposer's stamp (proposer-based timestamps,
docs/consensus.md "Block time"): ``time_ms``, Unix milliseconds read from the
proposer's clock when it assembled the block, which validators prevoted only if
it was timely when the proposal reached them. ``time`` is the same instant in
whole Unix seconds (``time_ms // 1000``), what the state machine, the API and
events use; the header carries both and a decoder refuses a header where they
disagree. Times increase strictly from block to block (and block 1 is not
before the genesis time); followers and light clients take a header's time as
its commit vouches for it.

Decoders (:meth:`Header.from_json`, :meth:`Block.from_json`) accept untrusted
JSON and raise :class:`~ledger_core.types.fields.FieldError` naming the field; they check
that the body matches the header's roots and counts.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Final

from ledger_core.types import codec, merkle
from ledger_core.types.crypto import ADDRESS_RE, SIGNATURE_RE, SigningKey, verify
from ledger_core.types.fields import expect_int, expect_keys, expect_object, expect_str
from ledger_core.types.tx import CHAIN_ID_RE, MAX_TIME
from ledger_core.types.vote import HASH_RE, MAX_HEIGHT, Commit, DuplicateVoteEvidence, MessageError

GENESIS_PREVIOUS: Final = "00" * 32
EMPTY_HASH: Final = hashlib.sha256(b"").hexdigest()
MAX_BLOCK_TXS: Final = 100_000
MAX_BLOCK_EVIDENCE: Final = 100
MAX_TX_WIRE: Final = 1 << 20

_HEADER_FIELDS: Final = (
    "chain_id", "height", "time", "time_ms", "previous_hash", "txs_root", "tx_count", "app_hash",
    "proposer", "validators_hash", "next_validators_hash", "last_commit_hash", "evidence_hash",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Header:
    """What a block commits to."""

    chain_id: str
    height: int
    time_ms: int
    previous_hash: str
    txs_root: str
    tx_count: int
    app_hash: str
    proposer: str
    validators_hash: str
    next_validators_hash: str
    last_commit_hash: str
    evidence_hash: str

    @property
    def time(self) -> int:
        """The block's time in whole Unix seconds (what the application reads)."""
        return self.time_ms // 1000

    def to_json(self) -> codec.Value:
        """The canonical JSON value of the header."""
        return {name: getattr(self, name) for name in _HEADER_FIELDS}

    def encode(self) -> bytes:
        """Canonical bytes (signed and hashed)."""
        return codec.encode(self.to_json())

    @property
    def hash(self) -> str:
        """The block hash, hex."""
        return hashlib.sha256(self.encode()).hexdigest()

    @classmethod
    def from_json(cls, value: codec.Value, field: str = "header") -> Header:
        """A header from its JSON value, or MessageError naming the field."""
        obj = expect_object(value, field)
        expect_keys(obj, field, set(_HEADER_FIELDS), set())
        hashes = {
            name: expect_str(obj[name], f"{field}.{name}", HASH_RE)
            for name in (
                "previous_hash", "txs_root", "app_hash", "validators_hash",
                "next_validators_hash", "last_commit_hash", "evidence_hash",
            )
        }  # fmt: skip
        time_ms = expect_int(obj["time_ms"], f"{field}.time_ms", 0, MAX_TIME * 1000 + 999)
        if expect_int(obj["time"], f"{field}.time", 0, MAX_TIME) != time_ms // 1000:
            raise MessageError(f"{field}.time", "must be time_ms in whole seconds")
        return cls(
            chain_id=expect_str(obj["chain_id"], f"{field}.chain_id", CHAIN_ID_RE),
            height=expect_int(obj["height"], f"{field}.height", 1, MAX_HEIGHT),
            time_ms=time_ms,
            tx_count=expect_int(obj["tx_count"], f"{field}.tx_count", 0, MAX_BLOCK_TXS),
            proposer=expect_str(obj["proposer"], f"{field}.proposer", ADDRESS_RE),
            **hashes,
        )


def evidence_root(evidence: tuple[DuplicateVoteEvidence, ...]) -> str:
    """The ``evidence_hash`` of a block's evidence list."""
    return merkle.root([e.encode() for e in evidence]).hex()


def last_commit_hash(commit: Commit | None) -> str:
    """The ``last_commit_hash`` of a block carrying ``commit`` (None at height 1)."""
    return EMPTY_HASH if commit is None else commit.hash


@dataclass(frozen=True, slots=True)
class Block:
    """A header, the proposer's signature over it, transactions, last commit and evidence."""

    header: Header
    signature: bytes
    txs: tuple[bytes, ...]
    last_commit: Commit | None = None
    evidence: tuple[DuplicateVoteEvidence, ...] = ()

    def verify(self, proposer_public_key: bytes) -> bool:
        """Whether the proposer signed this header and the body matches it."""
        return self.body_matches() and verify(
            proposer_public_key, self.signature, self.header.encode()
        )

    def body_matches(self) -> bool:
        """Whether transactions, last commit and evidence match the header's roots."""
        header = self.header
        return (
            len(self.txs) == header.tx_count
            and merkle.root(list(self.txs)).hex() == header.txs_root
            and last_commit_hash(self.last_commit) == header.last_commit_hash
            and evidence_root(self.evidence) == header.evidence_hash
        )

    def to_json(self) -> codec.Value:
        """The block as sent between nodes: transactions as their wire text."""
        return {
            "header": self.header.to_json(),
            "signature": self.signature.hex(),
            "txs": [wire.decode("utf-8") for wire in self.txs],
            "last_commit": None if self.last_commit is None else self.last_commit.to_json(),
            "evidence": [e.to_json() for e in self.evidence],
        }

    def encode(self) -> bytes:
        return codec.encode(self.to_json())

    @classmethod
    def from_json(cls, value: codec.Value, field: str = "block") -> Block:
        """A block whose body matches its header, or MessageError naming the field."""
        obj = expect_object(value, field)
        expect_keys(obj, field, {"header", "signature", "txs", "last_commit", "evidence"}, set())
        signature = bytes.fromhex(expect_str(obj["signature"], f"{field}.signature", SIGNATURE_RE))
        header = Header.from_json(obj["header"], f"{field}.header")
        raw_txs = obj["txs"]
        if not isinstance(raw_txs, list) or len(raw_txs) > MAX_BLOCK_TXS:
            raise MessageError(f"{field}.txs", f"must be a list of at most {MAX_BLOCK_TXS}")
        txs = []
        for i, text in enumerate(raw_txs):
            if not isinstance(text, str) or len(text) > MAX_TX_WIRE:
                raise MessageError(f"{field}.txs[{i}]", "must be a transaction's wire text")
            try:
                txs.append(text.encode("utf-8"))
            except UnicodeEncodeError:
                raise MessageError(f"{field}.txs[{i}]", "is not UTF-8 text") from None
        raw_commit = obj["last_commit"]
        commit = (
            None if raw_commit is None else Commit.from_json(raw_commit, f"{field}.last_commit")
        )
        raw_evidence = obj["evidence"]
        if not isinstance(raw_evidence, list) or len(raw_evidence) > MAX_BLOCK_EVIDENCE:
            raise MessageError(
                f"{field}.evidence", f"must be a list of at most {MAX_BLOCK_EVIDENCE}"
            )
        evidence = tuple(
            DuplicateVoteEvidence.from_json(e, f"{field}.evidence[{i}]")
            for i, e in enumerate(raw_evidence)
        )
        block = cls(header, signature, tuple(txs), commit, evidence)
        if not block.body_matches():
            raise MessageError(field, "the transactions, last commit or evidence do not match "
                                      "the header")  # fmt: skip
        return block


def make_block(
    key: SigningKey,
    *,
    chain_id: str,
    height: int,
    time_ms: int,
    previous_hash: str,
    txs: list[bytes],
    app_hash: bytes,
    validators_hash: str,
    next_validators_hash: str,
    last_commit: Commit | None = None,
    evidence: tuple[DuplicateVoteEvidence, ...] = (),
) -> Block:
    """Build and sign a block stamped ``time_ms`` (Unix milliseconds)."""
    header = Header(
        chain_id=chain_id,
        height=height,
        time_ms=time_ms,
        previous_hash=previous_hash,
        txs_root=merkle.root(txs).hex(),
        tx_count=len(txs),
        app_hash=app_hash.hex(),
        proposer=key.address,
        validators_hash=validators_hash,
        next_validators_hash=next_validators_hash,
        last_commit_hash=last_commit_hash(last_commit),
        evidence_hash=evidence_root(evidence),
    )
    return Block(header, key.sign(header.encode()), tuple(txs), last_commit, evidence)
