"""What leaves the live state: a closed day's market and metering records.

A local day's records (reports, intervals, orders, positions, trades, statements,
bills; :func:`ledger_core.state.keys.dated` says which and to what) are read by
future transactions only until the day can no longer be billed: bills close at
``Params.day_closes(day)``, and by then no report, order or bill of the day can
be accepted. From the first block whose time is at or after that, ``end_block``
takes them out of the live state, an interval's records once the interval is
settled (one still waiting for its delivery keeps its records, which a late
delivery needs, and leaves at the first block after it is settled).

Price signals are read by the backstop rule (``market.books.backstop_at``): an
interval's price is its own signal, else the latest earlier one of its UTC day, else
the last signal of an earlier UTC day. So a signal leaves only once every local day
its UTC day touches is closed and no interval of that UTC day keeps records, and
each UTC day's last signal stays (``priceday/<day>`` points at it).

A block takes out at most :data:`MAX_PER_BLOCK` records, in (day, group, key) order,
so a large day leaves over a few blocks. It writes ``retired/<height>``: the Merkle
root and count of what it took out, so the app hash commits to it and each record
stays provable (:class:`ledger_core.types.commitment.HistoryProof`); the node keeps
the records themselves in its storage's history. The choice is a function of the
committed state and the block alone: :class:`Retirement` is an index of the
committed state (by local day, then group), rebuilt from it at start-up, so every
node takes out the same records in the same block.
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
MAX_PER_BLOCK: Final = 2_000
PRICES: Final = -2
"""The group of the price signals whose UTC day ends in a local day."""
WHOLE_DAY: Final = -1
"""The group of a day's records that wait for no interval (its bills)."""


class Retirement:
    """The committed state's dated records, by local day and then by group: an interval
    start, :data:`WHOLE_DAY` or :data:`PRICES`."""

    __slots__ = ("_by_day", "_params")

    def __init__(self, params: Params, state: Iterable[tuple[str, Value]]) -> None:
        self._params = params
        self._by_day: dict[int, dict[int, set[str]]] = {}
        for key, value in state:
            self.added(key, value)

    def _place(self, key: str, value: Value) -> tuple[int, int] | None:
        """(local day, group) of a dated record, else None."""
        found = keys.dated(key, value)
        if found is None:
            return None
        if found.whole_day:
            return found.start, WHOLE_DAY
        if found.price:  # in the local day its UTC day ends in
            utc_day = found.start - found.start % DAY
            return self._params.day_of(utc_day + DAY - 1), PRICES
        return self._params.day_of(found.start), found.start

    def added(self, key: str, value: Value) -> None:
        """Note a record new in the committed state."""
        place = self._place(key, value)
        if place is None:
            return
        day, group = place
        self._by_day.setdefault(day, {}).setdefault(group, set()).add(key)

    def removed(self, key: str, value: Value) -> None:
        """Note that a record (whose last value was ``value``) left the committed state."""
        place = self._place(key, value)
        if place is not None:
            self._forget(key, *place)

    def _forget(self, key: str, day: int, group: int) -> None:
        groups = self._by_day.get(day)
        members = None if groups is None else groups.get(group)
        if groups is None or members is None:
            return
        members.discard(key)
        if not members:
            del groups[group]
            if not groups:
                del self._by_day[day]

    def _intervals_kept(self, utc_day: int) -> bool:
        """Whether an interval of the UTC day still has records in the committed state."""
        for day in {self._params.day_of(utc_day), self._params.day_of(utc_day + DAY - 1)}:
            for group in self._by_day.get(day, {}):
                if utc_day <= group < utc_day + DAY:
                    return True
        return False

    def take(self, block: Overlay, height: int, now: int) -> dict[str, bytes]:
        """Take the records due at block time ``now`` out of ``block`` and record their
        root under ``retired/<height>``; what was taken out (canonical bytes), by key."""
        taken: dict[str, bytes] = {}
        # A handful of days: those not closed yet, and closed ones holding an interval that
        # waits for its delivery.
        for day in sorted(self._by_day):
            if self._params.day_closes(day) > now or len(taken) >= MAX_PER_BLOCK:
                break
            groups = self._by_day[day]
            for group in sorted(groups):
                if group == PRICES:
                    self._take_prices(block, day, sorted(groups[group]), taken)
                    continue
                if group != WHOLE_DAY:
                    interval = block.get(keys.interval(group))
                    if isinstance(interval, dict) and interval.get("status") != "settled":
                        continue  # its trades still wait for their delivery
                self._take_keys(block, sorted(groups[group]), taken)
        if taken:
            entries = sorted(taken.items())
            block.put(
                keys.retired(height), {"root": retired_root(entries).hex(), "count": len(entries)}
            )
        return taken

    @staticmethod
    def _take_keys(block: Overlay, names: list[str], taken: dict[str, bytes]) -> None:
        for key in names:
            if len(taken) >= MAX_PER_BLOCK:
                return
            value = block.get(key)
            if value is not None:
                taken[key] = codec.encode(value)
                block.put(key, None)

    def _take_prices(
        self, block: Overlay, day: int, names: list[str], taken: dict[str, bytes]
    ) -> None:
        """Take out the signals of UTC days that end in the closed ``day`` and whose
        intervals keep no records, but each UTC day's last (which stays, unindexed)."""
        due: list[str] = []
        for key in names:
            start = keys.interval_start_of(key)
            utc_day = start - start % DAY
            if block.get(keys.price_day(utc_day)) == start:
                self._forget(key, day, PRICES)  # stays in the state for good
            elif not self._intervals_kept(utc_day):
                due.append(key)
        self._take_keys(block, due, taken)
