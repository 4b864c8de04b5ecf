"""The analytics service on a real store, and its routes on the node's real API app."""

from __future__ import annotations

import asyncio
import datetime as dt
import tempfile
from collections.abc import AsyncIterator, Iterator
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import given, settings
from hypothesis import strategies as st

from contracts import format_contract, parse
from ledger_core.agent.execution import ContractExecutor
from ledger_core.analytics.advice import PriceRule
from ledger_core.analytics.api import analytics_feature
from ledger_core.analytics.forecast import HomeModel, fit_home
from ledger_core.analytics.localtime import Site, midnight
from ledger_core.analytics.service import AnalyticsService, MinuteAggregator, NotReady
from ledger_core.analytics.store import Interval, ReadingStore
from ledger_core.analytics.synthetic import Household, simulate
from ledger_core.api.core import make_app
from ledger_core.api.server import add_feature
from ledger_core.node.host import Node
from ledger_core.node.storage import open_storage
from ledger_core.state.machine import StateMachine
from tests.state.chain import Chain, key

TZ = "America/Mexico_City"
TOKEN = "a" * 64
AUTH = {"Authorization": f"Bearer {TOKEN}"}
FIRST = dt.date(2026, 1, 1)
DAYS = 30
START = midnight(FIRST, TZ)
END = START + DAYS * 86_400  # data up to here; the clock stands a little after


@cache
def simulated() -> Household:
    return simulate(FIRST, DAYS, seed=11)


@cache
def fitted() -> HomeModel:
    """The home's models, fitted once for the tests that only read them."""
    with tempfile.TemporaryDirectory() as folder, filled(Path(folder) / "a.db") as store:
        return fit_home(store.series(START, END), Site())


class Clock:
    def __init__(self, now: int) -> None:
        self.now = now

    def __call__(self) -> float:
        return float(self.now)


def filled(path: Path) -> ReadingStore:
    store = ReadingStore(path)
    home = simulated()
    store.add_intervals(home.interval_rows())
    store.add_temperatures(
        (int(t), float(c)) for t, c in zip(home.interval_times, home.temperature, strict=True)
    )
    return store


@pytest.fixture
def service(tmp_path: Path) -> Iterator[AnalyticsService]:
    store = filled(tmp_path / "analytics.db")
    rules = [PriceRule("barata", "import_price", "<", 5_000, ("Lavadora",))]
    try:
        yield AnalyticsService(
            store,
            Site(),
            clock=Clock(END + 10 * 60),
            prices=lambda start, end: {
                START + 86_400 * d + 19 * 3600: (40_000, 5_000) for d in range(DAYS)
            },
            rules=lambda: rules,
        )
    finally:
        store.close()


def test_schedule_refits_daily_and_compacts(tmp_path: Path) -> None:
    clock = Clock(END)
    with ReadingStore(tmp_path / "empty.db") as store:
        service = AnalyticsService(store, Site(), clock=clock, refit_seconds=3600)
        assert service.tick() == ["refit_skipped", "compact"]
        assert service.model is None
        assert service.last_error is not None
        assert "days of consumption data" in service.last_error
        with pytest.raises(NotReady, match="days of consumption data"):
            service.forecast()
        summary = service.summary()
        assert summary["ready"] is False
        assert summary["measured_consumption_wh"] == 0
        store.add_intervals(simulated().interval_rows())
        clock.now += 1800
        assert service.tick() == []  # neither is due yet
        clock.now += 1800
        assert service.tick() == ["refit"]
        assert service.model is not None
        assert service.fitted_at == clock.now
        clock.now += 86_400
        assert service.tick() == ["refit", "compact"]


def test_forecast_summary_and_expected_energy(service: AnalyticsService) -> None:
    assert service.expected_energy(END, END + 86_400) == {}  # not fitted yet
    service.model, service.fitted_at = fitted(), END
    first = service.forecast()
    assert first.start.size == 192
    assert first.start[0] == END  # the clock is in the interval that starts at END
    assert np.array_equal(service.forecast(96).consumption.p50, first.consumption.p50[:96])
    assert service.forecast(8).start.tolist() == [END + 900 * i for i in range(8)]
    with pytest.raises(ValueError, match="steps"):
        service.forecast(0)
    summary = service.summary()
    assert summary["ready"] is True
    assert summary["date"] == "2026-01-31"
    # The clock is 00:10 on 31 January: nothing measured today yet, a whole day expected.
    assert summary["measured_consumption_wh"] == 0
    assert 3_000 < int(summary["consumption_today_wh"]) < 15_000  # type: ignore[call-overload]
    assert int(summary["production_tomorrow_wh"]) > 0  # type: ignore[call-overload]
    assert summary["kwp_learned"] is True
    energy = service.expected_energy(END + 900, END + 86_400)
    assert list(energy) == [END + 900 * i for i in range(1, 96)]
    noon_use, noon_pv = energy[END + 12 * 3600]
    night_use, night_pv = energy[END + 2 * 3600]
    assert noon_pv > noon_use  # a 3 kWp array covers the house at noon in January
    assert night_pv == 0 < night_use
    assert (noon_use, noon_pv) == (
        round(float(first.consumption.p50[48])),
        round(float(first.production.p50[48])),
    )
    assert service.expected_energy(END + 49 * 3600, END + 50 * 3600) == {}  # past the horizon


def test_advice_uses_price_signals_rules_and_appliances(service: AnalyticsService) -> None:
    items = {item.id: item for item in service.advice()}
    assert "standby" in items
    assert "top_appliance" in items
    assert "contract_threshold:barata:Price<0.50" in items
    bill = items["bill_hours"]
    assert bill.evidence["start_hour"] in (17, 18, 19)  # the 4.00 MXN/kWh hour is 19:00


def test_history_through_the_service(service: AnalyticsService) -> None:
    days = service.history(START, END, "1d")
    assert len(days) == DAYS
    assert all(day["intervals"] == 96 for day in days)
    assert set(days[0]["appliances"]) == set(simulated().appliances)  # type: ignore[arg-type]


def test_minute_aggregation() -> None:
    minutes = MinuteAggregator()
    assert minutes.add(60.0, 600.0, 100.0, {"Bomba": 500.0}) == []
    assert minutes.add(90.0, -300.0, 300.0, {"Bomba": 0.0}) == []
    assert minutes.add(30.0, 9_999.0) == []  # older than the open minute: dropped
    (closed,) = minutes.add(125.0, 10.0)
    assert (closed.t, closed.import_w, closed.export_w, closed.pv_w) == (60, 300, 150, 200)
    assert closed.channels == {"Bomba": 250}
    (second,) = minutes.add(200.0, 0.0)
    assert (second.t, second.import_w, second.pv_w, second.channels) == (120, 10, None, {})


@settings(max_examples=50)
@given(st.lists(st.floats(-20_000, 20_000), min_size=1, max_size=30))
def test_minute_means_of_import_and_export(samples: list[float]) -> None:
    minutes = MinuteAggregator()
    for i, watts in enumerate(samples):
        assert minutes.add(600 + i, watts) == []
    (closed,) = minutes.add(660, 0.0)
    assert closed.import_w == round(sum(max(w, 0.0) for w in samples) / len(samples))
    assert closed.export_w == round(sum(max(-w, 0.0) for w in samples) / len(samples))


def test_feed_stores_closed_minutes(service: AnalyticsService) -> None:
    t = END + 3600
    assert service.feed(t, 1200.0) == 0
    assert service.feed(t + 30, 600.0, None, {"Lavadora": 300.0}) == 0
    assert service.feed(t + 60, 0.0) == 1
    (minute,) = service.store.minutes(t, t + 60)
    assert (minute.import_w, minute.channels) == (900, {"Lavadora": 150})
    assert service.record_intervals([Interval(t, 5, 0)]) == 1
    assert service.store.series(t, t + 900).import_wh[0] == 5.0


async def test_run_ticks_until_stopped(service: AnalyticsService) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop, poll_seconds=0.05))
    for _ in range(200):
        if service.model is not None and service.compacted_at is not None:
            break
        await asyncio.sleep(0.05)
    stop.set()
    await asyncio.wait_for(task, 5)
    assert service.model is not None
    assert service.compacted_at == END + 600


# -- the routes, on the node's own application over loopback ---------------------------


class Client:
    def __init__(self, client: TestClient[Any, Any]) -> None:
        self.client = client

    async def get(self, path: str, auth: bool = True) -> tuple[int, Any]:
        response = await self.client.get(
            "/api/v1/local/analytics" + path, headers=AUTH if auth else {}
        )
        return response.status, await response.json()


@pytest.fixture
async def client(tmp_path: Path, service: AnalyticsService) -> AsyncIterator[Client]:
    chain = Chain()
    node = Node(
        chain.genesis,
        key("validator"),
        open_storage(tmp_path, chain.genesis),
        app_factory=StateMachine.restore,
    )
    app = make_app(node, TOKEN, chain.iso)
    add_feature(app, analytics_feature(service))
    empty = ReadingStore(tmp_path / "empty.db")
    idle = AnalyticsService(empty, Site(), clock=Clock(END))
    other = make_app(node, TOKEN, chain.iso)
    add_feature(other, analytics_feature(idle))
    app.add_subapp("/idle", other)
    test_client: TestClient[Any, Any] = TestClient(TestServer(app))
    await test_client.start_server()
    idle.tick()
    service.model, service.fitted_at = fitted(), END
    try:
        yield Client(test_client)
    finally:
        await test_client.close()
        empty.close()
        node.close()


async def test_routes_need_the_token(client: Client) -> None:
    for path in ("/forecast", "/history", "/advice", "/summary"):
        status, body = await client.get(path, auth=False)
        assert status == 401
        assert body["error"]["code"] == "unauthorized"


async def test_forecast_route(client: Client) -> None:
    status, body = await client.get("/forecast?hours=24")
    assert status == 200, body
    assert body["origin"] == END
    assert body["interval_seconds"] == 900
    assert len(body["series"]) == 96
    row = body["series"][48]
    assert set(row) == {
        "start", "consumption_wh", "consumption_p10", "consumption_p90", "consumption_mean",
        "production_wh", "production_p10", "production_p90", "production_mean",
    }  # fmt: skip
    for row in body["series"]:
        assert row["consumption_p10"] <= row["consumption_wh"] <= row["consumption_p90"]
        assert row["production_p10"] <= row["production_wh"] <= row["production_p90"]
    status, body = await client.get("/forecast")
    assert (status, len(body["series"])) == (200, 192)


async def test_not_ready_is_a_json_503(client: Client) -> None:
    response = await client.client.get("/idle/api/v1/local/analytics/forecast", headers=AUTH)
    body = await response.json()
    assert response.status == 503
    assert body["error"]["code"] == "not_ready"
    assert "days of consumption data" in body["error"]["message"]


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        ("/forecast?hours=0", "hours", "between 1 and 48"),
        ("/forecast?hours=49", "hours", "between 1 and 48"),
        ("/forecast?hours=two", "hours", "integer"),
        ("/history?resolution=5m", "resolution", "15m, 1h, 1d"),
        ("/history?from=abc", "from", "integer"),
        ("/history?to=-5", "to", "between"),
        (f"/history?from={END}&to={END}", "from", "before"),
        (f"/history?from={END - 40 * 86_400}&to={END}", "from", "at most 31 days"),
        (f"/history?resolution=1h&from=0&to={END}", "from", "at most 366 days"),
    ],
)
async def test_bad_queries_are_json_400(
    client: Client, query: str, field: str, message: str
) -> None:
    status, body = await client.get(query)
    assert status == 400
    assert body["error"]["code"] == "malformed"
    assert body["error"]["field"] == field
    assert message in body["error"]["message"]


async def test_history_route(client: Client) -> None:
    status, body = await client.get(f"/history?from={START}&to={END}&resolution=1d")
    assert status == 200
    assert body["resolution"] == "1d"
    assert len(body["rows"]) == DAYS
    status, body = await client.get("/history?resolution=1h")
    assert status == 200
    assert (body["from"], body["to"]) == (END - 7 * 86_400, END + 600)
    assert len(body["rows"]) == 7 * 24
    status, body = await client.get("/history")
    assert len(body["rows"]) == 96


async def test_advice_and_summary_routes(client: Client) -> None:
    status, body = await client.get("/advice")
    assert status == 200
    assert body["generated_at"] == END + 600
    ids = [item["id"] for item in body["items"]]
    assert "standby" in ids
    first = body["items"][0]
    assert set(first["title"]) == {"en", "es"}
    assert isinstance(first["centavos"], int)
    status, summary = await client.get("/summary")
    assert status == 200
    assert summary["ready"] is True
    assert "series" not in summary
    assert all(isinstance(v, int) for k, v in summary.items() if k.endswith("_wh"))


def test_price_source_is_optional(tmp_path: Path) -> None:
    with filled(tmp_path / "a.db") as store:
        service = AnalyticsService(store, clock=Clock(END))
        tariff = service.tariff(np.arange(3, dtype=np.int64))
        assert tariff.import_price.tolist() == [11_000.0] * 3


def test_the_forecast_places_day_ahead_offers_at_midday(service: AnalyticsService) -> None:
    """The contract executor with this home's fitted forecast: tomorrow's sunny hours are
    offered ahead at the contract's minimum price, the night is not."""
    service.model, service.fitted_at = fitted(), END
    seller = format_contract(
        parse(
            "Contract 'excedente'\nValid from 2026/01/01 00:00:00 to 2026/12/31 23:59:59\n"
            "Production true and sell\nParties: ISO\n",
            "s",
        )
    )
    home = "tv" + "a" * 40
    executor = ContractExecutor(
        home, None, utc_offset_minutes=-360, forecast=service.expected_energy
    )
    assert executor.track("s", {"source": seller, "status": "active", "signers": [home]})
    now = END + 10 * 60
    tomorrow = END + 86_400  # 1 February, local midnight
    for i in range(96):
        executor.on_ledger_event(
            {
                "type": "price_signal",
                "interval_start": tomorrow + 900 * i,
                "import_price": 30_000,
                "export_price": 9_000,
                "network_fee": 0,
            },
            now,
        )
    planned = executor.on_tick(now)
    offers = {a.order.interval_start: a.order for a in planned if a.order is not None}
    expected = service.expected_energy(tomorrow, tomorrow + 86_400)
    surplus = {t: p - c for t, (c, p) in expected.items() if p > c}
    assert offers
    assert set(offers) == set(surplus)
    assert all(o.side == "sell" and o.limit_price == 9_000 for o in offers.values())
    assert all(offers[t].energy_wh == surplus[t] for t in offers)
    hours = {(t - tomorrow) // 3600 for t in offers}
    assert 7 <= min(hours) <= max(hours) <= 17  # daylight in Morelia in February
