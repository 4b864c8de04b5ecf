"""The neighbourhood demo, run as a user runs it: a real process starting real processes."""

from __future__ import annotations

import json
import subprocess
import sys

DEMO = [sys.executable, "-m", "ledger_core", "demo", "--date", "2026-11-24", "--seed", "3"]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*DEMO, *args], capture_output=True, text=True, timeout=240, check=False)


def test_a_morning_of_trading_balances_to_the_centavo() -> None:
    done = _run(
        "--homes", "3", "--intervals", "8", "--start-hour", "11", "--speed", "1800", "--json"
    )
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads(done.stdout)
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
    assert "Settlement summary" in done.stdout
    assert any(line.startswith("net deposits") and "+1,000.00" in line for line in lines)


def test_bad_flags_are_refused() -> None:
    done = _run("--homes", "0")
    assert done.returncode == 2
    assert "--homes" in done.stderr
