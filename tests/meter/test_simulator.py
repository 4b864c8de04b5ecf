"""The simulated household is realistic, reproducible and controllable; the simulator serves it."""

from __future__ import annotations

import asyncio
import sys
import time
from datetime import date, datetime
from zoneinfo import ZoneInfo

import aiohttp
import numpy as np
import pytest

from ledger_core.clock import AcceleratedClock, SystemClock
from ledger_core.meter.household import (
    APPLIANCES,
    FRIDGE,
    PUMP,
    WASHER,
    Household,
    HouseholdModel,
    Profile,
    PvSystem,
    h0_table,
    uniform,
    utc_offsets,
    year_bounds,
)
from ledger_core.meter.simulator import SmartPiSimulator, build, parse_args
from ledger_core.meter.smartpi import SmartPiClient
from tests.meter.helpers import NOON, ManualClock, free_port

ZONE = ZoneInfo("America/Mexico_City")
CLEAR = HouseholdModel(Household(cloudiness=0))


def midnight(day: date) -> float:
    return datetime(day.year, day.month, day.day, tzinfo=ZONE).timestamp()


@pytest.fixture(scope="module")
def year() -> tuple[HouseholdModel, Profile]:
    model = HouseholdModel(Household(seed=11))
    start, end = year_bounds("America/Mexico_City", 2026)
    return model, model.profile(start, end)


@pytest.mark.parametrize("day", [date(2026, 1, 15), date(2026, 3, 10), date(2026, 6, 21)])
def test_clear_days_give_what_3_kwp_give_in_morelia(day: date) -> None:
    profile = CLEAR.profile(midnight(day), midnight(day) + 86400, 300)
    kwh = float(profile.energy_wh(profile.pv_w).sum()) / 1000
    assert 14.0 <= kwh <= 17.5
    peak = int(np.argmax(profile.pv_w))
    peak_time = float(profile.start[peak]) + 150
    assert abs(peak_time - CLEAR.solar_noon(day)) <= 20 * 60
    assert profile.pv_w.max() < 3000  # never above the inverter's rating
    hours = (profile.start - midnight(day)) / 3600
    night = (hours < 5.5) | (hours >= 20)
    assert np.all(profile.pv_w[night] == 0)


def test_haurwitz_and_ineichen_agree_roughly() -> None:
    day = date(2026, 3, 10)
    haurwitz = HouseholdModel(Household(cloudiness=0, pv=PvSystem(clear_sky="haurwitz")))
    a = CLEAR.profile(midnight(day), midnight(day) + 86400).pv_w.sum()
    b = haurwitz.profile(midnight(day), midnight(day) + 86400).pv_w.sum()
    assert 0.8 < b / a < 1.2


def test_a_year_of_quarter_hours_matches_the_configuration(
    year: tuple[HouseholdModel, Profile],
) -> None:
    model, profile = year
    assert len(profile.start) == 365 * 96
    assert profile.step == 900
    consumption_kwh = float(profile.energy_wh(profile.load_w).sum()) / 1000
    assert consumption_kwh == pytest.approx(model.household.annual_kwh, rel=1e-6)
    pv_kwh = float(profile.energy_wh(profile.pv_w).sum()) / 1000
    assert model.household.pv is not None
    assert 1450 <= pv_kwh / model.household.pv.kwp <= 1900  # kWh per kWp in central Mexico
    # Night: no PV anywhere in the year; the rainy season is cloudier than the dry one.
    local_hour = (profile.start - profile.start[0]) % 86400 / 3600
    assert np.all(profile.pv_w[(local_hour < 5) | (local_hour >= 21)] == 0)
    months = np.array(
        [datetime.fromtimestamp(int(t), ZONE).month for t in profile.start[::96]]
    ).repeat(96)
    clear = CLEAR.profile(profile.start[0], profile.start[-1] + 900, 3600)
    clear_months = months[::4]
    ratio_dry = profile.pv_w[months == 3].sum() / clear.pv_w[clear_months == 3].sum() / 4
    ratio_wet = profile.pv_w[months == 8].sum() / clear.pv_w[clear_months == 8].sum() / 4
    assert ratio_wet < ratio_dry <= 1.0
    # Balanced import and export add up with the mean net power.
    net = profile.import_w - profile.export_w
    assert np.allclose(net, profile.net_w, atol=1e-6)
    assert np.allclose(profile.phase_w.sum(axis=0), profile.net_w, atol=1e-6)
    assert set(profile.appliance_w) == set(APPLIANCES)


def test_the_load_profile_has_an_evening_peak_and_holidays_like_sundays(
    year: tuple[HouseholdModel, Profile],
) -> None:
    _, profile = year
    daily = profile.base_w.reshape(365, 96)
    mean_day = daily.mean(axis=0)
    assert mean_day[19 * 4 : 21 * 4].mean() > 1.5 * mean_day[3 * 4 : 5 * 4].mean()
    table = h0_table()
    assert table.shape == (3, 3, 96)
    # 16 September 2026 (Independence Day, a Wednesday) has the shape of a Sunday.
    independence = (date(2026, 9, 16) - date(2026, 1, 1)).days
    wednesday = independence - 7
    sunday = independence + 4
    shape = daily[independence] / daily[independence].sum()
    assert np.allclose(shape, daily[sunday] / daily[sunday].sum(), atol=1e-4)
    assert not np.allclose(shape, daily[wednesday] / daily[wednesday].sum(), atol=1e-4)


def test_seeds_make_households_reproducible() -> None:
    start = midnight(date(2026, 6, 1))
    a = HouseholdModel(Household(seed=3)).profile(start, start + 7 * 86400)
    b = HouseholdModel(Household(seed=3)).profile(start, start + 7 * 86400)
    c = HouseholdModel(Household(seed=4)).profile(start, start + 7 * 86400)
    assert np.array_equal(a.net_w, b.net_w)
    assert not np.array_equal(a.net_w, c.net_w)
    draws = uniform(3, 1, np.arange(100_000))
    assert 0 <= draws.min() < 0.001
    assert 0.999 < draws.max() < 1
    assert abs(draws.mean() - 0.5) < 0.01


def test_appliances_have_realistic_patterns() -> None:
    model = HouseholdModel(Household(seed=2, washes_per_week=7))
    day = midnight(date(2026, 3, 10))
    minutes = day + 30 + 60 * np.arange(1440, dtype=np.float64)
    fridge = model.appliance_power(FRIDGE, minutes)
    assert 0.3 < (fridge > 0).mean() < 0.4  # 17 minutes in 48
    pump = model.appliance_power(PUMP, minutes)
    assert (pump > 0).sum() == 40  # twice 20 minutes
    washer = model.appliance_power(WASHER, minutes)
    running = washer > 0
    assert running.sum() == model.wash_seconds / 60 == 64
    assert washer.max() == 450  # the final spin
    wash_wh = washer.sum() / 60
    assert 200 < wash_wh < 400


@pytest.mark.parametrize(
    "kwargs",
    [
        {"annual_kwh": 0},
        {"cloudiness": 2},
        {"washes_per_week": 8},
        {"fridge_on_min": 60},
        {"base_split": (0.5, 0.5, 0.5)},
    ],
)
def test_impossible_households_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - each names its own field
        Household(**kwargs)  # type: ignore[arg-type]


def test_a_home_without_pv_and_instant_powers() -> None:
    model = HouseholdModel(Household(pv=None))
    start = midnight(date(2026, 3, 10))
    profile = model.profile(start, start + 86400)
    assert not profile.pv_w.any()
    assert np.all(profile.export_w == 0)
    pv, base, appliances = model.powers(np.array([start + 12 * 3600, start + 20 * 3600]))
    assert not pv.any()
    assert np.all(base > 0)
    assert set(appliances) == set(APPLIANCES)
    with pytest.raises(KeyError):
        model.appliance_power("Tostador", np.array([start]))
    with pytest.raises(ValueError, match="whole number of minutes"):
        model.profile(start, start + 86400, 90)
    with pytest.raises(ValueError, match="at least one step"):
        model.profile(start, start + 60)
    # Sparse instants years apart, and none at all.
    offsets = utc_offsets("America/Mexico_City", np.array([0.0, 1.9e9]))
    assert offsets.tolist() == [-6 * 3600, -6 * 3600]
    assert utc_offsets("America/Mexico_City", np.array([])).shape == (0,)


def test_appliances_that_use_more_than_the_year_are_refused() -> None:
    model = HouseholdModel(Household(annual_kwh=300))
    with pytest.raises(ValueError, match="appliances alone use"):
        model.profile(NOON, NOON + 3600)


async def test_control_api_starts_the_washer_and_cuts_the_service() -> None:
    clock = ManualClock(NOON)
    sim = SmartPiSimulator(Household(seed=1, washes_per_week=0), clock=clock, noise=False)
    url = await sim.start()
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(url + "/sim/appliances") as response:
                states = {s["name"]: s for s in (await response.json())["appliances"]}
            assert states[WASHER]["running"] is False
            assert states[WASHER]["mode"] == "auto"
            before = sim.sample().phases[1].power
            async with session.post(url + "/sim/appliances/LAVADORA", json={"on": True}) as r:
                washer = await r.json()
            assert (washer["mode"], washer["running"], washer["phase"]) == ("on", True, 2)
            assert washer["cycle_remaining"] == 64 * 60
            clock.time += 10 * 60  # ten minutes in: washing
            assert sim.sample().phases[1].power == pytest.approx(before + 330, abs=30)
            async with session.get(url + "/sim/state") as response:
                state = await response.json()
            assert state["service"] == "connected"
            assert state["net_w"] == pytest.approx(state["load_w"] - state["pv_w"], abs=1)
            clock.time += 60 * 60  # the cycle is over
            assert sim.appliance_states()[0]["mode"] == "auto"
            async with session.post(url + "/sim/appliances/Bomba de agua", json={"on": True}) as r:
                assert (await r.json())["power"] == 450
            async with session.post(
                url + "/sim/appliances/Bomba de agua", json={"on": False}
            ) as answer:
                assert answer.status == 200
            async with session.post(url + "/sim/appliances/Standby", json={"mode": "auto"}) as r:
                assert (await r.json())["mode"] == "auto"
            async with session.post(url + "/sim/service", json={"connected": False}) as answer:
                assert answer.status == 200
            sample = sim.sample()
            assert [p.voltage for p in sample.phases] == [0, 0, 0]
            assert sample.power == 0
            for path, body, status, field in (
                ("/sim/appliances/Tostador", {"on": True}, 404, "name"),
                ("/sim/appliances/Lavadora", {"on": "yes"}, 400, "on"),
                ("/sim/appliances/Lavadora", {"mode": "sometimes"}, 400, "on"),
                ("/sim/service", {"connected": 1}, 400, "connected"),
            ):
                async with session.post(url + path, json=body) as response:
                    assert response.status == status
                    assert (await response.json())["error"]["field"] == field
            async with session.post(url + "/sim/service", data=b"[") as response:
                assert (await response.json())["error"]["field"] == "body"
            async with session.post(url + "/sim/service", data=b"[]") as response:
                assert (await response.json())["error"]["field"] == "body"
            async with session.post(url + "/sim/service", data=b" " * 5000) as response:
                assert response.status == 413
    finally:
        await sim.stop()
    with pytest.raises(ValueError, match="firmware"):
        SmartPiSimulator(firmware="2019")
    with pytest.raises(KeyError):
        sim.switch("Tostador", "on")
    with pytest.raises(ValueError, match="mode"):
        sim.switch("Lavadora", "maybe")


async def test_firmware_generations_answer_their_own_routes() -> None:
    clock = ManualClock(NOON)
    sim = SmartPiSimulator(clock=clock, firmware="current")
    url = await sim.start()
    try:
        async with aiohttp.ClientSession() as session:
            for path, json_answer in (
                ("/api/all/all/now", True),
                ("/api/all/power/now", False),  # current firmware dropped the old routes
                ("/api/5/power/now", False),
                ("/api/v1/smartpiac/livedata/xml", False),
                ("/api/v1/smartpiac/livedata/json", True),
            ):
                async with session.get(url + path) as response:
                    assert (response.content_type == "application/json") is json_answer, path
            sim.firmware = "old"
            async with session.get(url + "/api/v1/smartpiac/livepower") as response:
                assert response.content_type == "text/html"
    finally:
        await sim.stop()
        await sim.stop()  # twice is fine
    # Four days in a row: the per-day PV table keeps the latest three.
    for day in range(4):
        sim.sample(NOON + day * 86400)
    assert len(sim._pv_days) == 3


def test_command_line_settings() -> None:
    live = build(parse_args(["--pv-kwp", "0", "--annual-kwh", "4000"]))
    assert live.household.pv is None
    assert abs(live.clock.now() - time.time()) < 5
    fast = build(parse_args(["--speed", "720", "--start", "2026-03-10T06:00:00-06:00"]))
    assert isinstance(fast.clock, AcceleratedClock)
    assert fast.clock.speed == 720
    with pytest.raises(SystemExit, match="UTC offset"):
        build(parse_args(["--start", "2026-03-10T06:00:00"]))


async def test_the_same_seed_and_time_give_the_same_answer() -> None:
    clock = ManualClock(NOON)
    a = SmartPiSimulator(Household(seed=8), clock=clock)
    b = SmartPiSimulator(Household(seed=8), clock=clock)
    assert a.body(a.sample()) == b.body(b.sample())
    clock.time += 1
    assert a.body(a.sample()) != b.body(b.sample(NOON))
    body = a.body(a.sample(), phase="4", value="power")
    assert body["datasets"][0]["phases"] == [
        {
            "phase": 4,
            "name": "phase 4",
            "values": [{"type": "power", "unity": "W", "info": "", "data": 0.0}],
        }
    ]
    assert body["time"] == "2026-03-10 12:00:01"


async def test_accelerated_clocks_run_a_day_in_two_minutes() -> None:
    clock = AcceleratedClock(NOON, speed=720)
    started = time.monotonic()
    await clock.sleep(36)  # 36 simulated seconds: 0.05 s
    elapsed = time.monotonic() - started
    assert 0.04 < elapsed < 1
    assert clock.now() - NOON == pytest.approx(elapsed * 720, rel=0.2, abs=5)
    twin = AcceleratedClock(NOON, speed=720, origin=clock.origin)
    assert abs(twin.now() - clock.now()) < 1
    with pytest.raises(ValueError, match="speed"):
        AcceleratedClock(NOON, speed=0)
    system = SystemClock()
    await system.sleep(-1)
    assert abs(system.now() - time.time()) < 1


async def test_the_simulator_runs_as_a_process() -> None:
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ledger_core.meter.simulator",
        "--port",
        str(port),
        "--seed",
        "3",
        "--speed",
        "720",
        "--start",
        "2026-03-10T12:00:00-06:00",
        "--firmware",
        "old",
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), 60)
        assert line.decode().strip() == f"SmartPi simulator on http://127.0.0.1:{port}"
        meter = SmartPiClient(f"http://127.0.0.1:{port}")
        try:
            reading = await meter.read()
        finally:
            await meter.close()
        assert meter.route == "/api/all/all/now"
        assert reading.power is not None
        assert reading.power < 0  # noon in March: exporting
    finally:
        if process.returncode is None:
            process.terminate()
        assert await asyncio.wait_for(process.wait(), 10) == 0
