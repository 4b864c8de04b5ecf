"""Energy-saving advice with the money at stake, from a home's own readings.

Every rule looks at the home's 15-minute history and the prices it paid, and
returns concrete items ranked by money at stake (centavos, integers). Prices
are the ledger's: 10^-4 MXN/kWh per interval, so ``Wh x price / 100,000`` is
centavos.

The *marginal price* of an interval is what one more (or one less) watt-hour
used then is worth: the import price when the home imported in that interval,
otherwise the export price it gives up (its surplus went to the grid). Energy
that moves from one time to another is costed exactly against the home's net
position: adding ``e`` Wh to an interval with surplus ``s`` costs
``min(e, s)`` at the export price and the rest at the import price; taking it
away saves the import first, then returns to exporting.

Each item's money is for the period it names (``period_days``: 30, or 365 for
standby); items are ranked by money per 30 days. Rules (windows end where the
history ends):

- ``bill_hours`` -- the three consecutive local hours with the highest import
  cost over the last 30 days, and what they cost.
- ``top_appliance`` -- the appliance (with its own sensor) that cost the most
  over the last 30 days, at the marginal price; the evidence lists them all.
- ``shift:<appliance>`` -- each run of a shiftable appliance (washing machine,
  dishwasher, dryer, water pump...; more than 100 W on average per quarter-hour,
  contiguous) in the last 30 days is moved, with its own energy profile, to the
  cheapest start on the same day between 07:00 and 22:00; the money is the sum
  of what each run would have saved.
- ``contract_threshold:<contract>:<condition>`` -- a contract whose price condition never
  held in the last 30 days; the evidence gives the price range and a threshold
  that would have held in a tenth of the intervals; the money is the shift
  saving of the devices it controls when they have sensors (else 0).
- ``standby`` -- the load that never goes off: the median over nights of the
  lowest quarter-hour between 00:00 and 05:00 (fridges cycling included), and
  what a year of it costs at the mean marginal price. Shown from 20 W.
- ``self_consumption`` -- energy exported in the last 30 days and how much more
  it would have been worth used at home (import minus export price), an upper
  bound on what moving loads into sunny hours can save.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Final, Literal

import numpy as np
import numpy.typing as npt

from contracts import Contract
from contracts.model import AllOf, Comparison, Op, Quantity, Variable, VarRef
from ledger_core.analytics.localtime import (
    DAY,
    SLOT,
    SLOTS_PER_DAY,
    FloatArray,
    IntArray,
    local_times,
    whole,
)
from ledger_core.analytics.store import Series

MONTH_DAYS: Final = 30
YEAR_HOURS: Final = 8760
RUN_THRESHOLD_WH: Final = 25.0  # a quarter-hour above 100 W on average
STANDBY_MIN_W: Final = 20.0
SHIFT_WINDOW: Final = (7, 22)  # local hours a moved run may occupy
SHIFTABLE: Final = (
    "lavadora", "lavavajillas", "secadora", "bomba", "washer", "washing",
    "dishwasher", "dryer", "pump",
)  # fmt: skip
PRICE_SCALE: Final = Decimal(10_000)  # 10^-4 MXN/kWh per MXN/kWh

type Evidence = dict[str, int | float | str | list[dict[str, int | float | str]]]


def centavos(wh: FloatArray | float, price: FloatArray | float) -> float:
    """Centavos of ``wh`` at ``price`` (10^-4 MXN/kWh), summed when arrays."""
    return float(np.sum(np.asarray(wh) * np.asarray(price))) / 100_000.0


def mxn(amount: int) -> str:
    """Centavos as ``1,234.56 MXN``."""
    return f"{amount / 100:,.2f} MXN"


def price_text(price: float) -> str:
    """A ledger price as MXN/kWh with two decimals."""
    return f"{price / 10_000:.2f} MXN/kWh"


@dataclass(frozen=True, slots=True)
class Advice:
    """One piece of advice: what, why, and how much money it is about."""

    id: str
    title_en: str
    title_es: str
    detail_en: str
    detail_es: str
    centavos: int
    evidence: Evidence = field(default_factory=dict)
    period_days: int = MONTH_DAYS  # the money is per this many days

    @property
    def monthly_centavos(self) -> float:
        """The money at stake per 30 days, which ranks the advice."""
        return self.centavos * MONTH_DAYS / self.period_days

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "title": {"en": self.title_en, "es": self.title_es},
            "detail": {"en": self.detail_en, "es": self.detail_es},
            "centavos": self.centavos,
            "mxn": round(self.centavos / 100, 2),
            "period_days": self.period_days,
            "evidence": self.evidence,
        }


@dataclass(frozen=True, slots=True)
class Tariff:
    """Import and export prices (10^-4 MXN/kWh) for each interval of a grid."""

    import_price: FloatArray
    export_price: FloatArray

    @staticmethod
    def flat(n: int, import_price: int, export_price: int) -> Tariff:
        return Tariff(np.full(n, float(import_price)), np.full(n, float(export_price)))

    @staticmethod
    def from_signals(
        t: IntArray,
        signals: Mapping[int, tuple[int, int]],
        default: tuple[int, int],
    ) -> Tariff:
        """Per-interval prices from price signals keyed by interval start.

        An interval without its own signal takes the latest earlier one in the
        range, and ``default`` before the first.
        """
        imp = np.full(t.size, float(default[0]))
        exp = np.full(t.size, float(default[1]))
        if signals and t.size:
            keys = np.array(sorted(signals), dtype=np.int64)
            values = np.array([signals[int(k)] for k in keys], dtype=np.float64)
            position = np.searchsorted(keys, t, side="right") - 1
            known = position >= 0
            imp[known] = values[position[known], 0]
            exp[known] = values[position[known], 1]
        return Tariff(imp, exp)


@dataclass(frozen=True, slots=True)
class PriceRule:
    """A contract's price condition and the devices it acts on."""

    contract: str
    variable: Literal["import_price", "export_price"]
    op: Literal["<", "<=", ">", ">="]
    threshold: int  # 10^-4 MXN/kWh
    devices: tuple[str, ...] = ()

    def holds(self, prices: FloatArray) -> npt.NDArray[np.bool_]:
        """Where the condition is true, interval by interval."""
        limit = float(self.threshold)
        match self.op:
            case "<":
                return prices < limit
            case "<=":
                return prices <= limit
            case ">":
                return prices > limit
            case ">=":
                return prices >= limit


def price_rules(contract: Contract) -> list[PriceRule]:
    """The price conditions of a contract's rules, alone or within an AND.

    ``IF Price < 3 THEN TURN ON DEVICE 'Lavadora'`` gives one rule on the
    import price with threshold 30,000 and device ``Lavadora``. Conditions
    under OR or NOT are skipped: their price part is not necessary for the rule.
    """
    variables: dict[Variable, Literal["import_price", "export_price"]] = {
        Variable.PRICE: "import_price",
        Variable.IMPORT_PRICE: "import_price",
        Variable.EXPORT_PRICE: "export_price",
    }
    flipped = {Op.LT: ">", Op.LE: ">=", Op.GT: "<", Op.GE: "<="}
    rules = []
    for rule in contract.rules:
        parts = rule.condition.items if isinstance(rule.condition, AllOf) else (rule.condition,)
        devices = tuple(a.device for a in rule.then if a.device is not None)
        for part in parts:
            if not isinstance(part, Comparison) or part.op not in flipped:
                continue
            left, right = part.left, part.right
            if isinstance(left, VarRef) and isinstance(right, Quantity):
                variable, number, op = left.variable, right, str(part.op)
            elif isinstance(right, VarRef) and isinstance(left, Quantity):
                variable, number, op = right.variable, left, flipped[part.op]
            else:
                continue
            if variable not in variables:
                continue
            threshold = int((number.base * PRICE_SCALE).to_integral_value())
            rules.append(
                PriceRule(contract.name, variables[variable], op, threshold, devices)  # type: ignore[arg-type]
            )
    return rules


@dataclass(frozen=True, slots=True)
class Inputs:
    """What the rules look at: a history grid ending at ``now``, its prices, appliances."""

    series: Series
    tariff: Tariff
    timezone: str
    appliances: Mapping[str, FloatArray] = field(default_factory=dict)
    rules: Sequence[PriceRule] = ()
    shiftable: Sequence[str] = SHIFTABLE

    def __post_init__(self) -> None:
        n = self.series.t.size
        if self.tariff.import_price.size != n or self.tariff.export_price.size != n:
            raise ValueError("tariff: needs one price per interval of the series")
        for name, values in self.appliances.items():
            if values.size != n:
                raise ValueError(f"appliances.{name}: needs one value per interval")


def _nan0(values: FloatArray) -> FloatArray:
    result: FloatArray = np.where(np.isnan(values), 0.0, values)
    return result


@dataclass(frozen=True, slots=True)
class _Month:
    """The last 30 days of the inputs, NaN-free, with local hours and days."""

    imp: FloatArray
    exp: FloatArray
    import_price: FloatArray
    export_price: FloatArray
    marginal: FloatArray
    hours: IntArray
    days: IntArray
    slots: IntArray
    appliances: dict[str, FloatArray]

    @staticmethod
    def of(inputs: Inputs) -> _Month:
        n = inputs.series.t.size
        first = max(0, n - MONTH_DAYS * SLOTS_PER_DAY)
        s = inputs.series
        imp, exp = _nan0(s.import_wh[first:]), _nan0(s.export_wh[first:])
        ip = inputs.tariff.import_price[first:]
        ep = inputs.tariff.export_price[first:]
        local = local_times(s.t[first:], inputs.timezone)
        return _Month(
            imp,
            exp,
            ip,
            ep,
            np.where(imp > 0, ip, ep),
            (local % DAY) // 3600,
            local // DAY,
            (local % DAY) // SLOT,
            {name: _nan0(v[first:]) for name, v in inputs.appliances.items()},
        )


def bill_hours(month: _Month) -> Advice | None:
    """The three consecutive local hours that cost the most."""
    cost = np.bincount(month.hours, weights=month.imp * month.import_price, minlength=24) / 1e5
    total = float(cost.sum())
    if total <= 0:
        return None
    window = np.array([cost[[(h + k) % 24 for k in range(3)]].sum() for h in range(24)])
    start = int(np.argmax(window))
    amount = round(float(window[start]))
    share = 100.0 * float(window[start]) / total
    begin, finish = f"{start:02d}:00", f"{(start + 3) % 24:02d}:00"
    return Advice(
        "bill_hours",
        f"Most of your bill goes from {begin} to {finish}: {mxn(amount)} in 30 days",
        f"La mayor parte de tu factura se va de {begin} a {finish}: {mxn(amount)} en 30 días",
        f"{share:.0f} % of the {mxn(round(total))} you paid for imported energy in the last 30"
        " days was spent in these three hours. Moving flexible loads out of them lowers it.",
        f"El {share:.0f} % de los {mxn(round(total))} que pagaste por energía de la red en los"
        " últimos 30 días se gastó en estas tres horas. Mover cargas flexibles fuera de ellas"
        " lo reduce.",
        amount,
        {
            "start_hour": start,
            "share_percent": round(share, 1),
            "import_cost_centavos": round(total),
            "cost_by_hour_centavos": whole(cost),  # type: ignore[dict-item]
        },
    )


def top_appliance(month: _Month) -> Advice | None:
    """The appliance that cost the most, with every appliance in the evidence."""
    rows = sorted(
        (
            (centavos(wh, month.marginal), float(wh.sum()), name)
            for name, wh in month.appliances.items()
            if wh.sum() > 0
        ),
        reverse=True,
    )
    if not rows:
        return None
    cost, energy, name = rows[0]
    amount = round(cost)
    total = sum(r[0] for r in rows)
    return Advice(
        "top_appliance",
        f"{name} is your most expensive appliance: {mxn(amount)} in the last 30 days",
        f"{name} es tu aparato más caro: {mxn(amount)} en los últimos 30 días",
        f"It used {energy / 1000:.1f} kWh, {100 * cost / total:.0f} % of what the appliances"
        " with their own sensor cost.",
        f"Consumió {energy / 1000:.1f} kWh, el {100 * cost / total:.0f} % de lo que costaron"
        " los aparatos con sensor propio.",
        amount,
        {
            "appliances": [
                {"name": n, "energy_wh": round(e), "centavos": round(c)} for c, e, n in rows
            ]
        },
    )


@dataclass(frozen=True, slots=True)
class ShiftResult:
    """What moving an appliance's runs to their cheapest start would have saved."""

    appliance: str
    runs: int
    energy_wh: float
    actual_centavos: float
    best_centavos: float
    best_hours: list[int]  # local start hour of each run's cheapest position

    @property
    def saving(self) -> float:
        return self.actual_centavos - self.best_centavos


def runs_of(energy: FloatArray, threshold: float = RUN_THRESHOLD_WH) -> list[tuple[int, int]]:
    """``[start, end)`` index ranges where ``energy`` stays at or above ``threshold``."""
    on = np.concatenate([[False], energy >= threshold, [False]])
    edges = np.flatnonzero(on[1:] != on[:-1])
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True)]


def shift_saving(month: _Month, name: str) -> ShiftResult:
    """Move each run of ``name`` to its cheapest start on the same day (07:00-22:00)."""
    energy = month.appliances[name]
    actual_total = best_total = moved = 0.0
    best_hours: list[int] = []
    runs = runs_of(energy)
    for start, end in runs:
        profile = energy[start:end]
        length = end - start
        # Take the run away: it was covered by imports first, then by forgone export.
        from_import = np.minimum(profile, month.imp[start:end])
        from_surplus = profile - from_import
        actual = centavos(from_import, month.import_price[start:end]) + centavos(
            from_surplus, month.export_price[start:end]
        )
        surplus = month.exp.copy()
        surplus[start:end] += from_surplus
        day = month.days[start]
        candidates = [
            s
            for s in whole(np.flatnonzero(month.days == day))
            if s + length <= month.days.size
            and month.days[s + length - 1] == day
            and month.hours[s] >= SHIFT_WINDOW[0]
            and month.hours[s + length - 1] < SHIFT_WINDOW[1]
        ]
        best, best_start = actual, start
        for s in candidates:
            free = np.minimum(profile, surplus[s : s + length])
            cost = centavos(free, month.export_price[s : s + length]) + centavos(
                profile - free, month.import_price[s : s + length]
            )
            if cost < best - 1e-9:
                best, best_start = cost, s
        actual_total += actual
        best_total += best
        moved += float(profile.sum())
        best_hours.append(int(month.hours[best_start]))
    return ShiftResult(name, len(runs), moved, actual_total, best_total, best_hours)


def shift_advice(result: ShiftResult) -> Advice | None:
    """The advice for one shift result (None when nothing would be saved)."""
    amount = round(result.saving)
    if result.runs == 0 or amount <= 0:
        return None
    hour = max(set(result.best_hours), key=result.best_hours.count)
    name = result.appliance
    return Advice(
        f"shift:{name}",
        f"Run {name} around {hour:02d}:00: it would have saved {mxn(amount)} in 30 days",
        f"Usa {name} hacia las {hour:02d}:00: habrías ahorrado {mxn(amount)} en 30 días",
        f"{result.runs} runs ({result.energy_wh / 1000:.1f} kWh) cost"
        f" {mxn(round(result.actual_centavos))}; at the cheapest time of the same day between"
        f" 07:00 and 22:00 they would have cost {mxn(round(result.best_centavos))}.",
        f"{result.runs} usos ({result.energy_wh / 1000:.1f} kWh) costaron"
        f" {mxn(round(result.actual_centavos))}; a la hora más barata del mismo día entre las"
        f" 07:00 y las 22:00 habrían costado {mxn(round(result.best_centavos))}.",
        amount,
        {
            "runs": result.runs,
            "energy_wh": round(result.energy_wh),
            "actual_centavos": round(result.actual_centavos),
            "best_centavos": round(result.best_centavos),
            "suggested_hour": hour,
        },
    )


def contract_threshold(
    month: _Month, rule: PriceRule, shifts: Mapping[str, ShiftResult]
) -> Advice | None:
    """A contract whose price condition never held in the last 30 days."""
    prices = month.import_price if rule.variable == "import_price" else month.export_price
    if prices.size == 0 or rule.holds(prices).any():
        return None
    cheap_side = rule.op in ("<", "<=")
    suggestion = float(np.quantile(prices, 0.1 if cheap_side else 0.9))
    would = int(
        (rule.holds(prices) | (prices <= suggestion if cheap_side else prices >= suggestion)).sum()
    )
    amount = round(sum(shifts[d].saving for d in rule.devices if d in shifts))
    word = "Price" if rule.variable == "import_price" else "ExportPrice"
    condition = f"{word} {rule.op} {rule.threshold / 10_000:.2f}"
    devices = ", ".join(rule.devices) or "its actions"
    return Advice(
        f"contract_threshold:{rule.contract}:{condition.replace(' ', '')}",
        f"Contract '{rule.contract}' never acted: {condition} did not happen in 30 days",
        f"El contrato '{rule.contract}' nunca actuó: {condition} no ocurrió en 30 días",
        f"Prices went from {price_text(float(prices.min()))} to {price_text(float(prices.max()))}."
        f" With a threshold of {suggestion / 10_000:.2f} the rule would have held in {would}"
        f" quarter-hours and run {devices}.",
        f"Los precios fueron de {price_text(float(prices.min()))} a"
        f" {price_text(float(prices.max()))}. Con un umbral de {suggestion / 10_000:.2f} la regla"
        f" se habría cumplido en {would} cuartos de hora y habría activado {devices}.",
        amount,
        {
            "contract": rule.contract,
            "condition": condition,
            "min_price": int(prices.min()),
            "max_price": int(prices.max()),
            "suggested_threshold": round(suggestion),
            "intervals_with_suggestion": would,
        },
    )


def standby(inputs: Inputs) -> Advice | None:
    """The load that never goes off, and what a year of it costs."""
    s = inputs.series
    local = local_times(s.t, inputs.timezone)
    night = ((local % DAY) // 3600 < 5) & ~np.isnan(s.consumption)
    nights, which, counts = np.unique(local[night] // DAY, return_inverse=True, return_counts=True)
    lowest = np.full(nights.size, np.inf)
    np.minimum.at(lowest, which, s.consumption[night] * 4.0)  # Wh per quarter-hour -> W
    minima = lowest[counts >= 16]  # at least 4 of the 5 hours measured
    if minima.size < 3:
        return None
    level = float(np.median(minima))
    if level < STANDBY_MIN_W:
        return None
    imp = _nan0(s.import_wh)
    marginal = np.where(imp > 0, inputs.tariff.import_price, inputs.tariff.export_price)
    price = float(marginal.mean())
    amount = round(level * YEAR_HOURS * price / 100_000.0)
    return Advice(
        "standby",
        f"{level:.0f} W never switch off: {mxn(amount)} a year",
        f"{level:.0f} W nunca se apagan: {mxn(amount)} al año",
        f"At night your home never uses less than about {level:.0f} W (the median of"
        f" {minima.size} nights' lowest quarter-hour between 00:00 and 05:00, fridge"
        f" included). Unplugging chargers, set-top boxes and appliances on stand-by cuts it;"
        f" halving it saves {mxn(amount // 2)} a year.",
        f"De noche tu casa nunca consume menos de unos {level:.0f} W (la mediana del cuarto de"
        f" hora más bajo entre las 00:00 y las 05:00 en {minima.size} noches, refrigerador"
        f" incluido). Desconectar cargadores, decodificadores y aparatos en espera lo reduce;"
        f" bajarlo a la mitad ahorra {mxn(amount // 2)} al año.",
        amount,
        {
            "standby_w": round(level),
            "nights": int(minima.size),
            "mean_price": round(price),
            "kwh_per_year": round(level * YEAR_HOURS / 1000),
        },
        period_days=365,
    )


def self_consumption(month: _Month) -> Advice | None:
    """Exported energy and what it would have been worth used at home."""
    exported = float(month.exp.sum())
    if exported <= 0:
        return None
    earned = centavos(month.exp, month.export_price)
    worth = centavos(month.exp, month.import_price)
    amount = round(max(worth - earned, 0.0))
    if amount <= 0:
        return None
    return Advice(
        "self_consumption",
        f"Use your solar surplus: up to {mxn(amount)} more in 30 days",
        f"Aprovecha tu excedente solar: hasta {mxn(amount)} más en 30 días",
        f"You exported {exported / 1000:.1f} kWh for {mxn(round(earned))}; the same energy"
        f" bought from the grid costs {mxn(round(worth))}. Running loads while the sun shines"
        " keeps that difference.",
        f"Exportaste {exported / 1000:.1f} kWh por {mxn(round(earned))}; la misma energía"
        f" comprada a la red cuesta {mxn(round(worth))}. Usar aparatos mientras hay sol conserva"
        " esa diferencia.",
        amount,
        {
            "exported_wh": round(exported),
            "export_income_centavos": round(earned),
            "import_value_centavos": round(worth),
        },
    )


def advise(inputs: Inputs) -> list[Advice]:
    """Every rule's advice, the most money per 30 days first (ties by id)."""
    month = _Month.of(inputs)
    items: list[Advice | None] = [bill_hours(month), top_appliance(month)]
    shiftable = {
        name for name in month.appliances if any(word in name.lower() for word in inputs.shiftable)
    }
    shifts = {name: shift_saving(month, name) for name in sorted(shiftable)}
    items += [shift_advice(result) for result in shifts.values()]
    items += [contract_threshold(month, rule, shifts) for rule in inputs.rules]
    items += [standby(inputs), self_consumption(month)]
    found = [item for item in items if item is not None]
    return sorted(found, key=lambda a: (-a.monthly_centavos, a.id))
