"""``transactiva contract``: check, format and explain contract files.

Exit status: 0 when every file is fine, 1 when a contract is invalid, 2 when a
file cannot be read or written (or the command line is wrong).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TextIO

from contracts import (
    CheckResult,
    Contract,
    Event,
    MeterState,
    check,
    compile_contract,
    format_contract,
    short_id,
)
from contracts.canonical import quote, stamp
from ledger_core.cli import node

EXIT_OK = 0
EXIT_INVALID = 1
EXIT_IO = 2

STDIN_NAME = "-"


@dataclass(frozen=True, slots=True)
class _Source:
    """A contract file's name as shown in messages, and its bytes (or the read error)."""

    shown: str
    data: bytes | None
    error: str | None


def _read(name: str) -> _Source:
    if name == STDIN_NAME:
        return _Source("<stdin>", sys.stdin.buffer.read(), None)
    try:
        return _Source(name, Path(name).read_bytes(), None)
    except OSError as err:
        return _Source(name, None, err.strerror or str(err))


def _report(result: CheckResult, shown: str, err: TextIO) -> None:
    for diagnostic in result.diagnostics:
        err.write(diagnostic.render(shown) + "\n")


def run_check(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """``contract check FILE...``."""
    status = EXIT_OK
    for name in args.files:
        source = _read(name)
        if source.data is None:
            err.write(f"{source.shown}: cannot read: {source.error}\n")
            status = EXIT_IO
            continue
        result = check(source.data, source.shown)
        _report(result, source.shown, err)
        if result.contract is None:
            status = max(status, EXIT_INVALID)
            continue
        out.write(
            f"{source.shown}: ok: contract {quote(result.contract.name)} "
            f"[{short_id(result.contract)}]\n"
        )
    return status


def _write_atomically(path: Path, text: str) -> None:
    """Replace ``path`` so that readers see the old or the new file, never half of one."""
    mode = path.stat().st_mode & 0o777
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        Path(tmp).chmod(mode)
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _load(name: str, err: TextIO) -> tuple[_Source, Contract] | int:
    """Read and check one file; on failure report it and return the exit status."""
    source = _read(name)
    if source.data is None:
        err.write(f"{source.shown}: cannot read: {source.error}\n")
        return EXIT_IO
    result = check(source.data, source.shown)
    _report(result, source.shown, err)
    if result.contract is None:
        return EXIT_INVALID
    return source, result.contract


def run_fmt(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """``contract fmt FILE [--write]``."""
    loaded = _load(args.file, err)
    if isinstance(loaded, int):
        return loaded
    source, contract = loaded
    text = format_contract(contract)
    if not args.write:
        out.write(text)
        return EXIT_OK
    if args.file == STDIN_NAME:
        err.write("--write needs a file, not standard input\n")
        return EXIT_IO
    if source.data == text.encode("utf-8"):
        out.write(f"{source.shown}: already canonical\n")
        return EXIT_OK
    try:
        _write_atomically(Path(args.file), text)
    except OSError as error:
        err.write(f"{source.shown}: cannot write: {error.strerror or error}\n")
        return EXIT_IO
    out.write(f"{source.shown}: rewritten in canonical form\n")
    return EXIT_OK


def _moment(text: str) -> datetime:
    try:
        return datetime.strptime(text, "%Y/%m/%d %H:%M:%S")  # noqa: DTZ007 - local civil time
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a local time 'YYYY/MM/DD HH:MM:SS'"
        ) from None


def _decimal(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value.is_finite():
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def _level(text: str) -> int:
    if text not in ("0", "1", "2", "3"):
        raise argparse.ArgumentTypeError("the demand-response level is 0, 1, 2 or 3")
    return int(text)


def _watts(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is negative")
    return value


def _state(args: argparse.Namespace, event: Event) -> MeterState:
    connected = args.service != "cut"
    if args.service is None:
        connected = event is not Event.SERVICE_CUT
    return MeterState(
        clock=args.at if args.at is not None else datetime.now().replace(microsecond=0),  # noqa: DTZ005
        import_price=args.price,
        export_price=args.export_price,
        consumption_w=args.consumption,
        production_w=args.production,
        consumption_wh=args.consumption_wh,
        production_wh=args.production_wh,
        dr_level=args.dr_level,
        battery_soc=args.battery,
        service_connected=connected,
    )


def _describe_state(state: MeterState) -> str:
    parts = [
        f"price {state.import_price} MXN/kWh" if state.import_price is not None else "no price",
    ]
    if state.export_price is not None:
        parts.append(f"export price {state.export_price} MXN/kWh")
    parts.append(f"consumption {state.consumption_w} W / {state.consumption_wh} Wh")
    parts.append(f"production {state.production_w} W / {state.production_wh} Wh")
    parts.append(f"DR level {state.dr_level}")
    if state.battery_soc is not None:
        parts.append(f"battery {state.battery_soc} %")
    parts.append("service connected" if state.service_connected else "service cut")
    return ", ".join(parts)


def run_explain(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """``contract explain FILE --event EVENT [state options]``."""
    loaded = _load(args.file, err)
    if isinstance(loaded, int):
        return loaded
    _source, contract = loaded
    event = Event(args.event)
    state = _state(args, event)
    evaluation = compile_contract(contract).evaluate(state, event)
    out.write(f"contract {quote(contract.name)} [{short_id(contract)}]\n")
    out.write(f"event: {event} at {stamp(state.clock)}\n")
    out.write(f"state: {_describe_state(state)}\n")
    if not evaluation.in_window:
        out.write(
            f"outside the validity window ({stamp(contract.valid_from)} to "
            f"{stamp(contract.valid_to)}): no actions\n"
        )
        return EXIT_OK
    for line, outcome in evaluation.rules:
        text = {True: "true", False: "false", None: "unknown (a value is not known)"}[outcome]
        out.write(f"rule at line {line}: {text}\n")
    if not evaluation.actions:
        out.write("actions: none\n")
    else:
        out.write("actions:\n")
        for number, action in enumerate(evaluation.actions, 1):
            out.write(f"  {number}. {action.describe()}\n")
    for item in evaluation.suppressed:
        out.write(f"suppressed: {item.action.describe()}: {item.why}\n")
    return EXIT_OK


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the ``contract`` subcommands."""
    sub = parser.add_subparsers(dest="contract_command", metavar="ACTION", required=True)

    p_check = sub.add_parser(
        "check", help="check contract files; print their ids or errors at FILE:LINE:COL"
    )
    p_check.add_argument("files", nargs="+", metavar="FILE", help="contract file, or - for stdin")
    p_check.set_defaults(contract_run=run_check)

    p_fmt = sub.add_parser("fmt", help="print a contract in canonical form")
    p_fmt.add_argument("file", metavar="FILE", help="contract file, or - for stdin")
    p_fmt.add_argument(
        "--write", action="store_true", help="rewrite the file in place instead of printing"
    )
    p_fmt.set_defaults(contract_run=run_fmt)

    p_explain = sub.add_parser("explain", help="show what a contract would do at an event, and why")
    p_explain.add_argument("file", metavar="FILE", help="contract file, or - for stdin")
    p_explain.add_argument(
        "--event", required=True, choices=[e.value for e in Event], help="the event"
    )
    p_explain.add_argument(
        "--at", type=_moment, metavar="'YYYY/MM/DD HH:MM:SS'", help="local time (default: now)"
    )
    p_explain.add_argument("--price", type=_decimal, metavar="MXN/kWh", help="import price")
    p_explain.add_argument("--export-price", type=_decimal, metavar="MXN/kWh")
    p_explain.add_argument("--consumption", type=_watts, default=0, metavar="W")
    p_explain.add_argument("--production", type=_watts, default=0, metavar="W")
    p_explain.add_argument(
        "--consumption-wh", type=_watts, default=0, metavar="Wh", help="last interval"
    )
    p_explain.add_argument(
        "--production-wh", type=_watts, default=0, metavar="Wh", help="last interval"
    )
    p_explain.add_argument("--dr-level", type=_level, default=0, metavar="0-3")
    p_explain.add_argument("--battery", type=_decimal, metavar="PERCENT")
    p_explain.add_argument("--service", choices=["connected", "cut"])
    p_explain.set_defaults(contract_run=run_explain)

    p_submit = sub.add_parser(
        "submit", help="sign with this node's participant key, submit, wait, print the receipt"
    )
    p_submit.add_argument("file", metavar="FILE", help="contract file")
    node.add_dir(p_submit)
    p_submit.set_defaults(contract_run=node.contract_submit)


def run(args: argparse.Namespace, out: TextIO) -> int:
    """Dispatch to the chosen ``contract`` subcommand."""
    handler = args.contract_run
    status: int = handler(args, out, sys.stderr)
    return status
