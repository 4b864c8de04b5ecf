"""The neighbourhood demo, run as a user runs it: a real process starting real processes."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date
from pathlib import Path

from ledger_core.concentrator.tariff import load_tariff
from ledger_core.demo.run import EXAMPLE_TARIFF, trading_day

DEMO = [sys.executable, "-m", "ledger_core", "demo", "--seed", "3"]
TUESDAY = "2026-11-24"
WINTER_SUNDAY = "2026-12-06"  # base price all day: no neighbour can beat the supplier


def _run(*args: str, day: str = TUESDAY) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [*DEMO, "--date", day, *args], capture_output=True, text=True, timeout=240, check=False
    )
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    return done


def test_a_day_without_trades_gives_way_to_the_next_day_that_has_them() -> None:
    tariff = load_tariff(Path(__file__).parents[2] / "docs" / "tariffs" / EXAMPLE_TARIFF)
    day, note = trading_day(tariff, date(2026, 12, 6))
    assert day == date(2026, 12, 7)
    assert note.startswith("Sunday 2026-12-06:")
    assert "1.215" in note  # the base price
    assert "1.463" in note  # export price and network fee
    assert note.endswith(
        "the demo runs Monday 2026-12-07 instead, the next day on which neighbours can trade"
    )
    # A holiday is priced as a Sunday; a weekday is run as asked, without a word.
    assert trading_day(tariff, date(2026, 12, 25))[0] == date(2026, 12, 26)
    assert trading_day(tariff, date(2026, 11, 24)) == (date(2026, 11, 24), "")
    assert trading_day(tariff, date(2026, 12, 5)) == (date(2026, 12, 5), "")


FLAT = """
name = "flat, at the base price"
currency = "MXN"
timezone = "America/Mexico_City"
kind = "time_of_use"
export_price = 1.05
network_fee = 0.413
[[seasons]]
name = "all_year"
months = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]
[periods.base]
import_price = 1.215
[[schedule]]
seasons = ["all_year"]
days = ["all"]
from = "00:00"
to = "24:00"
period = "base"
"""


def test_a_tariff_without_any_trading_day_runs_the_day_asked_and_says_so(
    tmp_path: Path,
) -> None:
    flat = tmp_path / "flat.toml"
    flat.write_text(FLAT)
    day, note = trading_day(load_tariff(flat), date(2026, 12, 6))
    assert day == date(2026, 12, 6)
    assert "no day of the week lets a neighbour's energy beat the supplier" in note
    assert note.endswith("the demo runs this day, and no trade may clear")


def test_a_morning_of_trading_balances_to_the_centavo() -> None:
    """Asked for a winter Sunday, the demo runs the Monday after it and says so; its homes
    join by invitation, trade, settle, and shed the washing machine."""
    done = _run(
        "--homes",
        "3",
        "--intervals",
        "8",
        "--start-hour",
        "11",
        "--speed",
        "1800",
        "--json",
        day=WINTER_SUNDAY,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads(done.stdout)
    assert summary["day"] == "2026-12-07"
    assert summary["day_note"].startswith("Sunday 2026-12-06:")
    assert summary["buyers_price"] == {"at_least": "2.04", "at_most": "2.19"}
    # Every home joined by invitation: named, admitted, its meter bound.
    assert summary["members"] == [
        {"name": "casa1", "role": "prosumer", "status": "active", "meter_bound": True},
        {"name": "casa2", "role": "consumer", "status": "active", "meter_bound": True},
        {"name": "casa3", "role": "prosumer", "status": "active", "meter_bound": True},
    ]
    assert summary["intervals"] == 8
    assert summary["blocks"] > 8
    assert summary["transactions"] > 3 * 8  # at least every home's reports
    # Homes with panels sell their midday surplus to the home without.
    assert summary["trades"] > 0
    assert summary["traded_wh"] > 0
    assert [h["name"] for h in summary["homes"]] == ["casa1", "casa2", "casa3"]
    # The concentrator settled the trades and billed each home's day from the readings it
    # holds (the chain has only their commitments).
    assert summary["bills"] == 3
    assert summary["settlements"] > 0
    # Money is conserved: all balance changes add up to the net deposits.
    assert summary["net_deposits"] == 3 * 50_000
    assert summary["balance_changes_total"] == summary["net_deposits"]
    assert (
        sum(h["balance_change"] for h in summary["homes"]) + summary["operator_balance_change"]
        == summary["net_deposits"]
    )
    # Deposits apart from what the market paid or cost each home: what the homes gained
    # and lost on the market is what the operator (supplier, DSO) lost and gained.
    for home in summary["homes"]:
        assert home["deposits"] == 50_000
        assert home["market"] == home["balance_change"] - home["deposits"]
    assert sum(h["market"] for h in summary["homes"]) + summary["operator_balance_change"] == 0
    assert any(h["market"] > 0 for h in summary["homes"])  # a seller earned
    actions = summary["contract_actions"]
    assert all(a["contract"].startswith("0x") and a["reason"] for a in actions)
    shed = [
        a
        for a in actions
        if a["action"] == "turn_off" and a["device"] == "Lavadora" and a["trigger"] == "dr_signal"
    ]
    assert {a["home"] for a in shed} == {"casa1", "casa2", "casa3"}
    assert all("DemandResponse true" in a["reason"] for a in shed)
    assert any(a["action"] == "sell_surplus" for a in actions)
    assert any(a["action"] == "buy" for a in actions)
    assert summary["orders"] > 0


def test_the_live_view_prints_intervals_and_the_settlement() -> None:
    done = _run("--homes", "2", "--intervals", "3", "--speed", "1800")
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert any(line.startswith("00:00  import") for line in lines)
    assert any(line.startswith("00:30  import") for line in lines)
    assert "homes joined by invitation" in done.stdout
    assert "instead" not in done.stdout  # a Tuesday is run as asked
    assert "buy from neighbours when the price is at least 2.04 MXN/kWh" in done.stdout
    assert "Settlement summary" in done.stdout
    header = next(line for line in lines if line.startswith("home "))
    assert header.split() == ["home", "address", "deposits", "market", "balance", "change"]
    assert any(line.startswith("casa1 ") and "+500.00" in line for line in lines)
    assert any(line.startswith("net deposits") and "+1,000.00" in line for line in lines)


def test_bad_flags_are_refused() -> None:
    done = _run("--homes", "0")
    assert done.returncode == 2
    assert "--homes" in done.stderr
