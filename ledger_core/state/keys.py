"""The state's key schema and typed reads of it: the one place that knows a key.

The state machine writes canonical JSON values under string keys. Every key is
built here -- by the state machine's own domain modules and by everything
outside it that reads the committed state (the API, the web interface, the
roles) -- so the layout can change in one place. Times in keys are Unix
seconds written as 12 digits and counters as 8, so that keys sort in time and
counting order and a range of intervals is a range of keys.

:class:`StateView` is the read side: typed records (``TypedDict``\\ s that
match what the state machine writes) over any :class:`Reader` -- the node's
committed state, or an overlay inside the state machine.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Final, NamedTuple, NotRequired, Protocol, TypedDict, cast

from ledger_core.types import codec

type Value = codec.Value


def t12(seconds: int) -> str:
    """A time (Unix seconds) as it appears in keys: 12 digits."""
    return f"{seconds:012d}"


def _n8(number: int) -> str:
    return f"{number:08d}"


# -- accounts and wallets --------------------------------------------------------------

ACCOUNTS: Final = "acct/"


def account(address: str) -> str:
    """A participant's, operator's or meter's account (:class:`Account`)."""
    return f"acct/{address}"


def balance(address: str) -> str:
    """Spendable centavos."""
    return f"bal/{address}"


def held(address: str) -> str:
    """Centavos held for pending withdrawals and buy orders."""
    return f"held/{address}"


def debt(address: str) -> str:
    """Centavos owed to the supplier after a settlement the wallet could not pay."""
    return f"debt/{address}"


def nonce(address: str) -> str:
    """The signer's last used nonce."""
    return f"nonce/{address}"


def wallet_request(request_id: str) -> str:
    """A deposit or withdrawal request (:class:`WalletRequest`), by its transaction id."""
    return f"req/{request_id}"


NAMES: Final = "name/"


def name(normalised: str) -> str:
    """The address holding a participant's display name (normalised, see
    :mod:`ledger_core.types.names`)."""
    return f"name/{normalised}"


TOTAL_DEPOSITS: Final = "total/deposits"
TOTAL_WITHDRAWALS: Final = "total/withdrawals"

# -- contracts -------------------------------------------------------------------------

CONTRACTS: Final = "contract/"
EXPIRY: Final = "expiry/"


def contract(contract_id: str) -> str:
    """A contract's record (:class:`Contract`)."""
    return f"contract/{contract_id}"


def expiry(valid_to_local: int, contract_id: str) -> str:
    """The index entry of a contract whose window closes at ``valid_to_local``."""
    return f"expiry/{t12(valid_to_local)}/{contract_id}"


def expiry_bound(local_now: int) -> str:
    """Every expiry entry sorting before this key has closed by ``local_now``."""
    return f"expiry/{t12(local_now)}"


def expiry_contract(key: str) -> str:
    """The contract id of an expiry entry."""
    return key.rsplit("/", 1)[1]


# -- meters and signals ----------------------------------------------------------------


def reports(meter: str) -> str:
    """The prefix of a meter's interval reports."""
    return f"report/{meter}/"


def report(meter: str, interval_start: int) -> str:
    """A meter's report for an interval (:class:`Report`)."""
    return f"report/{meter}/{t12(interval_start)}"


PRICES: Final = "price/"


def price(interval_start: int) -> str:
    """The price signal of an interval (:class:`Price`)."""
    return f"price/{t12(interval_start)}"


def price_day(day_start: int) -> str:
    """The latest priced interval of a UTC day (an index of the market)."""
    return f"priceday/{t12(day_start)}"


DR_EVENTS: Final = "dr/"


def dr_event(event_id: str) -> str:
    """A demand-response event in its latest modification (:class:`DrEvent`)."""
    return f"dr/{event_id}"


def service(participant: str) -> str:
    """Whether a participant's supply is connected (:class:`Service`)."""
    return f"service/{participant}"


# -- consensus -------------------------------------------------------------------------

VALIDATORS: Final = "validators/history"
PRIORITIES: Final = "validators/priorities"


def evidence(evidence_key: str) -> str:
    """A committed equivocation, by its offence key (validator/height/round/type)."""
    return f"evidence/{evidence_key}"


# -- market ----------------------------------------------------------------------------

MARKET_QUEUE: Final = "queue/market"
INTERVALS: Final = "market/"


def interval(interval_start: int) -> str:
    """An interval of the market (:class:`Interval`)."""
    return f"market/{t12(interval_start)}"


def order(order_id: str) -> str:
    """An order (:class:`Order`), by its transaction id."""
    return f"order/{order_id}"


def positions(address: str) -> str:
    """The prefix of a participant's positions."""
    return f"position/{address}/"


def position(address: str, interval_start: int) -> str:
    """A participant's orders, trades and hold in an interval (:class:`Position`)."""
    return f"position/{address}/{t12(interval_start)}"


def trade(interval_start: int, index: int) -> str:
    """The ``index``-th trade of an interval (:class:`Trade`)."""
    return f"trade/{t12(interval_start)}/{_n8(index)}"


def statements(address: str) -> str:
    """The prefix of a participant's settlement statements."""
    return f"settle/{address}/"


def statement(address: str, interval_start: int) -> str:
    """A participant's settlement statement of an interval's trades."""
    return f"settle/{address}/{t12(interval_start)}"


def bills(address: str) -> str:
    """The prefix of a participant's daily bills."""
    return f"bill/{address}/"


def bill(address: str, day: int) -> str:
    """A participant's bill of a local day (``day``: its first second, Unix time)."""
    return f"bill/{address}/{t12(day)}"


def trader(interval_start: int, number: int) -> str:
    """Who placed the ``number``-th first order in an interval (an index)."""
    return f"traders/{t12(interval_start)}/{_n8(number)}"


def delivering(interval_start: int) -> str:
    """How many of an interval's sellers earlier parts of its delivery listed."""
    return f"delivering/{t12(interval_start)}"


def delivered_part(interval_start: int, seller: str) -> str:
    """What an earlier part of an interval's delivery said of a seller."""
    return f"delivering/{t12(interval_start)}/{seller}"


# -- what leaves the live state ---------------------------------------------------------
#
# A local day's market and metering records (reports, intervals, orders, positions,
# trades, statements, bills, and price signals but each UTC day's last) are needed by
# future transactions only until the day can no longer be billed
# (``Params.day_closes``). From then on they leave the live state, an interval's once
# it is settled: the state machine takes them out in ``end_block`` (state/history.py),
# storage keeps them, and ``retired/<height>`` commits to what each block took out.
# Accounts, balances, contracts and the rest stay.

RETIRED: Final = "retired/"


def retired(height: int) -> str:
    """What block ``height`` took out of the live state (:class:`Retired`)."""
    return f"retired/{t12(height)}"


class Dated(NamedTuple):
    """When a record stops being needed: the interval it belongs to, or (``whole_day``)
    the local day it belongs to (a bill); ``price``: the price signal of that interval."""

    start: int
    whole_day: bool = False
    price: bool = False


def _middle_t12(key: str) -> int:
    return int(key.split("/", 2)[1][:12])


def _last_t12(key: str) -> int:
    return int(key[-12:])


def _order_start(_key: str, value: Value) -> int | None:
    start = value.get("interval_start") if isinstance(value, dict) else None
    return start if isinstance(start, int) else None


_DATED: Final[dict[str, Callable[[str, Value], int | None]]] = {
    "market": lambda key, _value: _last_t12(key),
    "position": lambda key, _value: _last_t12(key),
    "settle": lambda key, _value: _last_t12(key),
    "trade": lambda key, _value: _middle_t12(key),
    "traders": lambda key, _value: _middle_t12(key),
    "delivering": lambda key, _value: _middle_t12(key),
    "order": _order_start,
}


def dated(key: str, value: Value) -> Dated | None:
    """The interval or day whose closing takes the record at ``key`` out of the live
    state; None for a record that stays."""
    if key.startswith("report/"):  # most of the state, first
        return Dated(_last_t12(key))
    family = key[: key.find("/")]
    if family == "bill":
        return Dated(_last_t12(key), whole_day=True)
    if family == "price":
        return Dated(_last_t12(key), price=True)
    found = _DATED.get(family)
    start = None if found is None else found(key, value)
    return None if start is None else Dated(start)


def interval_start_of(key: str) -> int:
    """The interval start that ends a key built with :func:`t12`."""
    return int(key.rsplit("/", 1)[1])


# -- records ---------------------------------------------------------------------------


class Account(TypedDict):
    """``acct/<address>``: operators from genesis, participants, meters."""

    public_key: str
    role: str
    status: str
    since: int
    roles: NotRequired[list[str]]
    owner: NotRequired[str]
    revoked: NotRequired[int]
    name: NotRequired[str]


class Contract(TypedDict):
    """``contract/<id>``."""

    name: str
    source: str
    proposer: str
    signers: list[str]
    signed: list[str]
    revoke: list[str]
    status: str
    proposed_height: int
    valid_to_local: int
    resolved: NotRequired[dict[str, str]]
    activated_height: NotRequired[int]
    activated_time: NotRequired[int]
    revoked_height: NotRequired[int]


class Report(TypedDict):
    """``report/<meter>/<T>``: the commitment to the meter's reading (docs/privacy.md), and
    the height of the bill that covered it once one has."""

    commitment: str
    height: int
    billed: NotRequired[int]


class Price(TypedDict):
    """``price/<T>``: 10^-4 MXN/kWh."""

    import_price: int
    export_price: int
    network_fee: int
    height: int


class Service(TypedDict):
    """``service/<participant>``."""

    connected: bool
    height: int


class WalletRequest(TypedDict):
    """``req/<id>``."""

    kind: str
    participant: str
    amount: int
    reference: str
    status: str
    height: int
    confirmed_height: NotRequired[int]
    cancelled_height: NotRequired[int]


class Order(TypedDict):
    """``order/<id>``."""

    participant: str
    interval_start: int
    side: str
    energy_wh: int
    limit_price: int
    sequence: int
    status: str
    hold: int
    height: int
    ref: NotRequired[str]
    traded_wh: NotRequired[int]
    backstop_wh: NotRequired[int]


class Position(TypedDict):
    """``position/<address>/<T>``."""

    side: str
    orders: list[str]
    trades: list[int]
    hold: int


class Trade(TypedDict):
    """``trade/<T>/<k>``."""

    interval_start: int
    index: int
    buyer: str
    seller: str
    energy_wh: int
    price: int
    payment: int
    fee: int
    buy_order: str
    sell_order: str


class Retired(TypedDict):
    """``retired/<height>``: the Merkle root (hex) over the ``canonical([key, value])``
    leaves, in key order, of the records block ``height`` took out of the live state,
    and how many there were."""

    root: str
    count: int


class Reader(Protocol):
    """Read access to a state: single keys, and ranges of one prefix."""

    def get(self, key: str) -> Value | None:
        """The value at ``key``, or None."""
        ...

    def range(self, prefix: str, start: str, end: str, limit: int) -> list[tuple[str, Value]]:
        """Entries ``prefix + s`` with ``start <= s < end``, in key order, at most ``limit``."""
        ...


_ALL: Final = "\U0010ffff"


class StateView:
    """Typed reads of a state through a :class:`Reader`."""

    __slots__ = ("_reader",)

    def __init__(self, reader: Reader) -> None:
        self._reader = reader

    def raw(self, key: str) -> Value | None:
        """The value at any key (the API's ``/state/{key}``)."""
        return self._reader.get(key)

    def _int(self, key: str) -> int:
        value = self._reader.get(key)
        return value if isinstance(value, int) else 0

    def _record[R](self, key: str, kind: type[R]) -> R | None:
        value = self._reader.get(key)
        return cast("R", value) if isinstance(value, dict) else None

    def account(self, address: str) -> Account | None:
        """A registered account, or None."""
        return self._record(account(address), Account)

    def name_holder(self, normalised: str) -> str | None:
        """The address holding a (normalised) display name, or None."""
        value = self._reader.get(name(normalised))
        return value if isinstance(value, str) else None

    def names(self, limit: int = 100_000) -> Iterator[tuple[str, str]]:
        """Every display name with its address, in name order."""
        for key, value in self._reader.range(NAMES, "", _ALL, limit):
            if isinstance(value, str):
                yield key.removeprefix(NAMES), value

    def balance(self, address: str) -> int:
        """Spendable centavos."""
        return self._int(balance(address))

    def held(self, address: str) -> int:
        """Held centavos."""
        return self._int(held(address))

    def debt(self, address: str) -> int:
        """Centavos owed."""
        return self._int(debt(address))

    def nonce(self, address: str) -> int:
        """The last committed nonce of ``address`` (0 before its first transaction)."""
        return self._int(nonce(address))

    def contract(self, contract_id: str) -> Contract | None:
        """A contract's record, or None."""
        return self._record(contract(contract_id), Contract)

    def contracts(self, limit: int = 100_000) -> Iterator[tuple[str, Contract]]:
        """Every contract, by id."""
        for key, value in self._reader.range(CONTRACTS, "", _ALL, limit):
            yield key.removeprefix(CONTRACTS), cast("Contract", value)

    def accounts(self, limit: int = 100_000) -> Iterator[tuple[str, Account]]:
        """Every account, by address."""
        for key, value in self._reader.range(ACCOUNTS, "", _ALL, limit):
            yield key.removeprefix(ACCOUNTS), cast("Account", value)

    def dr_event(self, event_id: str) -> dict[str, Value] | None:
        """A demand-response event's latest modification, or None."""
        return self._record(dr_event(event_id), dict[str, Value])

    def dr_events(self, limit: int = 500) -> Iterator[tuple[str, dict[str, Value]]]:
        """Demand-response events in their latest modification, by event id."""
        for key, value in self._reader.range(DR_EVENTS, "", _ALL, limit):
            yield key.removeprefix(DR_EVENTS), cast("dict[str, Value]", value)

    def service_connected(self, participant: str) -> bool:
        """Whether the participant's supply is connected (true until the DSO cuts it)."""
        record = self._record(service(participant), Service)
        return True if record is None else bool(record["connected"])

    def report(self, meter: str, interval_start: int) -> Report | None:
        """A meter's committed report of an interval, or None."""
        return self._record(report(meter, interval_start), Report)

    def order(self, order_id: str) -> Order | None:
        """An order, or None."""
        return self._record(order(order_id), Order)

    def trade(self, interval_start: int, index: int) -> Trade | None:
        """A trade, or None."""
        return self._record(trade(interval_start, index), Trade)

    def by_interval(
        self, prefix: str, start: int, end: int, limit: int
    ) -> list[tuple[int, dict[str, Value]]]:
        """``(interval start, record)`` under ``prefix`` with ``start <= T < end``."""
        rows = self._reader.range(prefix, t12(start), t12(end), limit)
        return [(interval_start_of(key), cast("dict[str, Value]", value)) for key, value in rows]
