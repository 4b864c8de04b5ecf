"""From the node to a Home Assistant state: how long until a pushed value shows.

    .venv/bin/python -m bench.ha_latency [--samples 50] [--block-interval 0.2]

Starts a real node process (``transactiva init`` + ``transactiva node`` in a
temporary folder, with the meter role reading a ``pushed`` source) and a Home
Assistant instance in this process (the test harness's, with a temporary
configuration folder), sets the integration up against the node, then
measures, per sample, the time from the request to the node until the Home
Assistant state changed (a state-change listener takes the time):

* ledger path: ``POST /api/v1/local/price_signal`` (no ``wait``) with a new
  import price for the current interval, until ``Import price`` shows it. This
  includes waiting for the next block (``--block-interval``);
* meter path: ``POST /api/v1/local/meter/readings`` with a new power (what Home
  Assistant's own sensors send), until the meter's ``Power`` shows it: the node's
  meter service accounts the reading (one SQLite transaction) and pushes it on
  the meter stream;
* round trip: a Home Assistant power sensor picked in the options changes; the
  integration sends it to the node as above and the meter's ``Power`` shows it.

The entry tells every reading (``meter_update_interval`` 0): the latency of the
path, not of the recorder-friendly default, which holds small changes back.

Prints the median, 95th percentile and maximum in milliseconds. The target is
a median under 500 ms for a reading at the meter.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp

import custom_components.transactiva  # noqa: F401 - before the harness mounts its own package
from ledger_core.node.home import Home

SENSOR = "sensor.bench_power"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _start_node(folder: Path, block_interval: float) -> tuple[subprocess.Popen[bytes], str, Home]:
    port = _free_port()
    run = [sys.executable, "-m", "ledger_core"]
    subprocess.run(  # noqa: S603 - this interpreter and fixed arguments
        [*run, "init", "--dir", str(folder), "--api-port", str(port)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    config = json.loads((folder / "config.json").read_text())
    config["block_interval"] = block_interval
    config["meter"] = {"source": {"type": "pushed"}}
    (folder / "config.json").write_text(json.dumps(config))
    with (folder / "node.log").open("wb") as log:
        process = subprocess.Popen(  # noqa: S603 - this interpreter and fixed arguments
            [*run, "node", "--dir", str(folder)], stdout=log, stderr=log
        )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            break
        time.sleep(0.05)
    return process, f"http://127.0.0.1:{port}", Home(folder)


async def _measure(
    hass: Any,  # noqa: ANN401 - HomeAssistant, imported with the harness
    entity_id: str,
    samples: int,
    send: Callable[[int], tuple[str, Awaitable[None]]],
) -> list[float]:
    """``send(n)`` gives the state sample ``n`` should produce and the request making it; the
    state is awaited from before the request (a fast push may change it before the answer)."""
    from homeassistant.helpers.event import async_track_state_change_event  # noqa: PLC0415

    wanted: dict[str, Any] = {"value": None, "future": None}

    def changed(event: Any) -> None:  # noqa: ANN401 - a state-change event
        new = event.data["new_state"]
        future = wanted["future"]
        if new is not None and new.state == wanted["value"] and future and not future.done():
            future.set_result(time.perf_counter())

    unsubscribe = async_track_state_change_event(hass, [entity_id], changed)
    times: list[float] = []
    try:
        for n in range(samples):
            wanted["future"] = asyncio.get_running_loop().create_future()
            wanted["value"], request = send(n)
            started = time.perf_counter()
            await request
            done = await asyncio.wait_for(wanted["future"], 30)
            times.append((done - started) * 1000)
    finally:
        unsubscribe()
    return times


def _row(name: str, times: list[float]) -> str:
    if not times:
        return f"{name:<44} {'no samples':>32}"
    ordered = sorted(times)
    p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
    return (
        f"{name:<44} {statistics.median(ordered):>10.1f} {p95:>10.1f} {ordered[-1]:>10.1f}"
        f"   (n={len(ordered)})"
    )


async def _run(samples: int, block_interval: float) -> None:
    from homeassistant import loader  # noqa: PLC0415
    from homeassistant.const import CONF_TOKEN, CONF_URL  # noqa: PLC0415
    from homeassistant.helpers import entity_registry as er  # noqa: PLC0415
    from homeassistant.setup import async_setup_component  # noqa: PLC0415
    from pytest_homeassistant_custom_component.common import (  # type: ignore[import-untyped]  # noqa: PLC0415
        MockConfigEntry,
        async_test_home_assistant,
    )

    with tempfile.TemporaryDirectory() as folder:
        process, url, home = _start_node(Path(folder) / "node", block_interval)
        participant = home.participant_key().address
        headers = {"Authorization": f"Bearer {home.token()}"}
        try:
            async with (
                async_test_home_assistant(config_dir=str(Path(folder) / "ha")) as hass,
                aiohttp.ClientSession(headers=headers) as session,
            ):
                hass.data.pop(loader.DATA_CUSTOM_COMPONENTS)
                # Home Assistant's HTTP client resolves .local names over mDNS.
                assert await async_setup_component(hass, "network", {})
                entry = MockConfigEntry(
                    domain="transactiva",
                    unique_id=participant,
                    data={CONF_URL: url, CONF_TOKEN: home.token()},
                    # Every reading a state (the default tells small changes every 10 s).
                    options={"power_sensor": SENSOR, "meter_update_interval": 0},
                )
                entry.add_to_hass(hass)
                assert await hass.config_entries.async_setup(entry.entry_id)
                await hass.async_block_till_done()
                registry = er.async_get(hass)
                price_id = registry.async_get_entity_id(
                    "sensor", "transactiva", f"{participant}_import_price"
                )
                assert price_id is not None
                start = int(time.time()) // 900 * 900

                async def post_price(n: int) -> None:
                    body = {
                        "interval_start": start,
                        "import_price": 20000 + n + 1,
                        "export_price": 0,
                        "network_fee": 0,
                    }
                    async with session.post(f"{url}/api/v1/local/price_signal", json=body) as r:
                        assert r.status == 202, await r.text()

                def price(n: int) -> tuple[str, Awaitable[None]]:
                    return f"{(20000 + n + 1) / 10000:.4f}", post_price(n)

                ledger = await _measure(hass, price_id, samples, price)

                power_id = registry.async_get_entity_id(
                    "sensor", "transactiva", f"{participant}_meter_power"
                )
                assert power_id is not None

                async def post_reading(n: int) -> None:
                    body = {"power": 1000.0 + n}
                    async with session.post(f"{url}/api/v1/local/meter/readings", json=body) as r:
                        assert r.status == 202, await r.text()

                def reading(n: int) -> tuple[str, Awaitable[None]]:
                    return str(1000.0 + n), post_reading(n)

                meter = await _measure(hass, power_id, samples, reading)

                async def change_sensor(n: int) -> None:
                    hass.states.async_set(SENSOR, str(2000 + n), {"unit_of_measurement": "W"})

                def sensor(n: int) -> tuple[str, Awaitable[None]]:
                    return str(2000.0 + n), change_sensor(n)

                loop = await _measure(hass, power_id, samples, sensor)
                await hass.config_entries.async_unload(entry.entry_id)
                await hass.async_stop(force=True)
        finally:
            process.terminate()
            process.wait(20)
    print(f"node to Home Assistant state, ms (block interval {block_interval} s)")
    print(f"{'path':<44} {'median':>10} {'p95':>10} {'max':>10}")
    print(_row("price signal -> Import price (ledger stream)", ledger))
    print(_row("meter reading -> Power (meter stream)", meter))
    print(_row("HA power sensor -> node meter -> Power", loop))


def main() -> None:
    """Run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=50)
    parser.add_argument("--block-interval", type=float, default=0.2)
    args = parser.parse_args()
    asyncio.run(_run(args.samples, args.block_interval))


if __name__ == "__main__":
    main()
