"""The coordinator: one node's ledger data, kept current by the node's event stream.

No polling loop. The first refresh reads the node's status, the wallet, the
local participant's roles and service state, the price signals of the last two
days and ahead, and the contracts remembered from earlier runs. Afterwards the
WebSocket ``/api/v1/events`` pushes everything else:

- blocks update the height; a block that touched the wallet re-reads it;
- ``wallet_change`` events add to today's earnings or spending (deposits are
  neither), dated by their block's time in Home Assistant's time zone;
- price signals, demand-response events for this participant, service cuts
  and reconnections, every event of a contract this participant is party to,
  and the market's ``interval_cleared`` results update the market and
  contract entities.

Contract actions are not ledger events (appliance use stays at home): they come
from the node's local event stream, followed by ``actions.py``, which records
them here (:meth:`TransactivaCoordinator.note_action`).

What has been read is remembered (``.storage``) with the position in the
stream, so a restart resumes where it stopped; the very first run reads the
stream from block 1 to find existing contracts and demand-response events.
Events replayed on a reconnect update the entities but fire no bus events and
start no appliance: only events in blocks newer than the node's height at
connection time count as live.

After a disconnect the stream resumes after the last complete block seen, with
growing pauses between attempts; entities go unavailable meanwhile (prices
already announced stay), with one log line when the node goes and one when it
comes back. A timer wakes the entities at each interval boundary, at the start
and end of each demand-response event, and at local midnight (when today's
totals restart).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final, cast

from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.helpers.event import async_track_point_in_utc_time
from homeassistant.helpers.storage import Store
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator, UpdateFailed
from homeassistant.util import dt as dt_util

from transactiva_client import (
    DecodeError,
    IncompatibleNodeError,
    TransactivaClient,
    TransactivaError,
    TransactivaRequestError,
)
from transactiva_client.models import (
    Balance,
    ContractAction,
    ContractChange,
    ContractRecord,
    DemandResponse,
    LedgerEvent,
    MarketResult,
    NewBlock,
    NodeStatus,
    PriceSignal,
    ServiceChange,
    WalletChange,
    WalletRequest,
)
from transactiva_client.protocol import (
    CONTRACT_EVENTS,
    WALLET_EVENTS,
    ActionResult,
    EventKind,
    Role,
    SignalName,
    WalletReason,
)
from transactiva_client.units import price

from . import version
from .const import (
    DOMAIN,
    EVENT_CONTRACT_ACTION,
    EVENT_DEMAND_RESPONSE,
    EVENT_PRICE_SIGNAL,
    EVENT_SERVICE_STATUS,
)
from .devices import Group, find_device, identifier

if TYPE_CHECKING:
    from . import TransactivaConfigEntry

LOGGER = logging.getLogger(__package__)
RETRY_SECONDS: Final = (1, 2, 5, 10, 30)
STORE_VERSION: Final = 1
STATUS_REFRESH_SECONDS: Final = 30
PRICE_HISTORY_SECONDS: Final = 2 * 86400
MARKET_HISTORY_SECONDS: Final = 2 * 86400
# The demand-response signals the entities show (LOAD_DISPATCH events are the
# concentrator's business: they are skipped, as events of unknown kinds are).
SHOWN_SIGNALS: Final = frozenset({SignalName.SIMPLE, SignalName.ELECTRICITY_PRICE})
CONTRACT_STATUS: Final = {
    EventKind.CONTRACT_ACTIVATED: "active",
    EventKind.CONTRACT_REVOKED: "revoked",
    EventKind.CONTRACT_EXPIRED: "expired",
}
VALID_RE: Final = re.compile(
    r"^Valid from (\d{4}/\d\d/\d\d \d\d:\d\d:\d\d) to (\d{4}/\d\d/\d\d \d\d:\d\d:\d\d)$",
    re.MULTILINE,
)


@dataclass(slots=True)
class ContractInfo:
    """What the integration knows of one of the local participant's contracts."""

    contract_id: str
    short_id: str
    name: str
    status: str
    proposer: str
    signers: list[str]
    signed: list[str]
    valid_from: str | None
    valid_to: str | None
    last_action: ContractAction | None = None


def contract_info(record: ContractRecord) -> ContractInfo:
    """A ContractInfo from the node's record (``GET /contracts/{id}``)."""
    validity = VALID_RE.search(record.source)
    return ContractInfo(
        contract_id=record.contract_id,
        short_id=record.short_id,
        name=record.name,
        status=str(record.status),
        proposer=record.proposer,
        signers=list(record.signers),
        signed=list(record.signed),
        valid_from=validity.group(1) if validity else None,
        valid_to=validity.group(2) if validity else None,
    )


@dataclass(slots=True)
class NodeState:
    """What the ledger entities show; the coordinator mutates it and notifies."""

    status: NodeStatus
    roles: tuple[str, ...]
    height: int
    balance: Balance
    service_connected: bool
    prices: dict[int, PriceSignal] = field(default_factory=dict)
    demand_response: dict[str, DemandResponse] = field(default_factory=dict)
    contracts: dict[str, ContractInfo] = field(default_factory=dict)
    last_action: ContractAction | None = None
    last_action_result: ActionResult | None = None  # None: nobody reported one yet
    last_action_detail: str = ""
    last_cleared: MarketResult | None = None  # the latest interval the auction cleared
    last_priced: MarketResult | None = None  # the latest one that cleared at a uniform price
    day: date = field(default_factory=lambda: dt_util.now().date())
    earnings: int = 0  # centavos, today
    spending: int = 0  # centavos, today
    replaying: bool = False

    @property
    def participant(self) -> str:
        """The local participant's address."""
        return self.status.participant

    def price_at(self, moment: int) -> PriceSignal | None:
        """The price in force at ``moment``: the latest signal starting at or before it."""
        starts = [start for start in self.prices if start <= moment]
        return self.prices[max(starts)] if starts else None

    def next_interval_start(self, moment: int) -> int:
        """The start of the interval after the one holding ``moment``."""
        interval = self.status.interval_seconds
        return (moment // interval + 1) * interval

    def active_demand_response(self, moment: int) -> list[DemandResponse]:
        """The demand-response events for this participant in force at ``moment``."""
        return [
            event
            for event in self.demand_response.values()
            if event.active(moment) and event.concerns(self.participant)
        ]


def now_seconds() -> int:
    """The current Unix time in whole seconds."""
    return int(dt_util.utcnow().timestamp())


class TransactivaCoordinator(DataUpdateCoordinator[NodeState]):
    """Holds one node's ledger data and follows its event stream."""

    config_entry: TransactivaConfigEntry

    def __init__(
        self, hass: HomeAssistant, entry: TransactivaConfigEntry, client: TransactivaClient
    ) -> None:
        super().__init__(hass, LOGGER, config_entry=entry, name=DOMAIN, update_interval=None)
        self.client = client
        self.handled_action_id: int | None = None  # the highest contract action handled
        self._store: Store[dict[str, Any]] = Store(
            hass, STORE_VERSION, f"{DOMAIN}.{entry.entry_id}"
        )
        self._stored: dict[str, Any] = {}
        self._cursor: int | None = None  # seq of the last complete block's new_block
        self._cursor_height = 0
        self._live_after = 0
        self._requests: set[str] = set()  # this participant's pending wallet requests
        self._block_deltas: list[tuple[int, int]] = []  # (delta, height) awaiting block time
        self._touched = False
        self._status_read = 0.0
        self._wakeup: CALLBACK_TYPE | None = None

    # -- reading the node -----------------------------------------------------------

    async def _async_setup(self) -> None:
        self._stored = await self._store.async_load() or {}

    async def _async_update_data(self) -> NodeState:
        try:
            status = await self.client.status()
            balance = await self.client.balance(status.participant)
            known = cast("NodeState | None", self.data)  # None before the first refresh
            if known is not None:
                return replace(known, status=status, balance=balance)
            return await self._first_state(status, balance)
        except IncompatibleNodeError as err:
            self._incompatible(err)
            raise UpdateFailed(f"cannot read the node: {err}") from err
        except TransactivaError as err:
            raise UpdateFailed(f"cannot read the node: {err}") from err

    def _incompatible(self, err: IncompatibleNodeError) -> None:
        """The node changed to a version this integration cannot speak: say so, and reload
        the entry (its setup then waits for a compatible node)."""
        entry = self.config_entry
        version.raise_issue(self.hass, entry, self.client.url, err)
        if entry.state is ConfigEntryState.LOADED:
            self.hass.config_entries.async_schedule_reload(entry.entry_id)

    async def _first_state(self, status: NodeStatus, balance: Balance) -> NodeState:
        record = await self.client.participant(status.participant)
        state = NodeState(
            status=status,
            roles=record.roles if record.role == Role.OPERATOR else (),
            height=status.height,
            balance=balance,
            service_connected=record.service_connected,
        )
        now = now_seconds()
        for signal in await self.client.prices(max(0, now - PRICE_HISTORY_SECONDS), 2**40):
            state.prices[signal.start] = signal
        ledger_now = status.last_block_time + 1  # results are in the ledger's time
        try:
            intervals = await self.client.market_intervals(
                ledger_now - MARKET_HISTORY_SECONDS, ledger_now
            )
            for result in intervals:
                self._market_result(state, result)
        except TransactivaRequestError as err:
            LOGGER.debug("The node has no market results: %s", err)
        self._restore(state)
        for contract_id in list(self._stored.get("contracts", [])):
            await self._read_contract(state, str(contract_id))
        return state

    def _restore(self, state: NodeState) -> None:
        """Take up the remembered position and data, unless the chain is not the same."""
        stored = self._stored
        same_chain = (
            stored.get("chain_id") == state.status.chain_id
            and stored.get("participant") == state.participant
            and isinstance(stored.get("height"), int)
            and stored["height"] <= state.status.height
        )
        if not same_chain:
            self._stored = {}
            return
        self._cursor = stored.get("seq") if isinstance(stored.get("seq"), int) else None
        self._cursor_height = stored["height"]
        self._requests = {str(r) for r in stored.get("requests", [])}
        for raw in stored.get("demand_response", []):
            try:
                event = DemandResponse.from_json(raw)
            except DecodeError:
                continue
            state.demand_response[event.event_id] = event
        if stored.get("day") == state.day.isoformat():
            state.earnings = int(stored.get("earnings", 0))
            state.spending = int(stored.get("spending", 0))
        handled = stored.get("action_id")
        if isinstance(handled, int) and not isinstance(handled, bool):
            self.handled_action_id = handled

    def _store_data(self) -> dict[str, Any]:
        state = self.data
        return {
            "chain_id": state.status.chain_id,
            "participant": state.participant,
            "height": self._cursor_height,
            "seq": self._cursor,
            "contracts": sorted(state.contracts),
            "requests": sorted(self._requests),
            "demand_response": [event.to_json() for event in state.demand_response.values()],
            "day": state.day.isoformat(),
            "earnings": state.earnings,
            "spending": state.spending,
            "action_id": self.handled_action_id,
        }

    async def async_save(self) -> None:
        """Write the remembered position and data now (on unload)."""
        if self.data is not None:
            await self._store.async_save(self._store_data())

    async def _read_contract(self, state: NodeState, contract_id: str) -> ContractInfo | None:
        """Fetch a contract; keep it when this participant is a party."""
        try:
            record = await self.client.contract(contract_id)
        except TransactivaRequestError as err:
            if err.status == 404:
                state.contracts.pop(contract_id, None)
                return None
            raise
        info = contract_info(record)
        if state.participant not in info.signers:
            return None
        known = state.contracts.get(contract_id)
        if known is not None:
            info.last_action = known.last_action
        state.contracts[contract_id] = info
        return info

    # -- following the stream -------------------------------------------------------

    def start(self) -> None:
        """Follow the event stream and the clock until the entry unloads."""
        self.config_entry.async_create_background_task(
            self.hass, self._follow(), f"{DOMAIN} event stream"
        )
        self._schedule_wakeup()
        self.config_entry.async_on_unload(self._cancel_wakeup)

    async def _follow(self) -> None:
        attempt = 0
        lost = False
        while True:
            try:
                await self._stream()
                error = "the node closed the event stream"
            except (TransactivaError, TimeoutError) as err:
                error = str(err) or type(err).__name__
            if not lost:
                LOGGER.warning("Transactiva node unavailable: %s", error)
                lost = True
            self.async_set_update_error(UpdateFailed(error))
            await asyncio.sleep(RETRY_SECONDS[min(attempt, len(RETRY_SECONDS) - 1)])
            attempt += 1
            try:
                fresh = await self._async_update_data()
            except UpdateFailed:
                continue
            LOGGER.info("Transactiva node available again at height %d", fresh.height)
            lost = False
            attempt = 0
            self.async_set_updated_data(fresh)

    async def _stream(self) -> None:
        self._live_after = self.data.status.height
        self._block_deltas.clear()
        self._touched = False
        if self._cursor_height < self._live_after:
            self.data.replaying = True
            self.async_update_listeners()  # sync status: catching up
        resume = {"after": self._cursor} if self._cursor is not None else {"from_height": 1}
        async with self.client.ledger_events(**resume) as stream:
            async for message in stream:
                await self.async_process_event(message.seq, message.height, message.event)

    async def async_process_event(self, seq: int, height: int, event: LedgerEvent) -> None:
        """Apply one event of the stream (public so that tests can feed future event types)."""
        live = height > self._live_after
        kind = event.kind
        state = self.data
        try:
            if kind == EventKind.NEW_BLOCK:
                await self._new_block(seq, height, NewBlock.from_json(event.data).time, live)
            elif kind in WALLET_EVENTS:
                self._wallet_event(event, height, live)
            elif kind == EventKind.PRICE_SIGNAL:
                self._price_signal(PriceSignal.from_json(event.data), live)
            elif kind == EventKind.DR_EVENT:
                self._dr_event(DemandResponse.from_json(event.data), live)
            elif kind in (EventKind.SERVICE_CUT, EventKind.SERVICE_RECONNECTED):
                change = ServiceChange.from_event(event)
                if change.participant == state.participant:
                    state.service_connected = change.connected
                    if live:
                        self._fire(
                            EVENT_SERVICE_STATUS,
                            Group.MARKET,
                            {"connected": state.service_connected},
                        )
            elif kind == EventKind.CONTRACT_PROPOSED:
                await self._read_contract(state, ContractChange.from_event(event).contract_id)
            elif kind in CONTRACT_EVENTS:
                self._contract_event(ContractChange.from_event(event))
            elif kind == EventKind.INTERVAL_CLEARED:
                self._market_result(state, MarketResult.from_json(event.data))
                if live:
                    self.async_set_updated_data(state)
        except DecodeError as err:
            LOGGER.debug("Skipping a %s event: %s", kind, err)

    async def _new_block(self, seq: int, height: int, block_time: int, live: bool) -> None:
        state = self.data
        moment = dt_util.as_local(dt_util.utc_from_timestamp(block_time))
        self._roll_day(moment.date())
        for delta, delta_height in self._block_deltas:
            if delta_height == height and moment.date() == state.day:
                if delta > 0:
                    state.earnings += delta
                else:
                    state.spending -= delta
        self._block_deltas.clear()
        state.height = max(state.height, height)
        self._cursor, self._cursor_height = seq, height
        if live and self._touched:
            self._touched = False
            state.balance = await self.client.balance(state.participant)
        if live and time.monotonic() - self._status_read > STATUS_REFRESH_SECONDS:
            self._status_read = time.monotonic()
            try:
                state.status = await self.client.status()
            except TransactivaError as err:
                LOGGER.debug("Cannot refresh the node's status: %s", err)
        self._store.async_delay_save(self._store_data, 5)
        if live or height >= self._live_after:
            if state.replaying:
                state.replaying = False
                self._schedule_wakeup()
            self.async_set_updated_data(state)

    def _wallet_event(self, event: LedgerEvent, height: int, live: bool) -> None:
        participant = self.data.participant
        if event.kind == EventKind.WALLET_CHANGE:
            change = WalletChange.from_json(event.data)
            if change.participant != participant:
                return
            if change.why != WalletReason.DEPOSIT:
                self._block_deltas.append((change.delta, height))
        else:
            wallet = WalletRequest.from_event(event)
            if wallet.participant is None:  # a request cancelled: this participant's?
                if wallet.request not in self._requests:
                    return
                self._requests.discard(wallet.request)
            elif wallet.participant != participant:
                return
            elif wallet.request is not None:  # a deposit or withdrawal requested
                self._requests.add(wallet.request)
        self._touched = self._touched or live

    def _price_signal(self, row: PriceSignal, live: bool) -> None:
        self.data.prices[row.start] = row
        if live:
            self._fire(
                EVENT_PRICE_SIGNAL,
                Group.MARKET,
                {
                    "interval_start": dt_util.utc_from_timestamp(row.start).isoformat(),
                    "import_price": float(price(row.import_price)),
                    "export_price": float(price(row.export_price)),
                    "network_fee": float(price(row.network_fee)),
                },
            )
            self._schedule_wakeup()

    def _dr_event(self, dr_event: DemandResponse, live: bool) -> None:
        if dr_event.signal not in SHOWN_SIGNALS:
            LOGGER.debug("Skipping a %s demand-response event", dr_event.signal)
            return
        if not dr_event.concerns(self.data.participant):
            return
        known = self.data.demand_response.get(dr_event.event_id)
        if known is not None and known.modification >= dr_event.modification:
            return
        self.data.demand_response[dr_event.event_id] = dr_event
        if live:
            self._fire(
                EVENT_DEMAND_RESPONSE,
                Group.MARKET,
                {
                    "event_id": dr_event.event_id,
                    "signal": str(dr_event.signal),
                    "level": dr_event.level,
                    "price": None if dr_event.price is None else float(price(dr_event.price)),
                    "start": dt_util.utc_from_timestamp(dr_event.start).isoformat(),
                    "end": dt_util.utc_from_timestamp(dr_event.end).isoformat(),
                    "cancelled": dr_event.cancelled,
                    "modification_number": dr_event.modification,
                },
            )
            self._schedule_wakeup()

    def _contract_event(self, change: ContractChange) -> None:
        info = self.data.contracts.get(change.contract_id)
        if info is None:
            return
        if change.kind == EventKind.CONTRACT_SIGNED:
            if change.party is not None and change.party not in info.signed:
                info.signed.append(change.party)
        elif change.kind in CONTRACT_STATUS:
            info.status = CONTRACT_STATUS[EventKind(change.kind)]

    @staticmethod
    def _market_result(state: NodeState, result: MarketResult) -> None:
        """Keep the latest cleared interval, and the latest with a clearing price."""
        if not result.cleared:
            return
        if state.last_cleared is None or result.start >= state.last_cleared.start:
            state.last_cleared = result
        if result.price is not None and (
            state.last_priced is None or result.start >= state.last_priced.start
        ):
            state.last_priced = result

    async def note_action(
        self, action: ContractAction, result: ActionResult | None, detail: str, *, fire: bool
    ) -> None:
        """Record a contract action of this home (from ``actions.py``); with ``fire``, tell
        automations (``transactiva_contract_action``)."""
        state = self.data
        info = state.contracts.get(action.contract_id)
        if info is None:
            info = await self._read_contract(state, action.contract_id)
        if info is not None:
            info.last_action = action
        if state.last_action is None or action.action_id >= state.last_action.action_id:
            state.last_action = action
            state.last_action_result, state.last_action_detail = result, detail
        self.async_update_listeners()
        if fire:
            self._fire(
                EVENT_CONTRACT_ACTION,
                Group.CONTRACTS,
                {
                    "action_id": action.action_id,
                    "contract_id": action.contract_id,
                    "short_id": action.short_id,
                    "contract": action.contract,
                    "device": action.device,
                    "action": str(action.action),
                    "trigger": str(action.trigger),
                    "reason": action.reason,
                    "description": action.description,
                    "text": action.text,
                },
            )

    @callback
    def note_result(self, action_id: int, result: ActionResult | None, detail: str) -> None:
        """What became of an action; shown when it is the latest one."""
        state = self.data
        if state.last_action is not None and state.last_action.action_id == action_id:
            state.last_action_result, state.last_action_detail = result, detail
            self.async_update_listeners()

    @callback
    def note_handled(self, action_id: int, *, restart: bool = False) -> None:
        """Remember (in ``.storage``) that actions up to ``action_id`` were handled; with
        ``restart`` also when that is lower (the node's action log was replaced)."""
        known = self.handled_action_id
        if known is None or action_id > known or (restart and action_id != known):
            self.handled_action_id = action_id
            self._store.async_delay_save(self._store_data, 5)

    @callback
    def _fire(self, event_type: str, group: Group, data: dict[str, Any]) -> None:
        device = find_device(
            self.hass, self.config_entry.entry_id, identifier(self.data.participant, group)
        )
        self.hass.bus.async_fire(
            event_type,
            {"device_id": device.id if device else None, "entry_id": self.config_entry.entry_id}
            | data,
        )

    # -- the clock ------------------------------------------------------------------

    def _roll_day(self, today: date) -> None:
        if today > self.data.day:
            self.data.day = today
            self.data.earnings = self.data.spending = 0

    def next_wakeup(self, moment: int) -> int:
        """The next instant after ``moment`` when a time-dependent state changes."""
        state = self.data
        candidates = [state.next_interval_start(moment)]
        candidates.extend(
            instant
            for event in state.demand_response.values()
            for instant in (event.start, event.end)
            if instant > moment
        )
        midnight = dt_util.start_of_local_day(
            dt_util.as_local(dt_util.utc_from_timestamp(moment)) + timedelta(days=1)
        )
        candidates.append(int(midnight.timestamp()))
        return min(candidates)

    @callback
    def _schedule_wakeup(self) -> None:
        self._cancel_wakeup()
        when = self.next_wakeup(now_seconds())
        self._wakeup = async_track_point_in_utc_time(
            self.hass, self._wake, dt_util.utc_from_timestamp(when)
        )

    @callback
    def _cancel_wakeup(self) -> None:
        if self._wakeup is not None:
            self._wakeup()
            self._wakeup = None

    @callback
    def _wake(self, _now: datetime) -> None:
        self.prune(now_seconds())
        self._roll_day(dt_util.now().date())
        self.async_update_listeners()
        self._schedule_wakeup()

    def prune(self, moment: int) -> None:
        """Forget prices superseded before ``moment`` and DR events over for a day."""
        state = self.data
        current = state.price_at(moment)
        for start in [s for s in state.prices if current is not None and s < current.start]:
            del state.prices[start]
        for event_id in [
            e.event_id for e in state.demand_response.values() if e.end < moment - 86400
        ]:
            del state.demand_response[event_id]
