"""``transactiva testnet init`` and ``testnet run``: a network of nodes on one machine.

``init`` writes one home per node, ``DIR/node0`` … ``DIR/node<N+M-1>``: the
first N are validators, the rest observers. Every node gets a node key (its
P2P identity), a participant key and an API token; validators also get a
validator key. All share one genesis: the N validators with power 10 each, and
node0's participant as the operator holding the ISO, supplier and DSO roles
(node0 is the concentrator). Node i listens for its API on ``base + 2i`` and
for peers on ``base + 2i + 1``. Validators keep every other validator as a
persistent peer; every node but node0 has node0 as its seed; the allow-list
holds exactly the testnet's node ids, so the network is permissioned.

``run`` starts ``python -m ledger_core node --dir DIR/node<i>`` for each node
(each in its own process group, with its log in ``DIR/node<i>/node.log``),
prints where each API listens and its token, and waits. Ctrl-C or SIGTERM is
passed on to every node; nodes that have not stopped after ``--stop-timeout``
seconds are killed. If a node exits on its own, the others are stopped and
``run`` exits with status 1.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Final, TextIO

from ledger_core.cli.node import chain_id_arg, port_arg
from ledger_core.node.home import Config, Home, HomeError, write_config, write_token
from ledger_core.types.crypto import SigningKey
from ledger_core.types.genesis import Genesis, Operator, Params, Validator

EXIT_OK: Final = 0
EXIT_FAILED: Final = 1
EXIT_UNAVAILABLE: Final = 2
DEFAULT_BASE_PORT: Final = 26600
VALIDATOR_POWER: Final = 10
MAX_NODES: Final = 64
POLL_SECONDS: Final = 0.1


def _count(low: int) -> type[int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not low <= value <= MAX_NODES:
            raise argparse.ArgumentTypeError(f"between {low} and {MAX_NODES}")
        return value

    return parse  # type: ignore[return-value]


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="testnet_command", metavar="ACTION", required=True)
    init = sub.add_parser("init", help="write the homes of a local network of nodes")
    init.add_argument("--validators", type=_count(1), required=True, metavar="N")
    init.add_argument("--observers", type=_count(0), default=0, metavar="M")
    init.add_argument("--dir", type=Path, required=True, metavar="DIR")
    init.add_argument(
        "--base-port",
        type=port_arg,
        default=DEFAULT_BASE_PORT,
        metavar="P",
        help=f"node i listens on P+2i (API) and P+2i+1 (P2P); default {DEFAULT_BASE_PORT}",
    )
    init.add_argument("--chain-id", type=chain_id_arg, default="transactiva-testnet")
    init.add_argument("--host", default="127.0.0.1", help="where every node listens")
    run = sub.add_parser("run", help="run every node of a testnet until Ctrl-C")
    run.add_argument("--dir", type=Path, required=True, metavar="DIR")
    run.add_argument("--stop-timeout", type=float, default=10.0, metavar="SECONDS")


def run(args: argparse.Namespace, out: TextIO) -> int:
    if args.testnet_command == "init":
        return run_init(args, out)
    return run_testnet(args, out)


# -- init ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Plan:
    name: str
    role: str
    api_port: int
    p2p_port: int
    node_key: SigningKey
    participant_key: SigningKey
    validator_key: SigningKey | None


def run_init(args: argparse.Namespace, out: TextIO) -> int:
    total = args.validators + args.observers
    base: int = args.base_port
    if base + 2 * total - 1 > 65535:
        sys.stderr.write(f"transactiva testnet init: ports {base}.. pass 65535 for {total} nodes\n")
        return EXIT_FAILED
    root: Path = args.dir
    if root.exists() and any(root.iterdir()):
        sys.stderr.write(f"transactiva testnet init: {root} is not empty; choose another --dir\n")
        return EXIT_FAILED
    plans = [
        _Plan(
            name=f"node{i}",
            role="validator" if i < args.validators else "observer",
            api_port=base + 2 * i,
            p2p_port=base + 2 * i + 1,
            node_key=SigningKey.generate(),
            participant_key=SigningKey.generate(),
            validator_key=SigningKey.generate() if i < args.validators else None,
        )
        for i in range(total)
    ]
    genesis = Genesis(
        chain_id=args.chain_id,
        genesis_time=int(time.time()),
        operators=(Operator(plans[0].participant_key.public_key, ("ISO", "SUPPLIER", "DSO")),),
        validators=tuple(
            Validator(p.validator_key.public_key, VALIDATOR_POWER)
            for p in plans
            if p.validator_key is not None
        ),
        params=Params(),
    )
    host: str = args.host
    addresses = {p.name: f"{p.node_key.address}@{host}:{p.p2p_port}" for p in plans}
    allow = tuple(p.node_key.address for p in plans)
    try:
        for plan in plans:
            home = Home(root / plan.name)
            (home.path / "keys").mkdir(parents=True, mode=0o700)
            config = Config(
                api_host=host,
                api_port=plan.api_port,
                role=plan.role,
                p2p_host=host,
                p2p_port=plan.p2p_port,
                seeds=() if plan.name == "node0" else (addresses["node0"],),
                persistent_peers=tuple(
                    addresses[other.name]
                    for other in plans
                    if plan.role == "validator" and other.role == "validator" and other != plan
                ),
                max_peers=max(20, total),
                allow_peers=allow,
            )
            plan.node_key.save(home.path / config.node_key_file)
            plan.participant_key.save(home.participant_key_file)
            if plan.validator_key is not None:
                plan.validator_key.save(home.validator_key_file)
            genesis.save(home.genesis_file)
            write_config(home, config)
            write_token(home)
    except OSError as err:
        sys.stderr.write(f"transactiva testnet init: {err}\n")
        return EXIT_FAILED
    out.write(
        f"initialised testnet '{args.chain_id}' in {root}: "
        f"{args.validators} validator(s), {args.observers} observer(s)\n"
        f"  operator (ISO, supplier, DSO): {plans[0].participant_key.address} (node0)\n"
    )
    for plan in plans:
        out.write(
            f"  {plan.name} {plan.role}: API http://{host}:{plan.api_port}/api/v1, "
            f"P2P {addresses[plan.name]}\n"
        )
    out.write(f"start them with: transactiva testnet run --dir {root}\n")
    return EXIT_OK


# -- run ----------------------------------------------------------------------------


def _homes(root: Path) -> list[Home]:
    """The testnet's node homes, node0 first."""
    found = [
        path
        for path in root.glob("node*")
        if path.name[4:].isdigit() and (path / "config.json").is_file()
    ]
    return [Home(path) for path in sorted(found, key=lambda p: int(p.name[4:]))]


def _stop(processes: list[tuple[Home, subprocess.Popen[bytes]]], seconds: float) -> bool:
    """SIGINT every node still running, wait, kill stragglers; True if all exited with 0."""
    for _home, process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
    deadline = time.monotonic() + seconds
    clean = True
    for home, process in processes:
        try:
            status = process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            sys.stderr.write(f"testnet: {home.path.name} did not stop in {seconds:g} s; killed\n")
            clean = False
            continue
        clean = clean and status == 0
    return clean


def run_testnet(args: argparse.Namespace, out: TextIO) -> int:
    root: Path = args.dir
    homes = _homes(root)
    if not homes:
        sys.stderr.write(
            f"transactiva testnet run: no nodes in {root}; "
            f"run 'transactiva testnet init --dir {root}' first\n"
        )
        return EXIT_UNAVAILABLE
    try:
        described = [(home, home.config(), home.token()) for home in homes]
    except HomeError as err:
        sys.stderr.write(f"transactiva testnet run: {err}\n")
        return EXIT_UNAVAILABLE
    asked_to_stop: list[int] = []

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        asked_to_stop.append(signum)

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    processes: list[tuple[Home, subprocess.Popen[bytes]]] = []
    try:
        for home, config, token in described:
            log_path = home.path / "node.log"
            with log_path.open("ab") as log:
                process = subprocess.Popen(  # noqa: S603 - this interpreter, our module
                    [sys.executable, "-m", "ledger_core", "node", "--dir", str(home.path)],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    process_group=0,  # Ctrl-C reaches run only; run passes it on
                )
            processes.append((home, process))
            p2p = f"{config.p2p_host}:{config.p2p_port}" if config.p2p_port else "off"
            out.write(
                f"{home.path.name} ({config.role}): API http://{config.api_host}:{config.api_port}"
                f"/api/v1 token {token} P2P {p2p} pid {process.pid} log {log_path}\n"
            )
        out.write(f"testnet of {len(processes)} node(s) running; Ctrl-C stops them all\n")
        out.flush()
        died: tuple[Home, int] | None = None
        while not asked_to_stop and died is None:
            for home, process in processes:
                status = process.poll()
                if status is not None:
                    died = (home, status)
                    break
            else:
                time.sleep(POLL_SECONDS)
        if died is not None:
            home, status = died
            sys.stderr.write(
                f"testnet: {home.path.name} exited with status {status} "
                f"(see {home.path / 'node.log'}); stopping the others\n"
            )
        clean = _stop(processes, args.stop_timeout)
        if died is None:
            out.write("testnet stopped\n")
        return EXIT_OK if clean and died is None else EXIT_FAILED
    finally:
        for _home, process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
