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
prints where each API listens and where its token is (never the token), and
waits. A node that exits on its own is reported and the others keep running --
the network goes on while more than two thirds of the voting power is up --;
with ``--restart`` it is started again after ``--restart-delay`` seconds
(doubling, up to 30 s, while it keeps dying within 10 s of starting; after 5
such failures in a row it is left stopped). ``transactiva testnet restart
--dir DIR NODE`` asks the running ``run`` (through a request file in
``DIR/.requests``) to stop one node and start it again. Ctrl-C or SIGTERM is
passed on to every node; nodes that have not stopped after ``--stop-timeout``
seconds are killed. Exit status: 0 after Ctrl-C when every node was running
(restarted ones included) and all stopped cleanly, 1 otherwise (or when every
node has stopped on its own), 2 when DIR holds no testnet.
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
from ledger_core.node.files import private_dir, private_file
from ledger_core.node.home import (
    Config,
    Home,
    HomeError,
    write_config,
    write_genesis,
    write_token,
)
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
    run.add_argument("--stop-timeout", type=_seconds, default=10.0, metavar="SECONDS")
    run.add_argument(
        "--restart",
        action="store_true",
        help="start a node that dies again (after --restart-delay, doubling while it keeps "
        "failing at start); without it, a node that dies stays stopped and the others run on",
    )
    run.add_argument("--restart-delay", type=_seconds, default=1.0, metavar="SECONDS")
    restart = sub.add_parser(
        "restart", help="ask a running 'testnet run' to stop one node and start it again"
    )
    restart.add_argument("--dir", type=Path, required=True, metavar="DIR")
    restart.add_argument("node", metavar="NODE", help="the node's name, e.g. node2")


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 < value <= 3600:
        raise argparse.ArgumentTypeError("between 0 and 3600 seconds")
    return value


def run(args: argparse.Namespace, out: TextIO) -> int:
    if args.testnet_command == "init":
        return run_init(args, out)
    if args.testnet_command == "restart":
        return run_restart(args, out)
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
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        what = "is not empty" if root.is_dir() else "is not a folder"
        sys.stderr.write(f"transactiva testnet init: {root} {what}; choose another --dir\n")
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
            private_dir(home.path)
            private_dir(home.keys_dir)
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
            write_genesis(home, genesis)
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

REQUESTS: Final = ".requests"  # DIR/.requests/restart-<node>: ``testnet restart`` asks
QUICK_EXIT_SECONDS: Final = 10.0  # a node that dies sooner than this failed at start
MAX_QUICK_EXITS: Final = 5  # ... this many times in a row: it is not restarted again
MAX_RESTART_DELAY: Final = 30.0
RESTART_WAIT_SECONDS: Final = 30.0


def _homes(root: Path) -> list[Home]:
    """The testnet's node homes, node0 first."""
    found = [
        path
        for path in root.glob("node*")
        if path.name[4:].isdigit() and (path / "config.json").is_file()
    ]
    return [Home(path) for path in sorted(found, key=lambda p: int(p.name[4:]))]


@dataclass(slots=True)
class Member:
    """One node of the running testnet and what became of it."""

    home: Home
    config: Config
    process: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    restarts: int = 0
    quick_exits: int = 0
    restart_at: float | None = None  # when it is to start again (after dying, --restart)
    given_up: bool = False

    @property
    def name(self) -> str:
        return self.home.path.name

    @property
    def log(self) -> Path:
        return self.home.path / "node.log"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, now: float) -> None:
        """Start (or start again) the node's process, its output appended to its log."""
        with private_file(self.log).open("ab") as log:
            self.process = subprocess.Popen(  # noqa: S603 - this interpreter, our module
                [sys.executable, "-m", "ledger_core", "node", "--dir", str(self.home.path)],
                stdout=log,
                stderr=subprocess.STDOUT,
                process_group=0,  # Ctrl-C reaches run only; run passes it on
            )
        self.started = now
        self.restart_at = None

    def describe(self) -> str:
        config = self.config
        p2p = f"{config.p2p_host}:{config.p2p_port}" if config.p2p_port else "off"
        pid = self.process.pid if self.process is not None else "-"
        return (
            f"{self.name} ({config.role}): API http://{config.api_host}:{config.api_port}/api/v1 "
            f"token-file {self.home.token_file} P2P {p2p} pid {pid} log {self.log}"
        )


def stop_one(member: Member, seconds: float, *, signal_it: bool = True) -> bool:
    """SIGINT the node, wait up to ``seconds``, kill it after; True if it exited with 0."""
    process = member.process
    if process is None:
        return True
    if signal_it and process.poll() is None:
        process.send_signal(signal.SIGINT)
    try:
        return process.wait(max(0.0, seconds)) == 0
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        sys.stderr.write(f"testnet: {member.name} did not stop in time; killed\n")
        return False


def stop_all(members: list[Member], seconds: float) -> bool:
    """SIGINT every node still running, wait, kill stragglers; True if all exited with 0."""
    for member in members:
        if member.running:
            assert member.process is not None
            member.process.send_signal(signal.SIGINT)
    deadline = time.monotonic() + seconds
    clean = True
    for member in members:
        left = deadline - time.monotonic()
        clean = stop_one(member, left, signal_it=False) and clean
    return clean


class Supervisor:
    """Watches the nodes: says when one dies, restarts it (``--restart``) or on request."""

    def __init__(self, root: Path, members: list[Member], args: argparse.Namespace) -> None:
        self.root = root
        self.members = members
        self.restart: bool = args.restart
        self.delay: float = args.restart_delay
        self.stop_timeout: float = args.stop_timeout
        self.out: TextIO = sys.stdout

    def say(self, text: str, *, problem: bool = False) -> None:
        stream = sys.stderr if problem else self.out
        stream.write(f"testnet: {text}\n")
        stream.flush()

    def running_count(self) -> str:
        alive = sum(1 for m in self.members if m.running)
        return f"{alive} of {len(self.members)} node(s) running"

    def poll(self, now: float) -> None:
        """One look at every node: deaths, due restarts, restart requests."""
        for member in self.members:
            process = member.process
            if process is not None and member.restart_at is None and not member.given_up:
                status = process.poll()
                if status is not None:
                    self._died(member, status, now)
            if member.restart_at is not None and now >= member.restart_at:
                member.start(now)
                member.restarts += 1
                self.say(
                    f"{member.name} restarted (pid {member.process.pid if member.process else '-'}"
                    f", restart {member.restarts}); {self.running_count()}"
                )
        self._requests(now)

    def _died(self, member: Member, status: int, now: float) -> None:
        quick = now - member.started < QUICK_EXIT_SECONDS
        member.quick_exits = member.quick_exits + 1 if quick else 0
        self.say(
            f"{member.name} exited with status {status} (see {member.log}); "
            f"the others keep running: {self.running_count()}",
            problem=True,
        )
        if not self.restart:
            member.given_up = True
            return
        if member.quick_exits >= MAX_QUICK_EXITS:
            member.given_up = True
            self.say(
                f"{member.name} failed {member.quick_exits} times within "
                f"{QUICK_EXIT_SECONDS:g} s of starting; not restarting it again (see its log)",
                problem=True,
            )
            return
        wait = min(self.delay * 2 ** max(0, member.quick_exits - 1), MAX_RESTART_DELAY)
        member.restart_at = now + wait
        self.say(f"{member.name} will be restarted in {wait:g} s (--restart)")

    def _requests(self, now: float) -> None:
        """``transactiva testnet restart NODE`` leaves a request file; act on it."""
        folder = self.root / REQUESTS
        if not folder.is_dir():
            return
        by_name = {m.name: m for m in self.members}
        for request in sorted(folder.glob("restart-*")):
            name = request.name.removeprefix("restart-")
            member = by_name.get(name)
            if member is not None:
                self.say(f"restarting {name} as asked")
                stop_one(member, self.stop_timeout)
                member.given_up = False
                member.quick_exits = 0
                member.start(time.monotonic())
                member.restarts += 1
                pid = member.process.pid if member.process else "-"
                self.say(f"{name} restarted (pid {pid}); {self.running_count()}")
            request.unlink(missing_ok=True)

    def all_gone(self) -> bool:
        """No node runs and none will start again."""
        return all(not m.running and m.restart_at is None for m in self.members)


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
        members = [Member(home, home.config()) for home in homes]
        for home in homes:
            home.token()  # refused now, with the fix, rather than by each node in its log
    except HomeError as err:
        sys.stderr.write(f"transactiva testnet run: {err}\n")
        return EXIT_UNAVAILABLE
    stale = root / REQUESTS
    if stale.is_dir():
        for request in stale.glob("restart-*"):
            request.unlink(missing_ok=True)
    asked_to_stop: list[int] = []

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        asked_to_stop.append(signum)

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    supervisor = Supervisor(root, members, args)
    supervisor.out = out
    try:
        for member in members:
            member.start(time.monotonic())
            out.write(member.describe() + "\n")
        out.write(
            f"testnet of {len(members)} node(s) running; each API token is in the node's "
            f"api-token file (e.g. TOKEN=$(cat {homes[0].token_file})); Ctrl-C stops them all\n"
        )
        out.write(
            "a node that dies is "
            + ("restarted (--restart)" if args.restart else "left stopped (see --restart)")
            + f"; restart one with: transactiva testnet restart --dir {root} NODE\n"
        )
        out.flush()
        while not asked_to_stop:
            supervisor.poll(time.monotonic())
            if supervisor.all_gone():
                supervisor.say("every node has stopped", problem=True)
                break
            time.sleep(POLL_SECONDS)
        whole = all(member.running for member in members)
        clean = stop_all(members, args.stop_timeout)
        if asked_to_stop:
            out.write("testnet stopped\n")
        # 0: asked to stop with every node up (restarted ones count) and stopping cleanly.
        return EXIT_OK if asked_to_stop and whole and clean else EXIT_FAILED
    finally:
        for member in members:
            if member.running:
                assert member.process is not None
                member.process.kill()
                member.process.wait()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


# -- restart ------------------------------------------------------------------------


def run_restart(args: argparse.Namespace, out: TextIO) -> int:
    """Ask the ``testnet run`` of DIR to restart one node, and wait until it has."""
    root: Path = args.dir
    names = {home.path.name for home in _homes(root)}
    name: str = args.node
    if name not in names:
        known = ", ".join(sorted(names, key=lambda n: int(n[4:]))) or "none"
        sys.stderr.write(
            f"transactiva testnet restart: no node {name} in {root} (nodes: {known})\n"
        )
        return EXIT_UNAVAILABLE
    request = private_dir(root / REQUESTS) / f"restart-{name}"
    private_file(request)
    deadline = time.monotonic() + RESTART_WAIT_SECONDS
    while request.exists():
        if time.monotonic() > deadline:
            request.unlink(missing_ok=True)
            sys.stderr.write(
                f"transactiva testnet restart: no 'testnet run --dir {root}' answered within "
                f"{RESTART_WAIT_SECONDS:g} s; is it running?\n"
            )
            return EXIT_UNAVAILABLE
        time.sleep(POLL_SECONDS)
    out.write(f"{name} restarted by the testnet run of {root}\n")
    return EXIT_OK
