"""Meter data stays off the chain, with real processes on loopback (docs/privacy.md).

Three ``transactiva node`` processes on one P2P network, on an accelerated clock:

- the **concentrator**: the validator, the operator (ISO, supplier, DSO) and the
  concentrator role, which keeps the meters' readings in its ``readings.db``;
- a **home**: an observer whose meter (readings pushed as Home Assistant would) reports
  every interval as a commitment and sends the reading, with its salt, to the
  concentrator's API;
- a **member**: an observer that is neither -- any other node of the chain.

The home sells energy to a neighbour in one interval. The concentrator settles the trade
and bills the home's day from the readings it holds. Then: the member's ``ledger.db``, its
files and its event stream hold no reading of the home (no salt, no report with energy);
money balances to the centavo; the home exports a proof of its readings and the member's
node checks it, agreeing with the delivery and the bill on chain and refusing a forged
one; and once the home has left, the concentrator erases its readings, which are then
gone from its files.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import aiohttp
import pytest

from ledger_core.node.home import Config, Home, write_config, write_token
from ledger_core.types import codec
from ledger_core.types.crypto import SigningKey
from ledger_core.types.genesis import Genesis, Operator, Params, Validator
from ledger_core.types.tx import TxType, sign
from tests.node.test_process import NodeProcess, cli, free_port

pytestmark = pytest.mark.timeout(400)

REPO: Final = Path(__file__).resolve().parents[2]
TARIFF: Final = REPO / "docs" / "tariffs" / "example-residential-tou.toml"
CHAIN: Final = "privacidad-1"
OFFSET: Final = -360  # the genesis' local time (Mexico's central zone)
INTERVAL: Final = 900
SPEED: Final = 300.0  # clock seconds per real second: an interval every 3 s
DELAY: Final = 900  # settlement delay (genesis)
EXPORT_W: Final = 4_000  # the home exports 4 kW: 1,000 Wh an interval
SOLD_WH: Final = 500
WAIT: Final = 120.0  # real seconds a condition may take on a loaded machine


def _local_midnight(seconds: int) -> int:
    local = seconds + OFFSET * 60
    return local - local % 86400 - OFFSET * 60


@dataclass
class Clock:
    """The nodes' accelerated clock, as the test reads it."""

    epoch: float
    start: int

    def now(self) -> float:
        return self.start + (time.time() - self.epoch) * SPEED


@dataclass
class Api:
    """A node's API with its token."""

    name: str
    node: NodeProcess

    def call(self, method: str, path: str, body: object | None = None, *, raw: bytes = b"") -> Any:
        request = urllib.request.Request(  # noqa: S310 - loopback
            f"{self.node.url}/{path}",
            data=raw or (None if body is None else json.dumps(body).encode()),
            headers={"Authorization": f"Bearer {self.node.token}"},
            method=method,
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310
                return json.loads(answer.read())
        except urllib.error.HTTPError as err:
            raise AssertionError(
                f"{self.name}: {method} {path}: {err.code} {err.read()!r}"
            ) from None

    def local(self, tx_type: str, body: dict[str, Any]) -> dict[str, Any]:
        """Signed with the node's participant key; committed and accepted."""
        answer: dict[str, Any] = self.call("POST", f"local/{tx_type}?wait=true", body)
        assert (answer["status"], answer["code"]) == ("committed", "ok"), answer
        return answer

    def submit(self, key: SigningKey, nonce: int, tx_type: TxType, body: dict[str, Any]) -> str:
        """Signed here; committed and accepted. Its id."""
        tx = sign(key, CHAIN, tx_type, nonce, body)
        answer = self.call("POST", "txs?wait=true", raw=tx.wire())
        assert (answer["status"], answer["code"]) == ("committed", "ok"), answer
        return tx.id


def wait_for[T](what: str, check: Callable[[], T | None], nodes: list[NodeProcess]) -> T:
    """Poll ``check`` until it returns something; fail after :data:`WAIT` seconds."""
    deadline = time.monotonic() + WAIT
    while True:
        for node in nodes:
            if node.process is not None and node.process.poll() is not None:
                log = (node.home / "node.log").read_text(errors="replace")[-3000:]
                raise AssertionError(f"{node.home.name} exited:\n{log}")
        found = check()
        if found is not None and found is not False:
            return found
        assert time.monotonic() < deadline, f"waited {WAIT} s for {what}"
        time.sleep(0.1)


@dataclass
class Town:
    clock: Clock
    concentrator: Api
    home: Api
    member: Api
    home_key: SigningKey
    meter_key: SigningKey
    operator: SigningKey

    @property
    def nodes(self) -> list[NodeProcess]:
        return [self.concentrator.node, self.home.node, self.member.node]


def _write(root: Path) -> tuple[Town, dict[str, Path]]:
    """Three homes on one genesis whose clock starts at 21:00 local, today."""
    clock = Clock(time.time() + 1.0, _local_midnight(int(time.time())) + 21 * 3600)
    operator, validator = SigningKey.generate(), SigningKey.generate()
    home_key, meter_key = SigningKey.generate(), SigningKey.generate()
    genesis = Genesis(
        chain_id=CHAIN,
        genesis_time=clock.start - 3600,
        operators=(Operator(operator.public_key, ("ISO", "SUPPLIER", "DSO")),),
        validators=(Validator(validator.public_key, 10),),
        params=Params(settlement_delay_seconds=DELAY),
    )
    ports = {name: (free_port(), free_port()) for name in ("concentrator", "home", "member")}
    node_keys = {name: SigningKey.generate() for name in ports}
    seed = f"{node_keys['concentrator'].address}@127.0.0.1:{ports['concentrator'][1]}"
    common: dict[str, Any] = {
        "block_interval": 0.05,
        "empty_block_every": 0.5,
        "clock_epoch": clock.epoch,
        "clock_start": clock.start,
        "clock_speed": SPEED,
        "execute_contracts": False,
    }
    configs = {
        "concentrator": Config(
            api_port=ports["concentrator"][0],
            p2p_port=ports["concentrator"][1],
            concentrator={"tariff": "tariff.toml"},
            **common,
        ),
        "home": Config(
            api_port=ports["home"][0],
            p2p_port=ports["home"][1],
            role="observer",
            seeds=(seed,),
            meter={
                "source": {"type": "pushed", "name": "home_assistant"},
                "concentrator": f"http://127.0.0.1:{ports['concentrator'][0]}",
            },
            **common,
        ),
        "member": Config(
            api_port=ports["member"][0],
            p2p_port=ports["member"][1],
            role="observer",
            seeds=(seed,),
            **common,
        ),
    }
    paths = {}
    for name, config in configs.items():
        home = Home(root / name)
        (home.path / "keys").mkdir(parents=True, mode=0o700)
        node_keys[name].save(home.path / config.node_key_file)
        if name == "concentrator":
            operator.save(home.participant_key_file)
            validator.save(home.validator_key_file)
            (home.path / "tariff.toml").write_bytes(TARIFF.read_bytes())
        elif name == "home":
            home_key.save(home.participant_key_file)
            meter_key.save(home.path / "keys" / "meter.key")
        else:
            SigningKey.generate().save(home.participant_key_file)
        genesis.save(home.genesis_file)
        write_config(home, config)
        write_token(home)
        paths[name] = home.path
    apis = {name: Api(name, NodeProcess(path)) for name, path in paths.items()}
    town = Town(
        clock, apis["concentrator"], apis["home"], apis["member"], home_key, meter_key, operator
    )
    return town, paths


@pytest.fixture
def town(homes: Path) -> Iterator[tuple[Town, dict[str, Path]]]:
    built, paths = _write(homes)
    try:
        for api in (built.concentrator, built.home, built.member):
            api.node.start()
        yield built, paths
    finally:
        for api in (built.member, built.home, built.concentrator):
            process = api.node.process
            if process is not None and process.poll() is None:
                api.node.stop()


class Meter:
    """Home Assistant pushing the home's energy counters: it exports :data:`EXPORT_W`."""

    def __init__(self, town: Town) -> None:
        self.town = town
        self.stop = threading.Event()
        self.first: float | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.wait(0.1):
            at = self.town.clock.now() - 2
            self.first = self.first or at
            exported = EXPORT_W * (at - self.first) / 3600 / 1000
            reading = {
                "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(at))
                + f".{int(at % 1 * 1000):03d}+00:00",
                "import_kwh_total": 0.0,
                "export_kwh_total": round(exported, 6),
            }
            self.town.home.call("POST", "local/meter/readings", reading)


def _events(api: Api) -> list[dict[str, Any]]:
    """Every event of a node's stream so far (its WebSocket, as any client reads it)."""

    async def read() -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        headers = {"Authorization": f"Bearer {api.node.token}"}
        status = api.call("GET", "status")
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(f"{api.node.url}/events?after=0", headers=headers) as socket,
        ):
            while not found or found[-1]["height"] < status["height"]:
                message = await socket.receive(timeout=30)
                found.append(json.loads(message.data))
        return [item["event"] for item in found]

    return asyncio.run(read())


def _files(folder: Path, pattern: str = "*") -> dict[str, bytes]:
    return {
        str(path.relative_to(folder)): path.read_bytes()
        for path in folder.rglob(pattern)
        if path.is_file()
    }


def test_a_members_node_never_holds_a_homes_readings(
    town: tuple[Town, dict[str, Path]], tmp_path: Path
) -> None:
    t, paths = town
    c, h, m = t.concentrator, t.home, t.member
    nodes = t.nodes
    wait_for("the observers to reach the concentrator", lambda: all(
        a.call("GET", "status")["peers"]["count"] for a in (h, m)
    ), nodes)  # fmt: skip
    # The operator registers the home and binds its meter, and a funded neighbour.
    neighbour = SigningKey.generate()
    c.local("register", {"public_key": t.home_key.public_key.hex(), "role": "prosumer"})
    c.local("bind_meter", {"meter_public_key": t.meter_key.public_key.hex(),
                           "participant": t.home_key.address})  # fmt: skip
    c.local("register", {"public_key": neighbour.public_key.hex(), "role": "consumer"})
    request = c.submit(neighbour, 1, TxType.DEPOSIT_REQUEST, {"amount": 10_000})
    c.local("deposit_confirm", {"request": request})
    meter = Meter(t)
    meter.thread.start()
    try:
        # The home sells 500 Wh of an interval to the neighbour.
        now = int(t.clock.now())
        sold = now - now % INTERVAL + 2 * INTERVAL
        assert sold < _local_midnight(now) + 86400 - 2 * INTERVAL, "the run must end today"
        h.local("order", {"interval_start": sold, "side": "sell", "energy_wh": SOLD_WH,
                          "limit_price": 0})  # fmt: skip
        bid = {"interval_start": sold, "side": "buy", "energy_wh": SOLD_WH, "limit_price": 30_000}
        c.submit(neighbour, 2, TxType.ORDER, bid)
        # The concentrator settles the trade from the home's reading (the interval's end and
        # the settlement delay later).
        home = t.home_key.address

        def delivered() -> Any:
            rows = m.call("GET", f"market/settlements/{home}?from={sold}&to={sold + 1}")
            return rows["settlements"] or None

        [statement] = wait_for("the trade's delivery", delivered, nodes)
        assert (statement["sold_wh"], statement["delivered_wh"]) == (SOLD_WH, SOLD_WH)
        assert statement["lines"]["p2p_energy"] > 0
    finally:
        meter.stop.set()
        meter.thread.join(10)
    # The home's readings of the day, as it hands them over in a dispute (before it leaves).
    day = _local_midnight(sold)
    day_text = time.strftime("%Y-%m-%d", time.gmtime(day + OFFSET * 60))
    proof_file = tmp_path / "proof.json"

    def exported() -> bool:
        done = cli("proof", "export", "--dir", str(paths["home"]), "--from", day_text,
                   "--out", str(proof_file))  # fmt: skip
        assert done.returncode == 0, done.stderr
        proof = json.loads(proof_file.read_text())
        reported = m.call("GET", f"reports/{t.meter_key.address}?from={day}&to={day + 86400}")
        return len(proof["openings"]) == len(reported["reports"]) >= 4

    wait_for("the home's last reports to be committed", exported, nodes)
    assert proof_file.stat().st_mode & 0o777 == 0o600
    proof = json.loads(proof_file.read_text())
    salts = [bytes.fromhex(o["salt"]) for o in proof["openings"]]
    # The home leaves: its node stops; the operator revokes its participant and its meter.
    h.node.stop()
    refused = cli("operator", "readings", "erase", home, "--dir", str(paths["concentrator"]))
    assert (refused.returncode, "not_departed" in refused.stderr) == (1, True), refused.stderr
    c.local("revoke", {"address": home})
    c.local("revoke", {"address": t.meter_key.address})

    # The day is over: the concentrator bills it from the readings it holds.
    def billed() -> Any:
        rows = m.call("GET", f"market/settlements/{home}?from={day}&to={day + 1}")
        return [r for r in rows["settlements"] if r["kind"] == "bill"] or None

    [bill] = wait_for("the home's bill of the day", billed, [c.node, m.node])
    assert bill["reports"] == len(proof["openings"])
    assert bill["supplier_export_wh"] > 0
    assert bill["amount"] == sum(bill["lines"].values()) > 0

    # Money balances to the centavo, at one height.
    accounts = [
        a for a in m.call("GET", "web/participants")["participants"] if a["role"] != "meter"
    ]
    query = "&".join(f"address={a['address']}" for a in accounts)
    balances = m.call("GET", f"balances?{query}")["balances"]
    total = sum(b["balance"] + b["held"] - b["debt"] for b in balances)
    assert total == 10_000  # the neighbour's deposit; nothing was withdrawn
    home_row = next(b for b in balances if b["address"] == home)
    settled = m.call("GET", f"market/settlements/{home}?from={day}&to={day + 86400}")
    assert home_row["balance"] == sum(r["amount"] for r in settled["settlements"])

    # The member's node never received a reading: not in any file of its home...
    member_files = _files(paths["member"])
    assert "ledger.db" in member_files
    for salt in salts:
        for name, content in member_files.items():
            assert salt not in content, name
            assert salt.hex().encode() not in content, name
    # ...its blocks carry commitments, its state keeps them, and its events say no more.
    db = sqlite3.connect(paths["member"] / "ledger.db")
    try:
        reports = [
            codec.decode(bytes(row[0]), 1 << 20)
            for row in db.execute("SELECT wire FROM txs")
            if b'"type":"report"' in bytes(row[0])
        ]
    finally:
        db.close()
    assert len(reports) == len(salts)
    assert {tuple(sorted(r["tx"]["body"])) for r in reports} == {("commitment", "interval_start")}  # type: ignore[index, call-overload]
    events = _events(m)
    committed = [e for e in events if e["type"] == "interval_report"]
    assert len(committed) == len(salts)
    assert all(set(e) == {"type", "meter", "interval_start", "commitment", "height", "tx"}
               for e in committed)  # fmt: skip
    rows = m.call("GET", f"reports/{t.meter_key.address}?from={day}&to={day + 86400}")["reports"]
    assert not [r for r in rows if r["held"] or "import_wh" in r]
    # The concentrator holds them (until it erases them).
    held = c.call("GET", f"reports/{t.meter_key.address}?from={day}&to={day + 86400}")["reports"]
    assert all(r["held"] and "export_wh" in r for r in held)

    # The member's node checks the home's proof against its chain: it holds, and agrees with
    # the delivery and the bill; a forged reading is caught.
    checked = cli("proof", "check", str(proof_file), "--dir", str(paths["member"]))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"openings: {len(salts)} valid, 0 invalid" in checked.stdout
    assert "delivery" in checked.stdout
    assert "bill" in checked.stdout
    assert "DISAGREES" not in checked.stdout
    forged = json.loads(proof_file.read_text())
    forged["openings"][0]["export_wh"] += 1
    forged_file = tmp_path / "forged.json"
    forged_file.write_text(json.dumps(forged))
    caught = cli("proof", "check", str(forged_file), "--dir", str(paths["member"]))
    assert caught.returncode == 1
    assert f"openings: {len(salts) - 1} valid, 1 invalid" in caught.stdout
    assert "does not open it" in caught.stdout

    # The home has left and its day is billed: the concentrator erases its readings.
    erased = cli("operator", "readings", "erase", home, "--dir", str(paths["concentrator"]))
    assert erased.returncode == 0, erased.stderr
    assert f"erased {len(salts)} readings of {home}" in erased.stdout
    held = c.call("GET", f"reports/{t.meter_key.address}?from={day}&to={day + 86400}")["reports"]
    assert len(held) == len(salts)  # the commitments stay on chain...
    assert not [r for r in held if r["held"]]  # ...with nothing that opens them here
    store = _files(paths["concentrator"], "readings.db*")
    assert store
    for salt in salts:
        assert not [name for name, content in store.items() if salt in content]
