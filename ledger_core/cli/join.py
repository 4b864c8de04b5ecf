"""``transactiva join CODE --dir HOME``: a new home for the chain an invitation code names.

The code is checked with the operator's node (which sees any refusal), the genesis is
fetched from it and kept only if it has the code's hash, and the home is written in one
step (nothing is left behind on failure): keys (0600), genesis, ``config.json`` and the
code. The last line printed is the next command: ``transactiva node --dir HOME``, which
connects, syncs and asks for admission.

Exit status: 0 joined, 1 the code or the request was refused, 2 the operator's node could
not be reached or the folder is not free.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import TextIO

from ledger_core.cli.node import add_dir, port_arg
from ledger_core.membership.joining import JoinError, JoinOptions, join_home
from ledger_core.node.home import default_home

EXIT_OK = 0
EXIT_REFUSED = 1
EXIT_UNAVAILABLE = 2
UNAVAILABLE = frozenset({"unreachable", "exists", "not_operator", "unexpected"})


def _url(text: str) -> str:
    if not text.startswith(("http://", "https://")) or len(text) > 1024:
        raise argparse.ArgumentTypeError(f"{text!r} is not an http:// or https:// URL")
    return text


def configure(parser: argparse.ArgumentParser) -> None:
    """``join``'s arguments."""
    parser.add_argument("code", metavar="CODE", help="the invitation code (TV1-...)")
    add_dir(parser)
    parser.add_argument("--api-host", default="127.0.0.1", metavar="H")
    parser.add_argument("--api-port", type=port_arg, default=8765, metavar="P")
    parser.add_argument(
        "--p2p-port", type=port_arg, default=26656, metavar="Q", help="default 26656"
    )
    parser.add_argument(
        "--p2p-host",
        default="0.0.0.0",  # noqa: S104 - a node's P2P port is for its neighbours
        metavar="HOST",
        help="where to listen for peers (default 0.0.0.0)",
    )
    parser.add_argument(
        "--smartpi",
        type=_url,
        default=None,
        metavar="URL",
        help="the home's SmartPi (e.g. http://192.168.1.30:1080); other meters: docs/meters.md",
    )
    parser.add_argument(
        "--concentrator",
        type=_url,
        default=None,
        metavar="URL",
        help="the concentrator's API (e.g. https://concentrador.barrio:8765), where the meter "
        "sends its readings to settle this home's energy (docs/privacy.md); ask your operator",
    )


def _readings(args: argparse.Namespace) -> str:
    """Where the meter's readings go, when the home has a meter."""
    if args.smartpi is None:
        return ""
    if args.concentrator is None:
        return (
            "  readings: kept here (no --concentrator): the concentrator cannot settle this "
            "home's energy until config.json's meter names it\n"
        )
    return f"  readings: sent to the concentrator at {args.concentrator}\n"


def run(args: argparse.Namespace, out: TextIO) -> int:
    """Join; the exit status."""
    path: Path = args.dir if args.dir is not None else default_home()
    options = JoinOptions(
        api_host=args.api_host,
        api_port=args.api_port,
        p2p_host=args.p2p_host,
        p2p_port=args.p2p_port,
        smartpi=args.smartpi,
        concentrator=args.concentrator,
    )
    try:
        home, invitation = asyncio.run(join_home(path, args.code, options))
    except JoinError as err:
        sys.stderr.write(f"transactiva join: {err.message}\n")
        return EXIT_UNAVAILABLE if err.reason in UNAVAILABLE else EXIT_REFUSED
    except OSError as err:
        sys.stderr.write(f"transactiva join: {err}\n")
        return EXIT_UNAVAILABLE
    approval = (
        "the operator approves it by hand"
        if invitation.manual
        else "the operator's node admits it as soon as it asks"
    )
    out.write(
        f"joined chain '{invitation.chain_id}' as {invitation.name!r} ({invitation.role}) "
        f"in {home.path}\n"
        f"  participant: {home.participant_key().address}\n"
        f"  concentrator: {', '.join(invitation.seeds)}\n"
        f"  API: http://{args.api_host}:{args.api_port}/api/v1 (token in {home.token_file})\n"
        f"  admission: {approval}\n"
        + _readings(args)
        + f"next: transactiva node --dir {home.path}\n"
    )
    return EXIT_OK
