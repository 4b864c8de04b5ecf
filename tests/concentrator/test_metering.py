"""The concentrator's private readings against a real node: receiving them from meters (over
its route, checked against the signed reports), settling metered energy from them (deliveries
and daily bills, the worked example of docs/market.md), waiting for a reading that may still
come, and erasing a departed home's readings (docs/privacy.md)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from ledger_core.api.server import add_feature
from ledger_core.concentrator.api import concentrator_feature
from ledger_core.concentrator.ledger import HttpLedger, Ledger, NodeLedger
from ledger_core.concentrator.metering import MeterData, MeteringError, delivery_parts
from ledger_core.concentrator.service import Concentrator
from ledger_core.concentrator.tariff import load_tariff
from ledger_core.meter.intervals import IntervalReport
from ledger_core.meter.outbox import Outbox, http_sharer, node_submitter
from ledger_core.meter.store import MeterStore
from ledger_core.types.crypto import SigningKey
from ledger_core.types.tx import MAX_SELLERS, MAX_TX_BYTES, TxType, sign
from tests.concentrator.harness import TOKEN, TOU, Live, live_node, mx
from tests.state.chain import key

T = mx(2026, 3, 10, 13)
DAY = mx(2026, 3, 10, 0)
DUE = T + 900 + 3600  # the interval's end and the settlement delay
BILL_AT = DAY + 86400 + 3600
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PRICES = {"import_price": 25_000, "export_price": 9_000, "network_fee": 3_000}
NAMES = ("ana", "beto", "carla", "diego", "elena")


@dataclass
class Town:
    """The worked example's five households on a live node, before clearing."""

    live: Live
    people: dict[str, SigningKey]
    meters: dict[str, SigningKey]


async def town(live: Live) -> Town:
    chain = live.chain
    people = {name: key(name) for name in NAMES}
    meters = {name: key(f"meter-{name}") for name in NAMES}
    await live.commit(
        *(
            chain.tx(chain.iso, TxType.REGISTER, public_key=k.public_key.hex(), role="prosumer")
            for k in people.values()
        )
    )
    await live.commit(
        *(
            chain.tx(
                chain.iso,
                TxType.BIND_METER,
                meter_public_key=meters[name].public_key.hex(),
                participant=people[name].address,
            )
            for name in NAMES
        )
    )
    for name, amount in (("carla", 1_000), ("diego", 1_000), ("elena", 100)):
        request = chain.tx(people[name], TxType.DEPOSIT_REQUEST, amount=amount, reference="x")
        await live.commit(request)
        await live.commit(chain.tx(chain.iso, TxType.DEPOSIT_CONFIRM, request=request.id))
    await live.commit(chain.tx(chain.iso, TxType.PRICE_SIGNAL, interval_start=T, **PRICES))
    orders = [
        ("ana", "sell", 2_000, 10_000),
        ("beto", "sell", 1_234, 15_000),
        ("carla", "buy", 1_500, 24_000),
        ("diego", "buy", 2_000, 30_000),
    ]
    await live.commit(
        *(
            chain.tx(people[n], TxType.ORDER, interval_start=T, side=s, energy_wh=e, limit_price=p)
            for n, s, e, p in orders
        )
    )
    return Town(live, people, meters)


READINGS = {"ana": (0, 1_800), "beto": (100, 1_500), "carla": (1_400, 0), "diego": (1_900, 0)}


def follow(live: Live, data: MeterData) -> None:
    """What the concentrator's follower does with the chain's events so far (without its
    scheduler): it learns which meter is whose from ``meter_bound``."""
    follower = Concentrator(load_tariff(TOU), data.ledger, live.clock, meter_data=data)
    for _seq, _height, event in live.node.storage.events(0, limit=100_000):
        assert isinstance(event, dict)
        follower.ingest(event)


def the_concentrator(live: Live, how: str) -> Ledger:
    """How the concentrator reaches the node: in this process, or over its API (submitting,
    like ``transactiva node``, with the operator key that holds the DSO role)."""
    signer = NodeLedger(live.node, live.chain.dso)
    return signer if how == "node" else HttpLedger(live.client, submit=signer.submit)


def balances(live: Live, town_: Town) -> dict[str, int]:
    state = live.node.app.state
    found = {n: int(state.get(f"bal/{k.address}", 0)) for n, k in town_.people.items()}  # type: ignore[call-overload]
    found["supplier"] = int(state.get(f"bal/{live.chain.iso.address}", 0))  # type: ignore[call-overload]
    found["dso"] = int(state.get(f"bal/{live.chain.dso.address}", 0))  # type: ignore[call-overload]
    return found


@pytest.mark.parametrize("how", ["node", "http"])
async def test_the_worked_example_is_settled_from_the_readings_the_concentrator_holds(
    tmp_path: Path, how: str
) -> None:
    async with live_node(tmp_path, mx(2026, 3, 10, 12, 0, 5)) as live:
        t = await town(live)
        data = live.meter_data(the_concentrator(live, how))
        live.tick(T)  # clears the interval
        live.tick(T + 900 + 10)
        for name, (imported, exported) in READINGS.items():
            await live.report(t.meters[name], T, imported, exported, share=data)
        await live.report(t.meters["elena"], T, 500, 0, share=data)
        assert (await data.settle(T + 900 + 20)).deliveries == []  # not due yet
        live.tick(DUE)
        done = await data.settle(DUE)
        assert [(start, o.code) for start, o in done.deliveries] == [(T, "ok")]
        ana = live.node.app.state[f"settle/{t.people['ana'].address}/{T:012d}"]
        assert isinstance(ana, dict)
        assert (ana["delivered_wh"], ana["amount"], ana["meters"]) == (
            1_800,
            310,
            [t.meters["ana"].address],
        )
        assert (await data.settle(DUE + 5)).deliveries == []  # settled: nothing again
        live.tick(BILL_AT)
        done = await data.settle(BILL_AT)
        assert sorted((t.people[n].address, n) for n in NAMES) == sorted(
            (who, n) for who, _, o in done.bills for n in NAMES if t.people[n].address == who
        )
        assert all(o.ok for _, _, o in done.bills), done.bills
        assert balances(live, t) == {
            "ana": 310,
            "beto": 220,
            "carla": 700,
            "diego": 589,
            "elena": 0,
            "supplier": 209,
            "dso": 97,
        }
        assert live.node.app.state[f"debt/{t.people['elena'].address}"] == 25
        again = await data.settle(BILL_AT + 5)
        assert (again.deliveries, again.bills) == ([], [])


async def test_a_reading_that_may_still_come_is_waited_for(tmp_path: Path) -> None:
    async with live_node(tmp_path, mx(2026, 3, 10, 12, 0, 5)) as live:
        t = await town(live)
        data = live.meter_data(the_concentrator(live, "node"))
        follow(live, data)
        live.tick(T)
        live.tick(T + 900 + 10)
        for name in ("ana", "carla", "diego"):
            await live.report(t.meters[name], T, *READINGS[name], share=data)
        # Beto's meter reports on chain but its reading has not reached the concentrator.
        beto = t.meters["beto"]
        await live.report(beto, T, 100, 1_500, share=None)
        live.tick(DUE)
        done = await data.settle(DUE)
        assert done.deliveries == []
        assert done.waiting == [f"delivery {T}: a seller's reading may still come"]
        await data.receive(live.shared(beto, T))
        done = await data.settle(DUE + 5)
        assert [o.code for _, o in done.deliveries] == ["ok"]
        beto_statement = live.node.app.state[f"settle/{t.people['beto'].address}/{T:012d}"]
        assert isinstance(beto_statement, dict)
        assert beto_statement["delivered_wh"] == 1_234


async def test_without_the_reading_after_the_grace_the_seller_delivered_nothing(
    tmp_path: Path,
) -> None:
    async with live_node(tmp_path, mx(2026, 3, 10, 12, 0, 5)) as live:
        t = await town(live)
        data = live.meter_data(the_concentrator(live, "node"))
        follow(live, data)
        live.tick(T)
        live.tick(T + 900 + 10)
        for name in ("ana", "carla", "diego"):
            await live.report(t.meters[name], T, *READINGS[name], share=data)
        await live.report(t.meters["beto"], T, 100, 1_500, share=None)  # never shared
        after_grace = T + 900 + 2 * 86400
        live.tick(after_grace)
        done = await data.settle(after_grace)
        assert [o.code for _, o in done.deliveries] == ["ok"]
        beto = live.node.app.state[f"settle/{t.people['beto'].address}/{T:012d}"]
        assert isinstance(beto, dict)
        assert (beto["delivered_wh"], beto["meters"]) == (0, [])
        # The report nobody could bill stays on chain, visibly not billed.
        record = live.node.app.state[f"report/{t.meters['beto'].address}/{T:012d}"]
        assert isinstance(record, dict)
        assert "billed" not in record


def stored_files(folder: Path, pattern: str) -> dict[str, bytes]:
    """The bytes of every file matching ``pattern`` in ``folder``."""
    return {path.name: path.read_bytes() for path in folder.glob(pattern)}


# -- the meters' route and erasure ------------------------------------------------------------


@dataclass
class Served:
    live: Live
    data: MeterData
    session: aiohttp.ClientSession

    async def post(
        self, path: str, body: Any, headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        async with self.session.post(
            f"{self.live.client.base_url}/api/v1{path}", data=data, headers=headers or {}
        ) as answer:
            return answer.status, await answer.json()


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    made: list[MeterData] = []

    def install(app: web.Application, live: Live) -> None:
        data = live.meter_data(the_concentrator(live, "node"))
        concentrator = Concentrator(load_tariff(TOU), live.local(), live.clock, meter_data=data)
        add_feature(app, concentrator_feature(concentrator))
        made.append(data)

    async with (
        live_node(tmp_path, mx(2026, 3, 10, 12, 0, 5), install) as live,
        aiohttp.ClientSession() as session,
    ):
        yield Served(live, made[0], session)


async def test_meters_share_readings_without_a_token_and_only_their_own_are_kept(
    served: Served,
) -> None:
    live = served.live
    t = await town(live)
    live.tick(T + 900 + 10)
    await live.report(t.meters["ana"], T, 0, 1_800)
    good = live.shared(t.meters["ana"], T)
    assert await served.post("/readings", good) == (
        200,
        {"status": "stored", "meter": t.meters["ana"].address, "interval_start": T},
    )
    assert (await served.post("/readings", good))[1]["status"] == "duplicate"
    stranger = key("not-a-meter")
    unbound = sign(stranger, live.chain.genesis.chain_id, TxType.REPORT, 1,
                   {"interval_start": T, "commitment": "ab" * 32})  # fmt: skip
    elsewhere = sign(t.meters["ana"], "another-chain", TxType.REPORT, 1,
                     {"interval_start": T, "commitment": "ab" * 32})  # fmt: skip
    transfer = live.chain.tx(
        t.people["ana"], TxType.TRANSFER, to=t.people["beto"].address, amount=1
    )
    forged = good["report"].replace('"signature":"', '"signature":"00', 1)
    forged = forged[: forged.index('","tx"') - 2] + forged[forged.index('","tx"') :]
    cases: list[tuple[Any, int, str, str | None]] = [
        (b"not json", 400, "malformed", "body"),
        ({k: v for k, v in good.items() if k != "salt"}, 400, "malformed", "salt"),
        ({**good, "extra": 1}, 400, "malformed", "extra"),
        ({**good, "import_wh": -1}, 400, "malformed", "import_wh"),
        ({**good, "report": "{}"}, 400, "malformed", "report.signature"),
        ({**good, "report": transfer.wire().decode()}, 400, "malformed", "report"),
        ({**good, "report": elsewhere.wire().decode()}, 422, "wrong_chain", "report"),
        ({**good, "report": unbound.wire().decode()}, 422, "unknown_meter", "report"),
        ({**good, "report": forged}, 422, "bad_signature", "report"),
        ({**good, "export_wh": 1_801}, 422, "commitment_mismatch", "salt"),
        (b"{" + b" " * 9000 + b"}", 413, "too_large", "body"),
    ]
    for body, status, code, field in cases:
        answer = await served.post("/readings", body)
        assert answer[0] == status, (body, answer)
        assert (answer[1]["error"]["code"], answer[1]["error"].get("field")) == (code, field)
    assert served.data.store.count() == 1
    # The node shows the reading it holds beside the commitment on chain.
    rows = (await live.client.get(f"/reports/{t.meters['ana'].address}"))["reports"]
    assert [(r["on_chain"], r["held"], r["export_wh"]) for r in rows] == [(True, True, 1_800)]


async def test_a_meters_outbox_shares_its_readings_with_the_concentrator(
    served: Served, tmp_path: Path
) -> None:
    live = served.live
    t = await town(live)
    live.tick(T + 2 * 900 + 10)
    meter = t.meters["elena"]
    store = MeterStore(tmp_path / "meter.db", meter.address, live.chain.genesis.chain_id)
    try:
        outbox = Outbox(
            store,
            meter,
            live.chain.genesis.chain_id,
            node_submitter(live.node),
            share=http_sharer(served.session, live.client.base_url),
        )
        with store.transaction():
            outbox.add(IntervalReport(T, 500, 0))
            outbox.add(IntervalReport(T + 900, 300, 0))
        assert await outbox.flush()
        assert await outbox.flush_shares()
        assert outbox.shared() == {"pending": 0, "stored": 2, "refused": 0, "kept": 0}
        assert outbox.share_status(T) == ("stored", "stored")
        held = served.data.store.of_owner(t.people["elena"].address, 0, 1 << 40)
        assert [(h.opening.interval_start, h.opening.import_wh) for h in held] == [
            (T, 500),
            (T + 900, 300),
        ]
        # A reading the concentrator refuses for good is not sent again.
        with store.transaction() as db:
            outbox.add(IntervalReport(T + 1800, 1, 0))
            db.execute("UPDATE openings SET import_wh = 2 WHERE interval_start = ?", (T + 1800,))
        assert await outbox.flush_shares()
        assert outbox.share_status(T + 1800) == ("refused", "commitment_mismatch")
    finally:
        store.close()


async def test_a_departed_homes_readings_are_erased_and_gone_from_the_file(
    served: Served, tmp_path: Path
) -> None:
    live = served.live
    t = await town(live)
    live.tick(T)
    live.tick(T + 900 + 10)
    for name, (imported, exported) in READINGS.items():
        await live.report(t.meters[name], T, imported, exported, share=served.data)
    await live.report(t.meters["elena"], T, 500, 0, share=served.data)
    elena = t.people["elena"].address
    salt = live.chain.openings[t.meters["elena"].address, T].salt
    erase = {"participant": elena}
    assert (await served.post("/operator/readings/erase", erase))[0] == 401  # the token
    status, body = await served.post("/operator/readings/erase", erase, AUTH)
    assert (status, body["error"]["code"]) == (409, "not_departed")
    await live.commit(live.chain.tx(live.chain.iso, TxType.REVOKE, address=elena))
    status, body = await served.post("/operator/readings/erase", erase, AUTH)
    assert (status, body["error"]["code"]) == (409, "readings_pending")
    # Once the day is billed, nothing waits for the readings.
    live.tick(DUE)
    await served.data.settle(DUE)
    live.tick(BILL_AT)
    assert all(o.ok for _, _, o in (await served.data.settle(BILL_AT)).bills)
    status, body = await served.post("/operator/readings/erase", erase, AUTH)
    assert status == 200, body
    assert (body["participant"], body["meters"], body["erased"]) == (
        elena,
        [t.meters["elena"].address],
        1,
    )
    assert served.data.store.count(elena) == 0
    assert served.data.store.count() == 4  # the others' readings stay
    assert [e.participant for e in served.data.store.erasures()] == [elena]
    # Nothing of the reading is left in the file or its log.
    files = stored_files(tmp_path, "readings.db*")
    assert files
    assert not [name for name, content in files.items() if salt in content]
    rows = (await live.client.get(f"/reports/{t.meters['elena'].address}"))["reports"]
    assert [(r["on_chain"], r["held"], "import_wh" in r) for r in rows] == [(True, False, False)]
    # Unknown participants and bad bodies are refused with a reason.
    for body_, status_, code in (
        ({"participant": key("nobody").address}, 404, "unknown_account"),
        ({"participant": "x"}, 400, "malformed"),
        ({"participant": elena, "force": "yes"}, 400, "malformed"),
    ):
        answer = await served.post("/operator/readings/erase", body_, AUTH)
        assert (answer[0], answer[1]["error"]["code"]) == (status_, code)
    with pytest.raises(MeteringError, match="still a member"):
        await served.data.erase(t.people["ana"].address)
    forced = await served.data.erase(t.people["ana"].address, force=True)
    assert forced.readings == 1
    await asyncio.sleep(0)


def test_a_big_delivery_goes_in_parts_that_each_fit_a_transaction() -> None:
    """500 sellers (some with several meters): each part is at most MAX_SELLERS sellers
    and its signed transaction decodes (under MAX_TX_BYTES); together they are the whole
    delivery in order."""
    sellers: list[Any] = [
        {
            "participant": key(f"seller-{i:03d}").address,
            "delivered_wh": 10_000 + i,
            "meters": sorted(key(f"meter-{i}-{j}").address for j in range(1 + i % 3)),
        }
        for i in range(500)
    ]
    sellers.sort(key=lambda entry: entry["participant"])
    parts = delivery_parts(sellers)
    assert len(parts) > 2
    assert [entry for part in parts for entry in part] == sellers
    for part in parts:
        assert 0 < len(part) <= MAX_SELLERS
        tx = sign(key("dso"), "x-1", TxType.DELIVERY, 7, {"interval_start": T, "sellers": part})
        assert len(tx.wire()) <= MAX_TX_BYTES
