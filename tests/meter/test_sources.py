"""Meter sources: generic HTTP/JSON, pushed readings, MQTT against an amqtt broker, config."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
from aiohttp import web
from amqtt.broker import Broker
from hypothesis import given
from hypothesis import strategies as st

from ledger_core.meter.accounting import Accountant
from ledger_core.meter.household import Household
from ledger_core.meter.reading import MeterDataError, MeterUnreachable
from ledger_core.meter.simulator import SmartPiSimulator
from ledger_core.meter.smartpi import SmartPiClient
from ledger_core.meter.sources import (
    HttpJsonSource,
    JsonPaths,
    MeterConfigError,
    MqttSource,
    PushedSource,
    parse_mqtt_number,
    parse_path,
    source_from_config,
)
from ledger_core.meter.store import MeterStore
from tests.meter.helpers import NOON, ManualClock, free_port, serve

# -- generic HTTP/JSON --------------------------------------------------------------------


async def test_http_json_reads_the_simulators_livepower() -> None:
    clock = ManualClock(NOON)
    sim = SmartPiSimulator(Household(seed=2), clock=clock, noise=False)
    url = await sim.start()
    source = HttpJsonSource(url + "/api/v1/smartpiac/livepower", JsonPaths(), clock=clock)
    try:
        reading = await source.read()
    finally:
        await source.close()
        await sim.stop()
    assert reading.power == pytest.approx(sim.sample(NOON).power, abs=0.01)
    assert [p.phase for p in reading.phases] == [1]
    assert reading.time.timestamp() == NOON
    assert reading.source == "http"


@pytest.fixture
async def device() -> AsyncIterator[tuple[str, dict[str, Any]]]:
    """A JSON meter whose answer a test can change: (URL, answer)."""
    state: dict[str, Any] = {
        "status": 200,
        "body": {
            "emeter": {
                "phases": [{"p": "0.5", "v": 127.1}, {"p": -0.25, "v": 126}],
                "total_in": 12.5,
                "total_out": 3,
            }
        },
    }

    async def answer(request: web.Request) -> web.Response:
        return web.json_response(state["body"], status=state["status"])

    app = web.Application()
    app.router.add_get("/status", answer)
    async with serve(app) as url:
        yield url + "/status", state


PHASED = JsonPaths(
    power=None,
    phase_power=("emeter.phases[0].p", "emeter.phases[1].p"),
    phase_voltage=("emeter.phases[0].v", "emeter.phases[1].v"),
    import_total="emeter.total_in",
    export_total="emeter.total_out",
    power_scale=1000,
    energy_scale=1000,
)


async def test_http_json_paths_scales_and_text_numbers(
    device: tuple[str, dict[str, Any]],
) -> None:
    url, _ = device
    source = HttpJsonSource(url, PHASED, name="shelly", retries=0)
    try:
        reading = await source.read()
    finally:
        await source.close()
    assert [(p.phase, p.power, p.voltage) for p in reading.phases] == [
        (1, 500.0, 127.1),
        (2, -250.0, 126.0),
    ]
    assert reading.power == 250.0
    assert (reading.import_wh_total, reading.export_wh_total) == (12_500.0, 3_000.0)
    assert reading.source == "shelly"


async def test_http_json_errors_name_the_path(device: tuple[str, dict[str, Any]]) -> None:
    url, state = device
    source = HttpJsonSource(url, PHASED, retries=1, backoff=0.01)
    try:
        del state["body"]["emeter"]["phases"][1]
        with pytest.raises(MeterDataError) as caught:
            await source.read()
        assert caught.value.where == f"{url} emeter.phases[1]"
        state["body"]["emeter"]["phases"].append({"p": "lots", "v": 1})
        with pytest.raises(MeterDataError, match="'lots' is not a number"):
            await source.read()
        state["status"] = 500
        with pytest.raises(MeterUnreachable, match="HTTP 500"):
            await source.read()
        state["status"] = 403
        with pytest.raises(MeterDataError, match="HTTP 403"):
            await source.read()
    finally:
        await source.close()
    inverted = HttpJsonSource(url, JsonPaths(power="x", invert=True))
    state.update(status=200, body={"x": 20})
    try:
        assert (await inverted.read()).power == -20
    finally:
        await inverted.close()


def test_json_paths_are_checked_when_configured() -> None:
    assert parse_path("a.b[2].c") == ("a", "b", 2, "c")
    assert parse_path("[0][1]") == (0, 1)
    for bad in ("", "a..b", "a[x]", "a.", "a[1"):
        with pytest.raises(ValueError, match=r"cannot read|empty"):
            parse_path(bad)
    with pytest.raises(ValueError, match="give power"):
        JsonPaths(power=None)
    with pytest.raises(ValueError, match="as many phases"):
        JsonPaths(phase_power=("a", "b"), phase_voltage=("c",))
    with pytest.raises(ValueError, match="cannot read"):
        JsonPaths(voltage="a..b")


@given(st.text(max_size=30))
def test_fuzz_parse_path_gives_parts_or_value_error(text: str) -> None:
    try:
        parts = parse_path(text)
    except ValueError as err:
        assert "cannot read" in str(err) or "empty" in str(err)  # noqa: PT017
        return
    assert parts
    assert all(isinstance(p, int) or (p and "." not in p and "[" not in p) for p in parts)


@given(
    st.recursive(
        st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=8),
        lambda c: (
            st.lists(c, max_size=3)
            | st.dictionaries(
                st.sampled_from(["emeter", "phases", "p", "v", "total_in"]), c, max_size=3
            )
        ),
        max_leaves=15,
    )
)
def test_fuzz_http_json_decode_gives_a_reading_or_a_meter_error(document: Any) -> None:
    source = HttpJsonSource("http://127.0.0.1:9/status", PHASED)
    try:
        reading = source.decode(json.dumps(document).encode(), NOON)
    except MeterDataError as err:
        assert err.message  # noqa: PT017
        return
    assert reading.power is not None


# -- pushed ------------------------------------------------------------------------------------


async def test_pushed_readings_come_out_in_order_and_checked() -> None:
    clock = ManualClock(NOON)
    source = PushedSource(clock=clock, timeout=0.05, maxsize=3)
    first = source.push(power=500.0, voltage=127.0)
    assert first.time.timestamp() == NOON
    source.push(time=NOON + 10, import_kwh_total=1.25, export_kwh_total=0.5)
    with pytest.raises(MeterDataError) as caught:
        source.push(time=NOON + 10, power=1.0)
    assert (caught.value.where, caught.value.message) == (
        "time",
        "must be later than the previous reading's",
    )
    with pytest.raises(MeterDataError, match="in the future") as caught:
        source.push(time=NOON + 3600, power=1.0)
    with pytest.raises(MeterDataError, match="at least one of"):
        source.push(time=NOON + 20)
    with pytest.raises(MeterDataError, match="outside") as caught:
        source.push(time=NOON + 20, power=5e9)
    assert caught.value.where == "power"
    assert (await source.read()).power == 500.0
    second = await source.read()
    assert (second.import_wh_total, second.export_wh_total) == (1250.0, 500.0)
    assert second.power is None
    with pytest.raises(MeterUnreachable, match=r"nothing pushed for 0\.05 s"):
        await source.read()
    for i in range(5):  # more than the queue holds: the oldest go
        source.push(time=NOON + 30 + i, power=float(i))
    assert source.dropped == 2
    assert [(await source.read()).power for _ in range(3)] == [2.0, 3.0, 4.0]
    await source.close()


# -- MQTT ----------------------------------------------------------------------------------------


@pytest.fixture
async def broker() -> AsyncIterator[int]:
    port = free_port()
    server = Broker(
        {
            "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{port}"}},
            "plugins": {
                "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}
            },
        }
    )
    await server.start()
    try:
        yield port
    finally:
        await server.shutdown()


SAMPLE = {
    "V1": 127.1,
    "V2": 126.9,
    "V3": 128.0,
    "I1": 8.0,
    "I2": 1.5,
    "I3": 0.5,
    "I4": 6.9,
    "F1": 60.01,
    "F2": 60.01,
    "F3": 60.0,
    "COS1": -0.99,
    "COS2": 0.95,
    "COS3": 0.9,
    "P1": -1000.25,
    "P2": 180.5,
    "P3": 60.0,
}


async def publish(port: int, base: str, values: dict[str, Any]) -> None:
    """Publish as the SmartPi does (six decimals); QoS 1 so that nothing is in flight at exit."""
    async with aiomqtt.Client("127.0.0.1", port) as client:
        for name, value in values.items():
            payload = value if isinstance(value, bytes) else f"{value:.6f}".encode()
            await client.publish(f"{base}/{name}", payload, qos=1)


async def test_mqtt_readings_from_smartpi_topics(broker: int, tmp_path: Path) -> None:
    clock = ManualClock(NOON)
    source = MqttSource("127.0.0.1", broker, timeout=5, clock=clock, invert=[3])
    source.start()
    try:
        await asyncio.wait_for(source.connected.wait(), 5)
        # The minute's counters, then a sample: they ride on the reading that sample completes.
        await publish(broker, "", {"EcTot": 1000.0, "EpTot": 250.0, **SAMPLE})
        reading = await source.read()
        p1, _, p3 = reading.phases
        assert (p1.voltage, p1.current, p1.power, p1.power_factor, p1.frequency) == (
            127.1,
            8.0,
            -1000.25,
            -0.99,
            60.01,
        )
        assert (p3.power, p3.power_factor) == (-60.0, -0.9)  # phase 3 inverted
        assert reading.power == pytest.approx(-1000.25 + 180.5 - 60.0)
        assert reading.neutral_current == 6.9
        assert (reading.import_wh_total, reading.export_wh_total) == (1000.0, 250.0)
        # A minute later: a new import counter; the export counter does not ride along again.
        clock.time += 60
        await publish(broker, "", {"EcTot": 1010.5, "P1": -990.0, "P2": 181.0, "P3": 61.0})
        second = await source.read()
        assert second.phases[0].power == -990.0
        assert second.phases[0].voltage == 127.1  # the latest seen
        assert (second.import_wh_total, second.export_wh_total) == (1010.5, None)
        # The counters drive the net import in the accounting.
        with contextlib.closing(MeterStore(tmp_path / "meter.db", "tv" + "ab" * 20, "c")) as store:
            accountant = Accountant(store)
            accountant.add(reading)
            accountant.add(second)
            assert accountant.counters["net"].import_mwh == 10_500
    finally:
        await source.close()


async def test_mqtt_base_topic_bad_payloads_and_silence(
    broker: int, caplog: pytest.LogCaptureFixture
) -> None:
    source = MqttSource("127.0.0.1", broker, base_topic="casa/smartpi", timeout=0.5)
    source.start()
    try:
        await asyncio.wait_for(source.connected.wait(), 5)
        await publish(broker, "", SAMPLE)  # the default base: not ours
        with caplog.at_level(logging.WARNING, logger="ledger_core.meter.sources"):
            await publish(broker, "casa/smartpi", {**SAMPLE, "P2": b"n/a"})
            with pytest.raises(MeterUnreachable, match=r"casa/smartpi/\+ for 0.5 s \(connected\)"):
                await source.read()
        assert "casa/smartpi/P2" in caplog.text
        assert "is not a number" in caplog.text
        await publish(broker, "casa/smartpi", {"P2": 10.0})
        assert (await source.read()).phases[1].power == 10.0
    finally:
        await source.close()


async def test_mqtt_without_a_broker_is_unreachable() -> None:
    source = MqttSource("127.0.0.1", free_port(), timeout=0.3, reconnect=0.05)
    try:
        with pytest.raises(MeterUnreachable, match="not connected"):
            await source.read()
    finally:
        await source.close()


@given(st.binary(max_size=80), st.sampled_from(sorted(["P1", "V2", "I4", "F3", "COS1", "EcTot"])))
def test_fuzz_mqtt_payloads_give_a_number_or_a_meter_error(payload: bytes, topic: str) -> None:
    try:
        value = parse_mqtt_number(topic, payload)
    except MeterDataError as err:
        assert err.where == topic  # noqa: PT017
        return
    assert math.isfinite(value)


# -- configuration ---------------------------------------------------------------------------------


def test_sources_from_config() -> None:
    smartpi = source_from_config(
        {"type": "smartpi", "url": "http://192.168.1.50:1080", "invert": [2], "name": "garage"}
    )
    assert isinstance(smartpi, SmartPiClient)
    assert (smartpi.base_url, smartpi.invert, smartpi.name) == (
        "http://192.168.1.50:1080",
        frozenset({2}),
        "garage",
    )
    http = source_from_config(
        {
            "type": "http_json",
            "url": "http://meter.local/status",
            "paths": {"power": "emeter.power", "phase_power": ["a", "b"], "power_scale": 1000},
            "headers": {"X-Key": "k"},
        }
    )
    assert isinstance(http, HttpJsonSource)
    assert http.paths.phase_power == ("a", "b")
    assert http.headers == {"X-Key": "k"}
    pushed = source_from_config({"type": "pushed", "timeout": 30})
    assert isinstance(pushed, PushedSource)
    assert pushed.timeout == 30
    mqtt = source_from_config({"type": "mqtt", "host": "broker", "base_topic": "sp/"})
    assert isinstance(mqtt, MqttSource)
    assert (mqtt.port, mqtt.topic_filter) == (1883, "sp/+")


@pytest.mark.parametrize(
    ("config", "field", "message"),
    [
        ([], "source", "must be an object"),
        ({"type": "modbus"}, "source.type", "must be one of"),
        ({"type": "smartpi"}, "source.url", "is missing"),
        ({"type": "smartpi", "url": 5}, "source.url", "must be str"),
        ({"type": "smartpi", "url": "ftp://x"}, "source", "starts with http"),
        ({"type": "smartpi", "url": "http://x", "invert": [4]}, "source.invert", "phases 1, 2"),
        ({"type": "smartpi", "url": "http://x", "retries": True}, "source.retries", "must be"),
        ({"type": "pushed", "url": "http://x"}, "source.url", "not a setting"),
        ({"type": "http_json", "url": "http://x"}, "source.paths", "is missing"),
        ({"type": "http_json", "url": "http://x", "paths": {"p": "a"}}, "source.paths.p", "not"),
        ({"type": "http_json", "url": "http://x", "paths": {"power": "a.."}}, "source.paths", ""),
        ({"type": "mqtt", "host": "b", "port": "1883"}, "source.port", "must be int"),
    ],
)
def test_config_errors_name_the_field(config: Any, field: str, message: str) -> None:
    with pytest.raises(MeterConfigError) as caught:
        source_from_config(config)
    assert caught.value.field == field
    assert message in caught.value.message


@given(
    st.dictionaries(
        st.sampled_from(["type", "url", "host", "port", "paths", "invert", "timeout", "x"]),
        st.none()
        | st.booleans()
        | st.integers()
        | st.floats()
        | st.sampled_from(["smartpi", "http_json", "pushed", "mqtt", "http://h", "a.b"])
        | st.lists(st.integers(0, 4), max_size=3)
        | st.dictionaries(st.sampled_from(["power", "voltage", "q"]), st.text(max_size=5)),
        max_size=6,
    )
)
def test_fuzz_config_gives_a_source_or_a_config_error(config: dict[str, Any]) -> None:
    try:
        source = source_from_config(config)
    except MeterConfigError as err:
        assert err.field.startswith("source")  # noqa: PT017
        return
    assert source.name
