"""Contract execution at a home: which events happen, and what the contracts ask.

The ledger decides *which* contracts are active and *what* the market and the
signals say; a home acts on them. :class:`ContractExecutor` follows one
participant: it keeps the compiled program of every active contract the
participant is party to, folds the ledger's events (``price_signal``,
``dr_event``, ``service_*``, contract status changes), the home's own meter's
interval reports and its live power into a :class:`~contracts.MeterState`, and
evaluates the contracts at each of the paper's events:

- ``interval_report`` -- the home's meter closes an interval
  (:meth:`ContractExecutor.on_interval_report`); the reading comes from the
  home's meter, never from the chain, which holds only its commitment
  (docs/privacy.md);
- ``price_signal`` -- the price in force changes: an interval starts with a
  different price than the last, or a signal for the current interval arrives;
- ``dr_signal`` -- the demand-response level in force changes (an event starts,
  is modified, ends or is cancelled);
- ``service_cut`` / ``reconnection`` -- the DSO's service transaction for the
  participant, or the home's meter seeing the voltage go and come back.

At each event the home's contracts are evaluated together and decide once per
device (:func:`contracts.decide.decide`): demand response in force and refused
imports hold a device off against any contract's ``TURN ON``, then rules that
name the device, then ``RESTORE``; the most recently activated contract wins a
tie. Every action asked for is returned, the overruled ones with their status
and why (``suppressed: held off by DR event E until HH:MM``), and the executor
keeps what it knows of each device between events (its last decided state, and
the state before demand response, which ``RESTORE`` returns it to).

With a forecast of the home's energy (the node's analytics role), the executor
also plans ahead: when the operator publishes prices for future intervals (the
day-ahead schedule), each contract is evaluated as the report of each of those
intervals would read it, with the forecast consumption and production, and the
orders it asks for (``SELL SURPLUS`` of the expected surplus, ``BUY``) are
placed before their gates. An interval offered that way is not offered again
at the last minute (see "Orders a contract places" in docs/market.md).

Actions are returned as :class:`ActionRecord` values; the caller publishes them
on the node's local event stream (``contract_action`` events, which Home
Assistant carries out) and keeps them. They are local, not ledger state: a
household's appliance switching is personal data (docs/architecture.md,
"Privacy"), so only contracts, orders and settlements go on chain.

The executor reads the clock only through the ``now`` arguments its caller
passes, so tests and the accelerated demo drive it with any time they like.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Final

from contracts import ContractError, parse, short_id
from contracts.decide import Decided, Devices, DrInForce, Member, Status, decide
from contracts.evaluator import Action, Event, MeterState, Program, compile_contract
from contracts.model import ActionKind

PRICE_UNIT: Final = Decimal(10_000)  # ledger prices are 10^-4 MXN/kWh

type Json = object


@dataclass(frozen=True, slots=True)
class OrderIntent:
    """An order a contract asks for: the home signs it as an ``order`` transaction."""

    interval_start: int
    side: str  # "buy" | "sell"
    energy_wh: int
    limit_price: int  # 10^-4 MXN/kWh

    def body(self) -> dict[str, object]:
        """The ``order`` transaction body."""
        return {
            "interval_start": self.interval_start,
            "side": self.side,
            "energy_wh": self.energy_wh,
            "limit_price": self.limit_price,
        }


@dataclass(frozen=True, slots=True)
class ActionRecord:
    """One action a contract asked for, why, when, and what became of it.

    ``status`` is ``effective`` for an action carried out, else ``unchanged``,
    ``suppressed`` or ``superseded`` with ``why`` (:class:`contracts.decide.Status`).
    A ``RESTORE`` carries the state noted before demand response (``restore_to``).
    """

    time: int  # Unix seconds (the caller's clock)
    event: Event
    contract_id: str
    short_id: str
    contract_name: str
    kind: ActionKind
    reason: str
    description: str
    device: str | None = None
    text: str | None = None
    order: OrderIntent | None = None
    planned: bool = False  # a day-ahead order, from the forecast of its interval
    status: str = str(Status.EFFECTIVE)
    why: str = ""
    restore_to: bool | None = None

    @property
    def effective(self) -> bool:
        """Whether the action is carried out (not unchanged, suppressed or superseded)."""
        return self.status == Status.EFFECTIVE

    def to_event(self) -> dict[str, object]:
        """The ``contract_action`` event published on the node's local stream."""
        event: dict[str, object] = {
            "type": "contract_action",
            "time": self.time,
            "trigger": "day_ahead" if self.planned else str(self.event),
            "contract_id": self.contract_id,
            "short_id": self.short_id,
            "contract": self.contract_name,
            "action": str(self.kind),
            "device": self.device,
            "reason": self.reason,
            "description": self.description,
            "status": self.status,
        }
        if self.why:
            event["why"] = self.why
        if self.kind is ActionKind.RESTORE:
            event["to"] = None if self.restore_to is None else ("on" if self.restore_to else "off")
        if self.text is not None:
            event["text"] = self.text
        if self.order is not None:
            event["order"] = self.order.body()
        return event


EnergyForecast = Callable[[int, int], Mapping[int, tuple[int, int]]]
"""Expected ``(consumption_wh, production_wh)`` of each interval that starts in
``[start, end)``; empty while no forecast is available."""

# Far enough to reach the end of tomorrow from any hour today (prices for a day
# are published the day before), and no further than the analytics forecast.
DAY_AHEAD_SECONDS: Final = 2 * 86_400


@dataclass(frozen=True, slots=True)
class _DrEvent:
    level: int
    start: int
    end: int
    cancelled: bool


def dr_level_of(signal: Mapping[str, Json]) -> int:
    """The OpenADR SIMPLE level a DR signal stands for.

    ``SIMPLE`` carries its level (0-3). A price or load-dispatch signal asks for
    a response without a level; it counts as level 1 (moderate) for contracts.
    """
    if signal.get("name") == "SIMPLE":
        level = signal.get("level")
        return level if isinstance(level, int) else 0
    return 1


@dataclass
class ContractExecutor:
    """Evaluates one participant's active contracts at each event."""

    participant: str
    meter: str | None
    interval_seconds: int = 900
    utc_offset_minutes: int = -360
    programs: dict[str, Program] = field(default_factory=dict)
    prices: dict[int, tuple[int, int]] = field(default_factory=dict)
    _dr: dict[str, _DrEvent] = field(default_factory=dict)
    _import_w: int = 0
    _export_w: int = 0
    _interval_import_wh: int = 0
    _interval_export_wh: int = 0
    _connected: bool = True
    _price_in_force: tuple[int, int] | None = None
    _dr_level: int = 0
    _last_interval: int | None = None
    gate_closure_seconds: int = 0
    forecast: EnergyForecast | None = None
    plan_horizon_seconds: int = DAY_AHEAD_SECONDS
    # (side, interval start) -> contract id, for the orders placed ahead.
    planned: dict[tuple[str, int], str] = field(default_factory=dict)
    _plan_due: bool = False
    _plan_tried: int | None = None
    # The contracts as members of the home's decision (with their activation heights),
    # and what the home knows of its devices between events.
    members: dict[str, Member] = field(default_factory=dict)
    devices: Devices = field(default_factory=Devices)

    # -- contracts ----------------------------------------------------------------

    def track(self, contract_id: str, record: Mapping[str, Json]) -> bool:
        """Follow a contract's ledger record; True when it is (now) executed here."""
        signers = record.get("signers")
        status = record.get("status")
        source = record.get("source")
        mine = isinstance(signers, list) and self.participant in signers
        if not mine or status != "active" or not isinstance(source, str):
            self.forget(contract_id)
            return False
        if contract_id not in self.programs:
            try:
                self.programs[contract_id] = compile_contract(parse(source, contract_id[:10]))
            except ContractError:  # the ledger only activates valid contracts
                return False
            activated = record.get("activated_height")
            self.members[contract_id] = Member.of(
                contract_id,
                self.programs[contract_id],
                activated if isinstance(activated, int) else 0,
            )
        return True

    def on_activated(self, contract_id: str, now: int) -> list[ActionRecord]:
        """A contract just became active: the price in force is news to it, so it is
        evaluated at once as at a price signal (nothing when no price is known)."""
        if contract_id not in self.programs:
            return []
        self._want_plan()
        if self.price_at(now) is None:
            return []
        return self._evaluate(Event.PRICE_SIGNAL, now, only=contract_id)

    def forget(self, contract_id: str) -> None:
        """Stop executing a contract (expired or revoked)."""
        self.programs.pop(contract_id, None)
        self.members.pop(contract_id, None)

    # -- what the home sees --------------------------------------------------------

    def local_clock(self, now: int) -> datetime:
        """Unix seconds as the market's naive local civil time, as contracts read it."""
        moment = datetime.fromtimestamp(now, tz=UTC) + timedelta(minutes=self.utc_offset_minutes)
        return moment.replace(tzinfo=None)

    def price_at(self, now: int) -> tuple[int, int] | None:
        """(import, export) price in force at ``now``: the latest signal at or before it."""
        start = now - now % self.interval_seconds
        if start in self.prices:
            return self.prices[start]
        earlier = [t for t in self.prices if t <= start]
        return self.prices[max(earlier)] if earlier else None

    def dr_in_force(self, now: int) -> tuple[DrInForce, ...]:
        """The demand-response events in force at ``now``, with their local end."""
        return tuple(
            DrInForce(event_id, e.level, self.local_clock(e.end))
            for event_id, e in sorted(self._dr.items())
            if not e.cancelled and e.start <= now < e.end
        )

    def dr_level_at(self, now: int) -> int:
        """The highest level among demand-response events in force at ``now``."""
        levels = [e.level for e in self._dr.values() if not e.cancelled and e.start <= now < e.end]
        return max(levels, default=0)

    def state(self, now: int) -> MeterState:
        """The :class:`MeterState` contracts see at ``now``."""
        price = self.price_at(now)
        return MeterState(
            clock=self.local_clock(now),
            import_price=None if price is None else Decimal(price[0]) / PRICE_UNIT,
            export_price=None if price is None else Decimal(price[1]) / PRICE_UNIT,
            consumption_w=self._import_w,
            production_w=self._export_w,
            consumption_wh=self._interval_import_wh,
            production_wh=self._interval_export_wh,
            dr_level=self.dr_level_at(now),
            service_connected=self._connected,
        )

    def on_power(self, net_w: float) -> None:
        """The meter's live net power (W, + import, - export)."""
        watts = round(net_w)
        self._import_w = max(watts, 0)
        self._export_w = max(-watts, 0)

    # -- events -------------------------------------------------------------------

    def on_ledger_event(self, event: Mapping[str, Json], now: int) -> list[ActionRecord]:
        """Fold one committed ledger event in; the actions it triggers."""
        kind = event.get("type")
        if kind == "price_signal":
            start, imp, exp = (
                event.get("interval_start"),
                event.get("import_price"),
                event.get("export_price"),
            )
            if isinstance(start, int) and isinstance(imp, int) and isinstance(exp, int):
                self.prices[start] = (imp, exp)
                if start > now:
                    self._want_plan()
            return self._price_check(now)
        if kind == "dr_event":
            return self._on_dr(event, now)
        if kind in ("service_cut", "service_reconnected") and (
            event.get("participant") == self.participant
        ):
            return self.on_service(connected=kind == "service_reconnected", now=now)
        return []

    def on_interval_report(
        self, interval_start: int, import_wh: int, export_wh: int, now: int
    ) -> list[ActionRecord]:
        """The home's meter closed an interval: its energy, and the actions it triggers."""
        if self._last_interval is not None and interval_start < self._last_interval:
            return []  # a late report of an older interval: no event now
        self._last_interval = interval_start
        self._interval_import_wh, self._interval_export_wh = import_wh, export_wh
        return self._evaluate(Event.INTERVAL_REPORT, now, next_interval=interval_start)

    def on_service(self, *, connected: bool, now: int) -> list[ActionRecord]:
        """Service cut or reconnection (from the DSO or seen by the meter)."""
        if connected == self._connected:
            return []
        self._connected = connected
        return self._evaluate(Event.RECONNECTION if connected else Event.SERVICE_CUT, now)

    def on_tick(self, now: int) -> list[ActionRecord]:
        """Time passed: a new interval's price or a DR event's start or end may apply."""
        return self._dr_check(now) + self._price_check(now) + self._plan(now)

    def _on_dr(self, event: Mapping[str, Json], now: int) -> list[ActionRecord]:
        event_id, signal = event.get("event_id"), event.get("signal")
        start, duration = event.get("start"), event.get("duration")
        targets = event.get("targets")
        if not (
            isinstance(event_id, str)
            and isinstance(signal, dict)
            and isinstance(start, int)
            and isinstance(duration, int)
        ):
            return []
        if isinstance(targets, list) and targets and self.participant not in targets:
            self._dr.pop(event_id, None)  # a modification may drop this home
        else:
            self._dr[event_id] = _DrEvent(
                dr_level_of(signal), start, start + duration, event.get("cancelled") is True
            )
        return self._dr_check(now)

    def _price_check(self, now: int) -> list[ActionRecord]:
        price = self.price_at(now)
        if price == self._price_in_force:
            return []
        self._price_in_force = price
        return self._evaluate(Event.PRICE_SIGNAL, now)

    def _dr_check(self, now: int) -> list[ActionRecord]:
        level = self.dr_level_at(now)
        if level == self._dr_level:
            return []
        self._dr_level = level
        return self._evaluate(Event.DR_SIGNAL, now)

    # -- planning ahead --------------------------------------------------------------

    def _want_plan(self) -> None:
        """New future prices or a new contract: plan again at the next tick."""
        self._plan_due, self._plan_tried = True, None

    def _plan(self, now: int) -> list[ActionRecord]:
        """Orders for the future intervals with published prices, from the forecast.

        Tried once per interval while due, so a forecast that is not ready yet
        (too little history) is asked again later, not at every tick.
        """
        current = now - now % self.interval_seconds
        if self.forecast is None or not self._plan_due or self._plan_tried == current:
            return []
        self._plan_tried = current
        for key in [k for k in self.planned if k[1] < current]:
            del self.planned[key]
        first = current + self.interval_seconds
        end = current + self.plan_horizon_seconds + self.interval_seconds
        wanted = [
            t for t in self.prices if first <= t < end and t - self.gate_closure_seconds > now
        ]
        if not self.programs or not wanted:
            self._plan_due = False
            return []
        expected = self.forecast(first, end)
        if not expected:
            return []  # no forecast yet: try again next interval
        self._plan_due = False
        records: list[ActionRecord] = []
        for start in sorted(wanted):
            if start in expected:
                records.extend(self._plan_interval(start, expected[start], now))
        return records

    def _plan_interval(self, start: int, expected: tuple[int, int], now: int) -> list[ActionRecord]:
        """Each contract as the report of interval ``start`` would read it, forecast energies in."""
        consumption, production = expected
        price = self.prices[start]
        hours = Decimal(self.interval_seconds) / 3600
        state = MeterState(
            clock=self.local_clock(start),
            import_price=Decimal(price[0]) / PRICE_UNIT,
            export_price=Decimal(price[1]) / PRICE_UNIT,
            consumption_w=int(consumption / hours),
            production_w=int(production / hours),
            consumption_wh=consumption,
            production_wh=production,
            dr_level=self.dr_level_at(start),
            service_connected=self._connected,
        )
        records: list[ActionRecord] = []
        for contract_id in sorted(self.programs):
            program = self.programs[contract_id]
            for action in program.evaluate(state, Event.INTERVAL_REPORT).actions:
                order = _intent(action, state, start)
                if order is None or (order.side, start) in self.planned:
                    continue  # one order per side and interval, whichever contract asks first
                self.planned[(order.side, start)] = contract_id
                records.append(
                    _record(
                        contract_id,
                        program,
                        action,
                        now=now,
                        event=Event.INTERVAL_REPORT,
                        order=order,
                        planned=True,
                    )
                )
        return records

    # -- evaluation ----------------------------------------------------------------

    def _member(self, contract_id: str) -> Member:
        member = self.members.get(contract_id)
        if member is None or member.program is not self.programs[contract_id]:
            member = Member.of(contract_id, self.programs[contract_id])
            self.members[contract_id] = member
        return member

    def _evaluate(
        self, event: Event, now: int, next_interval: int | None = None, only: str | None = None
    ) -> list[ActionRecord]:
        """The home's one decision per device (contracts.decide): every action asked for,
        effective or not, each recorded with its status and why."""
        state = self.state(now)
        decision = decide(
            [self._member(contract_id) for contract_id in self.programs],
            state,
            event,
            dr_events=self.dr_in_force(now),
            devices=self.devices,
            only=only,
        )
        self.devices = decision.devices
        records: list[ActionRecord] = []
        for decided in decision.decisions:
            order = None
            if decided.status is Status.EFFECTIVE:
                order = self._order_for(decided.action, state, now, next_interval)
            program = self.programs[decided.contract_id]
            records.append(
                _record(
                    decided.contract_id,
                    program,
                    decided.action,
                    now=now,
                    event=event,
                    order=order,
                    decided=decided,
                )
            )
        return records

    def _order_for(
        self, action: Action, state: MeterState, now: int, reported: int | None
    ) -> OrderIntent | None:
        """Market orders for SELL SURPLUS and BUY, for the next interval whose gate is open.

        A surplus offer repeats the last interval's export (a persistence
        forecast) at the contract's minimum price, or the export price in force;
        a purchase is for the energy and maximum price the contract names. An
        interval already offered (or bought) ahead from the forecast is not
        ordered again.
        """
        if action.kind is ActionKind.SELL_SURPLUS and reported is None:
            return None
        current = now - now % self.interval_seconds
        order = _intent(action, state, current + self.interval_seconds)
        if order is None or (order.side, order.interval_start) in self.planned:
            return None
        return order


def _record(
    contract_id: str,
    program: Program,
    action: Action,
    *,
    now: int,
    event: Event,
    order: OrderIntent | None,
    planned: bool = False,
    decided: Decided | None = None,
) -> ActionRecord:
    """The record of one action a contract's program asked for, and what became of it."""
    return ActionRecord(
        time=now,
        event=event,
        contract_id=contract_id,
        short_id=short_id(program.contract),
        contract_name=program.contract.name,
        kind=action.kind,
        reason=str(action.reason),
        description=action.describe() if decided is None else decided.describe(),
        device=action.device,
        text=action.text,
        order=order,
        planned=planned,
        status=str(Status.EFFECTIVE if decided is None else decided.status),
        why="" if decided is None else decided.why,
        restore_to=None if decided is None else decided.restore_to,
    )


def _intent(action: Action, state: MeterState, interval_start: int) -> OrderIntent | None:
    """The order an action asks for in ``interval_start``, given the state it read."""
    if action.kind is ActionKind.SELL_SURPLUS:
        energy = state.production_wh - state.consumption_wh
        price = action.min_price if action.min_price is not None else state.export_price
        if energy <= 0 or price is None:
            return None
        return OrderIntent(interval_start, "sell", energy, _ledger_price(price))
    if action.kind is ActionKind.BUY and action.max_energy_wh and action.max_price:
        return OrderIntent(
            interval_start, "buy", action.max_energy_wh, _ledger_price(action.max_price)
        )
    return None


def _ledger_price(price: Decimal) -> int:
    """MXN/kWh as the ledger's integer 10^-4 MXN/kWh (rounded half-even)."""
    return int((price * PRICE_UNIT).to_integral_value())
