"""The ``transactiva`` command line.

Each subcommand lives in its own function and registers itself in
:data:`COMMANDS`; later modules add theirs the same way. ``main`` returns a
process exit status instead of exiting so that tests can call it in-process.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TextIO

from ledger_core import app_entry, concentrator_cli, contract_cli, node_cli, testnet_cli
from ledger_core._version import __version__

PROG = "transactiva"

EXIT_OK = 0
EXIT_USAGE = 2


@dataclass(frozen=True, slots=True)
class Command:
    """A subcommand: its name, one-line help, argument set-up and handler."""

    name: str
    help: str
    configure: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace, TextIO], int]


def _no_arguments(_parser: argparse.ArgumentParser) -> None:
    """Subcommands without options use this as their set-up."""


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _speed(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 1 <= value <= 10_000:
        raise argparse.ArgumentTypeError("must be between 1 and 10000")
    return value


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def _configure_demo(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--homes", type=_positive_int, default=6, help="homes (default 6)")
    parser.add_argument(
        "--intervals", type=_positive_int, default=96, help="15-minute intervals (default 96)"
    )
    parser.add_argument(
        "--speed", type=_speed, default=900.0, help="times faster than real time (default 900)"
    )
    parser.add_argument("--seed", type=int, default=7, help="households' random seed")
    parser.add_argument("--date", type=_day, default=None, help="the day (default: today)")
    parser.add_argument(
        "--start-hour",
        type=int,
        choices=range(24),
        default=0,
        metavar="H",
        help="local hour of the first interval (default 0)",
    )
    parser.add_argument("--json", action="store_true", help="print a JSON summary at the end")
    parser.add_argument("--no-ui", action="store_true", help="no live lines")
    parser.add_argument("--keep", type=Path, default=None, help="keep the data in this folder")


def _run_demo(args: argparse.Namespace, out: TextIO) -> int:
    from ledger_core.demo import DemoOptions, run_demo  # noqa: PLC0415 - heavy imports

    if args.homes > 50:
        out.write("transactiva demo: --homes is at most 50 on one machine\n")
        return EXIT_USAGE
    options = DemoOptions(
        homes=args.homes,
        intervals=args.intervals,
        speed=args.speed,
        seed=args.seed,
        json=args.json,
        ui=not args.no_ui,
        day=args.date,
        start_hour=args.start_hour,
        keep=args.keep,
    )
    return run_demo(options, out)


COMMANDS: dict[str, Command] = {}


def register(command: Command) -> None:
    """Add a subcommand; names are unique."""
    if command.name in COMMANDS:
        raise ValueError(f"subcommand {command.name!r} is registered twice")
    COMMANDS[command.name] = command


register(
    Command(
        name="demo",
        help="run the neighbourhood demonstration on this machine",
        configure=_configure_demo,
        run=_run_demo,
    )
)


def _configure_analytics(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="analytics_command", metavar="COMMAND", required=True)
    backtest = sub.add_parser(
        "backtest", help="rolling-origin backtests of the forecasts against the seasonal baseline"
    )
    backtest.add_argument("options", nargs=argparse.REMAINDER, help="see --help of the backtest")


def _run_analytics(args: argparse.Namespace, out: TextIO) -> int:
    from ledger_core.analytics.backtest import main as backtest  # noqa: PLC0415 - numpy, pvlib

    return backtest(list(args.options), out)


register(
    Command(
        name="analytics",
        help="forecast backtests (the node serves forecasts and advice itself)",
        configure=_configure_analytics,
        run=_run_analytics,
    )
)
register(
    Command(
        name="operator",
        help="tariffs, price signals and demand-response events (for the concentrator)",
        configure=concentrator_cli.configure,
        run=concentrator_cli.run,
    )
)


register(
    Command(
        name="contract",
        help="check, format and explain contract files",
        configure=contract_cli.configure,
        run=contract_cli.run,
    )
)


register(
    Command(
        name="init",
        help="create a node's home: keys, genesis of a one-validator network, config, API token",
        configure=node_cli.configure_init,
        run=node_cli.run_init,
    )
)
register(
    Command(
        name="node",
        help="run the node: produce blocks and serve the API until Ctrl-C",
        configure=node_cli.configure_node,
        run=node_cli.run_node,
    )
)
register(
    Command(
        name="testnet",
        help="a network of nodes on this machine: init writes their homes, run starts them",
        configure=testnet_cli.configure,
        run=testnet_cli.run,
    )
)
register(
    Command(
        name="app",
        help="the Home Assistant app: options.json to a node home, then run and announce it",
        configure=app_entry.configure,
        run=app_entry.run,
    )
)
register(
    Command(
        name="wallet",
        help="balances, deposits, withdrawals and transfers through the running node",
        configure=node_cli.configure_wallet,
        run=node_cli.run_wallet,
    )
)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every registered subcommand."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=(
            "Transactiva: a transactive retail electricity market on a permissioned ledger. "
            "Runs ledger nodes, meters and the concentrator, and checks contracts."
        ),
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in COMMANDS.values():
        command.configure(sub.add_parser(command.name, help=command.help))
    return parser


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    stream = out if out is not None else sys.stdout
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    return COMMANDS[args.command].run(args, stream)
