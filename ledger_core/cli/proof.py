"""``transactiva proof``: a home's readings as a proof, and checking a proof (docs/privacy.md).

``proof export`` asks the home's node (``--dir``) for the openings of its meter's
reports -- the readings and the salts of their commitments -- over local days of
the market, and writes them as a proof (to ``--out``, readable by its owner
only, or to the standard output). ``proof check FILE`` has a node (``--dir``: any
member's, a regulator's) check each opening against the commitment on its copy of
the chain, and the deliveries and bills the readings bear on against the
statements on chain.

Exit status: 0 the proof holds and every statement it covers agrees; 1 it does
not (an opening that does not match, a statement that disagrees); 2 the node or
the file could not be used.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Coroutine
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

import aiohttp

from ledger_core.cli.node import add_dir
from ledger_core.client import ApiError, NodeClient
from ledger_core.node.home import Home, HomeError, default_home

EXIT_OK = 0
EXIT_DISAGREES = 1
EXIT_UNAVAILABLE = 2
DAY = 86400


def _client(args: argparse.Namespace) -> NodeClient:
    home = Home(args.dir if args.dir is not None else default_home())
    config = home.config()
    return NodeClient(f"http://{config.api_host}:{config.api_port}", home.token())


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def _days(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 366:
        raise argparse.ArgumentTypeError("must be a number of days from 1 to 366")
    return int(text)


def _local(seconds: int, offset_minutes: int, *, clock: bool = True) -> str:
    moment = datetime.fromtimestamp(seconds, tz=UTC) + timedelta(minutes=offset_minutes)
    return moment.strftime("%Y-%m-%d %H:%M" if clock else "%Y-%m-%d")


def _call[T](work: Coroutine[Any, Any, T], err: TextIO) -> tuple[int, T | None]:
    try:
        return EXIT_OK, asyncio.run(work)
    except HomeError as error:
        err.write(f"{error}\n")
    except ApiError as error:
        err.write(f"refused: {error}\n")
        return EXIT_DISAGREES, None
    except (OSError, aiohttp.ClientError) as error:
        err.write(f"cannot reach the node: {error}; is 'transactiva node' running?\n")
    return EXIT_UNAVAILABLE, None


def run_export(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """``proof export --from YYYY-MM-DD [--days N] [--out FILE]``."""

    async def work() -> dict[str, Any]:
        client = _client(args)
        status = await client.status()
        offset = int(status["utc_offset_minutes"]) * 60
        first = datetime(args.start.year, args.start.month, args.start.day, tzinfo=UTC)
        start = int(first.timestamp()) - offset
        end = start + args.days * DAY
        return await client.get(f"/local/meter/proof?from={start}&to={end}&limit=10000")

    status, proof = _call(work(), err)
    if proof is None:
        return status
    text = json.dumps(proof, indent=1, sort_keys=True) + "\n"
    if args.out is None:
        out.write(text)
    else:
        # The salts make the readings provable: the file is its owner's alone.
        descriptor = os.open(args.out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            file.write(text)
        out.write(f"{len(proof['openings'])} readings written to {args.out}\n")
    return EXIT_OK


def run_check(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """``proof check FILE``: the node in ``--dir`` checks it against its chain."""
    try:
        proof = json.loads(Path(args.file).read_text(encoding="utf-8"))
    except OSError as error:
        err.write(f"{args.file}: {error.strerror or error}\n")
        return EXIT_UNAVAILABLE
    except ValueError as error:
        err.write(f"{args.file}: not JSON ({error})\n")
        return EXIT_UNAVAILABLE

    async def work() -> tuple[dict[str, Any], int]:
        client = _client(args)
        offset = int((await client.status())["utc_offset_minutes"])
        return await client.post("/proofs/check", proof), offset

    status, found = _call(work(), err)
    if found is None:
        return status
    answer, offset = found
    out.write(f"openings: {answer['valid']} valid, {answer['invalid']} invalid\n")
    for row in answer["openings"]:
        if not row["valid"]:
            when = _local(row["interval_start"], offset)
            why = "no such report on chain" if row["reason"] == "no_report" else "does not open it"
            out.write(f"  {when} meter {row['meter']}: {why}\n")
    for s in answer["statements"]:
        verdict = "agrees" if s["agrees"] else "DISAGREES"
        if not s["complete"]:
            verdict += " (the proof lacks some of its readings)"
        if s["kind"] == "delivery":
            out.write(
                f"delivery {_local(s['interval_start'], offset)} {s['participant']}: on chain "
                f"{s['on_chain']['delivered_wh']} Wh, the readings say "
                f"{s['expected']['delivered_wh']} Wh: {verdict}\n"
            )
        else:
            out.write(
                f"bill {_local(s['day'], offset, clock=False)} {s['participant']} "
                f"({s['reports']} reports): {verdict}\n"
            )
            if not s["agrees"]:
                out.write(f"  on chain: {json.dumps(s['on_chain']['by_price'])}\n")
                out.write(f"  readings: {json.dumps(s['expected']['by_price'])}\n")
    return EXIT_OK if answer["agrees"] else EXIT_DISAGREES


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the ``proof`` subcommands."""
    sub = parser.add_subparsers(dest="proof_command", metavar="ACTION", required=True)
    export = sub.add_parser("export", help="the home's readings and salts of some days")
    export.add_argument(
        "--from", dest="start", type=_day, required=True, metavar="YYYY-MM-DD", help="first day"
    )
    export.add_argument("--days", type=_days, default=1, metavar="N", help="days (default 1)")
    export.add_argument("--out", type=Path, default=None, metavar="FILE", help="default: stdout")
    export.set_defaults(proof_run=run_export)
    check = sub.add_parser("check", help="check a proof against the chain of the node in --dir")
    check.add_argument("file", metavar="FILE")
    check.set_defaults(proof_run=run_check)
    for p in (export, check):
        add_dir(p)


def run(args: argparse.Namespace, out: TextIO) -> int:
    """Dispatch to the chosen ``proof`` subcommand."""
    handler = args.proof_run
    status: int = handler(args, out, sys.stderr)
    return status
