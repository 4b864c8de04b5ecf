"""Tariff files: TOML, strictly checked, every price converted exactly to 10^-4 MXN/kWh.

A tariff is TOML (read with the standard library's ``tomllib``, numbers parsed
as :class:`~decimal.Decimal`, so ``2.345`` is exactly 2.345 and never a binary
float). Two kinds exist:

* ``time_of_use``: named periods (``base``, ``intermediate``, ``peak``, ...)
  with their prices, and a schedule that gives every 15-minute slot of every
  weekday of every season exactly one period, by weekday sets and local clock
  ranges (``from = "18:00"``, ``to = "22:00"``);
* ``block``: consumption blocks per billing month (``basic`` up to 150 kWh,
  ``intermediate`` up to 300 kWh, ``excess`` beyond), as in the national
  supplier's residential tariffs 1 and 1A-1F. A price signal carries one
  import price per interval for the whole neighbourhood, so the signal uses
  the *marginal block of a reference household*: the block that holds the
  next kWh of a household that has already used ``reference_kwh`` kWh this
  month (the first block whose limit is above ``reference_kwh``, or the open
  last block). The full block table is published as the tariff's metadata
  (``GET /api/v1/operator/tariff``) for billing per participant.

Seasons (``[[seasons]]`` with ``months``) are optional; without them the year
is one season, ``all_year``. The time zone is an IANA name (default
``America/Mexico_City``); slots are classified by the local clock at the
interval's start. Listed ``holidays`` use the schedule of ``holidays_as``.

Every problem raises :class:`TariffError` naming the file, the key path
(``periods.peak.import_price``, ``schedule[2].from``) and what is wrong. The
format is documented in ``docs/concentrator.md``; examples live in
``docs/tariffs/``.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ledger_core.types import codec
from ledger_core.types.tx import MAX_PRICE

PRICE_DECIMALS: Final = 4
PRICE_SCALE: Final = 10**PRICE_DECIMALS
DEFAULT_TIMEZONE: Final = "America/Mexico_City"
SLOT_MINUTES: Final = 15
SLOTS_PER_DAY: Final = 24 * 60 // SLOT_MINUTES
WEEKDAYS: Final = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAY_GROUPS: Final[Mapping[str, tuple[int, ...]]] = {
    "weekdays": (0, 1, 2, 3, 4),
    "weekend": (5, 6),
    "all": (0, 1, 2, 3, 4, 5, 6),
}
ALL_YEAR: Final = "all_year"
MAX_KWH: Final = 10**7
NAME_RE: Final = re.compile(r"[a-z][a-z0-9_]{0,31}")
CLOCK_RE: Final = re.compile(r"([0-9]{2}):([0-9]{2})")


class TariffError(ValueError):
    """A tariff that cannot be used: ``source`` (the file), ``path`` (the key) and why."""

    def __init__(self, source: str, path: str, message: str) -> None:
        self.source = source
        self.path = path
        self.message = message
        where = f"{source}: {path}" if path else source
        super().__init__(f"{where}: {message}")


class PathError(ValueError):
    """A bad value at a key path (``market_band.below``); :class:`TariffError` adds the file."""

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        self.message = message
        super().__init__(f"{path}: {message}")


# -- exact prices -------------------------------------------------------------------


def price_units(value: object, path: str = "price", low: int = 0, high: int = MAX_PRICE) -> int:
    """MXN/kWh (a Decimal, int, or decimal string) as an integer of 10^-4 MXN/kWh.

    Exact or an error: ``2.3456`` is 23456, ``2.34560`` too, ``2.34567`` is
    refused (the ledger cannot represent it), and floats are refused because
    they are not the number that was written.
    """
    if isinstance(value, bool) or not isinstance(value, (int, str, Decimal)):
        raise PathError(path, "must be a number of MXN/kWh such as 2.35")
    if isinstance(value, str):
        try:
            number = Decimal(value.strip())
        except ArithmeticError:
            raise PathError(path, f"{value!r} is not a number of MXN/kWh") from None
    else:
        number = Decimal(value)
    if not number.is_finite():
        raise PathError(path, "must be a finite number")
    sign, digits, exponent = number.as_tuple()
    assert isinstance(exponent, int)
    # Exact integer arithmetic on the digits (Decimal arithmetic rounds to 28
    # digits): drop trailing zeros, then the exponent says everything.
    significant = list(digits)
    while len(significant) > 1 and significant[-1] == 0:
        significant.pop()
        exponent += 1
    if significant == [0]:
        units = 0
    elif len(significant) + exponent > 24:
        raise PathError(path, f"must be between {_shown(low)} and {_shown(high)} MXN/kWh")
    elif exponent < -PRICE_DECIMALS:
        raise PathError(
            path, f"{number!s:.40} has more than {PRICE_DECIMALS} decimal places (10^-4 MXN/kWh)"
        )
    else:
        units = int("".join(map(str, significant))) * 10 ** (exponent + PRICE_DECIMALS)
    units = -units if sign else units
    if not low <= units <= high:
        raise PathError(path, f"must be between {_shown(low)} and {_shown(high)} MXN/kWh")
    return units


def price_decimal(units: int) -> Decimal:
    """An integer of 10^-4 MXN/kWh as the exact Decimal of MXN/kWh."""
    return Decimal(units).scaleb(-PRICE_DECIMALS)


def format_price(units: int) -> str:
    """``25000`` as ``"2.5000"`` (MXN/kWh, four decimals)."""
    sign = "-" if units < 0 else ""
    whole, frac = divmod(abs(units), PRICE_SCALE)
    return f"{sign}{whole}.{frac:04d}"


def _shown(units: int) -> str:
    return format_price(units).rstrip("0").rstrip(".")


# -- the model --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Prices:
    """Import price, export price and network fee, in 10^-4 MXN/kWh."""

    import_price: int
    export_price: int
    network_fee: int

    def to_json(self) -> dict[str, codec.Value]:
        return {
            "import_price": self.import_price,
            "export_price": self.export_price,
            "network_fee": self.network_fee,
        }


@dataclass(frozen=True, slots=True)
class Rate:
    """The tariff's prices for one interval, and which season and period (or block) set them."""

    season: str
    period: str
    prices: Prices


@dataclass(frozen=True, slots=True)
class Season:
    """Months of the year that share a schedule or a block table."""

    name: str
    months: tuple[int, ...]
    reference_kwh: int | None = None


@dataclass(frozen=True, slots=True)
class Block:
    """A consumption block: up to ``up_to_kwh`` kWh a month (None: the open last block)."""

    name: str
    up_to_kwh: int | None
    import_price: int


@dataclass(frozen=True, slots=True)
class MarketBand:
    """How far market results may move the import price below and above the tariff's."""

    below: int
    above: int


@dataclass(frozen=True, slots=True)
class Tariff:
    """A checked tariff. Use :func:`load_tariff` or :func:`parse_tariff` to build one."""

    name: str
    kind: str
    timezone: str
    export_price: int
    network_fee: int
    seasons: tuple[Season, ...]
    periods: Mapping[str, Prices]
    # time_of_use: (season, weekday 0-6) -> the period of each of the day's 96 slots
    days: Mapping[tuple[str, int], tuple[str, ...]]
    blocks: Mapping[str, tuple[Block, ...]]
    holidays: frozenset[date]
    holidays_as: int | None
    market_band: MarketBand | None
    source: str = "<tariff>"

    @property
    def zone(self) -> ZoneInfo:
        """The tariff's time zone."""
        return ZoneInfo(self.timezone)

    def local(self, when: int) -> datetime:
        """The local civil time of a Unix time."""
        return datetime.fromtimestamp(when, UTC).astimezone(self.zone)

    def season_of(self, day: date) -> Season:
        """The season a local date belongs to."""
        for season in self.seasons:
            if day.month in season.months:
                return season
        raise AssertionError("every month belongs to a season")  # checked when parsed

    def weekday_of(self, day: date) -> int:
        """The weekday whose schedule applies (holidays count as ``holidays_as``)."""
        if self.holidays_as is not None and day in self.holidays:
            return self.holidays_as
        return day.weekday()

    def rate_at(self, when: int) -> Rate:
        """The prices of the interval that starts (or the instant that is) at ``when``."""
        local = self.local(when)
        season = self.season_of(local.date())
        if self.kind == "block":
            block = self.marginal_block(season)
            prices = Prices(block.import_price, self.export_price, self.network_fee)
            return Rate(season.name, block.name, prices)
        slot = (local.hour * 60 + local.minute) // SLOT_MINUTES
        period = self.days[(season.name, self.weekday_of(local.date()))][slot]
        return Rate(season.name, period, self.periods[period])

    def marginal_block(self, season: Season) -> Block:
        """The block that holds the next kWh of a household at ``reference_kwh`` this month."""
        reference = season.reference_kwh
        assert reference is not None  # block tariffs always have one
        for block in self.blocks[season.name]:
            if block.up_to_kwh is None or block.up_to_kwh > reference:
                return block
        raise AssertionError("the last block is open")  # checked when parsed

    def day_bounds(self, day: date) -> tuple[int, int]:
        """Unix times of the local midnights that start and end ``day``."""
        start = datetime(day.year, day.month, day.day, tzinfo=self.zone)
        following = day + timedelta(days=1)
        end = datetime(following.year, following.month, following.day, tzinfo=self.zone)
        return int(start.timestamp()), int(end.timestamp())

    def to_json(self) -> dict[str, codec.Value]:
        """The whole tariff as published metadata (prices in 10^-4 MXN/kWh)."""
        seasons: list[codec.Value] = []
        for season in self.seasons:
            item: dict[str, codec.Value] = {"name": season.name, "months": list(season.months)}
            if self.kind == "block":
                item["reference_kwh"] = season.reference_kwh
                item["marginal_block"] = self.marginal_block(season).name
                item["blocks"] = [
                    {"name": b.name, "up_to_kwh": b.up_to_kwh, "import_price": b.import_price}
                    for b in self.blocks[season.name]
                ]
            else:
                item["schedule"] = {
                    WEEKDAYS[day]: _runs(self.days[(season.name, day)]) for day in range(7)
                }
            seasons.append(item)
        result: dict[str, codec.Value] = {
            "name": self.name,
            "kind": self.kind,
            "currency": "MXN",
            "price_unit": "1e-4 MXN/kWh",
            "timezone": self.timezone,
            "export_price": self.export_price,
            "network_fee": self.network_fee,
            "seasons": seasons,
            "holidays": [d.isoformat() for d in sorted(self.holidays)],
            "holidays_as": WEEKDAYS[self.holidays_as] if self.holidays_as is not None else None,
            "market_band": (
                {"below": self.market_band.below, "above": self.market_band.above}
                if self.market_band
                else None
            ),
        }
        if self.kind == "time_of_use":
            result["periods"] = {name: p.to_json() for name, p in sorted(self.periods.items())}
        return result


def _clock(slot: int) -> str:
    minutes = slot * SLOT_MINUTES
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _runs(slots: tuple[str, ...]) -> list[codec.Value]:
    runs: list[codec.Value] = []
    begin = 0
    for i in range(1, SLOTS_PER_DAY + 1):
        if i == SLOTS_PER_DAY or slots[i] != slots[begin]:
            runs.append({"from": _clock(begin), "to": _clock(i), "period": slots[begin]})
            begin = i
    return runs


# -- parsing ----------------------------------------------------------------------

_TOP_KEYS: Final = {
    "name",
    "currency",
    "timezone",
    "kind",
    "export_price",
    "network_fee",
    "reference_kwh",
    "holidays",
    "holidays_as",
    "market_band",
    "seasons",
    "periods",
    "schedule",
    "blocks",
}


def load_tariff(path: Path | str) -> Tariff:
    """Read and check a tariff file."""
    source = str(path)
    try:
        data = Path(path).read_bytes()
    except OSError as err:
        raise TariffError(source, "", f"cannot read: {err.strerror or err}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise TariffError(source, "", f"not UTF-8 at byte {err.start}") from None
    return parse_tariff(text, source)


def parse_tariff(text: str, source: str = "<tariff>") -> Tariff:
    """Check a tariff's TOML text; ``source`` names it in errors."""
    try:
        raw = tomllib.loads(text, parse_float=Decimal)
    except tomllib.TOMLDecodeError as err:
        raise TariffError(source, "", f"not valid TOML: {err}") from None
    try:
        return _build(raw, source)
    except PathError as problem:
        raise TariffError(source, problem.path, problem.message) from None


def _table(value: object, path: str) -> dict[str, object]:
    if not isinstance(value, dict):
        raise PathError(path, "must be a table")
    return value


def _list(value: object, path: str) -> list[object]:
    if not isinstance(value, list):
        raise PathError(path, "must be an array")
    return value


def _known(table: Mapping[str, object], path: str, required: set[str], optional: set[str]) -> None:
    prefix = f"{path}." if path else ""
    for name in sorted(required):
        if name not in table:
            raise PathError(f"{prefix}{name}", "is missing")
    for name in sorted(table):
        if name not in required | optional:
            raise PathError(f"{prefix}{name}", "is not a known key")


def _text(value: object, path: str, limit: int = 80) -> str:
    if not isinstance(value, str) or not value.strip():
        raise PathError(path, "must be a non-empty string")
    if len(value) > limit or not value.isprintable():
        raise PathError(path, f"must be printable and at most {limit} characters")
    return value


def _name(value: object, path: str) -> str:
    if not isinstance(value, str) or not NAME_RE.fullmatch(value):
        raise PathError(path, "must be a name: lower-case letters, digits and '_', at most 32")
    return value


def _integer(value: object, path: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise PathError(path, "must be a whole number")
    if not low <= value <= high:
        raise PathError(path, f"must be between {low} and {high}")
    return value


def _weekday(value: object, path: str) -> int:
    if value not in WEEKDAYS:
        raise PathError(path, "must be one of " + ", ".join(WEEKDAYS))
    return WEEKDAYS.index(str(value))


def _clock_slot(value: object, path: str, *, end: bool) -> int:
    match = CLOCK_RE.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise PathError(path, 'must be a local clock time "HH:MM"')
    hours, minutes = int(match[1]), int(match[2])
    if (hours, minutes) == (24, 0) and end:
        return SLOTS_PER_DAY
    if hours > 23 or minutes > 59:
        limit = "00:00 to 24:00" if end else "00:00 to 23:45"
        raise PathError(path, f"must be a clock time from {limit}")
    if minutes % SLOT_MINUTES:
        raise PathError(path, f"must fall on a {SLOT_MINUTES}-minute boundary")
    return (hours * 60 + minutes) // SLOT_MINUTES


def _names(
    value: object, path: str, allowed: Iterable[str], what: str, groups: Mapping[str, object]
) -> list[str]:
    items = _list(value, path)
    if not items:
        raise PathError(path, f"must list at least one {what}")
    choices = list(allowed)
    seen: list[str] = []
    for i, item in enumerate(items):
        if not isinstance(item, str) or (item not in choices and item not in groups):
            raise PathError(f"{path}[{i}]", f"must be one of {', '.join([*choices, *groups])}")
        if item in seen:
            raise PathError(f"{path}[{i}]", f"{item} is listed twice")
        seen.append(item)
    return seen


def _timezone(value: object) -> str:
    if not isinstance(value, str):
        raise PathError("timezone", "must be an IANA time zone name such as America/Mexico_City")
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise PathError(
            "timezone", f"{value!r} is not an IANA time zone name (e.g. America/Mexico_City)"
        ) from None
    return value


def _seasons(raw: object, reference: int | None, block: bool) -> tuple[Season, ...]:
    if raw is None:
        if block and reference is None:
            raise PathError("reference_kwh", "is missing (the block of a reference household)")
        return (Season(ALL_YEAR, tuple(range(1, 13)), reference if block else None),)
    items = _list(raw, "seasons")
    if not items:
        raise PathError("seasons", "must list at least one season (or be left out)")
    seasons: list[Season] = []
    owner: dict[int, str] = {}
    for i, item in enumerate(items):
        path = f"seasons[{i}]"
        table = _table(item, path)
        _known(table, path, {"name", "months"}, {"reference_kwh"} if block else set())
        name = _name(table["name"], f"{path}.name")
        if any(s.name == name for s in seasons):
            raise PathError(f"{path}.name", f"season {name} is defined twice")
        months: list[int] = []
        for j, month in enumerate(_list(table["months"], f"{path}.months")):
            number = _integer(month, f"{path}.months[{j}]", 1, 12)
            if number in owner:
                raise PathError(
                    f"{path}.months[{j}]", f"month {number} is already in season {owner[number]}"
                )
            owner[number] = name
            months.append(number)
        if not months:
            raise PathError(f"{path}.months", "must list at least one month (1-12)")
        own = table.get("reference_kwh")
        season_reference = (
            _integer(own, f"{path}.reference_kwh", 0, MAX_KWH) if own is not None else reference
        )
        if block and season_reference is None:
            raise PathError(
                f"{path}.reference_kwh", "is missing here and at the top level (reference_kwh)"
            )
        seasons.append(Season(name, tuple(sorted(months)), season_reference))
    missing = sorted(set(range(1, 13)) - set(owner))
    if missing:
        raise PathError("seasons", f"month {missing[0]} belongs to no season")
    return tuple(seasons)


def _price(value: object, path: str) -> int:
    """A price written in the file: a TOML number (a quoted string is a mistake there)."""
    if isinstance(value, str):
        raise PathError(path, "must be a number of MXN/kWh without quotes, such as 2.35")
    return price_units(value, path)


def _prices(table: Mapping[str, object], path: str, export_price: int, network_fee: int) -> Prices:
    return Prices(
        _price(table["import_price"], f"{path}.import_price"),
        _price(table["export_price"], f"{path}.export_price")
        if "export_price" in table
        else export_price,
        _price(table["network_fee"], f"{path}.network_fee")
        if "network_fee" in table
        else network_fee,
    )


def _time_of_use(
    raw: Mapping[str, object], seasons: tuple[Season, ...], export_price: int, network_fee: int
) -> tuple[dict[str, Prices], dict[tuple[str, int], tuple[str, ...]]]:
    if "periods" not in raw:
        raise PathError("periods", "is missing (a time_of_use tariff names its periods)")
    if "schedule" not in raw:
        raise PathError("schedule", "is missing (when each period applies)")
    periods: dict[str, Prices] = {}
    for name, value in _table(raw["periods"], "periods").items():
        path = f"periods.{name}"
        _name(name, path)
        table = _table(value, path)
        _known(table, path, {"import_price"}, {"export_price", "network_fee"})
        periods[name] = _prices(table, path, export_price, network_fee)
    if not periods:
        raise PathError("periods", "must define at least one period")
    season_names = [s.name for s in seasons]
    grid: dict[tuple[str, int], list[tuple[int, str] | None]] = {
        (s, d): [None] * SLOTS_PER_DAY for s in season_names for d in range(7)
    }
    entries = _list(raw["schedule"], "schedule")
    used: set[str] = set()
    for i, item in enumerate(entries):
        path = f"schedule[{i}]"
        table = _table(item, path)
        _known(table, path, {"days", "from", "to", "period"}, {"seasons"})
        day_names = _names(table["days"], f"{path}.days", WEEKDAYS, "weekday", DAY_GROUPS)
        days = sorted({d for n in day_names for d in DAY_GROUPS.get(n) or (WEEKDAYS.index(n),)})
        which = (
            _names(table["seasons"], f"{path}.seasons", season_names, "season", {})
            if "seasons" in table
            else season_names
        )
        begin = _clock_slot(table["from"], f"{path}.from", end=False)
        end = _clock_slot(table["to"], f"{path}.to", end=True)
        if end <= begin:
            raise PathError(
                f"{path}.to", "must be after from; split a range that crosses midnight in two"
            )
        period = table["period"]
        if not isinstance(period, str) or period not in periods:
            raise PathError(f"{path}.period", "must name a period defined under [periods]")
        used.add(period)
        for season in which:
            for day in days:
                slots = grid[(season, day)]
                for slot in range(begin, end):
                    other = slots[slot]
                    if other is not None:
                        raise PathError(
                            path,
                            f"overlaps schedule[{other[0]}] on {WEEKDAYS[day]} at {_clock(slot)}"
                            + (f" in season {season}" if len(season_names) > 1 else ""),
                        )
                    slots[slot] = (i, period)
    for (season, day), slots in grid.items():
        for slot, owner in enumerate(slots):
            if owner is None:
                where = f" in season {season}" if len(season_names) > 1 else ""
                raise PathError("schedule", f"{WEEKDAYS[day]} {_clock(slot)}{where} has no period")
    unused = sorted(set(periods) - used)
    if unused:
        raise PathError(f"periods.{unused[0]}", "is not used by any schedule entry")
    days_out = {key: tuple(s[1] for s in slots if s is not None) for key, slots in grid.items()}
    return periods, days_out


def _blocks(raw: Mapping[str, object], seasons: tuple[Season, ...]) -> dict[str, tuple[Block, ...]]:
    if "blocks" not in raw:
        raise PathError("blocks", "is missing (a block tariff lists its consumption blocks)")
    season_names = [s.name for s in seasons]
    tables: dict[str, list[tuple[str, Block]]] = {name: [] for name in season_names}
    for i, item in enumerate(_list(raw["blocks"], "blocks")):
        path = f"blocks[{i}]"
        table = _table(item, path)
        _known(table, path, {"name", "import_price"}, {"up_to_kwh", "seasons"})
        name = _name(table["name"], f"{path}.name")
        limit = (
            _integer(table["up_to_kwh"], f"{path}.up_to_kwh", 1, MAX_KWH)
            if "up_to_kwh" in table
            else None
        )
        price = _price(table["import_price"], f"{path}.import_price")
        which = (
            _names(table["seasons"], f"{path}.seasons", season_names, "season", {})
            if "seasons" in table
            else season_names
        )
        for season in which:
            existing = tables[season]
            if any(b.name == name for _, b in existing):
                raise PathError(f"{path}.name", f"block {name} is defined twice for {season}")
            if existing:
                last_path, last = existing[-1]
                if last.up_to_kwh is None:
                    raise PathError(
                        path, f"comes after the open block {last_path} of season {season}"
                    )
                if limit is not None and limit <= last.up_to_kwh:
                    raise PathError(
                        f"{path}.up_to_kwh",
                        f"must be above {last.up_to_kwh} kWh ({last_path}); blocks ascend",
                    )
            existing.append((path, Block(name, limit, price)))
    result: dict[str, tuple[Block, ...]] = {}
    for season, items in tables.items():
        if not items:
            raise PathError("blocks", f"season {season} has no blocks")
        if items[-1][1].up_to_kwh is not None:
            raise PathError(
                f"{items[-1][0]}.up_to_kwh",
                f"the last block of season {season} must be open (leave up_to_kwh out)",
            )
        result[season] = tuple(block for _, block in items)
    return result


def _build(raw: dict[str, object], source: str) -> Tariff:
    _known(raw, "", {"name", "currency", "kind", "export_price", "network_fee"}, _TOP_KEYS)
    name = _text(raw["name"], "name")
    if raw["currency"] != "MXN":
        raise PathError("currency", 'must be "MXN" (the ledger settles in centavos)')
    kind = raw["kind"]
    if kind not in ("time_of_use", "block"):
        raise PathError("kind", 'must be "time_of_use" or "block"')
    block = kind == "block"
    timezone = _timezone(raw.get("timezone", DEFAULT_TIMEZONE))
    export_price = _price(raw["export_price"], "export_price")
    network_fee = _price(raw["network_fee"], "network_fee")
    if block:
        for key in ("periods", "schedule"):
            if key in raw:
                raise PathError(key, "belongs to time_of_use tariffs, not block tariffs")
    else:
        for key in ("blocks", "reference_kwh"):
            if key in raw:
                raise PathError(key, "belongs to block tariffs, not time_of_use tariffs")
    reference = (
        _integer(raw["reference_kwh"], "reference_kwh", 0, MAX_KWH)
        if "reference_kwh" in raw
        else None
    )
    seasons = _seasons(raw.get("seasons"), reference, block)
    periods: dict[str, Prices] = {}
    days: dict[tuple[str, int], tuple[str, ...]] = {}
    blocks: dict[str, tuple[Block, ...]] = {}
    if block:
        blocks = _blocks(raw, seasons)
    else:
        periods, days = _time_of_use(raw, seasons, export_price, network_fee)
    holidays: set[date] = set()
    for i, item in enumerate(_list(raw.get("holidays", []), "holidays")):
        if not isinstance(item, date) or isinstance(item, datetime):
            raise PathError(f"holidays[{i}]", "must be a date such as 2026-09-16 (no quotes)")
        if item in holidays:
            raise PathError(f"holidays[{i}]", f"{item} is listed twice")
        holidays.add(item)
    holidays_as = (
        _weekday(raw["holidays_as"], "holidays_as") if "holidays_as" in raw else None
    )  # fmt: skip
    if holidays and holidays_as is None:
        raise PathError("holidays_as", "is missing: the weekday whose schedule holidays follow")
    if block and holidays_as is not None:
        raise PathError("holidays_as", "has no effect on a block tariff; leave it out")
    band = None
    if "market_band" in raw:
        table = _table(raw["market_band"], "market_band")
        _known(table, "market_band", {"below", "above"}, set())
        band = MarketBand(
            _price(table["below"], "market_band.below"),
            _price(table["above"], "market_band.above"),
        )
    return Tariff(
        name=name,
        kind=str(kind),
        timezone=timezone,
        export_price=export_price,
        network_fee=network_fee,
        seasons=seasons,
        periods=periods,
        days=days,
        blocks=blocks,
        holidays=frozenset(holidays),
        holidays_as=holidays_as,
        market_band=band,
        source=source,
    )
