"""One decision per device per event for all the contracts of a home.

A home may have several active contracts that name the same appliance: the
paper's ``IF Price < 3 THEN TURN ON DEVICE 'Lavadora' ENDIF`` with
``DemandResponse false``, and another with ``DemandResponse true shed
'Lavadora'``. Evaluated one by one they fight: demand response turns the washer
off and the price rule turns it back on. :func:`decide` evaluates them together
and decides once per device, with this precedence (docs/contract-language.md,
"Order and conflicts"):

1. **Holds.** While demand response is in force, every device that an active
   contract with ``DemandResponse true`` sheds is held off; while a contract
   refuses imports (``Consumption false``, or ``programmed`` outside its
   windows, and the home imports), the devices it controls are held off. A
   ``TURN ON`` of a held device, from any contract, is *suppressed*, and so is a
   ``RESTORE`` that could turn it on. Shedding (at a demand-response signal)
   ranks above turning off for refused imports.
2. **Rules** that name the device (``TURN ON|OFF DEVICE 'x'``).
3. **The rest**: ``RESTORE`` at the end of demand response.

Among actions of the same rank, the last in this order wins: contracts by
activation height, then by contract id (so the most recently activated contract
wins); within a contract, in written order (as :meth:`Program.evaluate` does).
Every action that did not win is kept with its status and the reason:
``suppressed`` (held off), ``superseded`` (another action won) or, for the
winner, ``unchanged`` when the home already knows the device is in that state.

``RESTORE`` returns a device to the state it had before demand response shed
it, whatever switched it since: the state is noted (``Devices.before_dr``) when
the event sheds it, from what the home last decided for it, and the restore
carries it (``restore_to``; None when nothing was known).

Actions without a device (``SELL SURPLUS``, ``BUY``, ``NOTIFY``, storing,
curtailing) stay each contract's own, as :meth:`Program.evaluate` gives them.

Pure and deterministic: no clock (the state carries it), no I/O; the same
members, state, event and memory give the same decision on every node, in any
order the members are passed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Final

from contracts.canonical import quote, short_id
from contracts.evaluator import Action, Contribution, Event, MeterState, Program, Role
from contracts.model import ActionKind

_DEVICE_KINDS: Final = frozenset({ActionKind.TURN_ON, ActionKind.TURN_OFF, ActionKind.RESTORE})


class Status(StrEnum):
    """What became of an action a contract asked for."""

    EFFECTIVE = "effective"  # carried out: it changes a device, or it is an order or a notice
    UNCHANGED = "unchanged"  # it won, but the device is already in that state
    SUPPRESSED = "suppressed"  # a hold (demand response, refused imports) keeps the device off
    SUPERSEDED = "superseded"  # another action for the device won


@dataclass(frozen=True, slots=True)
class Member:
    """An active contract of the home: its id, compiled program and activation height."""

    contract_id: str
    program: Program
    activated: int = 0
    label: str = ""  # "'name' [0x...]", for reasons

    @classmethod
    def of(cls, contract_id: str, program: Program, activated: int = 0) -> Member:
        """A member with its label made from the contract."""
        contract = program.contract
        label = f"{quote(contract.name)} [{short_id(contract)}]"
        return cls(contract_id, program, activated, label)

    @property
    def order(self) -> tuple[int, str]:
        """The precedence key: later activation (then greater id) wins a tie."""
        return (self.activated, self.contract_id)


@dataclass(frozen=True, slots=True)
class DrInForce:
    """A demand-response event in force for the home: its id, level and local end."""

    event_id: str
    level: int
    until: datetime


@dataclass(frozen=True, slots=True)
class Devices:
    """What the home knows of its devices between events.

    ``known``: the state last decided for a device (True on, False off; absent:
    unknown). ``before_dr``: the state noted when demand response shed it (None:
    unknown then), kept until the event ends.
    """

    known: Mapping[str, bool] = field(default_factory=dict)
    before_dr: Mapping[str, bool | None] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Decided:
    """One action a contract asked for, and what became of it."""

    contract_id: str
    label: str
    action: Action
    status: Status
    why: str = ""
    restore_to: bool | None = None  # RESTORE: the state noted before demand response

    def describe(self) -> str:
        """One line for people: what, and the clause that asked for it."""
        if self.action.kind is ActionKind.RESTORE and self.restore_to is not None:
            state = "on" if self.restore_to else "off"
            return f"restore {self.action.device!r} to {state} ({self.action.reason})"
        return self.action.describe()


@dataclass(frozen=True, slots=True)
class HomeDecision:
    """Every action asked for at one event, each with its status, and the memory after."""

    decisions: tuple[Decided, ...]
    devices: Devices
    rules: tuple[tuple[str, tuple[tuple[int, bool | None], ...]], ...] = ()
    outside: tuple[str, ...] = ()  # contract ids outside their validity window

    @property
    def effective(self) -> tuple[Decided, ...]:
        """The actions carried out, in order."""
        return tuple(d for d in self.decisions if d.status is Status.EFFECTIVE)

    @property
    def overruled(self) -> tuple[Decided, ...]:
        """The actions not carried out (unchanged, suppressed, superseded), in order."""
        return tuple(d for d in self.decisions if d.status is not Status.EFFECTIVE)


@dataclass(frozen=True, slots=True)
class _Entry:
    member: Member
    action: Action
    role: Role


def ordered(members: Iterable[Member]) -> list[Member]:
    """Members in precedence order: by activation height, then contract id."""
    return sorted(members, key=lambda m: m.order)


def _clock(moment: datetime, now: datetime) -> str:
    if moment.date() == now.date():
        return f"{moment:%H:%M}"
    return f"{moment:%Y/%m/%d %H:%M}"


def dr_reason(state: MeterState, events: Iterable[DrInForce]) -> str:
    """Why demand response holds a device off: the event in force with the highest level
    (then the latest end, then the smallest id), or the level alone when none is known."""
    chosen = sorted(events, key=lambda e: (-e.level, -e.until.timestamp(), e.event_id))
    if not chosen:
        return f"held off by demand response (level {state.dr_level})"
    event = chosen[0]
    return f"held off by DR event {event.event_id} until {_clock(event.until, state.clock)}"


def _holds(contributions: list[tuple[Member, Contribution]], dr_why: str) -> dict[str, str]:
    holds: dict[str, str] = {}
    for _member, contribution in contributions:
        for device in contribution.dr_held:
            holds.setdefault(device, dr_why)
    for member, contribution in contributions:
        reason = contribution.import_reason
        if reason is None:
            continue
        why = f"held off by {member.label} {reason}"
        for device in contribution.import_held:
            holds.setdefault(device, why)
    return holds


def _key(action: Action) -> tuple[object, ...]:
    return (action.kind, action.text, action.min_price, action.max_energy_wh, action.max_price)


def _target(action: Action, restore_to: bool | None) -> bool | None:
    if action.kind is ActionKind.TURN_ON:
        return True
    if action.kind is ActionKind.TURN_OFF:
        return False
    return restore_to


def _by(winner: _Entry, loser: _Entry) -> str:
    where = "" if winner.member is loser.member else f"{winner.member.label} "
    return f"superseded by {where}{winner.action.reason}"


def _entries(
    contributions: list[tuple[Member, Contribution]], only: str | None
) -> tuple[list[_Entry], list[Decided | None]]:
    """Every action asked for, in order; non-device ones decided already (None: a device's)."""
    entries: list[_Entry] = []
    results: list[Decided | None] = []
    for member, contribution in contributions:
        if only is not None and member.contract_id != only:
            continue
        refuse_imports = contribution.import_reason is not None
        seen: set[tuple[object, ...]] = set()
        for action, role in contribution.candidates:
            if action.kind in _DEVICE_KINDS:
                entries.append(_Entry(member, action, role))
                results.append(None)
                continue
            decided: Decided | None = None
            if role is Role.RULE and action.kind is ActionKind.BUY and refuse_imports:
                why = "imports are not allowed now"
                decided = Decided(member.contract_id, member.label, action, Status.SUPPRESSED, why)
            elif _key(action) not in seen:  # a contract's exact repeats are dropped
                seen.add(_key(action))
                decided = Decided(member.contract_id, member.label, action, Status.EFFECTIVE)
            if decided is not None:
                entries.append(_Entry(member, action, role))
                results.append(decided)
    return entries, results


def _decided(entry: _Entry, status: Status, why: str, restore_to: bool | None) -> Decided:
    restore = restore_to if entry.action.kind is ActionKind.RESTORE else None
    return Decided(entry.member.contract_id, entry.member.label, entry.action, status, why, restore)


def _one_device(
    device: str,
    *,
    indexes: list[int],
    entries: list[_Entry],
    results: list[Decided | None],
    held: str | None,
    memory: Devices,
) -> _Entry | None:
    """Decide one device: fill in ``results`` for its actions; the winner, if any."""
    restore_to = memory.before_dr.get(device)
    eligible: list[int] = []
    for index in indexes:
        entry = entries[index]
        if held is not None and _target(entry.action, restore_to) is not False:
            results[index] = _decided(entry, Status.SUPPRESSED, held, restore_to)
        else:
            eligible.append(index)
    if not eligible:
        return None
    best = max(entries[i].role for i in eligible)
    winner_index = [i for i in eligible if entries[i].role == best][-1]
    winner = entries[winner_index]
    for index in eligible:
        if index != winner_index:
            loser = entries[index]
            results[index] = _decided(loser, Status.SUPERSEDED, _by(winner, loser), restore_to)
    target = _target(winner.action, restore_to)
    status, why = Status.EFFECTIVE, ""
    if target is not None and memory.known.get(device) is target:
        status = Status.UNCHANGED
        why = f"no change: {device!r} is already {'on' if target else 'off'}"
    results[winner_index] = _decided(winner, status, why, restore_to)
    return winner


def decide(
    members: Iterable[Member],
    state: MeterState,
    event: Event,
    *,
    dr_events: Iterable[DrInForce] = (),
    devices: Devices | None = None,
    only: str | None = None,
) -> HomeDecision:
    """The home's decision at ``event``: every action its contracts ask for, with its status.

    ``dr_events`` name the demand-response events in force (for the reasons);
    ``devices`` is the memory the previous decision returned. With ``only``, the
    actions come from that contract alone (one just activated hears the price in
    force), while every contract's holds still apply.
    """
    memory = devices if devices is not None else Devices()
    contributions = [(m, m.program.contributions(state, event)) for m in ordered(members)]
    holds = _holds(contributions, dr_reason(state, dr_events))
    entries, results = _entries(contributions, only)

    by_device: dict[str, list[int]] = {}
    for index, entry in enumerate(entries):
        if entry.action.kind in _DEVICE_KINDS and entry.action.device is not None:
            by_device.setdefault(entry.action.device, []).append(index)

    known = dict(memory.known)
    before_dr = dict(memory.before_dr)
    for device, indexes in by_device.items():
        winner = _one_device(
            device,
            indexes=indexes,
            entries=entries,
            results=results,
            held=holds.get(device),
            memory=memory,
        )
        if winner is None:
            continue
        if winner.role is Role.DR_HOLD and device not in before_dr:
            before_dr[device] = memory.known.get(device)
        target = _target(winner.action, memory.before_dr.get(device))
        if target is None:
            known.pop(device, None)
        else:
            known[device] = target
    if event is Event.DR_SIGNAL and state.dr_level == 0:
        before_dr.clear()

    return HomeDecision(
        decisions=tuple(r for r in results if r is not None),
        devices=Devices(known, before_dr),
        rules=tuple((m.contract_id, c.rules) for m, c in contributions if c.in_window),
        outside=tuple(m.contract_id for m, c in contributions if not c.in_window),
    )
