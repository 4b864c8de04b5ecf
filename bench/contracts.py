"""Contract language throughput on one core: parse+check, evaluation, identity.

    .venv/bin/python -m bench.contracts [--repeat 5] [--seconds 1.0] [--quick]

Prints a table (median of the repeats, and the slowest-to-fastest spread),
measured by the process's CPU time. The mix below is what a neighbourhood's
nodes see: the paper's contract, a demand-response contract, a programmed
schedule, a multi-rule contract with ELSE and boolean conditions, and a market
contract that buys and sells.

A second table compares, in small interleaved rounds so that both see the same
load, parse + check as ``contracts.check`` does it (the fast tokenizer and the
descent parser) with the reference path alone (the reference tokenizer and the
LALR tables, which was the only path before issue 19 and still parses what the
descent parser leaves to it), and both with Ed25519 verification.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal

from bench.common import footer, header
from contracts import Event, MeterState, check, compile_contract, content_hash, parse
from contracts.checker import check_items
from contracts.parser import decode, parse_lalr
from ledger_core.types.crypto import SigningKey, verify

MIX: tuple[str, ...] = (
    """\
Contract 'prueba'
Valid from 2019/08/01 00:00:00 to 2019/09/30 23:59:59
Consumption true
Production true and sell
Store false
DemandRespose false
IF Price < 3 THEN
TURN ON DEVICE 'Lavadora'
ENDIF
Parties: ISO
""",
    """\
Contract 'respuesta a la demanda'
Valid from 2026/01/01 00:00:00 to 2026/12/31 23:59:59
Consumption true
Production true
Store false
DemandResponse true shed 'Calentador', 'Bomba'
Devices: 'Lavadora', 'Calentador', 'Bomba'
IF Price < 2.5 MXN/kWh AND DRLevel = 0 THEN
  TURN ON DEVICE 'Calentador'
ENDIF
Parties: ISO, DSO
""",
    """\
Contract 'nocturno'
Valid from 2026/01/01 00:00:00 to 2027/01/01 00:00:00
Consumption programmed 22:00-06:00 weekdays, 10:00-16:00 weekends
Production false
Store true
DemandResponse false
IF Time IN 22:00-06:00 AND Weekday IN mon-fri THEN
  TURN ON DEVICE 'Bomba'
ELSE
  TURN OFF DEVICE 'Bomba'
ENDIF
Parties: SUPPLIER, 'casa-12'
""",
    """\
Contract 'hogar'
Valid from 2026/01/01 00:00:00 to 2026/12/31 23:59:59
Consumption true
Production true and sell
Store true
DemandResponse true
Devices: 'Lavadora', 'Secadora', 'Calentador'
IF Price < 2 OR (Surplus > 1.5 kW AND NOT Weekday IN weekends) THEN
  TURN ON DEVICE 'Lavadora'
  NOTIFY 'Lavadora encendida: energía barata'
ELSE
  TURN OFF DEVICE 'Lavadora'
ENDIF
IF Battery < 20 % AND Time >= 18:00 THEN
  TURN OFF DEVICE 'Secadora'
ENDIF
IF Service = cut THEN
  NOTIFY 'Corte de servicio'
ENDIF
Parties: ISO, SUPPLIER, 'casa-7'
""",
    """\
Contract 'mercado'
Valid from 2026/01/01 00:00:00 to 2026/12/31 23:59:59
Consumption true
Production true and sell
Store false
DemandResponse false
IF ExportPrice >= 1.8 MXN/kWh THEN
  SELL SURPLUS AT MIN 1.8 MXN/kWh
ENDIF
IF Price <= 1.2 AND Consumption > 2 kWh THEN
  BUY up to 1.5 kWh AT MAX 1.2 MXN/kWh
ENDIF
Parties: ISO, 'casa-3', 'casa-9'
""",
)

STATES: tuple[tuple[MeterState, Event], ...] = (
    (MeterState(clock=datetime(2026, 3, 10, 12, 0), import_price=Decimal(2)), Event.PRICE_SIGNAL),
    (
        MeterState(
            clock=datetime(2026, 3, 10, 12, 15),
            import_price=Decimal("3.4"),
            export_price=Decimal("1.9"),
            consumption_w=800,
            production_w=2600,
            consumption_wh=210,
            production_wh=640,
            battery_soc=Decimal(55),
        ),
        Event.INTERVAL_REPORT,
    ),
    (
        MeterState(clock=datetime(2026, 3, 10, 19, 0), import_price=Decimal(4), dr_level=2),
        Event.DR_SIGNAL,
    ),
    (
        MeterState(clock=datetime(2026, 3, 14, 23, 30), service_connected=False),
        Event.SERVICE_CUT,
    ),
)


def _rate(run: Callable[[], int], seconds: float, repeat: int) -> tuple[float, float, float]:
    """Operations per CPU second: median, min and max over ``repeat`` timed runs."""
    rates = []
    for _ in range(repeat):
        done = 0
        start = time.process_time()
        deadline = start + seconds
        while time.process_time() < deadline:
            done += run()
        rates.append(done / (time.process_time() - start))
    return statistics.median(rates), min(rates), max(rates)


def _reference(source: str) -> object:
    """Parse + check by the reference tokenizer and the LALR tables only."""
    return check_items(parse_lalr(decode(source)))


def _interleaved(seconds: float) -> dict[str, float]:
    """Per CPU second, in alternating rounds: parse + check, the reference path, and
    Ed25519 verification of a transfer-sized message."""
    key = SigningKey.from_seed(b"\x07" * 32)
    public, message = key.public_key, b"x" * 300
    signature = key.sign(message)

    def verify_one(_source: str) -> object:
        return verify(public, signature, message)

    runs: dict[str, Callable[[str], object]] = {
        "parse + check": check,
        "reference path (LALR tables)": _reference,
        "Ed25519 verification": verify_one,
    }
    spent = dict.fromkeys(runs, 0.0)
    done = dict.fromkeys(runs, 0)
    _reference(MIX[0])  # the tables are built on first use
    deadline = time.process_time() + seconds
    while time.process_time() < deadline:
        for name, run in runs.items():
            start = time.process_time()
            for source in MIX:
                run(source)
            spent[name] += time.process_time() - start
            done[name] += len(MIX)
    return {name: done[name] / spent[name] for name in runs}


def main() -> None:
    """Run the benchmarks and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=1.0, help="per timed run")
    parser.add_argument("--quick", action="store_true", help="3 runs of 0.3 s")
    args = parser.parse_args()
    if args.quick:
        args.repeat, args.seconds = 3, 0.3
    verified = header("Contract language, one core")

    for source in MIX:
        assert check(source).ok, source
    contracts = [parse(source) for source in MIX]
    programs = [compile_contract(c) for c in contracts]
    # Move each contract's window to cover the states (the paper's is 2019).
    programs[0].valid_from = datetime(2019, 1, 1)
    programs[0].valid_to = datetime(2030, 1, 1)
    cases = [(p, s, e) for p in programs for s, e in STATES]

    def parse_mix() -> int:
        for source in MIX:
            check(source)
        return len(MIX)

    def evaluate_mix() -> int:
        for program, state, event in cases:
            program.evaluate(state, event)
        return len(cases)

    def compile_mix() -> int:
        for contract in contracts:
            compile_contract(contract)
        return len(contracts)

    def identity_mix() -> int:
        for contract in contracts:
            content_hash(contract)
        return len(contracts)

    rows = [
        ("parse + check", 5_000, _rate(parse_mix, args.seconds, args.repeat)),
        ("evaluate (compiled)", 200_000, _rate(evaluate_mix, args.seconds, args.repeat)),
        ("compile", None, _rate(compile_mix, args.seconds, args.repeat)),
        ("canonical text + SHA-256", None, _rate(identity_mix, args.seconds, args.repeat)),
    ]
    print(f"Python {platform.python_version()} on {platform.machine()}, one core; ", end="")
    print(f"mix of {len(MIX)} contracts and {len(cases)} evaluation cases;")
    runs = f"{args.repeat} runs of {args.seconds:g} s"
    print(f"operations per CPU second, median / worst / best of {runs}\n")
    print("| operation | median /s | worst /s | best /s | target /s | median/target |")
    print("|---|---:|---:|---:|---:|---|")
    for name, target, (median, low, high) in rows:
        if target is None:
            verdict, target_text = "", ""
        else:
            verdict = f"{median / target:.2f} {'ok' if median >= target else 'MISS'}"
            target_text = f"{target:,}"
        print(
            f"| {name:<24} | {median:>9,.0f} | {low:>8,.0f} | {high:>8,.0f} | "
            f"{target_text:>9} | {verdict:<13} |"
        )

    rates = _interleaved(args.repeat * args.seconds)
    yardstick = rates["Ed25519 verification"]
    reference = rates["reference path (LALR tables)"]
    print("\ninterleaved rounds, per CPU second:\n")
    print("| operation | /s | / Ed25519 verification | x reference path |")
    print("|---|---:|---:|---:|")
    for name, rate in rates.items():
        print(f"| {name} | {rate:,.0f} | {rate / yardstick:.3f} | {rate / reference:.2f} |")
    footer(verified)


if __name__ == "__main__":
    main()
