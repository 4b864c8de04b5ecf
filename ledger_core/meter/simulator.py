"""A SmartPi 2.0 simulator: the device's HTTP API over a simulated Mexican household.

It answers the routes a SmartPi answers, with the same body shapes
(``docs/meters.md``):

- ``GET /api/v1/smartpiac/livedata`` (and ``/livedata/json``), ``GET
  /api/all/all/now`` (the legacy route current firmware kept),
  ``GET /api/v1/smartpiac/livepower``;
- the old firmware's ``GET /api/{phase}/{value}/now`` (``phase`` 1-4 or
  ``all``; ``value`` current, voltage, power, cosphi, frequency,
  energyconsumed, energyproduced, energybalanced or all);
- any other path: **200 with an HTML page**, like the real web server.

``firmware`` picks which of those exist: ``"current"`` (livedata, livepower,
``/api/all/all/now``), ``"old"`` (only ``/api/{phase}/{value}/now``) or
``"all"`` (both; the default).

Readings come from :class:`~ledger_core.meter.household.HouseholdModel` at the
injected clock's time, with measurement noise seeded by ``(seed, time)``, so
the same seed and the same clock give the same answers. Voltage is 127 V
phase-to-neutral with a daily swing, an evening sag and a rise on a phase
that exports; frequency is 60 Hz.

Control API (JSON) for demos and tests:

- ``GET /sim/state``: time, service, PV, load and net power, appliances;
- ``GET /sim/appliances``; ``POST /sim/appliances/{name}`` with ``{"on": true}``
  (the washer then runs one full cycle), ``{"on": false}`` or ``{"mode":
  "auto"}`` (back to its schedule);
- ``POST /sim/service`` with ``{"connected": false}`` (a service cut: voltage,
  current and power 0) or ``true``.

Run it alone with ``python -m ledger_core.meter.simulator --help``.
"""

from __future__ import annotations

import argparse
import asyncio
import cmath
import contextlib
import json
import math
import signal
import sys
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Final

import numpy as np
from aiohttp import web

from ledger_core.api.server import error
from ledger_core.clock import SYSTEM_CLOCK, AcceleratedClock, Clock, utc
from ledger_core.meter.household import (
    APPLIANCES,
    PHASE_OF,
    PUMP,
    STANDBY,
    WASHER,
    Household,
    HouseholdModel,
    PvSystem,
    phase_reactive,
    utc_offsets,
)

VALUE_TYPES: Final = (
    "current",
    "voltage",
    "power",
    "cosphi",
    "frequency",
    "energyconsumed",
    "energyproduced",
    "energybalanced",
)
UNITS: Final = {
    "current": "A",
    "voltage": "V",
    "power": "W",
    "cosphi": "",
    "frequency": "Hz",
    "energyconsumed": "Wh",
    "energyproduced": "Wh",
    "energybalanced": "Wh",
}
FIRMWARES: Final = ("all", "current", "old")
GUI_HTML: Final = (
    "<!DOCTYPE html>\n<html><head><title>SmartPi</title></head>"
    "<body><div id=app>SmartPi 2.0 (simulated)</div></body></html>\n"
)
MODES: Final = ("auto", "on", "off")
_SAMPLE_SECONDS: Final = 1.0  # the SmartPi's own sample period (energy values are per sample)


@dataclass(frozen=True, slots=True)
class PhaseSample:
    """One phase as the simulated SmartPi measures it."""

    voltage: float
    current: float
    power: float
    cosphi: float
    frequency: float


@dataclass(frozen=True, slots=True)
class Sample:
    """A simulated measurement at ``time`` (Unix seconds)."""

    time: float
    phases: tuple[PhaseSample, PhaseSample, PhaseSample]
    neutral_current: float
    pv_w: float
    load_w: float
    appliance_w: dict[str, float]
    connected: bool

    @property
    def power(self) -> float:
        return sum(p.power for p in self.phases)


class SmartPiSimulator:
    """A simulated SmartPi in a simulated home; serve it with :meth:`start`."""

    def __init__(
        self,
        household: Household | None = None,
        *,
        clock: Clock = SYSTEM_CLOCK,
        firmware: str = "all",
        noise: bool = True,
        serial: str = "10000000a1b2c3d4",
    ) -> None:
        if firmware not in FIRMWARES:
            raise ValueError(f"firmware is one of {', '.join(FIRMWARES)}")
        self.model = HouseholdModel(household)
        self.household = self.model.household
        self.clock = clock
        self.firmware = firmware
        self.noise = noise
        self.serial = serial
        self.connected = True
        self.modes: dict[str, str] = dict.fromkeys(APPLIANCES, "auto")
        self.wash_started: float | None = None
        # Test hooks: seconds to wait before each API answer; API answers to fail.
        self.delay = 0.0
        self.fail_next = 0
        self.fail_status = 503
        self.requests = 0
        self._pv_days: dict[int, np.ndarray[Any, np.dtype[np.float64]]] = {}
        self._runner: web.AppRunner | None = None
        self.url: str | None = None

    # -- the household now ----------------------------------------------------------

    def _pv_day(self, day_start: int) -> np.ndarray[Any, np.dtype[np.float64]]:
        table = self._pv_days.get(day_start)
        if table is None:
            grid = day_start + 60.0 * np.arange(24 * 60 + 2, dtype=np.float64)
            table = self.model.pv_power(grid)
            if len(self._pv_days) >= 3:
                self._pv_days.pop(next(iter(self._pv_days)))
            self._pv_days[day_start] = table
        return table

    def pv_power(self, t: float) -> float:
        """PV power (W) at ``t``, from a per-minute table of the day."""
        start = int(t // 86400 * 86400)
        table = self._pv_day(start)
        return float(np.interp(t, start + 60.0 * np.arange(len(table)), table))

    def appliance_power(self, name: str, t: float) -> float:
        """What an appliance draws at ``t`` given its mode."""
        mode = self.modes[name]
        if mode == "on" and name == WASHER:
            assert self.wash_started is not None
            elapsed = t - self.wash_started
            if elapsed < self.model.wash_seconds:
                return float(self.model.wash_cycle_power(np.array([elapsed]))[0])
            self.modes[name] = "auto"  # the cycle is over
            self.wash_started = None
            mode = "auto"
        if mode == "off":
            return 0.0
        if mode == "on" and name in (PUMP, STANDBY):
            return self.household.pump_watts if name == PUMP else self.household.standby_watts
        return float(self.model.appliance_power(name, np.array([t]))[0])

    def sample(self, t: float | None = None) -> Sample:
        """What the meter measures at ``t`` (the clock's now by default)."""
        t = self.clock.now() if t is None else t
        h = self.household
        appliances = {name: self.appliance_power(name, t) for name in APPLIANCES}
        if not self.connected:
            off = PhaseSample(0.0, 0.0, 0.0, 0.0, 0.0)
            idle = dict.fromkeys(APPLIANCES, 0.0)
            return Sample(t, (off, off, off), 0.0, 0.0, 0.0, idle, connected=False)
        base = float(self.model.base_power(np.array([t]))[0])
        pv = self.pv_power(t) if h.pv is not None else 0.0
        rng = np.random.default_rng((h.seed % 2**63, int(t * 1000) % 2**63))
        noise = rng.standard_normal(12) if self.noise else np.zeros(12)
        base *= 1 + 0.03 * noise[0]
        powers = self.model.phase_powers(
            np.array([pv]), np.array([base]), {k: np.array([v]) for k, v in appliances.items()}
        )[:, 0]
        reactive = phase_reactive(base, appliances, h.base_split)
        local_hour = (t + self._offset(t)) % 86400 / 3600
        swing = 0.012 * math.sin(2 * math.pi * (local_hour - 4) / 24)
        sag = 0.015 * math.exp(-(((local_hour - 20.5) / 1.5) ** 2))
        frequency = h.frequency + 0.01 * math.sin(2 * math.pi * t / 600) + 0.004 * noise[1]
        phases: list[PhaseSample] = []
        neutral = 0j
        for i in range(3):
            p = float(powers[i]) * (1 + 0.004 * noise[2 + i]) + 0.5 * noise[5 + i]
            q = float(reactive[i])
            export = max(0.0, -p)
            v = h.nominal_voltage * (1 + swing - sag) + 0.6 * export / 1000 + 0.25 * noise[8 + i]
            s = math.hypot(p, q)
            current = s / v
            cosphi = p / s if s > 0 else 1.0
            angle = -2 * math.pi * i / 3 - math.atan2(q, p)
            neutral += current * cmath.exp(1j * angle)
            phases.append(PhaseSample(v, current, p, cosphi, frequency + 0.001 * noise[11]))
        return Sample(
            t,
            (phases[0], phases[1], phases[2]),
            abs(neutral),
            pv,
            base + sum(appliances.values()),
            appliances,
            connected=True,
        )

    def _offset(self, t: float) -> float:
        return float(utc_offsets(self.model.zone, np.array([t]))[0])

    # -- control ------------------------------------------------------------------------

    def find_appliance(self, name: str) -> str:
        """The appliance called ``name`` (case-insensitive), or KeyError."""
        for known in APPLIANCES:
            if known.casefold() == name.casefold():
                return known
        raise KeyError(name)

    def switch(self, name: str, mode: str, t: float | None = None) -> None:
        """Set an appliance's mode: ``auto`` (its schedule), ``on`` or ``off``."""
        name = self.find_appliance(name)
        if mode not in MODES:
            raise ValueError(f"mode is one of {', '.join(MODES)}")
        self.modes[name] = mode
        if name == WASHER:
            self.wash_started = (self.clock.now() if t is None else t) if mode == "on" else None

    def appliance_states(self, t: float | None = None) -> list[dict[str, Any]]:
        """Each appliance's mode, whether it draws power now, and how much."""
        t = self.clock.now() if t is None else t
        states = []
        for name in APPLIANCES:
            power = self.appliance_power(name, t) if self.connected else 0.0
            state: dict[str, Any] = {
                "name": name,
                "mode": self.modes[name],
                "running": power > 0,
                "power": round(power, 1),
                "phase": PHASE_OF[name],
            }
            if name == WASHER and self.wash_started is not None:
                state["cycle_remaining"] = round(
                    max(0.0, self.wash_started + self.model.wash_seconds - t), 1
                )
            states.append(state)
        return states

    # -- bodies -------------------------------------------------------------------------

    def _local_time(self, t: float) -> str:
        moment = datetime.fromtimestamp(t, tz=self.model.tz)
        return moment.strftime("%Y-%m-%d %H:%M:%S")

    def body(self, sample: Sample, phase: str = "all", value: str = "all") -> dict[str, Any]:
        """The SmartPi JSON body for ``/api/{phase}/{value}/now`` (``all``/``all``: livedata)."""
        stamp = self._local_time(sample.time)
        phases: list[dict[str, Any]] = []
        wanted = [value] if value != "all" else list(VALUE_TYPES)
        numbers = [1, 2, 3, 4] if phase == "all" else [int(phase)]
        for number in numbers:
            # Phase 4 is the neutral: its current only, unless one value is asked for.
            kinds = (["current"] if value == "all" else [value]) if number == 4 else wanted
            values = []
            for kind in kinds:
                data = (
                    self._neutral_value(sample, kind)
                    if number == 4
                    else self._value(sample.phases[number - 1], kind)
                )
                values.append(
                    {"type": kind, "unity": UNITS[kind], "info": "", "data": _float32(data)}
                )
            phases.append({"phase": number, "name": f"phase {number}", "values": values})
        site = self.household.site
        return {
            "serial": self.serial,
            "name": f"SmartPi {self.serial}",
            "lat": site.latitude,
            "lng": site.longitude,
            "time": stamp,
            "softwareversion": "",
            "ipaddress": "127.0.0.1",
            "datasets": [{"time": stamp, "phases": phases}],
        }

    @staticmethod
    def _neutral_value(sample: Sample, kind: str) -> float:
        # Phase 4 is the neutral: only a current; old firmware answered 0 for the rest.
        return sample.neutral_current if kind == "current" else 0.0

    @staticmethod
    def _value(phase: PhaseSample, kind: str) -> float:
        hours = _SAMPLE_SECONDS / 3600
        return {
            "current": phase.current,
            "voltage": phase.voltage,
            "power": phase.power,
            "cosphi": phase.cosphi,
            "frequency": phase.frequency,
            "energyconsumed": max(0.0, phase.power) * hours,
            "energyproduced": max(0.0, -phase.power) * hours,
            "energybalanced": phase.power * hours,
        }[kind]

    # -- HTTP -----------------------------------------------------------------------------

    async def _api_gate(self) -> web.Response | None:
        self.requests += 1
        if self.delay > 0:
            await asyncio.sleep(self.delay)
        if self.fail_next > 0:
            self.fail_next -= 1
            return web.Response(status=self.fail_status, text="simulated failure")
        return None

    async def _livedata(self, request: web.Request) -> web.StreamResponse:
        if self.firmware == "old" or request.match_info.get("format", "json") != "json":
            return await self._gui(request)
        return await self._json(self.body(self.sample()))

    async def _legacy(self, request: web.Request) -> web.StreamResponse:
        phase = request.match_info["phase"]
        value = request.match_info["value"]
        known = phase in ("all", "1", "2", "3", "4") and value in (*VALUE_TYPES, "all")
        current_ok = phase == "all" and value == "all"
        if not known or (self.firmware == "current" and not current_ok):
            return await self._gui(request)
        return await self._json(self.body(self.sample(), phase, value))

    async def _livepower(self, request: web.Request) -> web.StreamResponse:
        if self.firmware == "old":
            return await self._gui(request)
        sample = self.sample()
        return await self._json(
            {"time": utc(sample.time).isoformat(), "info": "", "power": _float32(sample.power)}
        )

    async def _json(self, body: dict[str, Any]) -> web.Response:
        failed = await self._api_gate()
        return web.json_response(body) if failed is None else failed

    async def _gui(self, request: web.Request) -> web.Response:
        failed = await self._api_gate()
        return web.Response(text=GUI_HTML, content_type="text/html") if failed is None else failed

    async def _state(self, request: web.Request) -> web.Response:
        sample = self.sample()
        return web.json_response(
            {
                "time": utc(sample.time).isoformat(),
                "service": "connected" if self.connected else "cut",
                "pv_w": round(sample.pv_w, 1),
                "load_w": round(sample.load_w, 1),
                "net_w": round(sample.power, 1),
                "appliances": self.appliance_states(sample.time),
            }
        )

    async def _appliances(self, request: web.Request) -> web.Response:
        return web.json_response({"appliances": self.appliance_states()})

    async def _set_appliance(self, request: web.Request) -> web.Response:
        try:
            name = self.find_appliance(request.match_info["name"])
        except KeyError:
            return error(404, "not_found", "appliances: " + ", ".join(APPLIANCES), "name")
        body = await _json_object(request)
        if isinstance(body, web.Response):
            return body
        if "on" in body:
            if not isinstance(body["on"], bool):
                return error(400, "malformed", "must be true or false", "on")
            mode = "on" if body["on"] else "off"
        elif body.get("mode") in MODES:
            mode = str(body["mode"])
        else:
            return error(400, "malformed", 'send {"on": true|false} or {"mode": "auto"}', "on")
        self.switch(name, mode)
        state = next(s for s in self.appliance_states() if s["name"] == name)
        return web.json_response(state)

    async def _set_service(self, request: web.Request) -> web.Response:
        body = await _json_object(request)
        if isinstance(body, web.Response):
            return body
        if not isinstance(body.get("connected"), bool):
            return error(400, "malformed", "must be true or false", "connected")
        self.connected = bool(body["connected"])
        return web.json_response({"service": "connected" if self.connected else "cut"})

    def app(self) -> web.Application:
        """The aiohttp application: SmartPi routes, control routes, HTML elsewhere."""
        app = web.Application()
        app.add_routes(
            [
                web.get("/api/v1/smartpiac/livedata", self._livedata),
                web.get("/api/v1/smartpiac/livedata/{format}", self._livedata),
                web.get("/api/v1/smartpiac/livepower", self._livepower),
                web.get("/api/{phase}/{value}/now", self._legacy),
                web.get("/sim/state", self._state),
                web.get("/sim/appliances", self._appliances),
                web.post("/sim/appliances/{name}", self._set_appliance),
                web.post("/sim/service", self._set_service),
                web.get("/{tail:.*}", self._gui),
            ]
        )
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on ``host:port`` (0: any free port); the base URL."""
        # A stopping simulator does not wait for slow answers (tests make some very slow).
        self._runner = web.AppRunner(self.app(), access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        bound = self._runner.addresses[0]
        self.url = f"http://{host}:{bound[1]}"
        return self.url

    async def stop(self) -> None:
        """Stop serving."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


async def _json_object(request: web.Request) -> dict[str, Any] | web.Response:
    raw = await request.content.read(4097)
    if len(raw) > 4096:
        return error(413, "too_large", "a control request is at most 4096 bytes", "body")
    try:
        body = json.loads(raw)
    except ValueError:
        return error(400, "malformed", "the body is not JSON", "body")
    if not isinstance(body, dict):
        return error(400, "malformed", "the body is a JSON object", "body")
    return body


def _float32(value: float) -> float:
    """The value a Go float32 prints as (the SmartPi's ``data`` is a float32)."""
    return float(str(np.float32(value))) if math.isfinite(value) else 0.0


# -- command line ------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m ledger_core.meter.simulator",
        description="Serve a simulated SmartPi 2.0 in a Mexican household with PV.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=1080)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--speed", type=float, default=1.0, help="simulated seconds per second")
    parser.add_argument(
        "--start", help="simulated start, ISO 8601 with offset (default: now)", default=None
    )
    parser.add_argument("--origin", type=float, default=None, help="real Unix time of --start")
    parser.add_argument("--annual-kwh", type=float, default=2500.0)
    parser.add_argument("--pv-kwp", type=float, default=3.0, help="0: no PV")
    parser.add_argument("--cloudiness", type=float, default=1.0)
    parser.add_argument("--washes-per-week", type=float, default=3.0)
    parser.add_argument("--firmware", choices=FIRMWARES, default="all")
    return parser.parse_args(argv)


def build(args: argparse.Namespace) -> SmartPiSimulator:
    """A simulator from command-line arguments."""
    if args.start is None:
        start = SYSTEM_CLOCK.now()
    else:
        moment = datetime.fromisoformat(args.start)
        if moment.tzinfo is None:
            raise SystemExit("--start needs a UTC offset, e.g. 2026-03-10T06:00:00-06:00")
        start = moment.timestamp()
    clock: Clock = (
        SYSTEM_CLOCK
        if args.speed == 1 and args.start is None
        else AcceleratedClock(start, args.speed, args.origin)
    )
    household = Household(
        seed=args.seed,
        annual_kwh=args.annual_kwh,
        pv=replace(PvSystem(), kwp=args.pv_kwp) if args.pv_kwp > 0 else None,
        cloudiness=args.cloudiness,
        washes_per_week=args.washes_per_week,
    )
    return SmartPiSimulator(household, clock=clock, firmware=args.firmware)


def main(argv: list[str] | None = None) -> int:
    """Serve until SIGINT or SIGTERM."""
    args = parse_args(argv)
    simulator = build(args)

    async def serve() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        url = await simulator.start(args.host, args.port)
        sys.stdout.write(f"SmartPi simulator on {url}\n")
        sys.stdout.flush()
        try:
            await stop.wait()
        finally:
            with contextlib.suppress(Exception):
                await simulator.stop()

    asyncio.run(serve())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
