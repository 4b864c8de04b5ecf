"""One validator's throughput and latency: signed transfers and interval reports.

    .venv/bin/python -m bench.ledger [--txs 20000] [--clients 64] [--quick] [--core-only]
                                     [--chain 120000]

Two measurements, each on a fresh node in a temporary folder (real SQLite file,
WAL, synchronous=FULL):

* core: transactions are signed in advance, then submitted to the node
  (decode, signature check, mempool check) and committed in blocks of up to
  5,000 — what the ledger itself sustains on one core. Measured by the
  process's CPU time, next to the Ed25519 verification rate sampled between the
  blocks (the same load) and the share of the CPU time spent verifying
  signatures (one verification in 8 timed, since reading the CPU clock costs
  about 1.5 µs); the goal of issue 19 is a rate of at least half the verification
  rate. ``--chain N`` runs N transfers instead and prints the rate of each
  10% of them (flat as the chain grows?);
* API: concurrent clients on loopback POST pre-signed transactions with
  ``?wait=true`` — end to end, including HTTP; latency is submit to commit.
  Once with one request per transaction (clients in this process, sharing
  its core), once with batches (``/txs/batch``) sent from another process.

Prints a table and the node's resident memory (RSS) idle and after load.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import resource
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Final

import aiohttp
from aiohttp import web

import ledger_core.types.tx as tx_module
from bench.common import footer, header
from ledger_core.api.core import make_app
from ledger_core.node.host import Node
from ledger_core.node.storage import open_storage
from ledger_core.state.machine import StateMachine
from ledger_core.types.crypto import SigningKey, verify
from ledger_core.types.genesis import Genesis, Operator, Params, Validator
from ledger_core.types.metering import commitment
from ledger_core.types.tx import Tx, TxType, sign

CHAIN = "bench-1"
START = 1_773_165_600


def _key(i: int) -> SigningKey:
    return SigningKey.from_seed(i.to_bytes(32, "big"))


def _rss_mib() -> float:
    """Current resident set size of this process, MiB (Linux /proc)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _setup(
    folder: Path, people: int
) -> tuple[Node, SigningKey, list[SigningKey], list[SigningKey]]:
    """A node with ``people`` funded participants, each with a meter."""
    operator, validator = _key(1), _key(2)
    genesis = Genesis(
        chain_id=CHAIN,
        genesis_time=START - 86400,
        operators=(Operator(operator.public_key, ("ISO", "SUPPLIER", "DSO")),),
        validators=(Validator(validator.public_key, 1),),
        params=Params(max_block_txs=5000),
    )
    clock = [float(START)]
    node = Node(
        genesis,
        validator,
        open_storage(folder, genesis),
        clock=lambda: clock[0],
        app_factory=StateMachine.restore,
    )
    participants = [_key(100 + i) for i in range(people)]
    meters = [_key(100_000 + i) for i in range(people)]
    nonce = 0
    setup: list[Tx] = []
    for person, meter in zip(participants, meters, strict=True):
        nonce += 1
        setup.append(
            sign(
                operator,
                CHAIN,
                TxType.REGISTER,
                nonce,
                {"public_key": person.public_key.hex(), "role": "prosumer"},
            )
        )
        nonce += 1
        setup.append(
            sign(
                operator,
                CHAIN,
                TxType.BIND_METER,
                nonce,
                {"meter_public_key": meter.public_key.hex(), "participant": person.address},
            )
        )
    for tx in setup:
        assert node.submit(tx.wire()).accepted
    node.produce_block()
    deposits = [sign(p, CHAIN, TxType.DEPOSIT_REQUEST, 1, {"amount": 10**9}) for p in participants]
    for tx in deposits:
        assert node.submit(tx.wire()).accepted
    node.produce_block()
    for tx in deposits:
        nonce += 1
        assert node.submit(
            sign(operator, CHAIN, TxType.DEPOSIT_CONFIRM, nonce, {"request": tx.id}).wire()
        ).accepted
    node.produce_block()
    clock[0] += 3600
    node.clock = time.time if False else (lambda: clock[0])
    return node, operator, participants, meters  # fmt: skip


def _transfers(participants: list[SigningKey], count: int) -> list[Tx]:
    txs = []
    for i in range(count):
        sender = participants[i % len(participants)]
        receiver = participants[(i + 1) % len(participants)]
        nonce = 2 + i // len(participants)
        txs.append(
            sign(sender, CHAIN, TxType.TRANSFER, nonce, {"to": receiver.address, "amount": 1})
        )
    return txs


def _reports(meters: list[SigningKey], count: int) -> list[Tx]:
    txs = []
    for i in range(count):
        meter = meters[i % len(meters)]
        interval = START - 900 * (1 + i // len(meters))
        txs.append(
            sign(
                meter,
                CHAIN,
                TxType.REPORT,
                1 + i // len(meters),
                {
                    "interval_start": interval,
                    # A commitment to 120 Wh in and 40 out (docs/privacy.md), salted.
                    "commitment": commitment(
                        CHAIN,
                        meter.address,
                        interval,
                        import_wh=120,
                        export_wh=40,
                        salt=i.to_bytes(32, "big"),
                    ),
                },
            )
        )
    return txs  # fmt: skip


class _Core:
    """The core's figures: committed transactions per CPU second and per wall second,
    the verification rate sampled between blocks, the share of CPU spent verifying."""

    def __init__(self) -> None:
        self.cpu = self.wall = self.verify_cpu = self.in_verify = 0.0
        self.committed = self.verified = 0
        self.chunks: list[float] = []  # tx per CPU second, per part of the run

    @property
    def rate(self) -> float:
        return self.committed / self.cpu

    @property
    def verify_rate(self) -> float:
        return self.verified / self.verify_cpu

    @property
    def ratio(self) -> float:
        return self.rate / self.verify_rate

    @property
    def share(self) -> float:
        return self.in_verify / self.cpu


_SAMPLE_EVERY: Final = 8
"""One verification in this many is timed, for the share of the CPU spent verifying."""
_KEY = SigningKey.from_seed(b"\x07" * 32)
_MESSAGE = b"x" * 300
_SIGNATURE = _KEY.sign(_MESSAGE)


def _core(node: Node, txs: list[Tx], parts: int = 1) -> _Core:
    """Submit and commit every transaction in blocks of up to 5,000; between blocks,
    verify 200 signatures (the yardstick, under the same load)."""
    figures = _Core()
    wires = [tx.wire() for tx in txs]
    namespace = vars(tx_module)  # where Tx.verify_signature finds verify
    original: Callable[[bytes, bytes, bytes], bool] = namespace["verify"]
    calls = [0]

    def timed_verify(public_key: bytes, signature: bytes, message: bytes) -> bool:
        # Reading the process's CPU clock costs about 1.5 µs here, so only one
        # verification in _SAMPLE_EVERY is timed (the share is scaled up): timing each
        # would add about 3 µs to every transaction the core is measured on.
        calls[0] += 1
        if calls[0] % _SAMPLE_EVERY:
            return original(public_key, signature, message)
        start = time.process_time()
        try:
            return original(public_key, signature, message)
        finally:
            figures.in_verify += (time.process_time() - start) * _SAMPLE_EVERY

    namespace["verify"] = timed_verify
    part = max(1, len(wires) // parts)
    part_cpu, part_done = 0.0, 0
    try:
        for i in range(0, len(wires), 5000):
            cpu, wall = time.process_time(), time.perf_counter()
            for wire in wires[i : i + 5000]:
                result = node.submit(wire)
                assert result.accepted, result
            done = node.produce_block().header.tx_count
            spent = time.process_time() - cpu
            figures.cpu += spent
            figures.wall += time.perf_counter() - wall
            figures.committed += done
            part_cpu += spent
            part_done += done
            if part_done >= part:
                figures.chunks.append(part_done / part_cpu)
                part_cpu, part_done = 0.0, 0
            cpu = time.process_time()
            for _ in range(200):
                verify(_KEY.public_key, _SIGNATURE, _MESSAGE)
            figures.verify_cpu += time.process_time() - cpu
            figures.verified += 200
    finally:
        namespace["verify"] = original
    assert figures.committed == len(txs)
    return figures


@contextlib.asynccontextmanager
async def _serving(node: Node) -> AsyncIterator[int]:
    """The node's API on a free loopback port, and its block loop, for the duration."""
    app = make_app(node, "token", _key(1))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    stop = asyncio.Event()
    producer = asyncio.create_task(node.run(stop, block_interval=0.05, empty_block_every=3600))
    try:
        yield site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    finally:
        stop.set()
        await producer
        await runner.cleanup()


async def _api(node: Node, txs: list[Tx], clients: int) -> tuple[float, list[float]]:
    """End to end over HTTP; throughput and per-transaction latencies (s)."""
    async with _serving(node) as port:
        # Each client sends the transactions of its own signers, in nonce order.
        signers = sorted({tx.signer for tx in txs})
        lanes: list[list[bytes]] = [[] for _ in range(clients)]
        for tx in txs:
            lanes[signers.index(tx.signer) % clients].append(tx.wire())
        latencies: list[float] = []
        headers = {"Authorization": "Bearer token"}

        async def client(session: aiohttp.ClientSession, lane: list[bytes]) -> None:
            for wire in lane:
                sent = time.perf_counter()
                async with session.post(
                    f"http://127.0.0.1:{port}/api/v1/txs?wait=true", data=wire, headers=headers
                ) as response:
                    body = await response.json()
                    assert body.get("code") == "ok", body
                latencies.append(time.perf_counter() - sent)

        start = time.perf_counter()
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=clients)) as session:
            await asyncio.gather(*(client(session, lane) for lane in lanes))
        elapsed = time.perf_counter() - start
        return len(txs) / elapsed, latencies  # fmt: skip


def _load_process(  # noqa: PLR0917 - a process target receives its arguments positionally
    port: int, wires: list[bytes], signers: list[str], clients: int, batch: int, conn: Connection
) -> None:
    """In a separate process: post the transactions in batches, each lane's signers in order."""

    async def run() -> tuple[float, list[float]]:
        names = sorted(set(signers))
        lanes: list[list[bytes]] = [[] for _ in range(clients)]
        for wire, signer in zip(wires, signers, strict=True):
            lanes[names.index(signer) % clients].append(wire)
        latencies: list[float] = []
        headers = {"Authorization": "Bearer token"}
        url = f"http://127.0.0.1:{port}/api/v1/txs/batch?wait=true"

        async def client(session: aiohttp.ClientSession, lane: list[bytes]) -> None:
            for i in range(0, len(lane), batch):
                chunk = lane[i : i + batch]
                sent = time.perf_counter()
                async with session.post(url, data=b"\n".join(chunk), headers=headers) as response:
                    body = await response.json()
                done = time.perf_counter() - sent
                assert all(r["code"] == "ok" for r in body["results"]), body
                latencies.extend([done] * len(chunk))

        start = time.perf_counter()
        async with aiohttp.ClientSession() as session:
            await asyncio.gather(*(client(session, lane) for lane in lanes if lane))
        return time.perf_counter() - start, latencies

    conn.send(asyncio.run(run()))
    conn.close()


async def _api_batched(
    node: Node, txs: list[Tx], clients: int, batch: int
) -> tuple[float, list[float]]:
    """End to end over HTTP with the load generator in its own process, batched."""
    async with _serving(node) as port:
        context = multiprocessing.get_context("spawn")
        receiver, sender = context.Pipe(duplex=False)
        child = context.Process(
            target=_load_process,
            args=(
                port,
                [tx.wire() for tx in txs],
                [tx.signer for tx in txs],
                clients,
                batch,
                sender,
            ),
        )
        child.start()
        elapsed, latencies = await asyncio.get_running_loop().run_in_executor(None, receiver.recv)
        child.join(30)
        return len(txs) / elapsed, latencies


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def _kind_txs(
    kind: str, people: list[SigningKey], meters: list[SigningKey], count: int
) -> list[Tx]:
    return _transfers(people, count) if kind == "transfers" else _reports(meters, count)


def _print_core(cores: list[tuple[str, _Core]]) -> None:
    print("| core | committed tx per CPU s (wall) | Ed25519 per CPU s | ratio | "
          "CPU verifying | goal |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---|")
    for name, core in cores:
        verdict = "ok" if core.ratio >= 0.5 else "MISS"
        print(
            f"| {name} | {core.rate:,.0f} ({core.committed / core.wall:,.0f}) | "
            f"{core.verify_rate:,.0f} | {core.ratio:.2f} | {core.share:.0%} | "
            f"ratio >= 0.5: {verdict} |"
        )


def _chain_run(count: int, people_count: int) -> None:
    """Transfers on a fresh chain, the rate of each tenth of them."""
    with tempfile.TemporaryDirectory() as tmp:
        node, _operator, people, _meters = _setup(Path(tmp), people_count)
        core = _core(node, _transfers(people, count), parts=10)
        node.close()
    _print_core([(f"{count:,} transfers on a fresh chain", core)])
    first = core.chunks[0]
    print("\nper 10% of the chain, tx per CPU s (relative to the first):")
    print(", ".join(f"{rate:,.0f} ({rate / first:.2f})" for rate in core.chunks))
    print(f"\nRSS at the end: {_rss_mib():.0f} MiB")


def main() -> None:
    """Run and print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--txs", type=int, default=20_000, help="per core measurement")
    parser.add_argument("--api-txs", type=int, default=8_000)
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--people", type=int, default=500)
    parser.add_argument("--batch", type=int, default=500, help="transactions per batch request")
    parser.add_argument("--batch-clients", type=int, default=8)
    parser.add_argument("--quick", action="store_true", help="10,000 core and 2,000 API txs")
    parser.add_argument("--core-only", action="store_true", help="skip the API measurements")
    parser.add_argument("--chain", type=int, default=0, help="N transfers, rate per 10%%")
    args = parser.parse_args()
    if args.quick:
        args.txs, args.api_txs = 10_000, 2_000
    verified = header("Ledger node, one validator")

    if args.chain:
        _chain_run(args.chain, args.people)
        footer(verified)
        return

    rows: list[tuple[str, float, float | None, float | None]] = []
    cores: list[tuple[str, _Core]] = []
    rss_idle = rss_load = 0.0
    for kind in ("transfers", "interval reports"):
        with tempfile.TemporaryDirectory() as tmp:
            node, _operator, people, meters = _setup(Path(tmp), args.people)
            if kind == "transfers":
                rss_idle = _rss_mib()
            core = _core(node, _kind_txs(kind, people, meters, args.txs))
            cores.append((kind, core))
            rows.append((f"core: {kind}", core.committed / core.wall, None, None))
            if not args.core_only:
                end = args.txs + args.api_txs
                more = _kind_txs(kind, people, meters, end)[args.txs :]
                api_rate, latencies = asyncio.run(_api(node, more, args.clients))
                rows.append(
                    (
                        f"API, {args.clients} clients: {kind}",
                        api_rate,
                        _percentile(latencies, 0.5),
                        _percentile(latencies, 0.99),
                    )
                )
                batched = _kind_txs(kind, people, meters, end + args.api_txs)[end:]
                rate, lat = asyncio.run(_api_batched(node, batched, args.batch_clients, args.batch))
                name = (
                    f"API, batches of {args.batch}, {args.batch_clients} clients in another process"
                )
                rows.append(
                    (f"{name}: {kind}", rate, _percentile(lat, 0.5), _percentile(lat, 0.99))
                )
            rss_load = max(rss_load, _rss_mib())
            node.close()

    print(
        f"one validator, {args.people} participants; "
        f"core {args.txs:,} txs, API {args.api_txs:,} txs\n"
    )
    _print_core(cores)
    print("\n| measurement | committed tx/s (wall) | p50 latency | p99 latency |")
    print("|---|---:|---:|---:|")
    for name, rate, p50, p99 in rows:
        lat50 = "" if p50 is None else f"{p50 * 1000:.0f} ms"
        lat99 = "" if p99 is None else f"{p99 * 1000:.0f} ms"
        print(f"| {name} | {rate:,.0f} | {lat50} | {lat99} |")
    print(f"\nRSS: {rss_idle:.0f} MiB idle (after set-up), {rss_load:.0f} MiB after load")
    footer(verified)
    machine = {
        "rows": [[r[0], round(r[1])] for r in rows],
        "core": {
            name: [round(c.rate), round(c.verify_rate), round(c.ratio, 3)] for name, c in cores
        },
    }
    print(json.dumps(machine))  # machine-readable line


if __name__ == "__main__":
    main()
