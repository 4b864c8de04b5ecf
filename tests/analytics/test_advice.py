"""Advice on constructed homes whose right answers are known to the centavo."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from contracts import parse
from ledger_core.analytics.advice import (
    Advice,
    Inputs,
    PriceRule,
    Tariff,
    advise,
    price_rules,
    runs_of,
)
from ledger_core.analytics.localtime import midnight
from ledger_core.analytics.store import Series

TZ = "America/Mexico_City"
DAYS = 30
N = DAYS * 96
T = midnight(dt.date(2026, 3, 1), TZ) + 900 * np.arange(N)
HOUR = (np.arange(N) % 96) // 4
PEAK = (HOUR >= 18) & (HOUR < 22)


def home(imp: np.ndarray, exp: np.ndarray | None = None, pv: np.ndarray | None = None) -> Series:
    return Series(
        T,
        imp.astype(float),
        np.zeros(N) if exp is None else exp.astype(float),
        np.full(N, np.nan) if pv is None else pv.astype(float),
        np.full(N, np.nan),
        np.full(N, 15),
    )


def washer_at(hour: int, days: list[int]) -> np.ndarray:
    washer = np.zeros(N)
    for day in days:
        first = day * 96 + hour * 4
        washer[first : first + 4] = 250.0
    return washer


def by_id(items: list[Advice]) -> dict[str, Advice]:
    return {item.id: item for item in items}


def time_of_use() -> tuple[Series, dict[str, np.ndarray], Tariff]:
    """40 Wh every quarter-hour, a washer at 19:00 on four days; 4.00 MXN/kWh 18-22 h."""
    washer = washer_at(19, [0, 7, 14, 21])
    series = home(40.0 + washer)
    tariff = Tariff(np.where(PEAK, 40_000.0, 15_000.0), np.full(N, 5_000.0))
    return series, {"Lavadora": washer}, tariff


def test_shifting_the_washer_to_the_cheap_hours() -> None:
    series, appliances, tariff = time_of_use()
    items = by_id(advise(Inputs(series, tariff, TZ, appliances)))
    shift = items["shift:Lavadora"]
    # Each run: 1,000 Wh at 4.00 (400 centavos) instead of 1.50 (150 centavos).
    assert shift.centavos == 4 * 250
    assert shift.evidence["runs"] == 4
    assert shift.evidence["actual_centavos"] == 1600
    assert shift.evidence["best_centavos"] == 600
    assert shift.evidence["suggested_hour"] == 7
    assert "07:00" in shift.title_en
    assert "07:00" in shift.title_es
    assert "10.00 MXN" in shift.title_en
    top = items["top_appliance"]
    assert top.centavos == 1600  # 4 kWh at 4.00 MXN/kWh
    assert top.evidence["appliances"] == [{"name": "Lavadora", "energy_wh": 4000, "centavos": 1600}]


def test_the_hours_that_make_the_bill() -> None:
    series, appliances, tariff = time_of_use()
    bill = by_id(advise(Inputs(series, tariff, TZ, appliances)))["bill_hours"]
    # 18-21 h and 19-22 h both cost 73.60 MXN; the earlier window is named.
    per_peak_hour = 40 * 4 * DAYS * 40_000 // 100_000  # 1,920 centavos
    assert bill.evidence["start_hour"] == 18
    assert bill.centavos == 3 * per_peak_hour + 4 * 1000 * 40_000 // 100_000
    total = 20 * (40 * 4 * DAYS * 15_000 // 100_000) + 4 * per_peak_hour + 1600
    assert bill.evidence["import_cost_centavos"] == total
    assert "18:00" in bill.title_en
    assert "21:00" in bill.title_es


def test_standby_for_a_year() -> None:
    # 15 Wh a quarter-hour (60 W) between 02:00 and 03:00, 50 Wh otherwise; 1.10 MXN/kWh.
    load = np.where(HOUR == 2, 15.0, 50.0)
    items = by_id(advise(Inputs(home(load), Tariff.flat(N, 11_000, 8_000), TZ)))
    standby = items["standby"]
    assert standby.evidence["standby_w"] == 60
    assert standby.evidence["nights"] == DAYS
    assert standby.centavos == round(60 * 8760 * 11_000 / 100_000)  # 578.16 MXN a year
    assert standby.period_days == 365
    assert standby.monthly_centavos == pytest.approx(57_816 * 30 / 365)
    low = by_id(advise(Inputs(home(np.full(N, 4.0)), Tariff.flat(N, 11_000, 8_000), TZ)))
    assert "standby" not in low  # 16 W: below the 20 W worth mentioning


def test_solar_surplus_and_shifting_into_it() -> None:
    """200 Wh exported every quarter-hour from 12:00 to 13:00; a washer run at 19:00."""
    noon = HOUR == 12
    washer = washer_at(19, [3])
    exported = np.where(noon, 200.0, 0.0)
    series = home(np.where(noon, 0.0, 40.0) + washer, exported, np.where(noon, 240.0, 0.0))
    tariff = Tariff.flat(N, 11_000, 8_000)
    items = by_id(advise(Inputs(series, tariff, TZ, {"Lavadora": washer})))
    surplus = items["self_consumption"]
    assert surplus.evidence["exported_wh"] == 200 * 4 * DAYS
    assert surplus.centavos == 200 * 4 * DAYS * 3_000 // 100_000  # 7.20 MXN
    shift = items["shift:Lavadora"]
    # At 12:00 the run takes 800 Wh of surplus (forgone export at 0.80) and imports
    # 200 Wh at 1.10: 86 centavos instead of 110.
    assert shift.evidence["actual_centavos"] == 110
    assert shift.evidence["best_centavos"] == 86
    assert shift.centavos == 24
    assert shift.evidence["suggested_hour"] == 12


def test_contract_thresholds_that_never_trigger() -> None:
    series, appliances, tariff = time_of_use()
    fig7 = parse(
        "Contract 'prueba'\nValid from 2026/01/01 00:00:00 to 2026/12/31 23:59:59\n"
        "IF Price < 3 THEN TURN ON DEVICE 'Lavadora' ENDIF\nParties: ISO\n"
    )
    assert price_rules(fig7) == [PriceRule("prueba", "import_price", "<", 30_000, ("Lavadora",))]
    never = parse(
        "Contract 'barata'\nValid from 2026/01/01 00:00:00 to 2026/12/31 23:59:59\n"
        "IF 1 > Price AND Time IN 08:00-20:00 THEN TURN ON DEVICE 'Lavadora' ENDIF\n"
        "IF Price < 0.5 OR Time IN 01:00-02:00 THEN TURN ON DEVICE 'Bomba' ENDIF\n"
        "IF ExportPrice > 2 THEN SELL SURPLUS ENDIF\n"
        "Parties: ISO\n"
    )
    rules = price_rules(never)
    assert rules == [
        PriceRule("barata", "import_price", "<", 10_000, ("Lavadora",)),
        PriceRule("barata", "export_price", ">", 20_000, ()),
    ]
    items = by_id(advise(Inputs(series, tariff, TZ, appliances, [*price_rules(fig7), *rules])))
    assert not [k for k in items if k.startswith("contract_threshold:prueba")]  # 1.50 < 3 held
    idle = items["contract_threshold:barata:Price<1.00"]
    assert idle.evidence["condition"] == "Price < 1.00"
    assert (idle.evidence["min_price"], idle.evidence["max_price"]) == (15_000, 40_000)
    assert idle.evidence["suggested_threshold"] == 15_000
    assert idle.evidence["intervals_with_suggestion"] == 20 * 4 * DAYS
    assert idle.centavos == 1000  # what the washer it controls would have saved
    assert "Lavadora" in idle.detail_en
    selling = items["contract_threshold:barata:ExportPrice>2.00"]
    assert selling.evidence["suggested_threshold"] == 5_000  # export prices were all 0.50
    assert selling.centavos == 0  # no sensor measures what selling would have earned


def test_ranking_and_json() -> None:
    series, appliances, tariff = time_of_use()
    items = advise(Inputs(series, tariff, TZ, appliances))
    monthly = [item.monthly_centavos for item in items]
    assert monthly == sorted(monthly, reverse=True)
    assert items[0].id == "standby"  # 160 W all year is the most money
    body = items[0].to_json()
    assert set(body) == {"id", "title", "detail", "centavos", "mxn", "period_days", "evidence"}
    assert set(body["title"]) == {"en", "es"}  # type: ignore[arg-type]
    assert body["mxn"] == round(items[0].centavos / 100, 2)


def test_tariff_from_price_signals() -> None:
    t = T[:8]
    tariff = Tariff.from_signals(
        t, {int(t[2]): (20_000, 9_000), int(t[5]): (30_000, 7_000)}, (11_000, 8_000)
    )
    assert tariff.import_price.tolist() == [11_000] * 2 + [20_000] * 3 + [30_000] * 3
    assert tariff.export_price.tolist() == [8_000] * 2 + [9_000] * 3 + [7_000] * 3
    assert Tariff.from_signals(t, {}, (1, 2)).import_price.tolist() == [1.0] * 8


def test_runs_and_inputs_are_checked() -> None:
    assert runs_of(np.array([0, 30, 40, 0, 0, 25, 10, 30])) == [(1, 3), (5, 6), (7, 8)]
    assert runs_of(np.array([])) == []
    series, _, tariff = time_of_use()
    with pytest.raises(ValueError, match="tariff"):
        Inputs(series, Tariff.flat(3, 1, 1), TZ)
    with pytest.raises(ValueError, match=r"appliances\.Lavadora"):
        Inputs(series, tariff, TZ, {"Lavadora": np.zeros(5)})
    empty = advise(Inputs(home(np.zeros(N)), Tariff.flat(N, 11_000, 8_000), TZ))
    assert empty == []
