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
from typing import TextIO

from ledger_core import contract_cli, node_cli, testnet_cli
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


DEMO_PLAN = """\
transactiva demo: the neighbourhood demonstration is not built yet.

When it is, this command will, on this machine only (loopback addresses):
  1. create a throw-away data directory with keys and a genesis file for one
     concentrator (the operator) and three homes;
  2. start simulated SmartPi meters serving the real meter HTTP API, with PV
     production and household consumption (Morelia, Michoacan);
  3. start the ledger nodes and register every participant;
  4. sign and activate the paper's example contract
     (IF Price < 3 THEN TURN ON DEVICE 'Lavadora' ENDIF);
  5. run a few 15-minute market intervals: interval reports, a price signal,
     a demand-response event, the double auction and wallet settlement;
  6. print each step and the resulting balances, then stop everything it started.

Nothing was started and nothing was written.
"""


def _run_demo(_args: argparse.Namespace, out: TextIO) -> int:
    out.write(DEMO_PLAN)
    return EXIT_OK


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
        configure=_no_arguments,
        run=_run_demo,
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
