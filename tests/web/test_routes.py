"""The web interface's routes on a real node (SQLite, its API on 127.0.0.1): the pages and
their security headers, ingress, the contract check, the summary, the contract and
participant lists, WebSocket tickets -- and the pages' own files (imports, i18n keys)."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from contracts import check, content_hash
from ledger_core.api.server import (
    MAX_TICKETS,
    TICKET_SECONDS,
    TICKETS_KEY,
    TRUSTED_PROXY_KEY,
    add_feature,
)
from ledger_core.clock import ManualClock
from ledger_core.meter.outbox import node_submitter
from ledger_core.meter.reading import Reading
from ledger_core.meter.service import MeterService
from ledger_core.meter.sources import PushedSource
from ledger_core.node.home import Config, ConfigError
from ledger_core.types.tx import TxType
from ledger_core.web import STATIC, WebContext, web_feature
from tests.concentrator.harness import TOKEN, Live, live_node, mx
from tests.state.chain import key

NOON = mx(2026, 3, 10, 12, 0, 5)
DAY_START = mx(2026, 3, 10, 0, 0)
METER = key("meter-0")
BEARER = {"Authorization": f"Bearer {TOKEN}"}
CONTRACT = (
    "Contract 'lavadora'\nValid from 2026/03/01 00:00:00 to 2027/03/01 00:00:00\n"
    "IF Price < 3 THEN TURN ON DEVICE 'Lavadora' ENDIF\nParties: ISO\n"
)


class Web:
    """A node with the web routes, and a session to it (and the home's meter, if any)."""

    def __init__(
        self, live: Live, session: aiohttp.ClientSession, meter: MeterService | None = None
    ) -> None:
        self.live = live
        self.session = session
        self.meter = meter
        self.base = str(live.server.make_url("")).rstrip("/")

    async def call(
        self, method: str, path: str, headers: dict[str, str] | None = None, **kwargs: Any
    ) -> tuple[int, Any, aiohttp.typedefs.LooseHeaders]:
        async with self.session.request(
            method, self.base + path, headers=headers, **kwargs
        ) as response:
            if response.content_type == "application/json":
                body: Any = await response.json()
            else:
                body = await response.text()
            return response.status, body, response.headers


def _web(context: WebContext, proxy: str | None = None) -> Any:
    def extra(app: Any, _live: Live) -> None:
        if proxy is not None:
            app[TRUSTED_PROXY_KEY] = proxy
        add_feature(app, web_feature(context))

    return extra


@pytest.fixture
async def web(tmp_path: Path) -> AsyncIterator[Web]:
    """A home's node: the web routes, and its meter (readings pushed by the test)."""
    made: list[MeterService] = []

    def extra(app: Any, live: Live) -> None:
        own = ManualClock(DAY_START - 900)  # the meter's clock, moved with its readings
        meter = MeterService(
            PushedSource(clock=own),
            tmp_path / "meter.db",
            METER,
            live.chain.genesis.chain_id,
            node_submitter(live.node),
            clock=own,
        )
        made.append(meter)
        context = WebContext(
            meter_address=METER.address, meter=meter, concentrator=False, execute_contracts=True
        )
        add_feature(app, web_feature(context))

    async with live_node(tmp_path, NOON, extra) as live, aiohttp.ClientSession() as session:
        try:
            yield Web(live, session, made[0])
        finally:
            made[0].store.close()


@pytest.fixture
async def ingress(tmp_path: Path) -> AsyncIterator[Web]:
    """A node behind an ingress proxy at 127.0.0.1 (the tests' own address)."""
    context = WebContext(ingress_proxy="127.0.0.1")
    async with (
        live_node(tmp_path, NOON, _web(context, "127.0.0.1")) as live,
        aiohttp.ClientSession() as session,
    ):
        yield Web(live, session)


@pytest.fixture
async def elsewhere(tmp_path: Path) -> AsyncIterator[Web]:
    """A node behind Home Assistant's real proxy address, which the tests are not."""
    context = WebContext(ingress_proxy="172.30.32.2")
    async with (
        live_node(tmp_path, NOON, _web(context, "172.30.32.2")) as live,
        aiohttp.ClientSession() as session,
    ):
        yield Web(live, session)


# -- pages -------------------------------------------------------------------------------


async def test_the_pages_are_served_with_a_strict_content_security_policy(web: Web) -> None:
    status, body, headers = await web.call("GET", "/")
    assert status == 200
    assert headers["Content-Type"].startswith("text/html")
    assert 'src="static/js/app.js"' in body
    policy = headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy
    assert "script-src 'self'" in policy
    assert "http" not in policy, "nothing from other sites"
    assert headers["X-Content-Type-Options"] == "nosniff"
    for path, kind in (
        ("/static/js/app.js", "text/javascript"),
        ("/static/app.css", "text/css"),
        ("/static/icon.svg", "image/svg+xml"),
        ("/static/js/pages/contracts.js", "text/javascript"),
    ):
        status, _body, headers = await web.call("GET", path)
        assert status == 200, path
        assert headers["Content-Type"].startswith(kind), path
    for missing in ("/static/nope.js", "/static/../__init__.py", "/static/js/%2e%2e/x.js"):
        status, body, _ = await web.call("GET", missing)
        assert status == 404, missing
        assert body["error"]["code"] == "not_found"


def test_every_module_the_pages_import_is_served_and_nothing_comes_from_elsewhere() -> None:
    files = {p.relative_to(STATIC).as_posix() for p in STATIC.rglob("*") if p.is_file()}
    for path in STATIC.rglob("*.js"):
        text = path.read_text(encoding="utf-8")
        for target in re.findall(r"""^import .* from "(\.[^"]+)";$""", text, flags=re.MULTILINE):
            resolved = (path.parent / target).resolve().relative_to(STATIC.resolve()).as_posix()
            assert resolved in files, f"{path.name} imports {target}"
        assert not re.search(r"https?://(?!www\.w3\.org/2000/svg)", text), path.name
    index = (STATIC / "index.html").read_text(encoding="utf-8")
    for target in re.findall(r'(?:src|href)="([^"#]+)"', index):
        assert target in {f"static/{f}" for f in files}, target


def test_english_and_spanish_have_the_same_texts_and_every_text_used_exists() -> None:
    source = (STATIC / "js" / "i18n.js").read_text(encoding="utf-8")
    english, spanish = source.split("\n  es: {\n")
    keys_en = set(re.findall(r'^    "([\w.]+)":', english, flags=re.MULTILINE))
    keys_es = set(re.findall(r'^    "([\w.]+)":', spanish, flags=re.MULTILINE))
    assert keys_en == keys_es
    used: set[str] = set()
    for path in STATIC.rglob("*.js"):
        used |= set(re.findall(r'\bt\("([\w.]+)"', path.read_text(encoding="utf-8")))
    assert used, "the pages use the table"
    assert used <= keys_en, used - keys_en
    for page in ("overview", "contracts", "market", "explorer", "operator"):
        assert f"nav.{page}" in keys_en
    for template in ("paper_printed", "paper", "paper_dr", "washer", "sell", "buy"):
        assert f"contracts.tpl.{template}" in keys_en


def test_the_contract_templates_are_what_the_checker_expects() -> None:
    """Every template is a valid contract without warnings, except the paper's as printed
    (September 31st and the DemandRespose spelling, kept to show the checker at work)."""
    source = (STATIC / "js" / "templates.js").read_text(encoding="utf-8")
    found = re.findall(r'key: "(\w+)",\s*source: \[(.*?)\],\n    \}', source, flags=re.DOTALL)
    assert [name for name, _ in found] == [
        "paper_printed",
        "paper",
        "paper_dr",
        "washer",
        "sell",
        "buy",
    ]
    valid = '"Valid from 2026/03/10 00:00:00 to 2027/03/10 00:00:00"'
    for name, lines in found:
        text = "\n".join(re.findall(r'"([^"]*)"', lines.replace("valid,", valid + ","))) + "\n"
        result = check(text, name)
        if name == "paper_printed":
            assert [d.severity for d in result.diagnostics] == ["error", "warning"]
        else:
            assert result.ok, result.render(name)
            assert result.diagnostics == (), result.render(name)
    (paper_dr,) = [lines for name, lines in found if name == "paper_dr"]
    assert "\"DemandResponse true shed 'Lavadora'\"" in paper_dr


# -- ingress -------------------------------------------------------------------------------


async def test_behind_ingress_the_proxy_needs_no_token_and_others_do(ingress: Web) -> None:
    forwarded = {"X-Ingress-Path": "/api/hassio_ingress/abc"}
    status, _body, _ = await ingress.call("GET", "/")
    assert status == 200
    status, body, _ = await ingress.call("GET", "/api/v1/web/summary", forwarded)
    assert status == 200
    assert body["ingress"] is True
    # The proxy's own address without the ingress marker (e.g. the watchdog) is not trusted.
    status, _body, _ = await ingress.call("GET", "/api/v1/web/summary")
    assert status == 401
    status, _body, _ = await ingress.call("GET", "/api/v1/web/summary", BEARER)
    assert status == 200


async def test_behind_ingress_other_addresses_get_no_pages_and_need_the_token(
    elsewhere: Web,
) -> None:
    forwarded = {"X-Ingress-Path": "/api/hassio_ingress/abc"}
    for path in ("/", "/static/js/app.js"):
        status, body, _ = await elsewhere.call("GET", path, forwarded)
        assert status == 403, path
        assert body["error"]["code"] == "forbidden"
    status, _body, _ = await elsewhere.call("GET", "/api/v1/web/summary", forwarded)
    assert status == 401
    status, body, _ = await elsewhere.call("GET", "/api/v1/status")
    assert status == 200, "the watchdog's route stays public"


def test_config_takes_an_ingress_proxy_address_only() -> None:
    assert Config.from_json({"ingress_proxy": "172.30.32.2"}).ingress_proxy == "172.30.32.2"
    assert Config.from_json({"ingress_proxy": None}).ingress_proxy is None
    for bad in (5, "proxy.local", "172.30.32.999", ""):
        with pytest.raises(ConfigError, match="ingress_proxy"):
            Config.from_json({"ingress_proxy": bad})


# -- the contract check --------------------------------------------------------------------


async def test_check_points_at_line_and_column(web: Web) -> None:
    broken = CONTRACT.replace("IF Price < 3", "IF Prize < 3")
    status, body, _ = await web.call(
        "POST", "/api/v1/contracts/check", BEARER, json={"source": broken}
    )
    assert status == 200
    assert body["ok"] is False
    (first,) = [d for d in body["diagnostics"] if d["severity"] == "error"]
    assert (first["line"], first["column"]) == (3, 4)
    assert "Prize" in first["message"]
    assert first["hint"] == "did you mean Price?"
    status, body, _ = await web.call(
        "POST", "/api/v1/contracts/check", BEARER, json={"source": CONTRACT}
    )
    assert body["ok"] is True
    assert body["name"] == "lavadora"
    assert body["parties"] == ["ISO"]
    assert body["short_id"].startswith("0x")
    assert body["canonical"].startswith("Contract 'lavadora'\nValid from")
    assert check(body["canonical"]).ok


async def test_check_refuses_bad_requests_as_json(web: Web) -> None:
    path = "/api/v1/contracts/check"
    status, body, _ = await web.call("POST", path, json={"source": CONTRACT})
    assert (status, body["error"]["code"]) == (401, "unauthorized")
    status, body, _ = await web.call("POST", path, BEARER, data=b"{nope")
    assert (status, body["error"]["field"]) == (400, "body")
    status, body, _ = await web.call("POST", path, BEARER, json=["source"])
    assert (status, body["error"]["field"]) == (400, "body")
    status, body, _ = await web.call("POST", path, BEARER, json={"source": 7})
    assert (status, body["error"]["field"]) == (400, "source")
    status, body, _ = await web.call("POST", path, BEARER, json={"source": "x" * 70_000})
    assert (status, body["error"]["code"]) == (413, "too_large")


async def test_check_answers_odd_bodies_with_4xx_or_diagnostics(web: Web) -> None:
    bodies: list[bytes] = [
        b"",
        b"null",
        b"[]",
        b'{"source": null}',
        b'{"source": ""}',
        b'{"source": "\\u0000"}',
        b'{"source": "Contract \'x\'\\nValid"}',
        '{"source": "Contrato \u00e1"}'.encode(),
        b"\xff\xfe\x00",
        b'{"source": "' + b"IF " * 5000 + b'"}',
    ]
    for body in bodies:
        status, answer, _ = await web.call("POST", "/api/v1/contracts/check", BEARER, data=body)
        assert status in (200, 400), (body[:40], status)
        if status == 200:
            assert answer["ok"] is False
            assert all(d["line"] >= 1 and d["column"] >= 1 for d in answer["diagnostics"])
        else:
            assert answer["error"]["field"] in ("body", "source")


# -- summary, contracts, participants --------------------------------------------------------


async def test_the_summary_has_roles_wallet_today_and_demand_response(web: Web) -> None:
    live = web.live
    (meter,) = await live.register_meters(1)
    assert meter.address == METER.address
    meter_owner = key("home-0").address
    live.tick(DAY_START + 12 * 3600 + 1800)
    # Today's energy is the home's own meter's (the chain holds only commitments): its
    # lifetime counters, read at these times, close yesterday's last interval, the night's
    # (no energy) and two intervals of the morning.
    assert web.meter is not None
    for at, imported, exported in (
        (DAY_START - 900, 0, 0),
        (DAY_START, 9_999, 9_999),  # yesterday: not today's
        (DAY_START + 11 * 3600, 9_999, 9_999),
        (DAY_START + 11 * 3600 + 900, 9_999 + 1_200, 9_999 + 300),
        (DAY_START + 11 * 3600 + 1800, 9_999 + 2_000, 9_999 + 800),
    ):
        moment = datetime.fromtimestamp(at, tz=UTC)
        assert isinstance(web.meter.clock, ManualClock)
        web.meter.clock.set(at)
        web.meter.process(Reading(moment, (), None, "pushed", None, imported, exported))
    night_and_morning = 11 * 4 + 2

    def event(event_id: str, level: int, start: int, duration: int) -> dict[str, Any]:
        return {
            "event_id": event_id,
            "modification_number": 1,
            "signal": {"name": "SIMPLE", "level": level},
            "start": start,
            "duration": duration,
            "targets": [],
            "cancelled": False,
        }

    issued = await live.local().submit(
        [
            (TxType.DR_EVENT, event("dr-noon", 2, DAY_START + 13 * 3600, 3600)),
            (TxType.DR_EVENT, event("dr-morning", 1, DAY_START + 12 * 3600 + 1800, 900)),
            (
                TxType.DR_EVENT,
                {**event("dr-off", 3, DAY_START + 14 * 3600, 900), "cancelled": True},
            ),
            (
                TxType.DR_EVENT,
                {**event("dr-theirs", 3, DAY_START + 14 * 3600, 900), "targets": [meter_owner]},
            ),
        ]
    )
    assert all(i.ok for i in issued), issued
    live.tick(DAY_START + 12 * 3600 + 2800)  # the morning event is over, the noon one near
    status, body, _ = await web.call("GET", "/api/v1/web/summary", BEARER)
    assert status == 200
    assert body["roles"] == {
        "meter": True,
        "concentrator": False,
        "execute_contracts": True,
        "operator": True,
    }
    assert body["participant"] == live.chain.iso.address
    assert body["meter"] == METER.address
    assert body["day_start"] == DAY_START
    assert body["today"] == {
        "from": DAY_START,
        "import_wh": 2000,
        "export_wh": 800,
        "reports": night_and_morning,
    }
    assert [e["event_id"] for e in body["dr_events"]] == ["dr-noon"]
    assert body["dr_events"][0]["status"] == "near"
    assert body["wallet"] == {"balance": 0, "held": 0, "debt": 0}
    assert body["validators"] == [{"address": live.chain.validator.address, "power": 10}]
    assert body["peers"] is None
    assert body["ingress"] is False
    assert body["sync"]["behind_seconds"] == 0
    live.clock.set(DAY_START + 12 * 3600 + 2800 + 3600)
    status, idle, _ = await web.call("GET", "/api/v1/web/summary", BEARER)
    assert status == 200
    assert idle["sync"]["last_block_time"] == DAY_START + 12 * 3600 + 2800
    assert idle["sync"]["behind_seconds"] == 0, "idle, not behind: the next block is stamped now"
    status, _body, _ = await web.call("GET", "/api/v1/web/summary")
    assert status == 401


async def test_contracts_lists_the_participants_own_with_receipts(web: Web) -> None:
    live = web.live
    home = key("home-0")
    await live.register_meters(1)
    (mine,) = await live.local().submit(
        [(TxType.CONTRACT_PROPOSE, {"source": _canonical(CONTRACT)})]
    )
    assert mine.ok, mine
    theirs_source = _canonical(CONTRACT.replace("'lavadora'", "'de otro'").replace("ISO", "DSO"))
    theirs = live.chain.tx(home, TxType.CONTRACT_PROPOSE, source=theirs_source)
    (stored,) = await live.commit(theirs)
    assert stored.code == "ok", stored
    status, body, _ = await web.call("GET", "/api/v1/web/contracts", BEARER)
    assert status == 200
    (listed,) = body["contracts"]
    assert listed["name"] == "lavadora"
    assert listed["status"] == "active"
    contract = check(CONTRACT).contract
    assert contract is not None
    assert listed["id"] == content_hash(contract)
    assert listed["short_id"].startswith("0x")
    assert listed["receipt"].startswith("Timestamp ")
    assert f"to 'lavadora' [0x{listed['short_id'][2:].upper()}]" in listed["receipt"]
    status, _body, _ = await web.call("GET", "/api/v1/web/contracts")
    assert status == 401


def _canonical(source: str) -> str:
    from contracts import format_contract  # noqa: PLC0415

    result = check(source)
    assert result.contract is not None, result.render()
    return format_contract(result.contract)


async def test_participants_lists_accounts_and_meters(web: Web) -> None:
    await web.live.register_meters(2)
    status, body, _ = await web.call("GET", "/api/v1/web/participants", BEARER)
    assert status == 200
    rows = {row["address"]: row for row in body["participants"]}
    assert rows[key("home-1").address]["role"] == "prosumer"
    assert rows[key("meter-1").address]["owner"] == key("home-1").address
    assert rows[key("meter-1").address]["role"] == "meter"
    # Two operators (ISO and supplier; DSO) from the genesis, two homes, two meters.
    assert len(rows) == 6
    assert rows[web.live.chain.iso.address]["role"] == "operator"
    assert rows[key("home-0").address]["balance"] == 0


async def test_a_text_becomes_a_qr_code_and_bad_bodies_are_refused(web: Web) -> None:
    code = "TV1-" + "-".join(["ABCDE"] * 45)
    status, body, _ = await web.call("POST", "/api/v1/web/qr", BEARER, json={"text": code})
    assert status == 200
    assert body["svg"].startswith('<svg xmlns="http://www.w3.org/2000/svg"')
    for sent, field in (({"text": ""}, "text"), ([1], "text"), ({"text": "x" * 3000}, "text")):
        status, body, _ = await web.call("POST", "/api/v1/web/qr", BEARER, json=sent)
        assert (status // 100, body["error"]["field"]) == (4, field)
    status, body, _ = await web.call("POST", "/api/v1/web/qr", BEARER, data=b"{")
    assert (status, body["error"]["field"]) == (400, "body")
    status, _, _ = await web.call("POST", "/api/v1/web/qr", json={"text": code})
    assert status == 401


# -- tickets ---------------------------------------------------------------------------------


EVENTS = {"path": "/api/v1/events"}


async def test_a_ticket_opens_one_websocket_once(web: Web) -> None:
    status, body, _ = await web.call("POST", "/api/v1/web/ticket", BEARER, json=EVENTS)
    assert status == 200
    ticket = body["ticket"]
    assert (body["path"], body["expires_in"]) == ("/api/v1/events", TICKET_SECONDS)
    url = f"{web.base}/api/v1/events?ticket={ticket}"
    async with web.session.ws_connect(url) as socket:
        web.live.tick(NOON + 10)
        message = await socket.receive_json(timeout=10)
        assert message["event"]["type"] == "new_block"
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        async with web.session.ws_connect(url):
            pass
    assert refused.value.status == 401
    # A ticket is for a WebSocket only, and it is used up by trying.
    status, body, _ = await web.call("POST", "/api/v1/web/ticket", BEARER, json=EVENTS)
    status, _body, _ = await web.call("GET", f"/api/v1/web/summary?ticket={body['ticket']}")
    assert status == 401
    status, _body, _ = await web.call("POST", "/api/v1/web/ticket", json=EVENTS)
    assert status == 401
    # A ticket names a stream route.
    for asked in ({}, {"path": "/api/v1/web/summary"}, {"path": 7}, []):
        status, body, _ = await web.call("POST", "/api/v1/web/ticket", BEARER, json=asked)
        assert (status, body["error"]["field"]) == (400, "path"), asked
        assert "/api/v1/events" in body["error"]["message"]


async def test_tickets_expire_and_old_ones_make_room(web: Web) -> None:
    _status, body, _ = await web.call("POST", "/api/v1/web/ticket", BEARER, json=EVENTS)
    tickets = web.live.app[TICKETS_KEY]
    tickets[body["ticket"]] = (time.monotonic() - 1, "/api/v1/events")  # its time is up
    with pytest.raises(aiohttp.WSServerHandshakeError):
        async with web.session.ws_connect(f"{web.base}/api/v1/events?ticket={body['ticket']}"):
            pass
    first = None
    for i in range(MAX_TICKETS + 5):
        _status, body, _ = await web.call("POST", "/api/v1/web/ticket", BEARER, json=EVENTS)
        first = first or body["ticket"]
        assert len(tickets) <= MAX_TICKETS, i
    assert first not in tickets
