"""``transactiva init``, ``node``, ``wallet`` and ``contract submit``.

Every command takes ``--dir DIR``, the node's home (default: the per-user data
directory), so several nodes can live side by side. Commands other than
``init`` and ``node`` talk to the running node's API with the token in DIR.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import re
import sys
import time
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, TextIO

import aiohttp

from contracts import check, format_contract
from ledger_core.client import ApiError, NodeClient
from ledger_core.consensus.privval import PrivValError
from ledger_core.node.home import Config, Home, HomeError, default_home, init_home
from ledger_core.node.storage import StorageError
from ledger_core.p2p.wire import WireError, parse_address
from ledger_core.serve import run_forever
from ledger_core.types.crypto import KeyFileError, SigningKey

EXIT_OK = 0
EXIT_REFUSED = 1
EXIT_UNAVAILABLE = 2
_CHAIN_ID = re.compile(r"[a-z0-9][a-z0-9\-]{0,47}")
TARIFF_IN_HOME = "tariff.toml"


def add_dir(parser: argparse.ArgumentParser) -> None:
    """The ``--dir`` option every node command takes."""
    parser.add_argument(
        "--dir",
        type=Path,
        default=None,
        metavar="DIR",
        help=f"the node's home (default: {default_home()})",
    )


def _home(args: argparse.Namespace) -> Path:
    path: Path = args.dir if args.dir is not None else default_home()
    return path


def chain_id_arg(text: str) -> str:
    if not _CHAIN_ID.fullmatch(text):
        raise argparse.ArgumentTypeError("lower-case letters, digits and '-', at most 48")
    return text


def port_arg(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError("a port is 1 to 65535")
    return port


def advertise_arg(text: str) -> str:
    """``host:port`` that other nodes dial."""
    try:
        address = parse_address(text, "--advertise")
    except WireError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    if address.id is not None:
        raise argparse.ArgumentTypeError("host:port, without a node id")
    return text


def configure_init(parser: argparse.ArgumentParser) -> None:
    add_dir(parser)
    parser.add_argument("--chain-id", type=chain_id_arg, default="transactiva-local")
    parser.add_argument("--api-host", default="127.0.0.1")
    parser.add_argument("--api-port", type=port_arg, default=8765)
    parser.add_argument(
        "--p2p-port",
        type=port_arg,
        default=None,
        metavar="PORT",
        help="listen for peers on PORT, so that homes can join (default: off; the app "
        "and the docs use 26656)",
    )
    parser.add_argument(
        "--p2p-host",
        default="0.0.0.0",  # noqa: S104 - neighbours reach the operator from the LAN
        metavar="HOST",
        help="where to listen for peers (default 0.0.0.0: every interface)",
    )
    parser.add_argument(
        "--advertise",
        type=advertise_arg,
        default=None,
        metavar="HOST:PORT",
        help="the address homes dial, put in invitations (default: the listening address, "
        "or this machine's LAN address)",
    )
    parser.add_argument(
        "--tariff",
        type=Path,
        default=None,
        metavar="FILE",
        help="run the concentrator with this tariff (copied into the home): prices and "
        "demand response",
    )


def run_init(args: argparse.Namespace, out: TextIO) -> int:
    from ledger_core.concentrator.tariff import TariffError, load_tariff  # noqa: PLC0415 - lazy

    path = _home(args)
    tariff: bytes | None = None
    if args.tariff is not None:
        try:
            load_tariff(args.tariff)
            tariff = args.tariff.read_bytes()
        except (TariffError, OSError) as err:
            sys.stderr.write(f"transactiva init: --tariff: {err}\n")
            return EXIT_REFUSED
    p2p = args.p2p_port is not None
    config = Config(
        api_host=args.api_host,
        api_port=args.api_port,
        p2p_host=args.p2p_host if p2p else "127.0.0.1",
        p2p_port=args.p2p_port,
        p2p_advertise=args.advertise if p2p else None,
        concentrator={"tariff": TARIFF_IN_HOME} if tariff is not None else None,
    )
    try:
        home = init_home(path, args.chain_id, int(time.time()), config)
        if tariff is not None:
            (path / TARIFF_IN_HOME).write_bytes(tariff)
        if p2p:
            SigningKey.generate().save(home.path / config.node_key_file)
    except (HomeError, OSError) as err:
        sys.stderr.write(f"transactiva init: {err}\n")
        return EXIT_REFUSED
    peers = (
        f"  P2P: listening on {args.p2p_host}:{args.p2p_port} for homes that join "
        f"(invite one with: transactiva operator invite NAME --dir {path})\n"
        if p2p
        else "  P2P: off (no home can join; see --p2p-port)\n"
    )
    out.write(
        f"initialised a one-validator network '{args.chain_id}' in {path}\n"
        f"  operator (ISO, supplier, DSO): {home.participant_key().address}\n"
        f"  validator: {home.validator_key().address}\n"
        f"  API: http://{args.api_host}:{args.api_port}/api/v1 (token in {home.token_file})\n"
        f"{peers}"
        + (f"  concentrator: tariff {args.tariff}\n" if tariff is not None else "")
        + f"start it with: transactiva node --dir {path}\n"
    )
    return EXIT_OK


def configure_node(parser: argparse.ArgumentParser) -> None:
    add_dir(parser)


def run_node(args: argparse.Namespace, out: TextIO) -> int:

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        return run_forever(_home(args))
    except (HomeError, StorageError, PrivValError, KeyFileError, OSError) as err:
        # A file of the home is missing, damaged or open to others: one line says which
        # and what to do; nothing was written.
        sys.stderr.write(f"transactiva node: {err}\n")
        return EXIT_UNAVAILABLE


def _client(args: argparse.Namespace) -> NodeClient:
    home = Home(_home(args))
    config = home.config()
    return NodeClient(f"http://{config.api_host}:{config.api_port}", home.token())


def _call(args: argparse.Namespace, work: Any) -> tuple[int, Any]:  # noqa: ANN401 - JSON
    try:
        client = _client(args)
        return EXIT_OK, asyncio.run(work(client))
    except HomeError as err:
        sys.stderr.write(f"{err}\n")
        return EXIT_UNAVAILABLE, None
    except ApiError as err:
        sys.stderr.write(f"refused: {err}\n")
        return EXIT_REFUSED, None
    except (OSError, aiohttp.ClientError, TimeoutError) as err:
        why = str(err) or type(err).__name__
        sys.stderr.write(f"cannot reach the node: {why}; is 'transactiva node' running?\n")
        return EXIT_UNAVAILABLE, None


def pesos(text: str) -> int:
    """``"12.50"`` pesos to 1250 centavos; more than two decimals is an error."""
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"{text!r} is not an amount in pesos") from None
    centavos = value * 100
    if not value.is_finite() or centavos != centavos.to_integral_value() or centavos <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: a positive amount with at most 2 decimals")
    return int(centavos)


def _money(centavos: int) -> str:
    sign = "-" if centavos < 0 else ""
    return f"{sign}{abs(centavos) // 100}.{abs(centavos) % 100:02d} MXN"


def configure_wallet(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="wallet_command", metavar="ACTION", required=True)
    balance = sub.add_parser("balance", help="show a wallet balance")
    balance.add_argument("address", nargs="?", help="default: this node's participant")
    for name, help_text in (
        ("deposit", "ask the operator to credit money paid into its bank account"),
        ("withdraw", "ask the operator to pay money out to your bank account"),
    ):
        p = sub.add_parser(name, help=help_text)
        p.add_argument("amount", type=pesos, help="pesos, e.g. 150.50")
        p.add_argument("--reference", default="", help="bank reference")
    transfer = sub.add_parser("transfer", help="pay another participant")
    transfer.add_argument("to", help="the recipient: a participant's name or address")
    transfer.add_argument("amount", type=pesos, help="pesos, e.g. 12.50")
    transfer.add_argument("--memo", default="")
    for name in ("confirm-deposit", "confirm-withdrawal", "cancel"):
        p = sub.add_parser(name, help=f"{name.replace('-', ' ')} a pending request (operator)")
        p.add_argument("request", help="the request's transaction id")
    for p in sub.choices.values():
        add_dir(p)


def run_wallet(args: argparse.Namespace, out: TextIO) -> int:
    command = args.wallet_command
    if command == "balance":

        async def work(client: NodeClient) -> dict[str, Any]:
            address = args.address or (await client.status())["participant"]
            return await client.get(f"/balances/{address}")

        status, result = _call(args, work)
        if result is not None:
            out.write(
                f"{result['address']}: {_money(result['balance'])}"
                f" (held for withdrawals: {_money(result['held'])}) at height {result['height']}\n"
            )
        return status
    tx_type, body = _wallet_body(args)
    status, result = _call(args, lambda client: client.local(tx_type, body))
    if result is None:
        return status
    if result.get("status") != "committed" or result.get("code") != "ok":
        sys.stderr.write(f"refused: {result.get('code')}: {result.get('message')}\n")
        return EXIT_REFUSED
    out.write(f"{command}: committed at height {result['height']} (transaction {result['id']})\n")
    return EXIT_OK


def _wallet_body(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    command = args.wallet_command
    if command in ("deposit", "withdraw"):
        kind = "deposit_request" if command == "deposit" else "withdraw_request"
        return kind, {"amount": args.amount, "reference": args.reference}
    if command == "transfer":
        return "transfer", {"to": args.to, "amount": args.amount, "memo": args.memo}
    kind = {
        "confirm-deposit": "deposit_confirm",
        "confirm-withdrawal": "withdraw_confirm",
        "cancel": "wallet_cancel",
    }[command]
    return kind, {"request": args.request}


async def _warn_conflicts(client: NodeClient, source: str, shown: str, err: TextIO) -> None:
    """Warn where the contract contradicts the home's active contracts (the node's check
    compares it with the participant's); a warning never stops the submission."""
    try:
        answer = await client.post("/contracts/check", {"source": source})
    except ApiError:
        return  # the check is advice: without it the contract is still submitted
    for item in answer.get("diagnostics", []):
        if isinstance(item, dict) and "contract_id" in item:
            hint = f" ({item['hint']})" if item.get("hint") else ""
            err.write(
                f"{shown}:{item['line']}:{item['column']}: {item['severity']}: "
                f"{item['message']}{hint}\n"
            )


def contract_submit(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """``contract submit FILE``: check, warn where it contradicts the home's active
    contracts, propose with the local key, wait, print the receipt."""
    try:
        data = Path(args.file).read_bytes()
    except OSError as error:
        err.write(f"{args.file}: cannot read: {error.strerror or error}\n")
        return EXIT_UNAVAILABLE
    result = check(data, args.file)
    for diagnostic in result.diagnostics:
        err.write(diagnostic.render(args.file) + "\n")
    if result.contract is None:
        return EXIT_REFUSED
    source = format_contract(result.contract)

    async def work(client: NodeClient) -> dict[str, Any]:
        # The text as written, so the warnings' lines are the file's.
        await _warn_conflicts(client, data.decode("utf-8", "replace"), args.file, err)
        proposed = await client.local("contract_propose", {"source": source})
        if proposed.get("code") != "ok":
            raise ApiError(422, str(proposed.get("code")), str(proposed.get("message")))
        contract_id = proposed["events"][0]["contract_id"]
        return await client.get(f"/contracts/{contract_id}")

    status, record = _call(args, work)
    if record is None:
        return status
    if "receipt" in record:
        out.write(record["receipt"] + "\n")
    else:
        out.write(
            f"contract '{record['name']}' [{record['short_id']}] proposed; "
            f"waiting for the signatures of: {_who(record, record['missing'])}\n"
        )
    return EXIT_OK


def _who(record: dict[str, Any], addresses: list[str]) -> str:
    """Parties by name (and address), as people read them."""
    names: dict[str, str | None] = record.get("names", {})
    return ", ".join(f"{names[a]} ({a})" if names.get(a) else a for a in addresses)


def contract_list(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """``contract list``: the contracts that await this home's signature."""

    async def work(client: NodeClient) -> dict[str, Any]:
        return await client.get("/local/contracts/awaiting")

    status, answer = _call(args, work)
    if answer is None:
        return status
    contracts = answer["contracts"]
    if not contracts:
        out.write("no contract awaits this home's signature\n")
        return EXIT_OK
    out.write(f"{len(contracts)} contract(s) await this home's signature:\n")
    for record in contracts:
        out.write(
            f"  {record['short_id']}  '{record['name']}'  proposed by "
            f"{_who(record, [record['proposer']])}; parties: {_who(record, record['signers'])}\n"
        )
    out.write("sign one with: transactiva contract sign ID (the 0x... short id)\n")
    return EXIT_OK


def contract_sign(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """``contract sign ID``: countersign; the receipt line once the contract is active."""

    async def work(client: NodeClient) -> dict[str, Any]:
        return await client.post(f"/local/contracts/{args.id}/sign", {})

    status, answer = _call(args, work)
    if answer is None:
        return status
    record = answer["contract"]
    if "receipt" in record:
        out.write(record["receipt"] + "\n")
    else:
        out.write(
            f"signed '{record['name']}' [{record['short_id']}]; still waiting for the "
            f"signatures of: {_who(record, record['missing'])}\n"
        )
    return EXIT_OK
