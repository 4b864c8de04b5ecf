"""``transactiva contract``: check, format and explain contract files; submit, list and
countersign contracts through the home's node.

``check NEW --against ACTIVE...`` also warns where a new contract contradicts a
home's active ones (:func:`contracts.conflicts`); ``explain`` takes one contract
or a home's set (files or folders of ``*.contract``) and shows the home's one
decision per device (:func:`contracts.decide`), what was carried out and what
was not, and why.

Exit status: 0 when every file is fine (warnings allowed), 1 when a contract is
invalid, 2 when a file cannot be read or written (or the command line is wrong).
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
    Devices,
    DrInForce,
    Event,
    Member,
    MeterState,
    check,
    compile_contract,
    conflicts,
    content_hash,
    decide,
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


def _expand(names: list[str]) -> list[str]:
    """Files as given; a folder stands for its ``*.contract`` files, by name."""
    out: list[str] = []
    for name in names:
        path = Path(name)
        if name != STDIN_NAME and path.is_dir():
            out.extend(str(p) for p in sorted(path.glob("*.contract")))
        else:
            out.append(name)
    return out


def _active(names: list[str], err: TextIO) -> tuple[list[tuple[str, Contract]], int]:
    """The contracts given with ``--against``, and the exit status: their errors are
    reported (an invalid one is left out), their own warnings are not."""
    found: list[tuple[str, Contract]] = []
    status = EXIT_OK
    for name in _expand(names):
        source = _read(name)
        if source.data is None:
            err.write(f"{source.shown}: cannot read: {source.error}\n")
            status = EXIT_IO
            continue
        result = check(source.data, source.shown)
        if result.contract is None:
            _report(result, source.shown, err)
            status = max(status, EXIT_INVALID)
            continue
        found.append((source.shown, result.contract))
    return found, status


def run_check(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """``contract check FILE... [--against ACTIVE...]``."""
    status = EXIT_OK
    active: list[tuple[str, Contract]] = []
    if args.against:
        active, status = _active(args.against, err)
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
        new_id = content_hash(result.contract)
        others = [(shown, c) for shown, c in active if content_hash(c) != new_id]
        for diagnostic in conflicts(result.contract, others):
            err.write(diagnostic.render(source.shown) + "\n")
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


def _switch(text: str) -> tuple[str, bool]:
    device, _, state = text.rpartition("=")
    if not device or state not in ("on", "off"):
        raise argparse.ArgumentTypeError(f"{text!r}: expected DEVICE=on or DEVICE=off")
    return device, state == "on"


def _members(loaded: list[tuple[_Source, Contract]]) -> list[Member]:
    """The contracts as a home's, activated in the order given (the last is the newest)."""
    return [
        Member.of(content_hash(contract), compile_contract(contract), height)
        for height, (_source, contract) in enumerate(loaded)
    ]


def run_explain(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """``contract explain FILE... --event EVENT [state options]``."""
    loaded: list[tuple[_Source, Contract]] = []
    status = EXIT_OK
    for name in _expand(args.files):
        one = _load(name, err)
        if isinstance(one, int):
            status = max(status, one)
        else:
            loaded.append(one)
    if status != EXIT_OK:
        return status
    if not loaded:
        err.write("no contract files to explain\n")
        return EXIT_IO
    event = Event(args.event)
    state = _state(args, event)
    devices = Devices(dict(args.device or ()), dict(args.before_dr or ()))
    dr_events: tuple[DrInForce, ...] = ()
    if args.dr_event is not None and state.dr_level > 0:
        until = args.dr_until if args.dr_until is not None else state.clock
        dr_events = (DrInForce(args.dr_event, state.dr_level, until),)
    members = _members(loaded)
    decision = decide(members, state, event, dr_events=dr_events, devices=devices)
    several = len(members) > 1
    labels = {m.contract_id: m.label for m in members}
    if several:
        out.write("contracts, oldest first (a later one wins a tie):\n")
        for number, (member, (source, _c)) in enumerate(zip(members, loaded, strict=True), 1):
            out.write(f"  {number}. {member.label} ({source.shown})\n")
    else:
        out.write(f"contract {members[0].label}\n")
    out.write(f"event: {event} at {stamp(state.clock)}\n")
    out.write(f"state: {_describe_state(state)}\n")
    prefix = {m.contract_id: (f"{m.label}: " if several else "") for m in members}
    for member, (_source, contract) in zip(members, loaded, strict=True):
        if member.contract_id in decision.outside:
            out.write(
                f"{prefix[member.contract_id]}outside the validity window "
                f"({stamp(contract.valid_from)} to {stamp(contract.valid_to)}): no actions\n"
            )
    for contract_id, outcomes in decision.rules:
        for line, outcome in outcomes:
            text = {True: "true", False: "false", None: "unknown (a value is not known)"}[outcome]
            out.write(f"{prefix[contract_id]}rule at line {line}: {text}\n")
    if len(decision.outside) == len(members):
        return EXIT_OK
    if not decision.effective:
        out.write("actions: none\n")
    else:
        out.write("actions:\n")
        for number, item in enumerate(decision.effective, 1):
            whose = f" of {labels[item.contract_id]}" if several else ""
            out.write(f"  {number}. {item.describe()}{whose}\n")
    for item in decision.overruled:
        whose = f" of {labels[item.contract_id]}" if several else ""
        out.write(f"{item.status}: {item.describe()}{whose}: {item.why}\n")
    return EXIT_OK


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the ``contract`` subcommands."""
    sub = parser.add_subparsers(dest="contract_command", metavar="ACTION", required=True)

    p_check = sub.add_parser(
        "check", help="check contract files; print their ids or errors at FILE:LINE:COL"
    )
    p_check.add_argument("files", nargs="+", metavar="FILE", help="contract file, or - for stdin")
    p_check.add_argument(
        "--against",
        nargs="+",
        metavar="ACTIVE",
        help="the home's active contracts (files or folders of *.contract): warn where FILE "
        "contradicts them",
    )
    p_check.set_defaults(contract_run=run_check)

    p_fmt = sub.add_parser("fmt", help="print a contract in canonical form")
    p_fmt.add_argument("file", metavar="FILE", help="contract file, or - for stdin")
    p_fmt.add_argument(
        "--write", action="store_true", help="rewrite the file in place instead of printing"
    )
    p_fmt.set_defaults(contract_run=run_fmt)

    p_explain = sub.add_parser(
        "explain",
        help="show what a contract, or a home's contracts together, would do at an event, and why",
    )
    p_explain.add_argument(
        "files",
        nargs="+",
        metavar="FILE",
        help="contract files or folders of *.contract, oldest first (- for stdin)",
    )
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
    p_explain.add_argument("--dr-event", metavar="ID", help="the demand-response event in force")
    p_explain.add_argument(
        "--dr-until", type=_moment, metavar="'YYYY/MM/DD HH:MM:SS'", help="its local end"
    )
    p_explain.add_argument(
        "--device",
        action="append",
        type=_switch,
        metavar="NAME=on|off",
        help="what the home last decided for a device (repeatable)",
    )
    p_explain.add_argument(
        "--before-dr",
        action="append",
        type=_switch,
        metavar="NAME=on|off",
        help="a device's state before demand response shed it, for RESTORE (repeatable)",
    )
    p_explain.set_defaults(contract_run=run_explain)

    p_submit = sub.add_parser(
        "submit", help="sign with this node's participant key, submit, wait, print the receipt"
    )
    p_submit.add_argument("file", metavar="FILE", help="contract file")
    node.add_dir(p_submit)
    p_submit.set_defaults(contract_run=node.contract_submit)

    p_list = sub.add_parser("list", help="contracts that await this home's signature")
    node.add_dir(p_list)
    p_list.set_defaults(contract_run=node.contract_list)
    p_sign = sub.add_parser(
        "sign", help="countersign a contract; prints the receipt once it is active"
    )
    p_sign.add_argument("id", metavar="ID", help="the contract's short id (0x...) or full id")
    node.add_dir(p_sign)
    p_sign.set_defaults(contract_run=node.contract_sign)


def run(args: argparse.Namespace, out: TextIO) -> int:
    """Dispatch to the chosen ``contract`` subcommand."""
    handler = args.contract_run
    status: int = handler(args, out, sys.stderr)
    return status
