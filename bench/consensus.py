"""Networks of validators as processes on loopback: committed tx/s and submit-to-commit latency.

    .venv/bin/python -m bench.consensus [--validators 1,4,7] [--rates 1000] [--seconds 15]
        [--accounts 2000] [--batch 100] [--block-interval S] [--dir DIR] [--profile] [--quick]

``--quick``: four validators, 1,000 tx/s for 6 s, 1,000 accounts.

For each size N: ``transactiva testnet init --validators N`` in a fresh folder
(``--dir``, default a temporary folder on disk), every node started as
``python -m ledger_core node`` (real SQLite files, WAL and private-validator
fsyncs, WebSocket P2P on 127.0.0.1, default timeouts, ``block_interval``
0.2 s unless ``--block-interval`` sets every node's). Set-up, not measured:
``--accounts`` participants registered and funded (register, deposit request,
deposit confirmation). Then a load process posts
pre-signed transfers to ``/api/v1/txs/batch?wait=true`` at each of ``--rates`` tx/s for
``--seconds``, ``--batch`` per request, spreading the requests over the
validators (each account always to the same node, in nonce order). Every
transaction must commit with code ``ok``; the answer to a request comes when
all of its transactions are committed on that node, so the request's time is
each transaction's submit-to-commit latency. Committed tx/s is the number of
transactions over the time from the first request to the last answer.

``--profile`` runs node 1 (node 0 for N = 1) under cProfile and prints where its
time went. Afterwards every node must report the same height and app hash.

Besides the load average and the Ed25519 verification rate of this process (the
yardstick of issue 19: four validators at 1,000 tx/s with p99 under 2 s at a load
average of at most 3, each spending at most 250 µs of CPU per transaction), the
table gives each validator's CPU per transaction in µs and in signature
verifications' worth, and the blocks made while the load ran (from the height
the nodes agree on before it to the one they agree on after) with the
transactions per block: a validator's CPU has a part per transaction and a part
per block, so a longer ``--block-interval`` (bigger blocks) lowers the CPU per
transaction and raises the latency. Requests the nodes refuse with 503
``overloaded`` are counted, not retried.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile  # noqa: F401 - named in the profiled command line
import io
import json
import multiprocessing
import os
import pstats
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import aiohttp

from bench.common import cpu_seconds as _cpu_seconds
from bench.common import footer, header
from ledger_core.cli import main as cli
from ledger_core.demo.chain import free_port_run
from ledger_core.node.home import Config, Home, write_config
from ledger_core.types.crypto import SigningKey
from ledger_core.types.tx import Tx, TxType, sign


@dataclass
class Node:
    name: str
    home: Home
    api: str
    token: str
    process: subprocess.Popen[bytes] | None = None
    profile: Path | None = None


def _key(i: int) -> SigningKey:
    return SigningKey.from_seed(i.to_bytes(32, "big"))


def _init(
    root: Path, validators: int, profile: bool, block_interval: float | None = None
) -> list[Node]:
    out = io.StringIO()
    args = ["testnet", "init", "--validators", str(validators), "--dir", str(root)]
    args += ["--base-port", str(free_port_run(2 * validators)), "--chain-id", "bench-net"]
    if cli(args, out=out) != 0:
        raise RuntimeError(out.getvalue())
    nodes = []
    for i in range(validators):
        home = Home(root / f"node{i}")
        config = home.config()
        changed: dict[str, Any] = {"execute_contracts": False}
        if block_interval is not None:
            changed["block_interval"] = block_interval
        write_config(home, Config.from_json({**config.to_json(), **changed}))
        nodes.append(
            Node(
                f"node{i}",
                home,
                f"http://127.0.0.1:{config.api_port}/api/v1",
                home.token(),
                profile=home.path / "profile.out"
                if profile and i == min(1, validators - 1)
                else None,
            )
        )
    return nodes


def _start(node: Node, py_spy: str | None = None) -> None:
    command = [sys.executable, "-m", "ledger_core", "node", "--dir", str(node.home.path)]
    if node.profile is not None and py_spy is not None:
        raw = str(node.profile.with_suffix(".py-spy.txt"))
        command[0:0] = [py_spy, "record", "-r", "250", "-f", "raw", "-o", raw, "--"]
    elif node.profile is not None:
        command[1:1] = ["-m", "cProfile", "-o", str(node.profile)]
    with (node.home.path / "node.log").open("ab") as log:
        node.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603


def _stop(nodes: list[Node]) -> None:
    for node in nodes:
        if node.process is not None and node.process.poll() is None:
            node.process.send_signal(signal.SIGINT)
    for node in nodes:
        if node.process is not None:
            try:
                node.process.wait(30)
            except subprocess.TimeoutExpired:
                node.process.kill()
                node.process.wait(10)


async def _status(session: aiohttp.ClientSession, node: Node) -> dict[str, Any]:
    async with session.get(f"{node.api}/status") as answer:
        body: dict[str, Any] = await answer.json()
        return body


async def _ready(session: aiohttp.ClientSession, nodes: list[Node]) -> None:
    deadline = time.monotonic() + 60
    for node in nodes:
        while True:
            with contextlib.suppress(aiohttp.ClientError, OSError):
                status = await _status(session, node)
                if status["peers"]["count"] >= len(nodes) - 1:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{node.name} is not up; see {node.home.path / 'node.log'}")
            await asyncio.sleep(0.2)


async def _post(session: aiohttp.ClientSession, node: Node, txs: list[Tx]) -> None:
    async with session.post(
        f"{node.api}/txs/batch?wait=true",
        data=b"\n".join(tx.wire() for tx in txs),
        headers={"Authorization": f"Bearer {node.token}"},
    ) as answer:
        body = await answer.json()
    bad = [r for r in body["results"] if r["code"] != "ok"]
    if bad:
        raise RuntimeError(f"set-up refused: {bad[:3]}")


async def _setup(nodes: list[Node], accounts: list[SigningKey]) -> None:
    """Register and fund every account (through node0)."""
    operator = nodes[0].home.participant_key()
    chain = nodes[0].home.genesis().chain_id
    nonce = 0
    async with aiohttp.ClientSession() as session:
        await _ready(session, nodes)
        for start in range(0, len(accounts), 1000):
            chunk = accounts[start : start + 1000]
            registers = []
            for person in chunk:
                nonce += 1
                body = {"public_key": person.public_key.hex(), "role": "prosumer"}
                registers.append(sign(operator, chain, TxType.REGISTER, nonce, body))  # type: ignore[arg-type]
            await _post(session, nodes[0], registers)
            deposits = [sign(p, chain, TxType.DEPOSIT_REQUEST, 1, {"amount": 10**9}) for p in chunk]
            await _post(session, nodes[0], deposits)
            confirms = []
            for tx in deposits:
                nonce += 1
                confirms.append(
                    sign(operator, chain, TxType.DEPOSIT_CONFIRM, nonce, {"request": tx.id})
                )
            await _post(session, nodes[0], confirms)
        # Every node has the funded accounts before the load starts.
        height = (await _status(session, nodes[0]))["height"]
        deadline = time.monotonic() + 60
        for node in nodes:
            while (await _status(session, node))["height"] < height:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{node.name} is behind after set-up")
                await asyncio.sleep(0.1)


def _transfers(chain: str, accounts: list[SigningKey], count: int) -> list[Tx]:
    txs = []
    for i in range(count):
        sender = accounts[i % len(accounts)]
        receiver = accounts[(i + 1) % len(accounts)]
        nonce = 2 + i // len(accounts)
        txs.append(
            sign(sender, chain, TxType.TRANSFER, nonce, {"to": receiver.address, "amount": 1})
        )
    return txs


def _load_process(
    targets: list[tuple[str, str]],
    lanes: list[list[bytes]],
    rate: float,
    batch: int,
    conn: Connection,
) -> None:
    """Post every lane's transactions in batches at ``rate`` tx/s in total (open loop)."""

    async def run() -> dict[str, Any]:
        latencies: list[float] = []
        codes: dict[str, int] = {}
        requests: list[tuple[int, list[bytes]]] = []
        cursors = [0] * len(lanes)
        while any(c < len(lane) for c, lane in zip(cursors, lanes, strict=True)):
            for i, lane in enumerate(lanes):
                if cursors[i] < len(lane):
                    requests.append((i, lane[cursors[i] : cursors[i] + batch]))
                    cursors[i] += batch

        async def one(session: aiohttp.ClientSession, i: int, chunk: list[bytes]) -> None:
            url, token = targets[i]
            sent = time.perf_counter()
            try:
                async with session.post(
                    f"{url}/txs/batch?wait=true",
                    data=b"\n".join(chunk),
                    headers={"Authorization": f"Bearer {token}"},
                ) as answer:
                    body = await answer.json()
                if answer.status == 503:  # overloaded: counted, not retried
                    code = body["error"]["code"]
                    codes[code] = codes.get(code, 0) + len(chunk)
                    return
                results = body["results"]
            except (aiohttp.ClientError, TimeoutError, KeyError, ValueError) as err:
                what = f"request failed: {type(err).__name__}"
                codes[what] = codes.get(what, 0) + len(chunk)
                return
            done = time.perf_counter() - sent
            for result in results:
                codes[result["code"]] = codes.get(result["code"], 0) + 1
            latencies.extend([done] * len(chunk))

        timeout = aiohttp.ClientTimeout(total=120)
        async with aiohttp.ClientSession(
            timeout=timeout, connector=aiohttp.TCPConnector(limit=0)
        ) as session:
            start = time.perf_counter()
            tasks = []
            sent = 0
            for i, chunk in requests:
                due = start + sent / rate
                delay = due - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.create_task(one(session, i, chunk)))
                sent += len(chunk)
            await asyncio.gather(*tasks)
            elapsed = time.perf_counter() - start
        return {"elapsed": elapsed, "latencies": latencies, "codes": codes, "sent": sent}

    conn.send(asyncio.run(run()))
    conn.close()


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def _agree(nodes: list[Node]) -> int:
    """All nodes at one height with one app hash (waits up to 30 s); the height."""
    async with aiohttp.ClientSession() as session:
        deadline = time.monotonic() + 30
        while True:
            statuses = [await _status(session, node) for node in nodes]
            if len({(s["height"], s["app_hash"]) for s in statuses}) == 1:
                return int(statuses[0]["height"])
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"nodes disagree: {[(s['height'], s['app_hash'][:8]) for s in statuses]}"
                )
            await asyncio.sleep(0.2)


def measure(root: Path, validators: int, args: argparse.Namespace) -> dict[str, Any]:
    nodes = _init(root, validators, args.profile or args.py_spy is not None, args.block_interval)
    for node in nodes:
        _start(node, args.py_spy)
    try:
        accounts = [_key(1000 + i) for i in range(args.accounts)]
        asyncio.run(_setup(nodes, accounts))
        chain = nodes[0].home.genesis().chain_id
        txs = _transfers(chain, accounts, int(args.rate * args.seconds))
        lanes: list[list[bytes]] = [[] for _ in nodes]
        for i, tx in enumerate(txs):
            lanes[(i % len(accounts)) % len(nodes)].append(tx.wire())
        context = multiprocessing.get_context("spawn")
        receiver, sender = context.Pipe(duplex=False)
        child = context.Process(
            target=_load_process,
            args=([(n.api, n.token) for n in nodes], lanes, args.rate, args.batch, sender),
        )
        first = asyncio.run(_agree(nodes))
        cpu_before = [_cpu_seconds(n.process.pid) for n in nodes if n.process is not None]
        child.start()
        sender.close()  # so that a child that dies is seen as the end of the pipe
        try:
            result: dict[str, Any] = receiver.recv()
        except EOFError:
            raise RuntimeError(f"the load process died (exit code {child.exitcode})") from None
        cpu_after = [_cpu_seconds(n.process.pid) for n in nodes if n.process is not None]
        child.join(30)
        height = asyncio.run(_agree(nodes))
    finally:
        _stop(nodes)
    latencies = result["latencies"]
    committed = result["codes"].get("ok", 0)
    row = {
        "validators": validators,
        "offered": args.rate,
        "committed": committed,
        "sent": result["sent"],
        "tx_s": committed / result["elapsed"],
        "p50": _percentile(latencies, 0.5),
        "p99": _percentile(latencies, 0.99),
        "codes": result["codes"],
        "height": height,
        "blocks": height - first,
        "node_cpu": [b - a for a, b in zip(cpu_before, cpu_after, strict=True)],
        "elapsed": result["elapsed"],
    }
    for node in nodes:
        spied = None if node.profile is None else node.profile.with_suffix(".py-spy.txt")
        if spied is not None and spied.exists():
            row["py_spy"] = str(spied)
        if node.profile is not None and node.profile.exists():
            text = io.StringIO()
            stats = pstats.Stats(str(node.profile), stream=text)
            stats.sort_stats("tottime").print_stats(25)
            row["profile"] = text.getvalue()
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--validators", default="1,4,7", help="network sizes, comma-separated")
    parser.add_argument("--rates", default="1000", help="offered loads, tx/s, comma-separated")
    parser.add_argument("--seconds", type=float, default=15.0, help="length of the load")
    parser.add_argument("--accounts", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=100, help="transactions per request")
    parser.add_argument(
        "--dir", type=Path, default=None, help="where the homes go (default: a temporary folder)"
    )
    parser.add_argument("--profile", action="store_true", help="profile node 1 with cProfile")
    parser.add_argument(
        "--py-spy", default=None, metavar="PY_SPY", help="profile node 1 with this py-spy (raw)"
    )
    parser.add_argument(
        "--block-interval",
        type=float,
        default=None,
        metavar="SECONDS",
        help="every node's block_interval (default: the node's, 0.2 s)",
    )
    parser.add_argument("--quick", action="store_true", help="4 validators, 1,000 tx/s, 6 s")
    args = parser.parse_args()
    if args.block_interval is not None and not 0 < args.block_interval <= 60:
        parser.error(f"--block-interval {args.block_interval:g}: give 0 < SECONDS <= 60")
    if args.quick:
        args.validators, args.rates, args.seconds, args.accounts = "4", "1000", 6.0, 1000
    if args.dir is not None:
        try:
            Path(args.dir).mkdir(parents=True, exist_ok=True)
        except OSError as err:
            parser.error(f"--dir {args.dir}: {err.strerror}")
    verified = header("Networks of validators")
    rows = []
    for size in (int(v) for v in args.validators.split(",")):
        for rate in (float(r) for r in args.rates.split(",")):
            args.rate = rate
            root = Path(tempfile.mkdtemp(prefix=f"bench-{size}-", dir=args.dir))
            try:
                rows.append(measure(root / "net", size, args))
            finally:
                if args.dir is None:
                    shutil.rmtree(root, ignore_errors=True)
    load = os.getloadavg()[0]
    print(
        f"\nload: pre-signed transfers from {args.accounts} accounts for {args.seconds:g} s, "
        f"{args.batch} per request to /txs/batch?wait=true; {os.cpu_count()} CPUs, "
        f"load average {load:.1f} at the end\n"
    )
    print(
        "| validators | offered tx/s | committed tx/s | p50 latency | p99 latency | blocks | "
        "tx per block |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        print(
            f"| {row['validators']} | {row['offered']:,.0f} | {row['tx_s']:,.0f} | "
            f"{row['p50'] * 1000:,.0f} ms | {row['p99'] * 1000:,.0f} ms | {row['blocks']} | "
            f"{row['committed'] / max(1, row['blocks']):,.0f} |"
        )
    print(
        "\n| validators | offered tx/s | CPU s per node (load) | all nodes' CPU per tx | "
        "per validator per tx | in verifications | length |"
    )
    print("|---:|---:|---|---:|---:|---:|---:|")
    for row in rows:
        cpu = row["node_cpu"]
        per_tx = sum(cpu) / max(1, row["committed"]) * 1e6
        each = ", ".join(f"{c:.1f}" for c in cpu)
        per_validator = per_tx / row["validators"]
        print(
            f"| {row['validators']} | {row['offered']:,.0f} | {each} | {per_tx:,.0f} µs | "
            f"{per_validator:,.0f} µs | {per_validator * verified[1] / 1e6:.1f} | "
            f"{row['elapsed']:.1f} s |"
        )
    for row in rows:
        if row["committed"] != row["sent"]:
            print(f"{row['validators']} validators: not all committed: {row['codes']}")
        if "profile" in row:
            print(f"\nprofile of one validator of {row['validators']}:\n{row['profile']}")
    footer(verified)
    print(json.dumps([{k: v for k, v in r.items() if k != "profile"} for r in rows]))


if __name__ == "__main__":
    main()
