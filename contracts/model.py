"""The checked contract: immutable values that every node builds identically.

Numbers are ``Decimal`` (exact, never float); times are naive local civil time
of the market (the caller decides the time zone); positions (line numbers) are
kept for explanations but take no part in equality, so a contract equals its
own canonical form parsed back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import Enum, StrEnum
from typing import Final


class Dimension(StrEnum):
    """What a quantity measures."""

    POWER = "power"
    ENERGY = "energy"
    PRICE = "price"
    PERCENT = "percent"
    NUMBER = "number"


@dataclass(frozen=True, slots=True)
class Unit:
    """A unit: its canonical spelling, dimension and factor to the base unit.

    Base units: W for power, Wh for energy, MXN/kWh for prices, % for percent.
    """

    symbol: str
    dimension: Dimension
    scale: Decimal


UNITS: Final[dict[str, Unit]] = {
    unit.symbol.lower(): unit
    for unit in (
        Unit("W", Dimension.POWER, Decimal(1)),
        Unit("kW", Dimension.POWER, Decimal(1000)),
        Unit("MW", Dimension.POWER, Decimal(1_000_000)),
        Unit("Wh", Dimension.ENERGY, Decimal(1)),
        Unit("kWh", Dimension.ENERGY, Decimal(1000)),
        Unit("MWh", Dimension.ENERGY, Decimal(1_000_000)),
        Unit("MXN/Wh", Dimension.PRICE, Decimal(1000)),
        Unit("MXN/kWh", Dimension.PRICE, Decimal(1)),
        Unit("MXN/MWh", Dimension.PRICE, Decimal("0.001")),
        Unit("%", Dimension.PERCENT, Decimal(1)),
    )
}


@dataclass(frozen=True, slots=True)
class Quantity:
    """A number as written, with its unit if one was written."""

    value: Decimal
    unit: Unit | None = None

    @property
    def base(self) -> Decimal:
        """The value in the dimension's base unit (W, Wh, MXN/kWh, %)."""
        return self.value if self.unit is None else self.value * self.unit.scale


class VarType(StrEnum):
    """The type of a variable, which decides what it may be compared with."""

    PRICE = "price"
    POWER_OR_ENERGY = "power or energy"
    CLOCK = "time of day"
    WEEKDAY = "weekday"
    LEVEL = "demand-response level"
    PERCENT = "percent"
    SERVICE = "service status"


class Variable(Enum):
    """Variables a condition may read: canonical name and type."""

    PRICE = ("Price", VarType.PRICE)
    IMPORT_PRICE = ("ImportPrice", VarType.PRICE)
    EXPORT_PRICE = ("ExportPrice", VarType.PRICE)
    CONSUMPTION = ("Consumption", VarType.POWER_OR_ENERGY)
    PRODUCTION = ("Production", VarType.POWER_OR_ENERGY)
    SURPLUS = ("Surplus", VarType.POWER_OR_ENERGY)
    TIME = ("Time", VarType.CLOCK)
    WEEKDAY = ("Weekday", VarType.WEEKDAY)
    DR_LEVEL = ("DRLevel", VarType.LEVEL)
    BATTERY = ("Battery", VarType.PERCENT)
    SERVICE = ("Service", VarType.SERVICE)

    def __init__(self, canonical: str, var_type: VarType) -> None:
        self.canonical = canonical
        self.var_type = var_type


VARIABLE_NAMES: Final[dict[str, Variable]] = {v.canonical.lower(): v for v in Variable} | {
    "demandresponselevel": Variable.DR_LEVEL,
    "soc": Variable.BATTERY,
    "day": Variable.WEEKDAY,
}

WEEKDAY_NAMES: Final[tuple[str, ...]] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
WEEKDAY_WORDS: Final[dict[str, frozenset[int]]] = (
    {name: frozenset({i}) for i, name in enumerate(WEEKDAY_NAMES)}
    | {
        full: frozenset({i})
        for i, full in enumerate(
            ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
        )
    }
    | {
        "weekdays": frozenset(range(5)),
        "weekends": frozenset({5, 6}),
        "daily": frozenset(range(7)),
    }
)
ALL_DAYS: Final = frozenset(range(7))

SERVICE_STATES: Final[tuple[str, ...]] = ("connected", "cut")

ROLES: Final[tuple[str, ...]] = ("ISO", "SUPPLIER", "DSO", "RETAILER", "AGGREGATOR")


class Op(StrEnum):
    """Comparison operators, canonical spelling."""

    LT = "<"
    LE = "<="
    GT = ">"
    GE = ">="
    EQ = "="
    NE = "!="


class Measure(StrEnum):
    """For power-or-energy variables: which reading a comparison uses."""

    POWER = "power"
    ENERGY = "energy"
    NONE = "none"


@dataclass(frozen=True, slots=True)
class VarRef:
    """A variable in a condition."""

    variable: Variable


@dataclass(frozen=True, slots=True)
class ClockValue:
    """A time of day, in minutes after midnight (0-1440; 1440 is 24:00)."""

    minutes: int

    def __str__(self) -> str:
        return f"{self.minutes // 60:02d}:{self.minutes % 60:02d}"


@dataclass(frozen=True, slots=True)
class DaySet:
    """A set of weekdays (0 = Monday)."""

    days: frozenset[int]


@dataclass(frozen=True, slots=True)
class ServiceValue:
    """``connected`` or ``cut``."""

    cut: bool


type Operand = VarRef | Quantity | ClockValue | DaySet | ServiceValue


@dataclass(frozen=True, slots=True)
class Comparison:
    """``left op right``; ``measure`` says which reading a power-or-energy variable uses."""

    left: Operand
    op: Op
    right: Operand
    measure: Measure = Measure.NONE


@dataclass(frozen=True, slots=True)
class ClockRange:
    """From ``start`` to ``end`` (exclusive); wraps past midnight when end <= start."""

    start: ClockValue
    end: ClockValue


@dataclass(frozen=True, slots=True)
class Membership:
    """``Time IN 22:00-06:00`` or ``Weekday IN weekends``."""

    subject: VarRef
    within: ClockRange | DaySet


@dataclass(frozen=True, slots=True)
class Not:
    """``NOT condition``."""

    inner: Condition


@dataclass(frozen=True, slots=True)
class AllOf:
    """``a AND b AND ...`` (flattened: no item is itself an AllOf)."""

    items: tuple[Condition, ...]


@dataclass(frozen=True, slots=True)
class AnyOf:
    """``a OR b OR ...`` (flattened: no item is itself an AnyOf)."""

    items: tuple[Condition, ...]


type Condition = Comparison | Membership | Not | AllOf | AnyOf


class ActionKind(StrEnum):
    """What a meter is asked to do."""

    TURN_ON = "turn_on"
    TURN_OFF = "turn_off"
    RESTORE = "restore"
    SELL_SURPLUS = "sell_surplus"
    BUY = "buy"
    NOTIFY = "notify"
    STORE_SURPLUS = "store_surplus"
    CURTAIL_EXPORT = "curtail_export"


@dataclass(frozen=True, slots=True)
class ActionSpec:
    """An action written in a rule."""

    kind: ActionKind
    device: str | None = None
    text: str | None = None
    min_price: Quantity | None = None
    max_energy: Quantity | None = None
    max_price: Quantity | None = None
    line: int = field(default=0, compare=False)
    column: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class Rule:
    """``IF condition THEN actions [ELSE actions] ENDIF``."""

    condition: Condition
    then: tuple[ActionSpec, ...]
    otherwise: tuple[ActionSpec, ...] = ()
    line: int = field(default=0, compare=False)


class ConsumptionMode(StrEnum):
    """The ``Consumption`` flag."""

    TRUE = "true"
    FALSE = "false"
    PROGRAMMED = "programmed"


@dataclass(frozen=True, slots=True)
class Window:
    """One window of a programmed consumption schedule."""

    start: ClockValue
    end: ClockValue
    days: frozenset[int] = ALL_DAYS


@dataclass(frozen=True, slots=True)
class Consumption:
    """Whether energy may be imported from the supplier, and when."""

    mode: ConsumptionMode = ConsumptionMode.TRUE
    schedule: tuple[Window, ...] = ()


@dataclass(frozen=True, slots=True)
class Production:
    """Whether surplus may be injected into the network, and offered for sale."""

    enabled: bool = True
    sell: bool = False


@dataclass(frozen=True, slots=True)
class DemandResponse:
    """Whether the participant takes part in demand response, and what may be shed."""

    enabled: bool = False
    shed: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Party:
    """A signer: a role (ISO, SUPPLIER, DSO, ...) or a participant identifier."""

    name: str
    is_role: bool


@dataclass(frozen=True, slots=True)
class ClauseLines:
    """Where each clause was written (for explanations): its first keyword's line, or column
    (``Contract.columns``); not part of equality."""

    contract: int = 0
    valid: int = 0
    consumption: int = 0
    production: int = 0
    store: int = 0
    demand_response: int = 0
    devices: int = 0
    parties: int = 0


@dataclass(frozen=True, slots=True)
class Contract:
    """A checked contract."""

    name: str
    valid_from: datetime
    valid_to: datetime
    parties: tuple[Party, ...]
    consumption: Consumption = Consumption()
    production: Production = Production()
    store: bool = False
    demand_response: DemandResponse = DemandResponse()
    devices: tuple[str, ...] | None = None
    rules: tuple[Rule, ...] = ()
    lines: ClauseLines = field(default=ClauseLines(), compare=False)
    columns: ClauseLines = field(default=ClauseLines(), compare=False)

    def controlled_devices(self) -> tuple[str, ...]:
        """Devices this contract controls: the declared ones, else those its actions name.

        In first-mention order, without repeats.
        """
        if self.devices is not None:
            return self.devices
        seen: dict[str, None] = {}
        for device in self.demand_response.shed:
            seen.setdefault(device, None)
        for rule in self.rules:
            for action in (*rule.then, *rule.otherwise):
                if action.device is not None:
                    seen.setdefault(action.device, None)
        return tuple(seen)

    def shed_devices(self) -> tuple[str, ...]:
        """What demand response turns off: the ``shed`` list, else every controlled device."""
        if self.demand_response.shed:
            return self.demand_response.shed
        return self.controlled_devices()
