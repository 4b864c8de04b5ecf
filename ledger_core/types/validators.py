"""Validator sets: voting power, quorums, a hash, and the weighted round-robin proposer.

A set lists each validator's Ed25519 public key and voting power (a positive
integer), ordered by address. ``2f+1`` means *more than two thirds* of the total
power and ``f+1`` *more than one third*; both are integer comparisons
(``3 * power > 2 * total``), so no rounding ever decides a quorum.

Proposers rotate by weighted round robin, after CometBFT's proposer-priority
scheme (integers throughout): every validator carries a priority; one *step*
adds each validator's power to its priority, picks the highest priority (ties:
the lower address) and subtracts the total power from the one picked. Before
stepping, priorities are rescaled (divided, truncating toward zero, so their
spread is at most twice the total power) and centred (the floor of their mean is
subtracted). The proposer of round ``r`` at a height is the validator picked by
the ``r+1``-th step from that height's priorities; the next height starts from
the priorities after one step, however many rounds the height took. A validator
joining a set starts at ``-(P + P // 8)`` (about -1.125 P, P the new total), so it
does not propose at once. Over ``P`` consecutive steps a validator of power ``p``
is picked about ``p`` times.

The set's hash covers keys and powers only (not priorities): it is what block
headers carry as ``validators_hash`` and ``next_validators_hash``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from ledger_core.types import codec
from ledger_core.types.crypto import address_of

MAX_VALIDATORS: Final = 100
MAX_POWER: Final = 10**6


@dataclass(frozen=True, slots=True)
class Member:
    """One validator of a set."""

    address: str
    public_key: bytes
    power: int


def _trunc_div(value: int, divisor: int) -> int:
    """Integer division truncating toward zero (divisor > 0)."""
    quotient = abs(value) // divisor
    return quotient if value >= 0 else -quotient


class ValidatorSet:
    """An immutable validator set with its proposer priorities."""

    __slots__ = ("_index", "_sequence", "hash", "members", "priorities", "total")

    def __init__(
        self, members: Iterable[tuple[bytes, int]], priorities: Sequence[int] | None = None
    ) -> None:
        listed = sorted(
            (Member(address_of(key), key, power) for key, power in members),
            key=lambda m: m.address,
        )
        if not listed:
            raise ValueError("a validator set has at least one validator")
        if len(listed) > MAX_VALIDATORS:
            raise ValueError(f"a validator set has at most {MAX_VALIDATORS} validators")
        for member in listed:
            if not 1 <= member.power <= MAX_POWER:
                raise ValueError(f"validator {member.address}: power must be 1 to {MAX_POWER}")
        self.members: tuple[Member, ...] = tuple(listed)
        self._index = {m.address: i for i, m in enumerate(self.members)}
        if len(self._index) != len(self.members):
            raise ValueError("a validator appears twice")
        self.total: int = sum(m.power for m in self.members)
        if priorities is None:
            priorities = [0] * len(self.members)
        if len(priorities) != len(self.members):
            raise ValueError("one priority per validator")
        self.priorities: tuple[int, ...] = tuple(priorities)
        self.hash: str = hashlib.sha256(codec.encode(self.to_json())).hexdigest()
        # Proposers of rounds 0, 1, 2, ... at this height, extended on demand.
        self._sequence: list[int] = []

    def __len__(self) -> int:
        return len(self.members)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ValidatorSet):
            return NotImplemented
        return self.hash == other.hash and self.priorities == other.priorities

    def __hash__(self) -> int:
        return hash((self.hash, self.priorities))

    def __repr__(self) -> str:
        return f"ValidatorSet({len(self)} validators, power {self.total}, {self.hash[:12]})"

    # -- membership and quorums ---------------------------------------------------

    def get(self, address: str) -> Member | None:
        """The member with ``address``, or None."""
        index = self._index.get(address)
        return None if index is None else self.members[index]

    def power_of(self, addresses: Iterable[str]) -> int:
        """The total power of the distinct members among ``addresses`` (others count 0)."""
        seen = {a for a in addresses if a in self._index}
        return sum(self.members[self._index[a]].power for a in seen)

    def has_quorum(self, power: int) -> bool:
        """Whether ``power`` is more than two thirds of the total (2f+1)."""
        return 3 * power > 2 * self.total

    def has_one_third(self, power: int) -> bool:
        """Whether ``power`` is more than one third of the total (f+1)."""
        return 3 * power > self.total

    # -- proposers ---------------------------------------------------------------

    def _prepared(self) -> list[int]:
        """Priorities rescaled to a spread of at most 2P, then centred on zero."""
        prios = list(self.priorities)
        spread = max(prios) - min(prios)
        limit = 2 * self.total
        if spread > limit:
            ratio = -(-spread // limit)
            prios = [_trunc_div(p, ratio) for p in prios]
        mean = sum(prios) // len(prios)
        return [p - mean for p in prios]

    def _step(self, prios: list[int]) -> int:
        """One round-robin step in place; the index of the member picked."""
        best = 0
        for i, member in enumerate(self.members):
            prios[i] += member.power
            if prios[i] > prios[best]:
                best = i
        prios[best] -= self.total
        return best

    def proposer(self, round_: int = 0) -> Member:
        """The proposer of round ``round_`` at this set's height."""
        if round_ < 0:
            raise ValueError("rounds start at 0")
        if len(self._sequence) <= round_:
            prios = self._prepared()
            self._sequence = [self._step(prios) for _ in range(round_ + 1)]
        return self.members[self._sequence[round_]]

    def advanced(self) -> ValidatorSet:
        """The same validators with the priorities of the next height."""
        prios = self._prepared()
        self._step(prios)
        return ValidatorSet(((m.public_key, m.power) for m in self.members), prios)

    def updated(self, members: Iterable[tuple[bytes, int]]) -> ValidatorSet:
        """A set with new members or powers that keeps the priorities of those who stay."""
        new = ValidatorSet(members)
        start = -(new.total + new.total // 8)
        prios = []
        for member in new.members:
            index = self._index.get(member.address)
            prios.append(start if index is None else self.priorities[index])
        return ValidatorSet(((m.public_key, m.power) for m in new.members), prios)

    # -- encoding ----------------------------------------------------------------

    def to_json(self) -> codec.Value:
        """``[[public key hex, power], ...]`` in address order (what the hash covers)."""
        return [[m.public_key.hex(), m.power] for m in self.members]

    def priorities_json(self) -> codec.Value:
        """``[[address, priority], ...]`` in address order."""
        return [[m.address, p] for m, p in zip(self.members, self.priorities, strict=True)]

    @classmethod
    def from_json(cls, value: object, priorities: object = None) -> ValidatorSet:
        """A set from :meth:`to_json` (and optionally :meth:`priorities_json`); ValueError."""
        if not isinstance(value, list) or not value:
            raise ValueError("a validator set is a non-empty list")
        members: list[tuple[bytes, int]] = []
        for item in value:
            if not isinstance(item, list) or len(item) != 2:
                raise ValueError("a validator is [public key hex, power]")
            key, power = item
            if not isinstance(key, str) or len(key) != 64:
                raise ValueError("a validator's public key is 64 hex digits")
            try:
                raw = bytes.fromhex(key)
            except ValueError:
                raise ValueError("a validator's public key is 64 hex digits") from None
            if key != raw.hex():
                raise ValueError("a validator's public key is lower-case hex")
            if isinstance(power, bool) or not isinstance(power, int):
                raise ValueError("a validator's power is an integer")  # noqa: TRY004
            members.append((raw, power))
        result = cls(members)
        if [m.public_key.hex() for m in result.members] != [k for k, _ in value]:
            raise ValueError("validators are listed in address order")
        if priorities is None:
            return result
        if not isinstance(priorities, list) or len(priorities) != len(result):
            raise ValueError("one priority per validator")
        prios = []
        for member, item in zip(result.members, priorities, strict=True):
            if (
                not isinstance(item, list)
                or len(item) != 2
                or item[0] != member.address
                or isinstance(item[1], bool)
                or not isinstance(item[1], int)
            ):
                raise ValueError("priorities are [address, integer] in address order")
            prios.append(item[1])
        return cls(((m.public_key, m.power) for m in result.members), prios)
