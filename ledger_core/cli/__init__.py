"""The ``transactiva`` command line.

Each subcommand is a :class:`Command`: its name, one-line help, and the module
that configures and runs it (``ledger_core.cli.node``, ``.join``, ``.contract``,
``.operator``, ``.proof``, ``.testnet``, ``.ha_app``; the demo and analytics commands are
here). A module is imported only when its command runs, so ``transactiva
--help`` and the light commands start in a fraction of a second, and nothing
loads numpy, pandas, scipy, pvlib or demandlib unless the command needs them.
``main`` returns a process exit status instead of exiting so that tests can
call it in-process.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TextIO

from ledger_core._version import __version__

PROG = "transactiva"

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report it


type Configure = Callable[[argparse.ArgumentParser], None]
type Run = Callable[[argparse.Namespace, TextIO], int]


@dataclass(frozen=True, slots=True)
class Command:
    """A subcommand: its name, one-line help, and where its set-up and handler live
    (``module:function``; imported when the command is used)."""

    name: str
    help: str
    configure: str
    run: str

    def _load(self, target: str) -> Callable[..., object]:
        module, _, function = target.partition(":")
        loaded: Callable[..., object] = getattr(importlib.import_module(module), function)
        return loaded

    def set_up(self, parser: argparse.ArgumentParser) -> None:
        """Add the command's arguments to its parser."""
        self._load(self.configure)(parser)

    def handle(self, args: argparse.Namespace, out: TextIO) -> int:
        """Run the command."""
        status = self._load(self.run)(args, out)
        assert isinstance(status, int)
        return status


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


def configure_demo(parser: argparse.ArgumentParser) -> None:
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


def run_demo(args: argparse.Namespace, out: TextIO) -> int:
    from ledger_core.demo.chain import DemoError  # noqa: PLC0415 - heavy imports
    from ledger_core.demo.run import DemoOptions  # noqa: PLC0415
    from ledger_core.demo.run import run_demo as demo  # noqa: PLC0415

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
    try:
        return demo(options, out)
    except DemoError as err:
        sys.stderr.write(f"transactiva demo: {err}\n")
        return EXIT_USAGE


def configure_analytics(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="analytics_command", metavar="COMMAND", required=True)
    backtest = sub.add_parser(
        "backtest", help="rolling-origin backtests of the forecasts against the seasonal baseline"
    )
    backtest.add_argument("options", nargs=argparse.REMAINDER, help="see --help of the backtest")


def run_analytics(args: argparse.Namespace, out: TextIO) -> int:
    from ledger_core.analytics.backtest import main as backtest  # noqa: PLC0415 - numpy, pvlib

    return backtest(list(args.options), out)


COMMANDS: dict[str, Command] = {}


def register(command: Command) -> None:
    """Add a subcommand; names are unique."""
    if command.name in COMMANDS:
        raise ValueError(f"subcommand {command.name!r} is registered twice")
    COMMANDS[command.name] = command


_HERE = "ledger_core.cli"
for _command in (
    Command(
        "init",
        "create a node's home: keys, genesis of a one-validator network, config, API token",
        f"{_HERE}.node:configure_init",
        f"{_HERE}.node:run_init",
    ),
    Command(
        "join",
        "create a home from an invitation code: keys, the chain's genesis, config",
        f"{_HERE}.join:configure",
        f"{_HERE}.join:run",
    ),
    Command(
        "node",
        "run the node: produce blocks and serve the API until Ctrl-C",
        f"{_HERE}.node:configure_node",
        f"{_HERE}.node:run_node",
    ),
    Command(
        "wallet",
        "balances, deposits, withdrawals and transfers through the running node",
        f"{_HERE}.node:configure_wallet",
        f"{_HERE}.node:run_wallet",
    ),
    Command(
        "contract",
        "check, format and explain contract files",
        f"{_HERE}.contract:configure",
        f"{_HERE}.contract:run",
    ),
    Command(
        "operator",
        "invitations and participants, tariffs, prices and demand response (the operator)",
        f"{_HERE}.operator:configure",
        f"{_HERE}.operator:run",
    ),
    Command(
        "proof",
        "a home's meter readings as a proof, and checking a proof against the chain",
        f"{_HERE}.proof:configure",
        f"{_HERE}.proof:run",
    ),
    Command(
        "testnet",
        "a network of nodes on this machine: init writes their homes, run starts them",
        f"{_HERE}.testnet:configure",
        f"{_HERE}.testnet:run",
    ),
    Command(
        "app",
        "the Home Assistant app: options.json to a node home, then run and announce it",
        f"{_HERE}.ha_app:configure",
        f"{_HERE}.ha_app:run",
    ),
    Command(
        "demo",
        "run the neighbourhood demonstration on this machine",
        f"{_HERE}:configure_demo",
        f"{_HERE}:run_demo",
    ),
    Command(
        "analytics",
        "forecast backtests (the node serves forecasts and advice itself)",
        f"{_HERE}:configure_analytics",
        f"{_HERE}:run_analytics",
    ),
):
    register(_command)


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The argument parser with every registered subcommand; each is set up (its module
    imported) when ``only`` is None, else only the one ``only`` names (none for "")."""
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
        subparser = sub.add_parser(command.name, help=command.help)
        if only is None or command.name == only:
            command.set_up(subparser)
    return parser


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """Run the command line; returns the exit status."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    chosen = next((a for a in arguments if not a.startswith("-")), None)
    parser = build_parser(chosen if chosen in COMMANDS else "")
    args = parser.parse_args(arguments)
    stream = out if out is not None else sys.stdout
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return COMMANDS[args.command].handle(args, stream)
    except KeyboardInterrupt:
        # Ctrl-C: the command's own clean-up has run (its finally blocks); one line, no trace.
        sys.stderr.write(f"{PROG} {args.command}: interrupted\n")
        return EXIT_INTERRUPTED
