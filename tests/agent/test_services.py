"""A node running its roles: a meter reading a simulated SmartPi, the concentrator's prices,
and the home agent executing a contract -- the same ``serve`` that ``transactiva node`` runs."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from ledger_core.agent.execution import ContractExecutor
from ledger_core.clock import AcceleratedClock, ManualClock, clock_from
from ledger_core.demo.chain import free_port, paper_contract
from ledger_core.meter.household import Household
from ledger_core.meter.simulator import SmartPiSimulator
from ledger_core.node.home import Config, HomeError, init_home
from ledger_core.serve import serve

REPO = Path(__file__).resolve().parents[2]
TARIFF = REPO / "docs" / "tariffs" / "example-residential-tou.toml"
START = 1_795_500_000  # 2026-11-24, simulated


async def until(check: Callable[[], Awaitable[Any]], what: str, seconds: float = 30.0) -> Any:
    """``check()``'s value once it is true (an AssertionError after ``seconds``)."""
    deadline = time.monotonic() + seconds
    while True:
        value = await check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)


@pytest.fixture
async def simulator() -> AsyncIterator[SmartPiSimulator]:
    origin = time.time()
    sim = SmartPiSimulator(Household(seed=5), clock=AcceleratedClock(START, 60.0, origin))
    await sim.start()
    try:
        yield sim
    finally:
        await sim.stop()


async def test_a_node_with_meter_concentrator_and_contracts(
    tmp_path: Path, simulator: SmartPiSimulator
) -> None:
    port = free_port()
    origin = time.time()
    config = Config(
        api_port=port,
        block_interval=0.02,
        empty_block_every=0.2,
        clock_epoch=origin,
        clock_start=START,
        clock_speed=60.0,
        meter={
            "source": {"type": "smartpi", "url": simulator.url},
            "settings": {"sample_period": 5.0},
        },
        concentrator={"tariff": "tariff.toml"},
    )
    home = init_home(tmp_path, "services-test", START - 86400, config)
    shutil.copy(TARIFF, tmp_path / "tariff.toml")
    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(serve(tmp_path, stop, ready))
    base = f"http://127.0.0.1:{port}/api/v1"
    headers = {"Authorization": f"Bearer {home.token()}"}
    try:
        await asyncio.wait_for(ready.wait(), 30)
        async with aiohttp.ClientSession(headers=headers) as session:

            async def get(path: str) -> Any:
                async with session.get(base + path) as answer:
                    return answer.status, await answer.json()

            # The meter role reads the simulated SmartPi and serves its readings.
            async def reading() -> Any:
                status, body = await get("/local/meter")
                return body if status == 200 and body.get("phases") else None

            meter = await until(reading, "a meter reading")
            assert [p["phase"] for p in meter["phases"]] == [1, 2, 3]
            assert 100 < meter["phases"][0]["voltage"] < 150  # 127 V nominal

            # The concentrator publishes prices from the tariff and serves its routes.
            async def prices() -> Any:
                status, body = await get(f"/signals/prices?from={START}&to={START + 86400}")
                return body if status == 200 and body.get("prices") else None

            published = await until(prices, "price signals")
            assert published["prices"][0]["import_price"] > 0
            status, tariff = await get("/operator/tariff")
            assert status == 200
            assert "Residential" in json.dumps(tariff)
            status, spec = await get("/openapi.json")
            assert {
                "/local/meter",
                "/operator/tariff",
                "/local/actions",
                "/local/analytics/forecast",
            } <= set(spec["paths"])
            # Analytics answers (not ready yet with minutes of history: a clear 503).
            status, body = await get("/local/analytics/forecast?hours=24")
            assert status in (200, 503)
            if status == 503:
                assert body["error"]["code"] == "not_ready"
            status, body = await get("/local/analytics/history?resolution=1h")
            assert status in (200, 400)
            # The home agent executes the operator's own contract and logs its actions.
            source = paper_contract(
                "prueba", datetime_local(START - 86400), datetime_local(START + 86400)
            )
            async with session.post(
                base + "/local/contract_propose?wait=true", json={"source": source}
            ) as answer:
                assert answer.status == 200, await answer.text()

            async def actions() -> Any:
                status, body = await get("/local/actions")
                return body["actions"] if status == 200 and body["actions"] else None

            logged = await until(actions, "a contract action")
            assert logged[0]["device"] == "Lavadora"
            assert logged[0]["reason"].startswith("line ")
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


def datetime_local(seconds: int) -> Any:
    executor = ContractExecutor("tv" + "0" * 40, None)
    return executor.local_clock(seconds)


async def test_clocks_sleep_in_their_own_time() -> None:
    clock = AcceleratedClock(1000.0, speed=1000.0)
    started = time.monotonic()
    await clock.sleep(500.0)  # half a real second at 1000x
    await clock.sleep_until(clock.now() + 200.0)  # a fifth of a second more
    await clock.sleep_until(900.0)  # already past: no wait
    assert 0.6 < time.monotonic() - started < 3.0
    assert clock_from(None, 5.0).now() > 1e9  # the wall clock when not accelerated
    manual = ManualClock(10.0)
    waiter = asyncio.create_task(manual.sleep(5.0))
    await asyncio.sleep(0)
    manual.advance(5.0)
    await asyncio.wait_for(waiter, 1.0)
    assert manual.now() == 15.0


async def test_bad_role_settings_are_refused_with_the_file(tmp_path: Path) -> None:
    config = Config(api_port=free_port(), meter={"source": {"type": "nope"}})
    init_home(tmp_path, "services-test", START, config)
    with pytest.raises(HomeError, match=r"config\.json: meter\.source\.type"):
        await serve(tmp_path, asyncio.Event())
    with contextlib.suppress(FileNotFoundError):
        (tmp_path / "ledger.db").unlink()


async def test_bad_concentrator_settings_are_refused(tmp_path: Path) -> None:
    shutil.copy(TARIFF, tmp_path / "tariff.toml")
    for settings, message in (
        ({}, r"concentrator\.tariff: the tariff file's path is required"),
        ({"tariff": "missing.toml"}, "missing.toml"),
        ({"tariff": "tariff.toml", "rules": {}}, r"rules: must be a list"),
        ({"tariff": "tariff.toml", "rules": [{"name": "x"}]}, r"rules\.above_w: is missing"),
    ):
        folder = tmp_path / str(abs(hash(message)))
        folder.mkdir()
        shutil.copy(TARIFF, folder / "tariff.toml")
        init_home(
            folder, "services-test", START, Config(api_port=free_port(), concentrator=settings)
        )
        with pytest.raises(HomeError, match=message):
            await serve(folder, asyncio.Event())


async def test_bad_analytics_settings_are_refused(tmp_path: Path) -> None:
    meter = {"source": {"type": "pushed"}}
    for settings, message in (
        ({"x": 1}, r"analytics\.x: is not an analytics setting"),
        ({"site": []}, r"analytics\.site: must be an object"),
        ({"refit_seconds": 5}, r"analytics\.refit_seconds"),
        ({"site": {"latitude": 100.0}}, r"analytics\.site: .*latitude"),
    ):
        folder = tmp_path / str(abs(hash(message)))
        folder.mkdir()
        config = Config(api_port=free_port(), meter=meter, analytics=settings)
        init_home(folder, "services-test", START, config)
        with pytest.raises(HomeError, match=message):
            await serve(folder, asyncio.Event())
