"""The roles a node runs beside the ledger: meter, concentrator, contract execution.

``config.json`` switches them on:

- ``"meter": {"source": {...}, "settings": {...}, "concentrator": URL}`` -- the
  meter role: a :class:`~ledger_core.meter.service.MeterService` reading the
  source (``smartpi``, ``http_json``, ``pushed`` for Home Assistant, ``mqtt``;
  see docs/meters.md) with the meter key ``keys/meter.key`` (made on first
  start; the operator binds it to the participant with ``bind_meter``), its
  routes under ``/api/v1/local/meter``. Reports go to the ledger as
  commitments; the readings go to the concentrator's node at ``concentrator``
  (its API's base URL, HTTPS outside a test), or in this process when this
  node is the concentrator (docs/privacy.md);
- ``"concentrator": {"tariff": "tariff.toml", "rules": [...], "publish_at":
  "12:00"}`` -- the operator's service: day-ahead prices from the tariff (a path
  relative to the home), demand-response rules, the meters' readings in
  ``readings.db`` and the deliveries and bills made from them, the
  ``/api/v1/operator/...`` routes and ``/api/v1/readings``;
- ``"analytics": {"site": {...}, "refit_seconds": 86400}`` -- forecasts, history
  and advice from the meter's readings (on whenever the meter role is; the site
  defaults to Morelia, see docs/analytics.md), under ``/api/v1/local/analytics``;
- ``"execute_contracts": true`` (the default) -- the home agent: the local
  participant's active contracts evaluated at every event, actions published
  on ``/api/v1/local/events`` and kept in ``local.db`` for Home Assistant to
  carry out, orders signed for ``SELL SURPLUS`` and ``BUY``.

Membership needs no setting: a node on the P2P network whose local participant
is a genesis operator issues invitations and admits homes
(``ledger_core/membership``, ``invitations.db``); a home made by ``transactiva
join`` asks for admission with the code in its home until it is a participant.
Every node answers ``GET /api/v1/local/admission``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from datetime import time as clock_time
from typing import TYPE_CHECKING, Any, Final

import aiohttp

from ledger_core.agent.execution import ContractExecutor
from ledger_core.agent.home_agent import HomeAgent, NodeSigner
from ledger_core.api.server import Feature
from ledger_core.client import ApiError, NodeClient
from ledger_core.clock import clock_from
from ledger_core.concentrator.api import concentrator_feature
from ledger_core.concentrator.dr import DrError
from ledger_core.concentrator.ledger import NodeLedger
from ledger_core.concentrator.metering import MeterData, MeteringError
from ledger_core.concentrator.readings import ReadingStore, ReadingStoreError
from ledger_core.concentrator.rules import LoadRule
from ledger_core.concentrator.service import Concentrator
from ledger_core.concentrator.tariff import load_tariff
from ledger_core.membership.admission import Admissions
from ledger_core.membership.api import admission_feature, membership_feature
from ledger_core.membership.invitations import InvitationBook
from ledger_core.membership.joining import Joiner, JoinError
from ledger_core.meter.api import meter_feature
from ledger_core.meter.outbox import (
    Outcome,
    Share,
    SubmitOutcome,
    http_sharer,
    node_chain_nonce,
    node_submitter,
)
from ledger_core.meter.service import MeterConfig, MeterService
from ledger_core.meter.sources import MeterConfigError, source_from_config
from ledger_core.meter.store import MeterStoreError
from ledger_core.node.home import Config, Home, HomeError
from ledger_core.node.host import Node
from ledger_core.node.local import ActionLog, LocalEvents
from ledger_core.node.peers import advertised
from ledger_core.p2p.network import Network
from ledger_core.state import keys
from ledger_core.state.keys import StateView
from ledger_core.types.crypto import SigningKey
from ledger_core.types.invitation import CHANNEL as ADMISSION_CHANNEL

if TYPE_CHECKING:
    from ledger_core.analytics.service import AnalyticsService
    from ledger_core.analytics.store import ReadingStore as AnalyticsStore

LOG: Final = logging.getLogger(__name__)
METER_KEY: Final = "keys/meter.key"
INVITATIONS_DB: Final = "invitations.db"
READINGS_FILE: Final = "readings.db"


def local_sharer(meter_data: MeterData) -> Share:
    """Share readings with the concentrator in this process (its node is this one)."""

    async def share(message: dict[str, Any]) -> SubmitOutcome:
        try:
            received = await meter_data.receive(message)
        except MeteringError as err:
            return Outcome(err.code, err.message)
        return Outcome(received.status)

    return share


def _meter_key(home: Home) -> SigningKey:
    path = home.path / METER_KEY
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        SigningKey.generate().save(path)
    return SigningKey.load(path)


async def feed_reports(meter: MeterService, agent: HomeAgent, stop: asyncio.Event) -> None:
    """Give the home's contracts each interval its meter closes (``interval_report``)."""
    queue = meter.subscribe_events()
    try:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                event = await asyncio.wait_for(queue.get(), 1.0)
                if event.type == "interval_report":
                    detail = event.detail
                    await agent.interval_report(
                        int(detail["interval_start"]),
                        int(detail["import_wh"]),
                        int(detail["export_wh"]),
                    )
    finally:
        meter.unsubscribe_events(queue)


class Roles:
    """Builds, starts and stops the configured roles around a node."""

    def __init__(
        self,
        home: Home,
        config: Config,
        node: Node,
        *,
        local_events: LocalEvents,
        action_log: ActionLog,
        network: Network | None = None,
    ) -> None:
        self.home = home
        self.network = network
        self.admissions: Admissions | None = None
        self.joiner: Joiner | None = None
        self.config = config
        self.node = node
        self.local_events = local_events
        self.action_log = action_log
        self.clock = clock_from(config.clock_epoch, config.clock_start, config.clock_speed)
        self.meter: MeterService | None = None
        self.concentrator: Concentrator | None = None
        self.agent: HomeAgent | None = None
        self.analytics: AnalyticsService | None = None
        self._analytics_store: AnalyticsStore | None = None
        self._readings: ReadingStore | None = None
        self._session: aiohttp.ClientSession | None = None
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[Any]] = []
        self.features: list[Feature] = []
        try:
            self._build()
        except BaseException:
            self._close_built()
            raise

    def _close_built(self) -> None:
        """Close the databases of roles built before a bad setting stopped the start."""
        if self.meter is not None:
            self.meter.store.close()
        if self._analytics_store is not None:
            self._analytics_store.close()
        if self.admissions is not None:
            self.admissions.book.close()
        if self._readings is not None:
            self._readings.close()

    def _build_membership(self) -> None:
        """Invitations and admission on the operator's node; asking for admission on a
        joining home's; the admission status on every node."""
        network = self.network
        participant = self.home.participant_key()
        operator = any(op.address == participant.address for op in self.node.genesis.operators)
        if network is not None and operator:
            config = self.config
            book = InvitationBook(self.home.path / INVITATIONS_DB, clock=self.node.clock)
            self.admissions = Admissions(
                self.node, participant, book, lambda: (advertised(config, network),)
            )
            network.on_request(ADMISSION_CHANNEL, self.admissions.on_request)
            self.features.append(membership_feature(self.admissions, network))
        joining = None
        if network is not None and self.home.invitation_file.exists():
            try:
                self.joiner = Joiner(
                    self.home, self.node, network, participant, _meter_key(self.home).public_key
                )
            except (JoinError, OSError) as err:
                raise HomeError(f"{self.home.invitation_file}: {err}") from None
            joining = self.joiner.status
        self.features.append(admission_feature(joining))

    def _build(self) -> None:
        """Build the configured roles and the API features they serve (the concentrator
        first: a meter on the same node shares its readings with it in this process)."""
        config = self.config
        chain_id = self.node.genesis.chain_id
        self._build_membership()
        if config.concentrator is not None:
            self.concentrator = self._build_concentrator(config.concentrator)
            self.features.append(concentrator_feature(self.concentrator))
        if config.meter is not None:
            self.meter = self._build_meter(config.meter, chain_id)
            self.features.append(meter_feature(self.meter))
            self.analytics = self._build_analytics(config.analytics or {})
            from ledger_core.analytics.api import analytics_feature  # noqa: PLC0415 - as above

            self.features.append(analytics_feature(self.analytics))

    def _build_meter(self, settings: dict[str, Any], chain_id: str) -> MeterService:
        try:
            source = source_from_config(
                settings.get("source", {}), clock=self.clock, field="meter.source"
            )
            meter_config = MeterConfig.from_json(settings.get("settings", {}))
        except MeterConfigError as err:
            raise HomeError(f"{self.home.config_file}: {err}") from None
        try:
            return MeterService(
                source,
                self.home.path / "meter.db",
                _meter_key(self.home),
                chain_id,
                node_submitter(self.node),
                config=meter_config,
                clock=self.clock,
                chain_nonce=node_chain_nonce(self.node, _meter_key(self.home).address),
                share=self._sharer(settings.get("concentrator")),
            )
        except MeterStoreError as err:
            raise HomeError(
                f"{err}; move meter.db (with its -wal and -shm files) aside to start the meter's "
                "counters again (reports not yet on the ledger are lost)"
            ) from None

    def _sharer(self, url: object) -> Share | None:
        """Where the meter's readings go: the concentrator in this process, or at ``url``."""
        if self.concentrator is not None and self.concentrator.meter_data is not None:
            return local_sharer(self.concentrator.meter_data)
        if url is None:
            LOG.warning(
                "%s: meter.concentrator is not set: the readings stay in meter.db and the "
                "concentrator cannot settle this home's energy",
                self.home.config_file,
            )
            return None
        if not isinstance(url, str) or not url.startswith(("https://", "http://")):
            raise HomeError(
                f"{self.home.config_file}: meter.concentrator: must be the concentrator "
                "node's API address, https://host:port"
            )
        if url.startswith("http://") and not url.startswith(("http://127.", "http://localhost")):
            LOG.warning("meter.concentrator is plain HTTP: the readings travel unencrypted")

        async def share(message: dict[str, Any]) -> SubmitOutcome:
            if self._session is None:
                self._session = aiohttp.ClientSession()
            return await http_sharer(self._session, url)(message)

        return share

    def _build_analytics(self, settings: dict[str, Any]) -> AnalyticsService:
        # Analytics needs numpy, pandas, scipy and pvlib: loaded only for a home that runs it.
        from ledger_core.analytics.localtime import Site  # noqa: PLC0415
        from ledger_core.analytics.service import AnalyticsService  # noqa: PLC0415
        from ledger_core.analytics.store import ReadingStore as AnalyticsStore  # noqa: PLC0415

        where = f"{self.home.config_file}: analytics"
        unknown = set(settings) - {"site", "refit_seconds"}
        if unknown:
            raise HomeError(f"{where}.{sorted(unknown)[0]}: is not an analytics setting")
        site_raw = settings.get("site", {})
        if not isinstance(site_raw, dict):
            raise HomeError(f"{where}.site: must be an object")
        refit = settings.get("refit_seconds", 86400)
        if type(refit) is not int or not 600 <= refit <= 7 * 86400:
            raise HomeError(f"{where}.refit_seconds: must be 600 to 604800")
        try:
            site = Site(**site_raw)
        except (TypeError, ValueError) as err:
            raise HomeError(f"{where}.site: {err}") from None
        try:
            self._analytics_store = AnalyticsStore(self.home.path / "analytics.db")
        except (sqlite3.DatabaseError, ValueError) as err:
            raise HomeError(
                f"{self.home.path / 'analytics.db'}: not a readable store of readings ({err}); "
                "move it (with its -wal and -shm files) aside: forecasts start from new readings"
            ) from None
        node = self.node

        def prices(start: int, end: int) -> dict[int, tuple[int, int]]:
            rows = StateView(node.committed).by_interval(keys.PRICES, start, end, 1 << 20)
            found: dict[int, tuple[int, int]] = {}
            for interval_start, value in rows:
                imp, exp = value.get("import_price"), value.get("export_price")
                if isinstance(imp, int) and isinstance(exp, int):
                    found[interval_start] = (imp, exp)
            return found

        return AnalyticsService(
            self._analytics_store, site, clock=self.clock.now, prices=prices, refit_seconds=refit
        )

    def _build_concentrator(self, settings: dict[str, Any]) -> Concentrator:
        where = f"{self.home.config_file}: concentrator"
        tariff = settings.get("tariff")
        if not isinstance(tariff, str):
            raise HomeError(f"{where}.tariff: the tariff file's path is required")
        rules_raw = settings.get("rules", [])
        if not isinstance(rules_raw, list):
            raise HomeError(f"{where}.rules: must be a list of load rules")
        try:
            rules = [LoadRule.from_json(rule) for rule in rules_raw]
            publish = clock_time.fromisoformat(str(settings.get("publish_at", "12:00")))
            loaded = load_tariff(self.home.path / tariff)
        except DrError as err:
            raise HomeError(f"{where}: {err.field}: {err.message}") from None
        except (ValueError, OSError) as err:
            raise HomeError(f"{where}: {err}") from None
        ledger = NodeLedger(self.node, self.home.participant_key())
        genesis = self.node.genesis
        try:
            self._readings = ReadingStore(self.home.path / READINGS_FILE, genesis.chain_id)
        except ReadingStoreError as err:
            raise HomeError(f"{where}: {err}") from None
        meter_data = MeterData(
            self._readings, ledger, genesis.chain_id, genesis.params, clock=self.clock.now
        )
        return Concentrator(
            loaded,
            ledger,
            self.clock,
            rules=rules,
            publish_at=publish,
            meter_data=meter_data,
        )

    async def start(self, api_url: str, token: str) -> None:
        """Start the roles (the API is listening at ``api_url``)."""
        if self.admissions is not None:
            self.admissions.resume()
        if self.joiner is not None:
            self._tasks.append(asyncio.create_task(self.joiner.run(self._stop)))
        if self.meter is not None:
            await self.meter.start()
        if self.analytics is not None:
            self._tasks.append(asyncio.create_task(self.analytics.run(self._stop)))
        if self.concentrator is not None:
            await self.concentrator.start()
        if self.config.execute_contracts:
            client = NodeClient(api_url, token)
            participant = self.home.participant_key().address
            meter = self.meter.meter if self.meter is not None else None
            params = self.node.genesis.params
            executor = ContractExecutor(
                participant,
                meter,
                params.interval_seconds,
                params.utc_offset_minutes,
                gate_closure_seconds=params.gate_closure_seconds,
                # With analytics, contracts that sell or buy also order ahead.
                forecast=None if self.analytics is None else self.analytics.expected_energy,
            )
            self._load_contracts(executor)
            self.agent = HomeAgent(
                client=client,
                signer=NodeSigner(client),
                executor=executor,
                clock=self.clock.now,
                log=self.action_log,
                local_events=self.local_events,
                last_seq=self.node.storage.last_event_seq(),
            )
            self._tasks.append(asyncio.create_task(self.agent.run(self._stop)))
            if self.meter is not None:
                self._tasks.append(asyncio.create_task(self._feed_power(self.meter, self.agent)))
                self._tasks.append(
                    asyncio.create_task(feed_reports(self.meter, self.agent, self._stop))
                )

    def _load_contracts(self, executor: ContractExecutor) -> None:
        """Follow the participant's active contracts already on the ledger."""
        for contract_id, record in StateView(self.node.committed).contracts():
            executor.track(contract_id, dict(record))

    async def _feed_power(self, meter: MeterService, agent: HomeAgent) -> None:
        queue = meter.subscribe()
        try:
            while not self._stop.is_set():
                with contextlib.suppress(TimeoutError):
                    reading = await asyncio.wait_for(queue.get(), 1.0)
                    if reading.power is not None:
                        agent.power(reading.power)
                        if self.analytics is not None:
                            self.analytics.feed(reading.time.timestamp(), reading.power)
        finally:
            meter.unsubscribe(queue)

    async def stop(self) -> None:
        """Stop every role (bounded)."""
        self._stop.set()
        for task in self._tasks:
            with contextlib.suppress(ApiError, OSError):
                await asyncio.wait_for(task, 10.0)
        if self.concentrator is not None:
            await self.concentrator.stop()
        if self.meter is not None:
            await self.meter.stop()
        if self._session is not None:
            await self._session.close()
        if self._analytics_store is not None:
            self._analytics_store.close()
        if self.admissions is not None:
            await self.admissions.stop()
            self.admissions.book.close()
        if self._readings is not None:
            self._readings.close()
