"""What leaves the live state: a closed day's market and metering records.

A local day's records (reports, intervals, orders, positions, trades, statements,
bills; :func:`ledger_core.state.keys.dated` says which and to what) are read by
future transactions only until the day can no longer be billed: bills close at
``Params.day_closes(day)``, and by then no report, order or bill of the day can
be accepted. From the first block whose time is at or after that, ``end_block``
takes them out of the live state, an interval's records once the interval is
settled (one still waiting for its delivery keeps its records, which a late
delivery needs, and leaves at the first block after it is settled). A block takes
out at most :data:`MAX_PER_BLOCK` records, in key order within each (day,
interval) and in (day, interval) order, so a large day leaves over a few blocks.

The block writes ``retired/<height>``: the Merkle root and count of what it took
out, so the app hash commits to it and each record stays provable
(:class:`ledger_core.types.commitment.HistoryProof`); the node keeps the records
themselves in its storage's history. The choice is a function of the committed
state and the block alone: :class:`Retirement` is an index of the committed state
(by day, then interval), rebuilt from it at start-up, so every node takes out the
same records in the same block.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from ledger_core.state import keys
from ledger_core.state.kernel import Overlay
from ledger_core.types import codec
from ledger_core.types.commitment import retired_root
from ledger_core.types.genesis import Params

type Value = codec.Value

DAY: Final = 86400
MAX_PER_BLOCK: Final = 10_000
WHOLE_DAY: Final = -1
"""The group of a day's records that wait for no interval (its bills)."""


class Retirement:
    """The committed state's dated records, by local day and then by interval."""

    __slots__ = ("_by_day", "_days", "_params")

    def __init__(self, params: Params, state: Iterable[tuple[str, Value]]) -> None:
        self._params = params
        self._by_day: dict[int, dict[int, set[str]]] = {}
        self._days: list[int] = []
        for key, value in state:
            self.added(key, value)

    def __len__(self) -> int:
        return sum(len(members) for groups in self._by_day.values() for members in groups.values())

    def _place(self, key: str, value: Value) -> tuple[int, int] | None:
        """(local day, interval or :data:`WHOLE_DAY`) of a dated record, else None."""
        found = keys.dated(key, value)
        if found is None:
            return None
        if found.whole_day:
            return found.start, WHOLE_DAY
        start = found.start
        return start - self._params.local(start) % DAY, start

    def added(self, key: str, value: Value) -> None:
        """Note a record new in the committed state."""
        place = self._place(key, value)
        if place is None:
            return
        day, group = place
        groups = self._by_day.get(day)
        if groups is None:
            groups = self._by_day[day] = {}
            self._days.append(day)
            self._days.sort()
        groups.setdefault(group, set()).add(key)

    def removed(self, key: str, value: Value) -> None:
        """Note that a record (whose last value was ``value``) left the committed state."""
        place = self._place(key, value)
        if place is None:
            return
        day, group = place
        groups = self._by_day.get(day)
        members = None if groups is None else groups.get(group)
        if groups is None or members is None:
            return
        members.discard(key)
        if not members:
            del groups[group]
            if not groups:
                del self._by_day[day]
                self._days.remove(day)

    def take(self, block: Overlay, height: int, now: int) -> dict[str, bytes]:
        """Take the records due at block time ``now`` out of ``block`` and record their
        root under ``retired/<height>``; what was taken out (canonical bytes), by key."""
        taken: dict[str, bytes] = {}
        encode = codec.encode
        for day in self._days:
            if self._params.day_closes(day) > now or len(taken) >= MAX_PER_BLOCK:
                break
            groups = self._by_day[day]
            for group in sorted(groups):
                if group != WHOLE_DAY:
                    interval = block.get(keys.interval(group))
                    if isinstance(interval, dict) and interval.get("status") != "settled":
                        continue  # its trades still wait for their delivery
                for key in sorted(groups[group]):
                    if len(taken) >= MAX_PER_BLOCK:
                        break
                    value = block.get(key)
                    if value is not None:
                        taken[key] = encode(value)
                        block.put(key, None)
        if taken:
            entries = sorted(taken.items())
            block.put(
                keys.retired(height), {"root": retired_root(entries).hex(), "count": len(entries)}
            )
        return taken
