"""The private validator: signs proposals and votes, and never signs two conflicting ones.

It keeps the last thing it signed — height, round, step (1 propose,
2 prevote, 3 precommit), the signed bytes and the signature — in a file, and
writes that file atomically (temporary file, fsync, rename, fsync of the
directory) *before* a signature leaves it. So even after ``kill -9`` at any
instant it knows the newest height/round/step it may have signed:

* a request for an older height/round/step is refused;
* a request for the same height/round/step is answered with the stored
  signature if it is the same message, or the same message but for its
  timestamp (the stored timestamp is kept); anything else is refused;
* a request for a newer height/round/step is signed, persisted, returned.

After a crash that lost the write-ahead log's tail, the engine may ask for a
vote other than the one it already signed at that height, round and step;
:meth:`PrivValidator.signed_vote_at` gives the vote that was signed, which is
the only one the validator may send there.

A refusal raises :class:`DoubleSignError`. A state file that cannot be read is
an error at start-up: a validator that does not know what it signed must not
sign.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from ledger_core.types import codec
from ledger_core.types.crypto import SigningKey
from ledger_core.types.proposal import Proposal
from ledger_core.types.vote import STEP_PROPOSE, Vote


class DoubleSignError(Exception):
    """Signing this could contradict something already signed."""


class PrivValError(Exception):
    """The private validator's state file is unreadable or malformed."""


@dataclass(frozen=True, slots=True)
class LastSigned:
    """What the validator signed last."""

    height: int = 0
    round: int = 0
    step: int = 0
    sign_bytes: bytes = b""
    signature: bytes = b""
    timestamp: int = 0


class PrivValidator:
    """Signs for one validator key on one chain, with its state in ``state_path``."""

    def __init__(self, key: SigningKey, chain_id: str, state_path: Path) -> None:
        self.key = key
        self.chain_id = chain_id
        self.state_path = state_path
        self.last = self._load()

    @property
    def address(self) -> str:
        return self.key.address

    def _load(self) -> LastSigned:
        try:
            text = self.state_path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return LastSigned()
        except OSError as err:
            reason = err.strerror or str(err)
            raise PrivValError(f"{self.state_path}: cannot read it: {reason}") from None
        except ValueError:
            raise PrivValError(self._damaged("not UTF-8 text")) from None
        try:
            raw = json.loads(text)
            last = LastSigned(
                height=int(raw["height"]),
                round=int(raw["round"]),
                step=int(raw["step"]),
                sign_bytes=bytes.fromhex(raw["sign_bytes"]),
                signature=bytes.fromhex(raw["signature"]),
                timestamp=int(raw["timestamp"]),
            )
        except (ValueError, KeyError, TypeError, RecursionError) as err:
            detail = f"missing {err}" if isinstance(err, KeyError) else str(err) or "empty"
            raise PrivValError(self._damaged(detail)) from None
        return last

    def _damaged(self, detail: str) -> str:
        return (
            f"{self.state_path}: damaged ({detail}); it records what this validator signed "
            "last, and the validator will not sign without it: restore it from a backup "
            "(docs/node.md, 'A damaged privval.json')"
        )

    def _save(self, last: LastSigned) -> None:
        text = json.dumps(
            {
                "height": last.height,
                "round": last.round,
                "step": last.step,
                "sign_bytes": last.sign_bytes.hex(),
                "signature": last.signature.hex(),
                "timestamp": last.timestamp,
            },
            sort_keys=True,
        )
        temporary = self.state_path.with_name(self.state_path.name + ".tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.fchmod(fd, 0o600)  # even over a temporary file left with a wider mode
            os.write(fd, text.encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)
        temporary.replace(self.state_path)
        directory = os.open(self.state_path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
        self.last = last

    def _sign(
        self, height: int, round_: int, step: int, timestamp: int, bytes_at: Callable[[int], bytes]
    ) -> tuple[bytes, int]:
        """The signature and timestamp to use, persisting first when it is new."""
        last = self.last
        position = (height, round_, step)
        previous = (last.height, last.round, last.step)
        if position < previous:
            raise DoubleSignError(
                f"height/round/step {position} is before the last signed {previous}"
            )
        if position == previous:
            if bytes_at(last.timestamp) == last.sign_bytes:
                return last.signature, last.timestamp
            raise DoubleSignError(f"already signed something else at height/round/step {position}")
        sign_bytes = bytes_at(timestamp)
        signature = self.key.sign(sign_bytes)
        self._save(LastSigned(height, round_, step, sign_bytes, signature, timestamp))
        return signature, timestamp

    def signed_vote_at(self, height: int, round_: int, step: int) -> Vote | None:
        """The vote signed last, if it was at this height, round and step."""
        last = self.last
        if (last.height, last.round, last.step) != (height, round_, step) or step == STEP_PROPOSE:
            return None
        value = codec.decode(last.sign_bytes, len(last.sign_bytes))
        assert isinstance(value, dict)
        block_hash = value["block_hash"]
        return Vote(
            str(value["type"]),
            height,
            round_,
            None if block_hash is None else str(block_hash),
            last.timestamp,
            self.address,
            last.signature,
        )

    def sign_vote(self, vote: Vote) -> Vote:
        """``vote`` signed (DoubleSignError if that could conflict)."""
        if vote.validator != self.address:
            raise DoubleSignError(f"the vote is {vote.validator}'s, not {self.address}'s")
        signature, timestamp = self._sign(
            vote.height,
            vote.round,
            vote.step,
            vote.timestamp,
            lambda t: replace(vote, timestamp=t).sign_bytes(self.chain_id),
        )
        return replace(vote, timestamp=timestamp, signature=signature)

    def sign_proposal(self, proposal: Proposal) -> Proposal:
        """``proposal`` signed (DoubleSignError if that could conflict)."""
        if proposal.proposer != self.address:
            raise DoubleSignError(f"the proposal is {proposal.proposer}'s, not {self.address}'s")
        signature, timestamp = self._sign(
            proposal.height,
            proposal.round,
            STEP_PROPOSE,
            proposal.timestamp,
            lambda t: replace(proposal, timestamp=t).sign_bytes(self.chain_id),
        )
        return replace(proposal, timestamp=timestamp, signature=signature)
