"""The SmartPi client over real HTTP against the simulator, and its body decoder, fuzzed."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from hypothesis import given
from hypothesis import strategies as st

from ledger_core.meter.household import Household
from ledger_core.meter.reading import MeterDataError, MeterError, MeterUnreachable, Reading
from ledger_core.meter.simulator import SmartPiSimulator
from ledger_core.meter.smartpi import GUI_PAGE, LEGACY, LIVEDATA, SmartPiClient, decode_smartpi
from tests.meter.helpers import (
    LIVEDATA_BODY,
    NOON,
    OLD_POWER_BODY,
    ManualClock,
    free_port,
    serve,
)


@pytest.fixture
async def simulator() -> AsyncIterator[SmartPiSimulator]:
    sim = SmartPiSimulator(Household(seed=7), clock=ManualClock(NOON))
    await sim.start()
    try:
        yield sim
    finally:
        await sim.stop()


def client(sim: SmartPiSimulator, **kw: Any) -> SmartPiClient:
    assert sim.url is not None
    return SmartPiClient(sim.url, clock=sim.clock, **kw)


# -- against the simulator -------------------------------------------------------------


async def test_reads_three_phases_and_the_neutral_from_livedata(
    simulator: SmartPiSimulator,
) -> None:
    meter = client(simulator)
    try:
        reading = await meter.read()
    finally:
        await meter.close()
    assert meter.route == LIVEDATA
    assert reading.time.timestamp() == NOON
    assert reading.time.utcoffset() is not None
    assert [p.phase for p in reading.phases] == [1, 2, 3]
    for phase in reading.phases:
        assert phase.voltage is not None
        assert 120 < phase.voltage < 135
        assert phase.frequency is not None
        assert abs(phase.frequency - 60) < 0.1
        assert phase.current is not None
        assert phase.current >= 0
        assert phase.power_factor is not None
        assert -1 <= phase.power_factor <= 1
    assert reading.power == pytest.approx(sum(p.power or 0 for p in reading.phases))
    # Noon in March in Morelia: PV on phase 1 exports, the house still imports on 2 and 3.
    phase1 = reading.phase(1)
    assert phase1 is not None
    assert phase1.power is not None
    assert phase1.power < -1000
    assert reading.neutral_current is not None
    assert reading.neutral_current > 0
    # The decoder saw what the simulator measured at that instant.
    sample = simulator.sample(NOON)
    assert reading.power == pytest.approx(sample.power, abs=0.01)


async def test_falls_back_to_the_legacy_route_and_looks_again_after_a_change(
    simulator: SmartPiSimulator,
) -> None:
    simulator.firmware = "old"
    meter = client(simulator)
    try:
        first = await meter.read()
        assert meter.route == LEGACY
        simulator.requests = 0
        await meter.read()
        assert simulator.requests == 1  # the remembered route, straight away
        # A firmware update that drops the old routes: the client finds livedata.
        simulator.firmware = "current"
        await meter.read()
        assert meter.route == LEGACY  # current firmware kept /api/all/all/now
        simulator.firmware = "old"
        meter.route = LIVEDATA  # as if remembered from before a downgrade
        await meter.read()
        assert meter.route == LEGACY
    finally:
        await meter.close()
    assert len(first.phases) == 3


async def test_an_html_page_for_every_route_means_the_wrong_port() -> None:
    async def page(request: web.Request) -> web.Response:
        return web.Response(text="<!DOCTYPE html><html>GUI</html>", content_type="text/html")

    app = web.Application()
    app.router.add_get("/{tail:.*}", page)
    async with serve(app) as url:
        meter = SmartPiClient(url)
        try:
            with pytest.raises(MeterDataError) as caught:
                await meter.read()
        finally:
            await meter.close()
    assert GUI_PAGE in str(caught.value)
    assert "1080" in str(caught.value)
    assert meter.route is None


async def test_html_labelled_as_json_is_still_recognised() -> None:
    async def page(request: web.Request) -> web.Response:
        return web.Response(
            body=b"  <html><body>GUI</body></html>", content_type="application/json"
        )

    app = web.Application()
    app.router.add_get("/{tail:.*}", page)
    async with serve(app) as url:
        meter = SmartPiClient(url)
        try:
            with pytest.raises(MeterDataError, match="SmartPi web page"):
                await meter.read()
        finally:
            await meter.close()


async def test_no_api_routes_at_all_says_so() -> None:
    async with serve(web.Application()) as url:
        meter = SmartPiClient(url)
        try:
            with pytest.raises(MeterDataError, match="is this a SmartPi"):
                await meter.read()
        finally:
            await meter.close()


async def test_a_slow_server_times_out_within_the_bound(simulator: SmartPiSimulator) -> None:
    simulator.delay = 2.0
    meter = client(simulator, timeout=0.2, retries=1, backoff=0.05)
    started = time.monotonic()
    try:
        with pytest.raises(MeterUnreachable, match=r"no answer within 0\.2 s"):
            await meter.read()
    finally:
        await meter.close()
    assert time.monotonic() - started < 1.5
    assert simulator.requests == 2  # one attempt and one retry


async def test_server_errors_are_retried_with_backoff(simulator: SmartPiSimulator) -> None:
    simulator.fail_next = 2
    meter = client(simulator, retries=2, backoff=0.05)
    started = time.monotonic()
    try:
        reading = await meter.read()
    finally:
        await meter.close()
    assert simulator.requests == 3
    assert time.monotonic() - started >= 0.05 + 0.1  # backoff doubled between attempts
    assert len(reading.phases) == 3


async def test_persistent_server_errors_end_as_unreachable(simulator: SmartPiSimulator) -> None:
    simulator.fail_next = 10
    meter = client(simulator, retries=2, backoff=0.01)
    try:
        with pytest.raises(MeterUnreachable, match="HTTP 503"):
            await meter.read()
    finally:
        await meter.close()
    assert simulator.requests == 3


async def test_a_refusing_status_is_not_retried(simulator: SmartPiSimulator) -> None:
    simulator.fail_next = 5
    simulator.fail_status = 401
    meter = client(simulator, retries=3, backoff=0.01)
    try:
        with pytest.raises(MeterDataError, match="HTTP 401"):
            await meter.read()
    finally:
        await meter.close()
    assert simulator.requests == 1


async def test_a_closed_port_is_unreachable() -> None:
    meter = SmartPiClient(f"http://127.0.0.1:{free_port()}", retries=1, backoff=0.01)
    try:
        with pytest.raises(MeterUnreachable, match="cannot read"):
            await meter.read()
    finally:
        await meter.close()


async def test_inverted_phases_flip_power_and_power_factor() -> None:
    clock = ManualClock(NOON)
    sim = SmartPiSimulator(Household(seed=7), clock=clock, noise=False)
    url = await sim.start()
    async with aiohttp.ClientSession() as session:
        plain = SmartPiClient(url, session=session, clock=clock)
        flipped = SmartPiClient(url, session=session, clock=clock, invert=[1, 3])
        a = await plain.read()
        b = await flipped.read()
        await plain.close()
        await flipped.close()
        assert not session.closed  # a session passed in belongs to the caller
    await sim.stop()
    for number, sign in ((1, -1), (2, 1), (3, -1)):
        pa, pb = a.phase(number), b.phase(number)
        assert pa is not None
        assert pb is not None
        assert pb.power == pytest.approx(sign * (pa.power or 0))
        assert pb.power_factor == pytest.approx(sign * (pa.power_factor or 0))
        assert pb.current == pa.current
    assert b.power == pytest.approx(sum(p.power or 0 for p in b.phases))


async def test_the_simulator_serves_old_routes_and_livepower(
    simulator: SmartPiSimulator,
) -> None:
    assert simulator.url is not None
    async with aiohttp.ClientSession() as session:
        async with session.get(simulator.url + "/api/all/power/now") as response:
            body = await response.read()
        async with session.get(simulator.url + "/api/2/voltage/now") as response:
            voltage_body = await response.read()
        async with session.get(simulator.url + "/api/v1/smartpiac/livepower") as response:
            livepower = await response.json()
        async with session.get(simulator.url + "/no/such/page") as response:
            assert response.status == 200
            assert response.content_type == "text/html"
    reading = decode_smartpi(body, time=NOON)
    assert all(p.voltage is None and p.power is not None for p in reading.phases)
    assert reading.neutral_current is None  # phase 4 "power" is not a current
    only_two = decode_smartpi(voltage_body, time=NOON)
    assert [p.phase for p in only_two.phases] == [2]
    assert only_two.power is None
    assert livepower["power"] == pytest.approx(reading.power, abs=0.01)
    assert livepower["info"] == ""


# -- the decoder ---------------------------------------------------------------------------


def test_decodes_the_documented_body_by_type_not_position() -> None:
    reading = decode_smartpi(LIVEDATA_BODY, time=NOON, source="garage")
    assert reading.source == "garage"
    p1, p2, p3 = reading.phases
    assert (p1.voltage, p1.current, p1.power, p1.power_factor, p1.frequency) == (
        231.21,
        5.2341,
        -1180.53,
        -0.9812,
        50.012,
    )
    assert (p2.voltage, p2.current, p2.power, p2.power_factor) == (229.9, 1.9, 412.5, 0.93)
    assert p3.frequency is None  # the chip reads 0 when it does not measure frequency
    assert reading.neutral_current == 0.4512
    assert reading.power == pytest.approx(-1180.53 + 412.5 + 150.25)


def test_decodes_the_old_power_only_body() -> None:
    reading = decode_smartpi(OLD_POWER_BODY, time=NOON)
    assert [p.power for p in reading.phases] == [-908.6961, -640.85736, 1494.473]
    assert reading.power == pytest.approx(-908.6961 - 640.85736 + 1494.473)
    assert all(p.voltage is None and p.frequency is None for p in reading.phases)


def _mutate(path: list[Any], value: object) -> bytes:
    body = json.loads(LIVEDATA_BODY)
    target = body
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return json.dumps(body).encode()


@pytest.mark.parametrize(
    ("body", "where", "message"),
    [
        (b"", "body", "not JSON: Expecting value at line 1 column 1"),
        (b'{"datasets": [', "body", "not JSON"),
        (b"\xff\xfe{}", "body", "not JSON"),
        (b"[1, 2]", "body", "must be a JSON object"),
        (b'{"datasets": []}', "body.datasets", "non-empty list"),
        (b'{"datasets": [3]}', "body.datasets[0]", "must be an object"),
        (b'{"datasets": [{"phases": {}}]}', "body.datasets[0].phases", "must be a list"),
        (b'{"datasets": [{"phases": []}]}', "body.datasets[0].phases", "none of phases"),
        (
            _mutate(["datasets", 0, "phases", 1, "values", 1, "data"], "412.5"),
            "body.datasets[0].phases[1].values[1].data",
            "must be a number",
        ),
        (
            _mutate(["datasets", 0, "phases", 1, "values", 1, "data"], value=True),
            "body.datasets[0].phases[1].values[1].data",
            "must be a number",
        ),
        (
            _mutate(["datasets", 0, "phases", 0, "values", 2, "data"], 5e7),
            "body.datasets[0].phases[0].values[2].data",
            "outside",
        ),
        (
            _mutate(["datasets", 0, "phases", 2, "phase"], 1),
            "body.datasets[0].phases[2].phase",
            "appears twice",
        ),
        (
            _mutate(["datasets", 0, "phases", 2, "phase"], 5),
            "body.datasets[0].phases[2].phase",
            "must be 1, 2, 3 or 4",
        ),
        (
            _mutate(["datasets", 0, "phases", 0, "values", 0], {"type": "current"}),
            "body.datasets[0].phases[0].values[0].data",
            "is missing",
        ),
        (
            _mutate(["datasets", 0, "phases", 0, "values", 0], {"type": "power", "data": 1}),
            "body.datasets[0].phases[0].values[2].type",
            "appears twice",
        ),
        (
            _mutate(["datasets", 0, "phases", 1, "values", 1], {"type": "cosphi", "data": 1}),
            "body.datasets[0].phases[1].values[4].type",
            "appears twice",
        ),
        (
            _mutate(["datasets", 0, "phases", 1, "values", 1], {"type": "energy", "data": 1}),
            "body.datasets[0]",
            "phase 2 has no power value",
        ),
        (
            (
                b'{"datasets": [{"phases": [{"phase": 1, "values": [{"type": "power", '
                b'"data": NaN}]}]}]}'
            ),
            "body",
            "NaN is not a JSON number",
        ),
        (b"[" * 100_000 + b"]" * 100_000, "body", "nested too deeply"),
        (b" " * (1 << 20) + b"{}", "body", "larger than"),
    ],
)
def test_malformed_bodies_say_what_and_where(body: bytes, where: str, message: str) -> None:
    with pytest.raises(MeterDataError) as caught:
        decode_smartpi(body, time=NOON)
    assert caught.value.where == where
    assert message in caught.value.message


def test_a_power_factor_outside_minus_one_to_one_is_dropped() -> None:
    body = _mutate(["datasets", 0, "phases", 2, "values", 3, "data"], 7.5)
    reading = decode_smartpi(body, time=NOON)
    assert reading.phases[2].power_factor is None
    nearly = _mutate(["datasets", 0, "phases", 2, "values", 3, "data"], 1.0004)
    assert decode_smartpi(nearly, time=NOON).phases[2].power_factor == 1.0


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False)
    | st.sampled_from(["power", "voltage", "current", "cosphi", "frequency", "", "x"]),
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(
            st.sampled_from(["datasets", "phases", "phase", "values", "type", "data", "time"]),
            children,
            max_size=5,
        )
    ),
    max_leaves=30,
)


def _value_items() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {
            "type": st.sampled_from(["power", "voltage", "current", "cosphi", "frequency"])
            | JSON_VALUES,
            "data": st.floats(allow_nan=False) | st.integers() | JSON_VALUES,
        }
    )


SHAPED = st.fixed_dictionaries(
    {
        "datasets": st.lists(
            st.fixed_dictionaries(
                {
                    "phases": st.lists(
                        st.fixed_dictionaries(
                            {
                                "phase": st.integers(min_value=0, max_value=5) | JSON_VALUES,
                                "values": st.lists(_value_items(), max_size=6) | JSON_VALUES,
                            }
                        ),
                        max_size=5,
                    )
                }
            ),
            max_size=2,
        )
    }
)


def _check(body: bytes) -> None:
    try:
        reading = decode_smartpi(body, time=NOON)
    except MeterDataError as err:
        failure = err
    else:
        assert isinstance(reading, Reading)
        assert reading.phases
        if reading.power is not None:
            assert abs(reading.power) <= 3e6
        return
    assert failure.message
    assert failure.where is not None
    assert failure.where.startswith("body")


@given(st.binary(max_size=300))
def test_fuzz_any_bytes_give_a_reading_or_a_meter_error(body: bytes) -> None:
    _check(body)


@given(JSON_VALUES)
def test_fuzz_any_json_gives_a_reading_or_a_meter_error(value: Any) -> None:
    _check(json.dumps(value).encode())


@given(SHAPED)
def test_fuzz_nearly_right_bodies_give_a_reading_or_a_meter_error(value: Any) -> None:
    _check(json.dumps(value, allow_nan=True).encode())


def test_meter_errors_render_where_and_what() -> None:
    assert str(MeterError("no answer", "http://x")) == "http://x: no answer"
    assert str(MeterError("no answer")) == "no answer"
