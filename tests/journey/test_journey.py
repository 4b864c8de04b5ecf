"""What a neighbourhood does, on loopback with real processes (issue 15's done-test).

An operator's node and two homes, each a ``transactiva node`` process with its own home
folder; the homes join by invitation with the documented commands only
(``transactiva operator invite``, ``transactiva join``, ``transactiva node``), each with a
simulated SmartPi; the clock runs :data:`SPEED` times faster than real time. Within a few
intervals the homes' interval reports are accepted, a contract naming both homes by name is
proposed by one and countersigned by the other (``contract list`` / ``contract sign``), a
trade clears between them and settles to the centavo.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any, Final

from ledger_core.clock import AcceleratedClock
from ledger_core.demo.chain import free_port
from ledger_core.meter import household as hh
from ledger_core.meter.simulator import SmartPiSimulator
from tests.journey.harness import (
    TARIFF,
    NodeProcess,
    local_midnight,
    set_config,
    transactiva,
    wait_for,
)

SPEED: Final = 240.0  # an interval every 3.75 s
INTERVAL: Final = 900
METER: Final = {"sample_period": 30.0, "max_gap": 120.0, "report_delay": 60.0}


def _contract(name: str, start: int, rules: str, parties: str) -> str:
    valid_from = time.strftime("%Y/%m/%d %H:%M:%S", time.gmtime(start - 86400 - 6 * 3600))
    valid_to = time.strftime("%Y/%m/%d %H:%M:%S", time.gmtime(start + 2 * 86400 - 6 * 3600))
    return (
        f"Contract '{name}'\nValid from {valid_from} to {valid_to}\n"
        "Consumption true\nProduction true and sell\nStore false\nDemandResponse false\n"
        f"{rules}Parties: {parties}\n"
    )


async def test_two_homes_join_by_invitation_sign_a_contract_trade_and_settle(
    tmp_path: Path,
) -> None:
    # The clock starts at 10:00 local time (sun on the panels) later than now, so the
    # chain's genesis (made now by init) comes before its first block.
    start = local_midnight(time.time()) + 10 * 3600
    if start < time.time() + 3600:
        start += 86400
    epoch = time.time() + 1.0
    clock = {"clock_epoch": epoch, "clock_start": start, "clock_speed": SPEED}
    sim_clock = AcceleratedClock(start, SPEED, epoch)
    op_dir, a_dir, b_dir = tmp_path / "operador", tmp_path / "casa-a", tmp_path / "casa-b"

    made = await transactiva(
        "init", "--dir", str(op_dir), "--chain-id", "barrio-1",
        "--api-port", str(free_port()), "--p2p-port", str(free_port()),
        "--p2p-host", "127.0.0.1", "--tariff", str(TARIFF),
    )  # fmt: skip
    assert made.ok().last_line == f"start it with: transactiva node --dir {op_dir}"
    set_config(op_dir, **clock, execute_contracts=False)
    operator = NodeProcess(op_dir)
    sunny = SmartPiSimulator(
        hh.Household(seed=3, pv=hh.PvSystem(kwp=6.0), annual_kwh=1200.0, cloudiness=0.0),
        clock=sim_clock,
        serial="10000000journeya",
    )
    shaded = SmartPiSimulator(
        hh.Household(seed=4, pv=None, annual_kwh=3500.0), clock=sim_clock, serial="10000000journeyb"
    )
    homes = [NodeProcess(a_dir), NodeProcess(b_dir)]
    nodes = [operator, *homes]
    try:
        operator.start()
        await wait_for("the operator's node", lambda: operator.get("/status"), nodes)

        # The operator invites two homes; each code is the last line printed.
        codes = {}
        for name, role in (("casa-a", "prosumer"), ("casa-b", "consumer")):
            invited = (await transactiva("operator", "invite", name, "--role", role,
                                         "--dir", str(op_dir))).ok()  # fmt: skip
            codes[name] = invited.last_line
            assert codes[name].startswith("TV1-")

        # Each home joins with its code and its SmartPi, then starts its node.
        await sunny.start()
        await shaded.start()
        for home, name, meter in ((homes[0], "casa-a", sunny), (homes[1], "casa-b", shaded)):
            assert meter.url is not None
            joined = await transactiva(
                "join", codes[name], "--dir", str(home.home), "--api-port", str(free_port()),
                "--p2p-port", str(free_port()), "--p2p-host", "127.0.0.1", "--smartpi", meter.url,
                "--concentrator", f"http://127.0.0.1:{operator.config['api_port']}",
            )  # fmt: skip
            assert joined.ok().last_line == f"next: transactiva node --dir {home.home}"
            assert "readings: sent to the concentrator at http://127.0.0.1:" in joined.out
            assert (home.home / "keys" / "participant.key").stat().st_mode & 0o777 == 0o600
            config = home.config
            set_config(home.home, **clock, meter={**config["meter"], "settings": METER})
            home.start()

        # The operator's node admits both (registration, name and meter binding).
        async def members() -> list[dict[str, Any]] | None:
            listed = await transactiva("operator", "participants", "--json", "--dir", str(op_dir))
            rows = [r for r in json.loads(listed.ok().out) if r["name"] in codes]
            done = len(rows) == 2 and all(
                r["status"] == "active" and r["meter_bound"] for r in rows
            )
            return rows if done else None

        rows = await wait_for("both homes admitted", members, nodes)
        address = {row["name"]: row["address"] for row in rows}
        assert {row["role"] for row in rows} == {"prosumer", "consumer"}
        for home, name in zip(homes, codes, strict=True):
            admission = await wait_for(
                f"{name} to see itself admitted", lambda h=home: h.get("/local/admission"), nodes
            )
            assert (admission["status"], admission["name"]) == ("member", name)
            assert not (home.home / "invitation").exists()  # single use: the code is gone

        # casa-b pays in money to buy with; the operator confirms it.
        asked = (await transactiva("wallet", "deposit", "300", "--dir", str(b_dir))).ok()
        request = asked.out.split("(transaction ")[1].rstrip(")\n")
        await transactiva("wallet", "confirm-deposit", request, "--dir", str(op_dir))

        # casa-a proposes a contract naming both homes by name; casa-b countersigns it.
        now = int(sim_clock.now())
        joint = tmp_path / "vecinos.contract"
        joint.write_text(
            _contract(
                "vecinos",
                now,
                "IF Price >= 0 THEN\n  SELL SURPLUS AT MIN 1 MXN/kWh\nENDIF\n",
                "'casa-a', 'Casa-B'",
            )
        )
        proposed = (await transactiva("contract", "submit", str(joint), "--dir", str(a_dir))).ok()
        assert f"waiting for the signatures of: casa-b ({address['casa-b']})" in proposed.out
        listed = (await transactiva("contract", "list", "--dir", str(b_dir))).ok()
        assert "'vecinos'" in listed.out
        assert "casa-a" in listed.out
        short_id = listed.out.split("'vecinos'")[0].split()[-1]
        assert short_id.startswith("0x")
        signed = (await transactiva("contract", "sign", short_id, "--dir", str(b_dir))).ok()
        assert signed.last_line.startswith("Timestamp ")
        assert signed.last_line.endswith(f"to 'vecinos' [{short_id}]")
        assert (
            (await transactiva("contract", "list", "--dir", str(b_dir)))
            .ok()
            .out.startswith("no contract awaits")
        )
        buys = tmp_path / "compra.contract"
        buys.write_text(
            _contract(
                "compra", now, "IF Price >= 0 THEN\n  BUY UP TO 300 Wh AT MAX 3 MXN/kWh\nENDIF\n",
                "'casa-b'",
            )
        )  # fmt: skip
        bought = (await transactiva("contract", "submit", str(buys), "--dir", str(b_dir))).ok()
        assert bought.last_line.startswith("Timestamp ")

        # Both meters' interval reports are accepted.
        for name in codes:
            meter = next(r["meter"] for r in rows if r["name"] == name)
            await wait_for(
                f"{name}'s reports",
                lambda m=meter: _reports(operator, m),
                nodes,
            )

        # A trade between them clears, and settles to the centavo.
        trade = await wait_for(
            "a trade from casa-a to casa-b", lambda: _trade(operator, address), nodes, 120.0
        )
        start_t = int(trade["interval_start"])
        settled = await wait_for(
            "the trade's interval settled",
            lambda: _statements(operator, address, start_t),
            nodes,
            120.0,
        )
        seller, buyer = settled["casa-a"], settled["casa-b"]
        trades = (await operator.get(f"/market/trades/casa-b?from={start_t}&to={start_t + 1}"))[
            "trades"
        ]
        assert trades
        assert all(t["seller"] == address["casa-a"] for t in trades)
        paid = sum(int(t["payment"]) for t in trades)
        fees = sum(int(t["fee"]) for t in trades)
        assert (
            int(seller["sold_wh"])
            == int(buyer["bought_wh"])
            == sum(int(t["energy_wh"]) for t in trades)
        )
        # The buyer pays every trade and its network fee, to the centavo; the seller is paid
        # the price of what it delivered (all of it when it exported what it sold).
        assert buyer["lines"]["p2p_energy"] == -paid
        assert buyer["lines"]["network_fee"] == -fees
        if int(seller["delivered_wh"]) == int(seller["sold_wh"]):
            assert seller["lines"]["p2p_energy"] == paid
        else:
            assert 0 <= seller["lines"]["p2p_energy"] < paid
        for statement in (seller, buyer):
            assert statement["amount"] == sum(statement["lines"].values())
        money = await wait_for("balances", lambda: _money(operator, address), nodes)
        assert sum(money.values()) == 30_000, "every centavo deposited is in some wallet"
    finally:
        for node in reversed(nodes):
            await node.stop()
        await sunny.stop()
        await shaded.stop()


async def _reports(node: NodeProcess, meter: str) -> bool:
    answer = await node.get(f"/reports/{meter}")
    return bool(answer and answer["reports"])


async def _trade(node: NodeProcess, address: dict[str, str]) -> dict[str, Any] | None:
    answer = await node.get("/market/trades/casa-a")
    for trade in (answer or {}).get("trades", []):
        if trade["seller"] == address["casa-a"] and trade["buyer"] == address["casa-b"]:
            return dict(trade)
    return None


async def _statements(
    node: NodeProcess, address: dict[str, str], start: int
) -> dict[str, dict[str, Any]] | None:
    found = {}
    for name in address:
        answer = await node.get(f"/market/settlements/{name}?from={start}&to={start + 1}")
        rows = (answer or {}).get("settlements", [])
        if not rows:
            return None
        found[name] = rows[0]
    return found


async def _money(node: NodeProcess, address: dict[str, str]) -> dict[str, int] | None:
    participants = await node.get("/participants")
    if participants is None:
        return None
    query = "&".join(f"address={p['address']}" for p in participants["participants"])
    answer = await node.get(f"/balances?{query}")
    if answer is None:
        return None
    await asyncio.sleep(0)
    return {
        row["address"]: int(row["balance"]) + int(row["held"]) - int(row["debt"])
        for row in answer["balances"]
    }
