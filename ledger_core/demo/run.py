"""``transactiva demo``: a neighbourhood market running for a day on this machine.

What starts, all on 127.0.0.1:

- the concentrator: a ``transactiva node`` process (the validator and the
  ISO/supplier/DSO operator) whose clock runs ``--speed`` times faster than real
  time, so a day of 96 intervals passes in under two minutes at the default 900x;
- one simulated SmartPi per home (an HTTP server with the SmartPi's API and a
  household behind it: PV from pvlib at Morelia, a standard load profile, a
  washing machine, a fridge, a water pump);
- per home, the meter service (reads its SmartPi over HTTP, integrates energy,
  signs 15-minute interval reports with the meter key -- commitments to the
  readings, docs/privacy.md -- gets them committed and shares the readings with
  the concentrator) and the home agent (follows the chain, evaluates the home's
  contracts at every event and at each interval its meter closes, switches the
  simulated appliances, places the orders the contracts ask for);
- the concentrator's service: day-ahead prices from an example time-of-use
  tariff, a demand-response event at the evening peak, and the readings in its
  private store, from which it settles the trades of each interval and bills
  each home's day.

Every home joins by invitation, through the same code paths as ``transactiva
operator invite``, ``transactiva join`` and a joining home's node (the
concentrator listens for peers on loopback), and signs the paper's example
contract (with a valid date); homes without panels also sign a contract that buys
from neighbours when the tariff is at least the day's lowest daytime price at which
a neighbour's energy can compete -- so that they trade on a winter Sunday (base
price all day) as on a summer weekday; on a day when no such price exists while the
sun shines, the demo runs the next day that has one and says so. The live view
prints one line per interval; once the last interval's trades are settled and each
home's days are billed (a day is billed an hour after it ends), the end shows the
settlement summary (each home's deposits apart from what the market paid or cost
it), and ``--json`` prints a machine-readable one.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_DOWN, Decimal
from importlib import resources
from pathlib import Path
from typing import Any, Final, TextIO

from ledger_core.agent.execution import ActionRecord, ContractExecutor
from ledger_core.agent.home_agent import HomeAgent, NodeSigner, Signer, follow_events
from ledger_core.client import ApiError, NodeClient
from ledger_core.clock import AcceleratedClock
from ledger_core.concentrator.dr import DrError, DrSignal
from ledger_core.concentrator.ledger import HttpLedger
from ledger_core.concentrator.metering import MeterData
from ledger_core.concentrator.prices import IntervalPrice, PriceSchedule
from ledger_core.concentrator.readings import ReadingStore
from ledger_core.concentrator.service import Concentrator
from ledger_core.concentrator.tariff import Tariff, load_tariff
from ledger_core.demo.chain import (
    DemoError,
    Household,
    Neighbourhood,
    NodeProcess,
    buyer_contract,
    free_port,
    local_midnight,
    paper_contract,
    port_range,
)
from ledger_core.demo.view import DemoLedger, header, summary_json, write_summary
from ledger_core.membership.joining import JoinError
from ledger_core.meter import household as hh
from ledger_core.meter.outbox import http_chain_nonce, http_submitter
from ledger_core.meter.service import MeterConfig, MeterService
from ledger_core.meter.simulator import SmartPiSimulator
from ledger_core.meter.smartpi import SmartPiClient
from ledger_core.node.home import Config, init_home
from ledger_core.roles import feed_reports, local_sharer
from ledger_core.types.crypto import SigningKey
from ledger_core.types.genesis import Params

UTC_OFFSET_MINUTES: Final = -360  # Mexico's central zone
INTERVAL: Final = 900
SETUP_SECONDS: Final = 4.0  # real seconds set aside for setting up, plus some per home
SECONDS_PER_HOME: Final = 2.5  # joining by invitation (two P2P exchanges), deposit, contracts
DAYTIME: Final = (9, 17)  # local hours whose lowest import price the buyers' contracts use
SAMPLE_SECONDS: Final = 60.0  # simulated seconds between meter readings
SHOW_AFTER: Final = 300  # simulated seconds after an interval ends before its line prints
SETTLE_MARGIN: Final = 2 * INTERVAL  # clock seconds after a settlement is due, at most
DEPOSIT: Final = 50_000  # centavos per home
DR_START_HOUR: Final = 16  # the washing machine runs then (intermediate price)
DR_MINUTES: Final = 60


@dataclass(frozen=True, slots=True)
class DemoOptions:
    """The demo's command-line flags."""

    homes: int = 6
    intervals: int = 96
    speed: float = 900.0
    seed: int = 7
    json: bool = False
    ui: bool = True
    day: date | None = None
    start_hour: int = 0
    keep: Path | None = None


@dataclass
class Home:
    """A running home: its simulator, meter service and agent."""

    household: Household
    simulator: SmartPiSimulator
    meter: MeterService
    agent: HomeAgent
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)


EXAMPLE_TARIFF: Final = "example-residential-tou.toml"
PRICE_UNIT: Final = Decimal(10_000)  # 10^-4 MXN/kWh in one MXN/kWh
CENT: Final = Decimal("0.01")


def _tariff_path() -> Path:
    """The example time-of-use tariff the package ships (the same as docs/tariffs')."""
    return Path(str(resources.files("ledger_core.concentrator") / EXAMPLE_TARIFF))


async def _actuate(simulator: SmartPiSimulator, client: Any, action: ActionRecord) -> str:  # noqa: ANN401
    """Switch a simulated appliance over the simulator's control API."""
    assert simulator.url is not None
    assert action.device is not None
    mode = {"turn_on": {"on": True}, "turn_off": {"on": False}, "restore": {"mode": "auto"}}
    body = mode.get(str(action.kind))
    if body is None:
        return "skipped"
    async with client.post(f"{simulator.url}/sim/appliances/{action.device}", json=body) as answer:
        if answer.status == 404:
            return "unmapped"
        return "ok" if answer.status == 200 else "failed"


class Demo:
    """One run of the demo."""

    def __init__(self, options: DemoOptions, out: TextIO) -> None:
        self.options = options
        self.out = out
        self.tariff = load_tariff(_tariff_path())
        asked = options.day or (datetime.now().astimezone() + timedelta(hours=0)).date()
        today, self.day_note = trading_day(self.tariff, asked)
        self.day = today
        self.prices = (Decimal(0), Decimal(0))  # what the buyers' contracts use, once set up
        self.day_start = (
            local_midnight(
                datetime(today.year, today.month, today.day),  # noqa: DTZ001 - a local date
                UTC_OFFSET_MINUTES,
            )
            + options.start_hour * 3600
        )
        self.origin = time.time() + 2.0
        # The clock runs while the homes enrol: give the setup a lead of simulated
        # time (whole intervals) long enough for it at this speed.
        lead = options.speed * (SETUP_SECONDS + SECONDS_PER_HOME * options.homes)
        self.lead = int(-(-lead // INTERVAL) * INTERVAL)
        self.clock = AcceleratedClock(self.day_start - self.lead, options.speed, self.origin)
        self.homes: list[Home] = []
        self._running: list[Home] = []  # started and not stopped yet
        self.names: dict[str, str] = {}
        self.ledger = DemoLedger(self.names, UTC_OFFSET_MINUTES)
        self.stop = asyncio.Event()  # the demo's end: the event follower stops
        self.homes_stop = asyncio.Event()  # the last interval: the homes stop
        self.workdir = Path()
        self.params = Params()

    def say(self, text: str) -> None:
        """A line for people (not with --json or --no-ui)."""
        if self.options.ui and not self.options.json:
            self.out.write(text + "\n")
            self.out.flush()

    async def run(self, workdir: Path) -> dict[str, Any]:
        """Set up, run the day, settle; the JSON summary."""
        opts = self.options
        self.workdir = workdir
        token_home = workdir / "concentrator"
        config = Config(
            api_host="127.0.0.1",
            api_port=free_port(),
            # Homes join over P2P, as they would: the concentrator listens on loopback.
            p2p_host="127.0.0.1",
            p2p_port=free_port(),
            block_interval=0.05,
            empty_block_every=0.25 * opts.speed,
            clock_epoch=self.origin,
            clock_start=self.day_start - self.lead,
            clock_speed=opts.speed,
        )
        home = init_home(token_home, "transactiva-demo", self.day_start - 2 * 86400, config)
        self.params = home.genesis().params
        SigningKey.generate().save(home.path / config.node_key_file)
        url = f"http://127.0.0.1:{config.api_port}"
        self.say(f"Concentrator node: {url}/api/v1 (token in {home.token_file})")
        node = await NodeProcess.start(token_home, url, home.token())
        try:
            return await self._run_with_node(node, home.participant_key())
        finally:
            node.stop()

    async def _run_with_node(self, node: NodeProcess, operator_key: SigningKey) -> dict[str, Any]:
        import aiohttp  # noqa: PLC0415 - only the demo needs a long-lived session here

        client = NodeClient(node.url, node.token)
        status = await client.status()
        chain_id = str(status["chain_id"])
        area = Neighbourhood(client, NodeSigner(client), chain_id)
        self.names[operator_key.address] = "operator"
        follower = asyncio.create_task(follow_events(client, 0, self.stop, self._on_event))
        # The concentrator's private store of the meters' readings (never on the chain).
        readings = ReadingStore(self.workdir / "concentrator-readings.db", chain_id)
        meter_data = MeterData(
            readings, HttpLedger(client), chain_id, self.params, clock=self.clock.now
        )
        tariff = self.tariff
        concentrator = Concentrator(
            tariff,
            HttpLedger(client),
            self.clock,
            dr_id_prefix="demo",
            meter_data=meter_data,
        )
        if self.day_note:
            self.say(self.day_note)
        self.prices = self._buyers_prices(tariff)
        try:
            async with aiohttp.ClientSession() as session, concentrator:
                try:
                    await self._homes(area, client, chain_id, session, concentrator)
                finally:  # also when Ctrl-C cancels the day: every home's clients are closed
                    self.homes_stop.set()
                    self.stop.set()
                    await self._stop_homes()
        finally:
            readings.close()
        await follower
        return await self._summary(client, operator_key.address)

    async def _homes(
        self,
        area: Neighbourhood,
        client: NodeClient,
        chain_id: str,
        session: Any,  # noqa: ANN401 - aiohttp.ClientSession
        concentrator: Concentrator,
    ) -> None:
        """Let the homes join (in parallel), run the day, and wait for its settlement."""
        opts = self.options
        valid_from = _local(self.day_start - 86400)
        valid_to = _local(self.day_start + 3 * 86400)
        at_least, at_most = self.prices
        households = [
            Household(
                index=i,
                name=f"casa{i + 1}",
                participant=SigningKey.generate(),
                meter=SigningKey.generate(),
                pv_kwp=(3.0 + (i % 3)) if i % 2 == 0 else 0.0,
                deposit=DEPOSIT,
            )
            for i in range(opts.homes)
        ]

        async def sign_up(household: Household) -> None:
            """Join by invitation, pay in, sign the contracts."""
            self.names[household.address] = household.name
            self.names[household.meter.address] = household.name
            await area.enrol(household)
            await area.contract(
                household,
                paper_contract(f"prueba {household.name}", valid_from, valid_to),
            )
            if household.pv_kwp == 0:
                await area.contract(
                    household,
                    buyer_contract(
                        f"compra {household.name}", valid_from, valid_to, at_least, at_most
                    ),
                )

        await asyncio.gather(*(sign_up(household) for household in households))
        for household in households:
            home = await self._start_home(household, client, chain_id, session, concentrator)
            self.homes.append(home)
            self._running.append(home)
        if self.clock.now() > self.day_start:
            self.say("(setting up took longer than planned: the first lines come late)")
        self.say(
            f"{opts.homes} homes joined by invitation, with their contracts; running "
            f"{opts.intervals} intervals at {opts.speed:g}x\n"
        )
        await self._day(concentrator)
        # The meters stop with the last interval: the days billed are the days shown.
        self.homes_stop.set()
        for running in self.homes:
            await running.meter.outbox.flush()
            await running.meter.outbox.flush_shares()
        await self._stop_homes()
        await self._settled()

    async def _stop_homes(self) -> None:
        """Stop every home's meter, agent and simulator (bounded; a second call does nothing)."""
        homes, self._running = self._running, []
        for running in homes:
            await running.meter.stop()
            if running.tasks:
                await asyncio.wait(running.tasks, timeout=10)
            for task in running.tasks:
                task.cancel()
            await asyncio.gather(*running.tasks, return_exceptions=True)
            await running.simulator.stop()

    def _buyers_prices(self, tariff: Tariff) -> tuple[Decimal, Decimal]:
        """What homes without panels buy at: when the price is at least the day's lowest
        daytime import price at which a neighbour's energy can compete, paying at most
        0.15 MXN/kWh more. Said to the user."""
        day = self.day
        tradeable = _tradeable_prices(tariff, day)
        if not tradeable:  # no day of the week lets neighbours trade with this tariff
            at_least, at_most = Decimal(2), Decimal("2.2")
            self.say(
                f"Prices on {day:%A %Y-%m-%d}: no neighbour can beat the supplier while the sun "
                f"shines; homes without panels bid when the price is at least {at_least} "
                f"MXN/kWh, paying at most {at_most}, and no trade may clear"
            )
            return at_least, at_most
        lowest = min(p.prices.import_price for p in tradeable)
        at_least = (Decimal(lowest) / PRICE_UNIT).quantize(CENT, ROUND_DOWN)
        at_most = at_least + Decimal("0.15")
        self.say(
            f"Prices on {day:%A %Y-%m-%d} ({tariff.season_of(day).name}); homes without panels "
            f"buy from neighbours when the price is at least {at_least} MXN/kWh, paying at "
            f"most {at_most}"
        )
        return at_least, at_most

    async def _start_home(
        self,
        household: Household,
        client: NodeClient,
        chain_id: str,
        session: Any,  # noqa: ANN401
        concentrator: Concentrator,
    ) -> Home:
        simulator = SmartPiSimulator(
            hh.Household(
                seed=self.options.seed * 101 + household.index,
                pv=hh.PvSystem(kwp=household.pv_kwp) if household.pv_kwp else None,
                annual_kwh=2200.0 + 400.0 * (household.index % 4),
            ),
            clock=self.clock,
            serial=f"10000000demo{household.index:04d}",
        )
        await simulator.start()
        assert simulator.url is not None
        workdir = self.workdir / household.name
        workdir.mkdir(parents=True, exist_ok=True)
        meter = MeterService(
            SmartPiClient(simulator.url, clock=self.clock),
            workdir / "meter.db",
            household.meter,
            chain_id,
            http_submitter(session, client.base_url, client.token),
            config=MeterConfig(
                sample_period=SAMPLE_SECONDS,
                max_gap=4 * SAMPLE_SECONDS,
                report_delay=120.0,
                submit_backoff=30.0,
                submit_backoff_max=300.0,
                confirm_after=60.0,
            ),
            clock=self.clock,
            chain_nonce=http_chain_nonce(
                session, client.base_url, client.token, household.meter.address
            ),
            # The readings go to the concentrator (here, in this process), not on the chain.
            share=None
            if concentrator.meter_data is None
            else local_sharer(concentrator.meter_data),
        )
        executor = ContractExecutor(household.address, household.meter.address)
        for contract_id in household.contracts:
            executor.track(contract_id, await client.get(f"/contracts/{contract_id}"))

        async def actuator(action: ActionRecord) -> str:
            return await _actuate(simulator, session, action)

        agent = HomeAgent(
            client=client,
            signer=Signer(client, household.participant, chain_id),
            executor=executor,
            clock=self.clock.now,
            actuator=actuator,
            on_action=lambda action, result: self.ledger.on_action(
                household.name, action.to_event(), result
            ),
        )
        await meter.start()
        running = Home(household, simulator, meter, agent)
        running.tasks.append(asyncio.create_task(agent.run(self.homes_stop, tick_every=0.1)))
        running.tasks.append(asyncio.create_task(self._power(meter, agent)))
        running.tasks.append(asyncio.create_task(feed_reports(meter, agent, self.homes_stop)))
        return running

    async def _power(self, meter: MeterService, agent: HomeAgent) -> None:
        """Feed the meter's live power to the home's contracts."""
        queue = meter.subscribe()
        try:
            while not self.homes_stop.is_set():
                with contextlib.suppress(TimeoutError):
                    reading = await asyncio.wait_for(queue.get(), 0.5)
                    if reading.power is not None:
                        agent.power(reading.power)
        finally:
            meter.unsubscribe(queue)

    async def _on_event(self, seq: int, height: int, event: dict[str, Any]) -> None:
        self.ledger.on_event(height, event)

    async def _day(self, concentrator: Concentrator) -> None:
        """Run the intervals, printing each one's line once its reports are in."""
        opts = self.options
        self.say(header())
        end = self.day_start + opts.intervals * INTERVAL
        dr_start = self.day_start - opts.start_hour * 3600 + DR_START_HOUR * 3600
        if not self.day_start + 2 * INTERVAL <= dr_start <= end - 2 * INTERVAL:
            # The peak hour is outside a short run: hold the event in its middle.
            dr_start = self.day_start + (opts.intervals // 2) * INTERVAL
        dr_minutes = min(DR_MINUTES, (end - dr_start) // 60)
        dr_issued = dr_minutes <= 0
        shown = 0
        while shown < opts.intervals:
            now = self.clock.now()
            if not dr_issued and now >= min(dr_start - 3600, self.day_start):
                # On a slow machine the planned start may have passed: the next interval.
                soon = int(now) - int(now) % INTERVAL + INTERVAL
                start_at = max(dr_start, soon)
                minutes = min(dr_minutes, (end - start_at) // 60)
                if minutes > 0:
                    try:
                        await concentrator.dr.issue(DrSignal.simple(2), start_at, minutes * 60)
                    except DrError as err:  # the machine was too slow: the event's time is gone
                        self.say(f"(no demand-response event: {err.message})")
                dr_issued = True
            start = self.day_start + shown * INTERVAL
            if now >= start + INTERVAL + SHOW_AFTER:
                self.say(self.ledger.line(start))
                shown += 1
                continue
            await asyncio.sleep(0.05)

    async def _settled(self) -> None:
        """Wait until the trades of every interval are settled and every home's days are
        billed by the concentrator (from the readings it holds): a day is billed once it is
        over and the settlement delay more; bounded by the clock."""
        opts = self.options
        end = self.day_start + opts.intervals * INTERVAL
        day_of = self.params.day_of
        days = range(day_of(int(self.day_start)), day_of(int(end - 1)) + 1, 86400)
        delay = self.params.settlement_delay_seconds
        deadline = max(end + INTERVAL, days[-1] + 86400) + delay + SETTLE_MARGIN
        homes = {h.household.address for h in self.homes}
        if deadline - self.clock.now() > 2 * 3600:
            self.say(
                f"(waiting for the day's bills, due at {_local(deadline - SETTLE_MARGIN):%H:%M})"
            )

        def done() -> bool:
            traded = [s for s in range(self.day_start, end, INTERVAL) if self.ledger.row(s).trades]
            billed = {(who, day) for who, day in self.ledger.bills}
            return all(self.ledger.row(s).settled for s in traded) and all(
                (who, day) in billed for who in homes for day in days
            )

        while True:
            if done() or self.clock.now() >= deadline:
                break
            await asyncio.sleep(0.05)
        if not done():
            self.say("(some settlements did not come in time: the summary shows what did)")

    async def _accounts(self, client: NodeClient, addresses: list[str]) -> dict[str, int]:
        """Each account's money (balance + held - debt), all read at one height."""
        query = "&".join(f"address={address}" for address in addresses)
        answer = await client.get(f"/balances?{query}")
        return {
            row["address"]: int(row["balance"]) + int(row["held"]) - int(row["debt"])
            for row in answer["balances"]
        }

    async def _summary(self, client: NodeClient, operator: str) -> dict[str, Any]:
        homes = [(h.household.name, h.household.address) for h in self.homes]
        accounts = [*homes, ("operator", operator)]
        final = await self._accounts(client, [address for _, address in accounts])
        status = await client.status()
        transactions = 0
        for height in range(1, int(status["height"]) + 1):
            block = await client.get(f"/blocks/{height}")
            transactions += len(block.get("txs", []))
        summary = summary_json(
            self.ledger,
            homes,
            final,
            intervals=self.options.intervals,
            blocks=int(status["height"]),
            transactions=transactions,
        )
        summary["operator_balance_change"] = final[operator]
        summary["day"] = f"{self.day:%Y-%m-%d}"
        summary["day_note"] = self.day_note
        summary["buyers_price"] = {"at_least": str(self.prices[0]), "at_most": str(self.prices[1])}
        # The homes as the operator sees them (operator participants): joined by invitation.
        members = (await client.get("/operator/participants"))["participants"]
        summary["members"] = [
            {key: row[key] for key in ("name", "role", "status", "meter_bound")}
            for row in members
            if row["name"] in {name for name, _ in homes}
        ]
        summary["order_errors"] = [e for h in self.homes for e in h.agent.order_errors]
        summary["orders"] = sum(len(h.agent.orders_placed) for h in self.homes)
        if self.options.ui and not self.options.json:
            write_summary(self.ledger, [*homes, ("operator", operator)], final, self.out)
        return summary


def _tradeable_prices(tariff: Tariff, day: date) -> list[IntervalPrice]:
    """The day's daytime intervals in which a neighbour's energy can beat the supplier: the
    market matches a bid and an offer only when the import price less the network fee
    is above the export price (docs/market.md)."""
    start, _end = tariff.day_bounds(day)
    daytime = PriceSchedule(tariff).between(start + DAYTIME[0] * 3600, start + DAYTIME[1] * 3600)
    return [
        p for p in daytime if p.prices.import_price - p.prices.network_fee > p.prices.export_price
    ]


def trading_day(tariff: Tariff, asked: date) -> tuple[date, str]:
    """``asked``, or the next day on which neighbours can trade while the sun shines, and
    what to tell the user about the change (empty when there is none)."""
    for ahead in range(8):
        day = asked + timedelta(days=ahead)
        if _tradeable_prices(tariff, day):
            break
    else:
        return asked, (
            f"{asked:%A %Y-%m-%d}: with this tariff no day of the week lets a neighbour's "
            "energy beat the supplier while the sun shines; the demo runs this day, and no "
            "trade may clear"
        )
    if day == asked:
        return asked, ""
    start, _end = tariff.day_bounds(asked)
    cheapest = min(
        PriceSchedule(tariff).between(start + DAYTIME[0] * 3600, start + DAYTIME[1] * 3600),
        key=lambda p: p.prices.import_price,
    ).prices
    local = Decimal(cheapest.export_price + cheapest.network_fee) / PRICE_UNIT
    supplier = Decimal(cheapest.import_price) / PRICE_UNIT
    return day, (
        f"{asked:%A %Y-%m-%d}: from {DAYTIME[0]:02d}:00 to {DAYTIME[1]:02d}:00 the supplier "
        f"sells at {supplier.normalize()} MXN/kWh, less than a neighbour's energy costs with "
        f"the network fee ({local.normalize()}), so no trade could clear while the sun shines; "
        f"the demo runs {day:%A %Y-%m-%d} instead, the next day on which neighbours can trade"
    )


def _problem(error: Exception) -> str:
    """What stopped the demo, in one line."""
    if isinstance(error, ApiError | DrError):
        return f"the node refused a step of the setup ({error.code}): {error.message}"
    if isinstance(error, JoinError):
        return f"a home could not join: {error}"
    if isinstance(error, DemoError):
        return str(error)
    return f"cannot reach a part of the demo: {str(error) or type(error).__name__}"


def _local(seconds: int) -> datetime:
    """Unix seconds as the market's naive local time."""
    return datetime(1970, 1, 1) + timedelta(  # noqa: DTZ001 - local civil time
        seconds=seconds + UTC_OFFSET_MINUTES * 60
    )


def _prepare_keep(keep: Path) -> bool:
    """Make ``keep`` an empty private folder before the demo runs (so a bad ``--keep`` is
    refused at once, not after the day); whether it was created here."""
    if keep.exists() and not keep.is_dir():
        raise DemoError(f"--keep {keep}: exists and is not a folder; choose a new folder")
    if keep.is_dir():
        try:
            if any(keep.iterdir()):
                raise DemoError(f"--keep {keep}: is not empty; choose a new or empty folder")
        except OSError as err:
            raise DemoError(f"--keep {keep}: cannot read it: {err.strerror or err}") from None
        return False
    try:
        keep.mkdir(parents=True, mode=0o700)
    except OSError as err:
        raise DemoError(f"--keep {keep}: cannot create it: {err.strerror or err}") from None
    return True


def _discard(keep: Path | None, created: bool) -> None:
    """Leave ``--keep`` as it was found: removed when the demo made it, else emptied."""
    if keep is None:
        return
    if created:
        shutil.rmtree(keep, ignore_errors=True)
        return
    for entry in keep.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)


def run_demo(options: DemoOptions, out: TextIO, err: TextIO | None = None) -> int:
    """Run the demo; 0 when the books balance, 1 when they do not or the demo could not
    go on (said in one line on ``err``, never as a traceback; its files are left for a
    look at the node's log, in ``--keep`` when given), 130 when interrupted (then nothing
    is kept). DemoError at once for a bad ``--keep`` or ``TRANSACTIVA_PORTS``."""
    import aiohttp  # noqa: PLC0415 - only the demo needs it here

    err = sys.stderr if err is None else err
    port_range()  # a bad window is refused before anything is made
    keep = options.keep
    created = _prepare_keep(keep) if keep is not None else False
    workdir = Path(tempfile.mkdtemp(prefix="transactiva-demo-"))
    handlers = _log_to(err, workdir / "demo.log")
    try:
        summary = asyncio.run(Demo(options, out).run(workdir))
    except KeyboardInterrupt:
        shutil.rmtree(workdir, ignore_errors=True)
        _discard(keep, created)
        err.write("transactiva demo: interrupted\n")
        return 130
    except (DemoError, JoinError, ApiError, DrError, OSError, aiohttp.ClientError) as error:
        kept = workdir if keep is None else keep
        _tidy(workdir, keep, err, remove=keep is not None)
        err.write(f"transactiva demo: {_problem(error)} (the demo's files are in {kept})\n")
        return 1
    finally:
        for handler in handlers:
            logging.getLogger().removeHandler(handler)
            handler.close()
    if not _tidy(workdir, keep, err):
        _discard(keep, created)
        return 1
    if options.json:
        out.write(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    return 0 if summary["balance_changes_total"] == summary["net_deposits"] else 1


class _OneLine(logging.Formatter):
    """A warning of the services the demo runs in its process, in one line: the
    exception's type and text instead of its traceback (kept in the demo's log)."""

    def format(self, record: logging.LogRecord) -> str:
        text = record.getMessage()
        if record.exc_info is not None and record.exc_info[1] is not None:
            error = record.exc_info[1]
            text += f" ({type(error).__name__}{': ' if str(error) else ''}{error})"
        return text


def _log_to(err: TextIO, path: Path) -> list[logging.Handler]:
    """Warnings on ``err`` in one line each, and with their tracebacks in ``path``. The
    handlers, to remove at the end."""
    shown = logging.StreamHandler(err)
    shown.setLevel(logging.WARNING)
    shown.setFormatter(_OneLine())
    kept = logging.FileHandler(path, encoding="utf-8")
    kept.setLevel(logging.WARNING)
    kept.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for handler in (shown, kept):
        root.addHandler(handler)
    return [shown, kept]


def _tidy(workdir: Path, keep: Path | None, err: TextIO, *, remove: bool = True) -> bool:
    """Copy the demo's files to ``keep`` (when given) and remove them; False when they
    could not be copied (said on ``err``)."""
    copied = True
    if keep is not None:
        try:
            shutil.copytree(workdir, keep, dirs_exist_ok=True)
        except (OSError, shutil.Error) as error:
            err.write(f"transactiva demo: cannot keep its files in {keep}: {error}\n")
            copied = False
    if remove and copied:
        shutil.rmtree(workdir, ignore_errors=True)
    return copied
