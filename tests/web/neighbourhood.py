"""A small neighbourhood on loopback whose web interfaces have real content to show.

Two ``transactiva node`` processes on one P2P network, both on an accelerated clock:

- the **concentrator** (the only validator, the operator holding ISO, supplier and DSO,
  day-ahead prices from the example tariff, the ``/operator`` routes);
- a **home** (an observer: it follows the chain from the concentrator and relays its own
  transactions to it) whose participant is a prosumer with a pushed meter and runs its
  contracts.

Everything on the pages comes from transactions the ledger committed: the operator
registers participants of every role (one revoked later), binds meters and confirms
deposits (some wallet requests stay pending); the home proposes contracts that end up
active, waiting for a neighbour's signature, revoked and expired; the home and its
neighbours place orders that clear and settle, and orders for the evening that stay open;
meters report; the operator issues demand-response events (one cancelled); the home's
contract actions get each result Home Assistant can report (ok, failed, unmapped, skipped).

The clock runs :data:`SPEED` times faster than real time from :data:`START` local time
today, so intervals clear and settle within the setup; every wait is on a condition read
from the API, bounded in time.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final

from ledger_core.demo.chain import free_port
from ledger_core.node.home import Config, Home, write_config, write_token
from ledger_core.types.crypto import SigningKey
from ledger_core.types.genesis import Genesis, Operator, Params, Validator
from ledger_core.types.metering import Opening, new_salt
from ledger_core.types.tx import TxType, sign

REPO: Final = Path(__file__).resolve().parents[2]
TARIFF: Final = REPO / "docs" / "tariffs" / "example-residential-tou.toml"
CHAIN: Final = "barrio-de-prueba-con-un-nombre-largo"
OFFSET: Final = -360  # minutes: Mexico's central zone, the genesis default
INTERVAL: Final = 900
SPEED: Final = 120.0  # clock seconds per real second: an interval every 7.5 s
START: Final = 5 * 3600  # the clock starts at 05:00 local time today
SETTLEMENT_DELAY: Final = 900
BIG_DEPOSIT: Final = 98_765_432_100  # centavos: $987,654,321.00
LONG_NAME: Final = "Lavadora y secadora del departamento 12, planta alta"
WAIT: Final = 90.0  # real seconds any one condition may take on a loaded machine
HOME_NAME: Final = "mi-casa"


class RefusedError(AssertionError):
    """A request the test expected to succeed did not."""


@dataclass
class Node:
    """One node process, its home and its API."""

    name: str
    home: Path
    url: str
    token: str
    process: subprocess.Popen[bytes] | None = None

    def call(self, method: str, path: str, body: object | None = None) -> Any:
        request = urllib.request.Request(  # noqa: S310 - loopback
            f"{self.url}api/v1/{path}",
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
            method=method,
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
                return json.loads(response.read())
        except urllib.error.HTTPError as err:
            raise RefusedError(f"{self.name}: {method} {path}: {err.code} {err.read()!r}") from None

    def local(self, tx_type: TxType, body: dict[str, Any]) -> dict[str, Any]:
        """Sign ``body`` with the node's participant key; wait for the commit, which must
        be accepted."""
        return _committed(self.call("POST", f"local/{tx_type}?wait=true", body), tx_type)

    def log(self) -> str:
        path = self.home / "node.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""


def _committed(answer: dict[str, Any], what: object) -> dict[str, Any]:
    if answer.get("status") != "committed" or answer.get("code") != "ok":
        raise RefusedError(f"{what}: {answer}")
    return answer


@dataclass
class Account:
    """A key the test signs with, and its last nonce."""

    key: SigningKey
    nonce: int = 0

    @property
    def address(self) -> str:
        return self.key.address

    def submit(self, node: Node, tx_type: TxType, body: dict[str, Any]) -> dict[str, Any]:
        """Sign and submit to ``node``; wait for the commit, which must be accepted. The answer
        carries the transaction's ``wire`` text too."""
        self.nonce += 1
        tx = sign(self.key, CHAIN, tx_type, self.nonce, body)
        request = urllib.request.Request(  # noqa: S310 - loopback
            f"{node.url}api/v1/txs?wait=true",
            data=tx.wire(),
            headers={"Authorization": f"Bearer {node.token}"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
                answer = _committed(json.loads(response.read()), tx_type)
        except urllib.error.HTTPError as err:
            raise RefusedError(f"{tx_type}: {err.code} {err.read()!r}") from None
        return {**answer, "wire": tx.wire().decode()}


@dataclass
class Neighbourhood:
    """The running network and what the setup put on its ledger."""

    concentrator: Node
    home: Node
    participant: str  # the home's participant
    neighbours: dict[str, Account] = field(default_factory=dict)
    meters: dict[str, Account] = field(default_factory=dict)
    contracts: dict[str, str] = field(default_factory=dict)  # status -> contract id
    intervals: dict[str, int] = field(default_factory=dict)  # what -> interval start
    heights: dict[str, int] = field(default_factory=dict)  # what -> block height

    def now(self) -> int:
        return int(self.home.call("GET", "web/summary")["now"])

    def next_interval(self, after: int = 0) -> int:
        now = self.now() + after
        return now - now % INTERVAL + INTERVAL


def wait_for[T](what: str, check: Callable[[], T | None], nodes: list[Node]) -> T:
    """Poll ``check`` until it returns something; fail after :data:`WAIT` seconds."""
    deadline = time.monotonic() + WAIT
    while True:
        for node in nodes:
            if node.process is not None and node.process.poll() is not None:
                raise AssertionError(f"{node.name} exited:\n{node.log()}")
        found = check()
        if found is not None and found is not False:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {WAIT} s for {what}")
        time.sleep(0.2)


def _listening(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
        return True
    return False


def _write_homes(root: Path) -> tuple[Home, Home, dict[str, int]]:
    """The two homes on one genesis; ports by name."""
    ports = {name: free_port() for name in ("c_api", "c_p2p", "h_api", "h_p2p")}
    start = _midnight(int(time.time())) + START
    epoch = time.time()
    operator, validator = SigningKey.generate(), SigningKey.generate()
    genesis = Genesis(
        chain_id=CHAIN,
        genesis_time=start - 3600,
        operators=(Operator(operator.public_key, ("ISO", "SUPPLIER", "DSO")),),
        validators=(Validator(validator.public_key, 10),),
        params=Params(settlement_delay_seconds=SETTLEMENT_DELAY),
    )
    node_keys = {name: SigningKey.generate() for name in ("concentrator", "home")}
    seed = f"{node_keys['concentrator'].address}@127.0.0.1:{ports['c_p2p']}"
    clock = {"clock_epoch": epoch, "clock_start": start, "clock_speed": SPEED}
    pacing = {"block_interval": 0.05, "empty_block_every": 0.5}
    homes = []
    for name, config in (
        (
            "concentrator",
            Config(
                api_port=ports["c_api"],
                p2p_port=ports["c_p2p"],
                concentrator={"tariff": "tariff.toml"},
                execute_contracts=False,
                **pacing,
                **clock,
            ),
        ),
        (
            "home",
            Config(
                api_port=ports["h_api"],
                p2p_port=ports["h_p2p"],
                role="observer",
                seeds=(seed,),
                meter={
                    "source": {"type": "pushed", "name": "home_assistant"},
                    # The readings go to the concentrator, never on the chain.
                    "concentrator": f"http://127.0.0.1:{ports['c_api']}",
                },
                **pacing,
                **clock,
            ),
        ),
    ):
        home = Home(root / name)
        (home.path / "keys").mkdir(parents=True, mode=0o700)
        node_keys[name].save(home.path / config.node_key_file)
        if name == "concentrator":
            operator.save(home.participant_key_file)
            validator.save(home.validator_key_file)
            shutil.copy(TARIFF, home.path / "tariff.toml")
        else:
            SigningKey.generate().save(home.participant_key_file)
        genesis.save(home.genesis_file)
        write_config(home, config)
        write_token(home)
        homes.append(home)
    return homes[0], homes[1], ports


def _spawn(node: Node) -> None:
    log = (node.home / "node.log").open("ab")
    node.process = subprocess.Popen(
        [sys.executable, "-m", "ledger_core", "node", "--dir", str(node.home)],
        stdout=log,
        stderr=log,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    log.close()


def _stop(node: Node) -> None:
    process = node.process
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


@contextlib.contextmanager
def running(root: Path) -> Iterator[Neighbourhood]:
    """Start the two nodes, put the content on the ledger, and stop them afterwards."""
    concentrator_home, home_home, ports = _write_homes(root)
    nodes = [
        Node("concentrator", concentrator_home.path, f"http://127.0.0.1:{ports['c_api']}/",
             concentrator_home.token()),
        Node("home", home_home.path, f"http://127.0.0.1:{ports['h_api']}/", home_home.token()),
    ]  # fmt: skip
    try:
        for node, port in zip(nodes, (ports["c_api"], ports["h_api"]), strict=True):
            _spawn(node)
            wait_for(f"{node.name} to listen", lambda port=port: _listening(port), nodes)
        town = Neighbourhood(
            concentrator=nodes[0],
            home=nodes[1],
            participant=home_home.participant_key().address,
        )
        populate(town)
        yield town
    finally:
        for node in reversed(nodes):
            _stop(node)


# -- the content ----------------------------------------------------------------------------

NEIGHBOURS: Final = {
    "casa-3": "consumer",
    "casa-9": "prosumer",
    "tienda": "retailer",
    "agregador": "aggregator",
    "proveedor-2": "supplier",
    "red-2": "dso",
    "se-fue": "consumer",  # revoked
}
HEATER: Final = "Calentador de agua del baño principal"
WASHER: Final = (
    "IF Price < 3 THEN\n"
    f"  TURN ON DEVICE 'Lavadora'\n  TURN ON DEVICE '{HEATER}'\n"
    "ELSE\n"
    f"  TURN OFF DEVICE 'Lavadora'\n  TURN OFF DEVICE '{HEATER}'\n"
    "ENDIF\n"
)
PUMP: Final = "IF Price < 2 THEN\n  TURN ON DEVICE 'Bomba'\nENDIF\n"
RESULTS: Final = ("ok", "failed", "unmapped", "skipped")
FAILURE: Final = "switch.lavadora_de_la_planta_alta_del_departamento_12 no responde"


def _contract(name: str, valid_to: datetime, parties: str, rules: str) -> str:
    return (
        f"Contract '{name}'\n"
        f"Valid from 2026/01/01 00:00:00 to {valid_to:%Y/%m/%d %H:%M:00}\n"
        "Consumption true\nProduction true and sell\nStore false\n"
        "DemandResponse true shed 'Lavadora'\n"
        f"{rules}"
        f"Parties: {parties}\n"
    )


def _local(seconds: int) -> datetime:
    """The market's local civil time of Unix ``seconds``."""
    return datetime(1970, 1, 1) + timedelta(seconds=seconds + OFFSET * 60)


def _midnight(seconds: int) -> int:
    """Unix seconds of the local midnight that began the day of ``seconds``."""
    local = seconds + OFFSET * 60
    return local - local % 86400 - OFFSET * 60


def _proposed(answer: dict[str, Any]) -> str:
    for event in answer["events"]:
        if event["type"] == "contract_proposed":
            return str(event["contract_id"])
    raise RefusedError(f"no contract_proposed event: {answer}")


def populate(town: Neighbourhood) -> None:
    """Put the content on the ledger (see the module's docstring)."""
    c, h = town.concentrator, town.home
    nodes = [c, h]
    wait_for(
        "the home to reach the concentrator", lambda: h.call("GET", "web/summary")["peers"], nodes
    )
    # The concentrator publishes today's prices when it starts.
    wait_for(
        "today's prices",
        lambda: c.call("GET", "operator/neighbourhood")["price"]["on_chain"],
        nodes,
    )
    _register(town)
    _wallets(town)
    _contracts(town)
    _market(town)
    _demand_response(town)

    def settled() -> bool:
        report(town)
        start, end = town.intervals["buy"], town.intervals["sell"] + 1
        rows = h.call("GET", f"market/intervals?from={start}&to={end}")["intervals"]
        return len(rows) == 2 and all(row["status"] == "settled" for row in rows)

    wait_for("the home's trades to settle", settled, nodes)
    expired = town.contracts["expired"]
    wait_for(
        "a contract to expire",
        lambda: h.call("GET", f"contracts/{expired}")["status"] == "expired",
        nodes,
    )

    # Home Assistant reports what became of the active contract's actions.
    mine = f"local/actions?limit=50&contract_id={town.contracts['active']}"

    def actions() -> list[dict[str, Any]] | None:
        report(town)
        found: list[dict[str, Any]] = h.call("GET", mine)["actions"]
        return found if len(found) >= len(RESULTS) else None

    taken = wait_for("the active contract's actions", actions, nodes)
    for action, result in zip(taken, RESULTS, strict=False):
        detail = FAILURE if result == "failed" else ""
        body = {"result": result, "detail": detail}
        h.call("POST", f"local/actions/{action['action_id']}/result", body)


def _register(town: Neighbourhood) -> None:
    """The home and its meter; neighbours of every role (in one block), two with meters;
    one of them revoked."""
    c, h = town.concentrator, town.home
    meter = SigningKey.load(h.home / "keys" / "meter.key")  # made by the home's meter role
    public = SigningKey.load(h.home / "keys" / "participant.key").public_key.hex()
    c.local(TxType.REGISTER, {"public_key": public, "role": "prosumer", "name": HOME_NAME})
    c.local(
        TxType.BIND_METER,
        {"meter_public_key": meter.public_key.hex(), "participant": town.participant},
    )
    names = list(NEIGHBOURS)
    for name in names:
        town.neighbours[name] = Account(SigningKey.generate())
        body = {
            "public_key": town.neighbours[name].key.public_key.hex(),
            "role": NEIGHBOURS[name],
            "name": name,
        }
        if name != names[-1]:
            c.call("POST", "local/register", body)  # not waiting: they share a block
        else:
            town.heights["registrations"] = c.local(TxType.REGISTER, body)["height"]
    for name in ("casa-3", "casa-9"):
        town.meters[name] = Account(SigningKey.generate())
        binding = {
            "meter_public_key": town.meters[name].key.public_key.hex(),
            "participant": town.neighbours[name].address,
        }
        c.local(TxType.BIND_METER, binding)
    c.local(TxType.REVOKE, {"address": town.neighbours["se-fue"].address})
    # Homes invited and not joined yet: one to be admitted by hand, one cancelled.
    for invited, approve in (("casa-nueva-con-un-nombre-largo", "manual"), ("casa-20", "auto")):
        c.call(
            "POST",
            "operator/invitations",
            {"name": invited, "role": "prosumer", "approve": approve},
        )
    c.call("POST", "operator/participants/casa-20/revoke", {})


def _wallets(town: Neighbourhood) -> None:
    """Confirmed deposits (the home's is big); a deposit and a withdrawal still pending."""
    c, h = town.concentrator, town.home
    for name in ("casa-3", "casa-9"):
        asked = town.neighbours[name].submit(
            c, TxType.DEPOSIT_REQUEST, {"amount": 5_000_000, "reference": name}
        )
        c.local(TxType.DEPOSIT_CONFIRM, {"request": asked["id"]})
    asked = h.local(TxType.DEPOSIT_REQUEST, {"amount": BIG_DEPOSIT, "reference": "ahorros"})
    c.local(TxType.DEPOSIT_CONFIRM, {"request": asked["id"]})
    h.local(TxType.DEPOSIT_REQUEST, {"amount": 250_000, "reference": "pendiente"})
    h.local(TxType.WITHDRAW_REQUEST, {"amount": 123_456_789, "reference": "retiro"})


def _contracts(town: Neighbourhood) -> None:
    """The home's contracts: active, waiting for a neighbour's signature, revoked by both
    parties, and one that expires within the setup."""
    c, h, ids = town.concentrator, town.home, town.contracts
    year = datetime(2027, 12, 31, 23, 0)

    def propose(key: str, source: str, *, operator_signs: bool = True) -> None:
        ids[key] = _proposed(h.local(TxType.CONTRACT_PROPOSE, {"source": source}))
        if operator_signs:
            c.local(TxType.CONTRACT_SIGN, {"contract_id": ids[key]})

    propose("active", _contract(LONG_NAME, year, "ISO", WASHER))
    neighbour = town.neighbours["casa-3"].address
    propose("proposed", _contract("bomba compartida", year, f"ISO, '{neighbour}'", PUMP))
    propose("revoked", _contract("bomba vieja", year, "ISO", PUMP))
    h.local(TxType.CONTRACT_REVOKE, {"contract_id": ids["revoked"]})
    c.local(TxType.CONTRACT_REVOKE, {"contract_id": ids["revoked"]})
    propose("expired", _contract("prueba de una hora", _local(town.now() + 40 * 60), "ISO", PUMP))
    # A neighbour's contract that names the home by name: it awaits the home's signature.
    offer = _contract("bomba de casa-9", year, f"'casa-9', '{HOME_NAME}'", PUMP)
    ids["awaiting"] = _proposed(
        town.neighbours["casa-9"].submit(c, TxType.CONTRACT_PROPOSE, {"source": offer})
    )


def _market(town: Neighbourhood) -> None:
    """The home buys in one interval and sells in the next, a neighbour on the other side
    of each (at an operator's price override that makes trading worth it); an evening
    interval keeps its orders open. The first interval starts at least a quarter of an hour
    of clock time (7.5 s) away, so that the orders are in before its gate on a slow machine."""
    c, h = town.concentrator, town.home
    buy = town.next_interval(after=900)
    sell = buy + INTERVAL
    evening = _midnight(town.now()) + 23 * 3600
    town.intervals.update(buy=buy, sell=sell, evening=evening)
    seller, buyer = town.neighbours["casa-9"], town.neighbours["casa-3"]
    peak = {"import_price": 32_000, "export_price": 9_000, "network_fee": 4_000}
    c.call("POST", "operator/prices", {"from": buy, "to": sell + INTERVAL, **peak})
    h.local(
        TxType.ORDER,
        {
            "interval_start": buy,
            "side": "buy",
            "energy_wh": 123_456,
            "limit_price": 30_000,
            "ref": "lavadora",
        },
    )
    seller.submit(
        c,
        TxType.ORDER,
        {"interval_start": buy, "side": "sell", "energy_wh": 200_000, "limit_price": 0},
    )
    h.local(
        TxType.ORDER,
        {
            "interval_start": sell,
            "side": "sell",
            "energy_wh": 1_500,
            "limit_price": 0,
            "ref": "excedente solar",
        },
    )
    buyer.submit(
        c,
        TxType.ORDER,
        {"interval_start": sell, "side": "buy", "energy_wh": 2_000, "limit_price": 30_000},
    )
    h.local(
        TxType.ORDER,
        {"interval_start": evening, "side": "buy", "energy_wh": 700, "limit_price": 25_000},
    )
    buyer.submit(
        c,
        TxType.ORDER,
        {"interval_start": evening, "side": "buy", "energy_wh": 900, "limit_price": 25_000},
    )


def _demand_response(town: Neighbourhood) -> None:
    """Through the operator's routes: an event under way for hours from the next interval
    (with a ramp-up), one announced for the evening, one cancelled."""
    c = town.concentrator
    evening = town.intervals["evening"]
    simple = {"name": "SIMPLE"}
    c.call(
        "POST",
        "operator/dr",
        {
            "signal": {**simple, "level": 2},
            "start": town.next_interval(after=300),
            "duration": 12 * 3600,
            "ramp_up": 900,
        },
    )
    c.call(
        "POST",
        "operator/dr",
        {"signal": {**simple, "level": 3}, "start": evening, "duration": 7200},
    )
    cancelled = c.call(
        "POST",
        "operator/dr",
        {"signal": {**simple, "level": 1}, "start": evening + 7200, "duration": 1800},
    )
    c.call("POST", f"operator/dr/{cancelled['event_id']}/cancel")


def report(town: Neighbourhood) -> None:
    """What the meters do as time passes: the home's gets a reading (Home Assistant pushes
    it); the neighbours' report the last interval that ended a few clock minutes ago (block
    time lags the clock by up to an empty block's wait): a commitment on chain, and the
    reading with its salt to the concentrator (docs/privacy.md)."""
    town.home.call("POST", "local/meter/readings", {"power": 2_345.0})
    now = town.now() - 300
    start = now - now % INTERVAL - INTERVAL
    energy = {
        "casa-3": {"import_wh": 45_678, "export_wh": 0},
        "casa-9": {"import_wh": 0, "export_wh": 210_000},
    }
    for name, meter in town.meters.items():
        reported = town.home.call("GET", f"reports/{meter.address}?from={start}&to={start + 1}")
        if not reported["reports"]:
            opening = Opening(meter.address, start, **energy[name], salt=new_salt())
            body = {"interval_start": start, "commitment": opening.commitment(CHAIN)}
            wire = meter.submit(town.concentrator, TxType.REPORT, body)["wire"]
            shared = town.concentrator.call(
                "POST",
                "readings",
                {"report": wire, **energy[name], "salt": opening.salt.hex()},
            )
            assert shared["status"] == "stored", shared
