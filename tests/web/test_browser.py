"""The web interface in a real browser: Playwright driving Debian's Chromium against a real
node process (a concentrator with a meter, so every page has something to show).

Every page loads; a contract with an error shows the message at its line; a valid one is
signed, submitted and its receipt shown; a price the operator publishes and a meter reading
arrive live on the overview; a home with weeks of meter history sees its forecast
drawn; the operator's forms publish a price and issue a
demand-response event; a wrong token is refused. Screenshots go to ``test-artifacts/``
(see ``browser.py`` for the browser; ``test_layout.py`` checks the layout and the
translations on pages full of content).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Browser, expect

from ledger_core.analytics.localtime import Site, midnight
from ledger_core.analytics.store import ReadingStore
from ledger_core.analytics.synthetic import simulate
from ledger_core.demo.chain import free_port
from ledger_core.node.home import Config, init_home
from tests.web.browser import DESKTOP, PHONE, REPO, opened, shot

TARIFF = REPO / "docs" / "tariffs" / "example-residential-tou.toml"
INTERVAL = 900

pytestmark = pytest.mark.timeout(120)


@dataclass
class NodeProcess:
    """A ``transactiva node`` process with the web interface."""

    url: str
    token: str
    home: Path
    process: subprocess.Popen[bytes]

    def call(self, method: str, path: str, body: object | None = None) -> Any:
        request = urllib.request.Request(  # noqa: S310 - loopback
            f"{self.url}api/v1/{path}",
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
            method=method,
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return json.loads(response.read())


def _listening(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
        return True
    return False


@contextlib.contextmanager
def running_node(home: Path, history_days: int = 0) -> Iterator[NodeProcess]:
    """A concentrator node with a pushed meter; ``history_days`` of a simulated home's
    readings are in its analytics store before it starts (so it fits a forecast)."""
    port = free_port()
    config = Config(
        api_port=port,
        block_interval=0.05,
        meter={"source": {"type": "pushed", "name": "home_assistant"}},
        concentrator={"tariff": "tariff.toml"},
    )
    init_home(home, "barrio-web", int(time.time()) - 3600, config)
    shutil.copy(TARIFF, home / "tariff.toml")
    if history_days:
        timezone = Site().timezone
        today = dt.datetime.now(ZoneInfo(timezone)).date()
        first = today - dt.timedelta(days=history_days)
        assert midnight(first, timezone) < time.time()
        household = simulate(first, history_days, seed=3)
        with ReadingStore(home / "analytics.db") as store:
            store.add_intervals(household.interval_rows())
    log = (home / "node.log").open("ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "ledger_core", "node", "--dir", str(home)],
        stdout=log,
        stderr=log,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    log.close()
    try:
        deadline = time.monotonic() + 30
        while not _listening(port):
            assert process.poll() is None, (home / "node.log").read_text()
            assert time.monotonic() < deadline, "the node did not listen within 30 s"
            time.sleep(0.05)
        token = (home / "api-token").read_text().strip()
        yield NodeProcess(f"http://127.0.0.1:{port}/", token, home, process)
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    """A new home: no meter history yet."""
    with running_node(tmp_path_factory.mktemp("browser") / "node") as started:
        yield started


def current_interval() -> int:
    now = int(time.time())
    return now - now % INTERVAL


PAGES = {
    "overview": "#price-now",
    "contracts": "#contract-source",
    "market": "#market-chart svg",
    "explorer": "#block-list tbody tr",
    "operator": "#participant-list tbody tr",
}


@pytest.mark.parametrize(
    ("locale", "viewport", "title"),
    [("en-GB", DESKTOP, "Your home"), ("es-MX", PHONE, "Tu hogar")],
)
def test_every_page_loads_in_english_and_in_spanish_on_a_phone(
    browser: Browser, node: NodeProcess, locale: str, viewport: dict[str, int], title: str
) -> None:
    language = locale[:2]
    with opened(browser, node, locale, viewport) as page:
        expect(page.locator("h1")).to_have_text(title)
        expect(page.locator("#nav a[data-page]")).to_have_count(5)
        # A new meter has no history yet: the forecast card says it will come.
        waiting = {"en": "needs a few days of meter history", "es": "unos días de historial"}
        expect(page.locator("#forecast-state")).to_contain_text(waiting[language])
        for name, ready in PAGES.items():
            page.goto(f"{node.url}#/{name}")
            expect(page.locator(f"#nav a[data-page={name}]")).to_have_attribute(
                "aria-current", "page"
            )
            expect(page.locator(ready).first).to_be_visible()
            shot(page, f"{name}-{language}")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= viewport["width"] + 1, "no sideways scrolling of the page"


def test_a_contract_error_is_shown_at_its_line_and_a_valid_one_gets_its_receipt(
    browser: Browser, node: NodeProcess
) -> None:
    with opened(browser, node, "en-US", DESKTOP) as page:
        page.goto(f"{node.url}#/contracts")
        page.select_option("#template", "paper_printed")
        problem = page.locator("#diagnostics li[data-severity=error]")
        expect(problem).to_have_count(1)
        expect(problem).to_have_attribute("data-line", "2")
        expect(problem).to_contain_text("Line 2, column 35:")
        expect(problem).to_contain_text("2019/09/31 is not a calendar date")
        expect(page.locator("#gutter span[data-line='2']")).to_have_class("error")
        expect(page.locator("#submit")).to_be_disabled()
        shot(page, "contract-error")

        source = page.locator("#contract-source")
        text = (
            "Contract 'bomba'\n"
            "Valid from 2026/01/01 00:00:00 to 2036/01/01 00:00:00\n"
            "IF Prize < 3 THEN TURN ON DEVICE 'Bomba' ENDIF\n"
            "Parties: ISO\n"
        )
        source.fill(text)
        problem = page.locator("#diagnostics li[data-line='3']")
        expect(problem).to_contain_text("Line 3, column 4:")
        expect(problem).to_contain_text("did you mean Price?")
        expect(page.locator("#gutter span[data-line='3']")).to_have_class("error")
        source.fill(text.replace("Prize", "Price"))
        expect(page.locator("#verdict")).to_have_class(re.compile(r"\bok\b"))
        expect(page.locator("#verdict")).to_contain_text("Valid contract 0x")
        page.click("#submit")
        receipt = page.locator("#receipt")
        expect(receipt).to_have_text(
            re.compile(
                r"^Timestamp \d{4}/\d{2}/\d{2} \d{2}:\d{2}:\d{2} to 'bomba' \[0x[0-9A-F]{10}\]$"
            )
        )
        row = page.locator("#contracts tbody tr", has_text="bomba")
        expect(row).to_contain_text("active")
        shot(page, "contract-receipt")
        row.click()
        expect(page.locator("#contract-detail")).to_contain_text("bomba")


def test_a_published_price_and_a_meter_reading_arrive_live(
    browser: Browser, node: NodeProcess
) -> None:
    with opened(browser, node, "en-US", DESKTOP) as page:
        expect(page.locator("#price-now")).to_be_visible()
        published = node.call(
            "POST",
            "operator/prices",
            {"from": current_interval(), "import_price": 42424, "export_price": 11111},
        )
        assert published["published"] == [current_interval()]
        expect(page.locator("#price-now")).to_contain_text("4.2424")
        expect(page.locator("#price-export")).to_contain_text("1.1111")
        node.call("POST", "local/meter/readings", {"power": -1500.0})
        expect(page.locator("#power-export")).to_have_text("1.50 kW")
        expect(page.locator("#power-import")).to_have_text("0 W")
        shot(page, "overview-live")


def test_the_operator_publishes_a_price_and_issues_a_demand_response_event(
    browser: Browser, node: NodeProcess
) -> None:
    with opened(browser, node, "en-US", DESKTOP) as page:
        page.goto(f"{node.url}#/operator")
        page.select_option("#price-from", index=1)
        page.fill("#price-import", "3.1337")
        page.click("#price-form button[type=submit]")
        expect(page.locator("#price-result")).to_have_text("Published 1 interval(s).")
        page.fill("#price-import", "not a price")
        page.click("#price-form button[type=submit]")
        expect(page.locator("#price-result .error")).to_contain_text("import_price")
        page.select_option("#dr-level", "2")
        page.click("#dr-form button[type=submit]")
        expect(page.locator("#dr-result")).to_contain_text("issued")
        expect(page.locator("#operator-dr-list li").first).to_contain_text("SIMPLE")
        shot(page, "operator-sent")
        page.goto(f"{node.url}#/overview")
        expect(page.locator("#dr-events li").first).to_contain_text("SIMPLE")
        upcoming = page.locator("#price-upcoming tbody tr").first
        expect(upcoming).to_contain_text("3.1337")


def test_a_wrong_token_is_refused(browser: Browser, node: NodeProcess) -> None:
    context = browser.new_context(locale="es-ES")
    try:
        page = context.new_page()
        page.set_default_timeout(15000)
        page.goto(node.url)
        page.fill("#token", "0" * 64)
        page.click("form.login button[type=submit]")
        expect(page.locator("form.login .notice.error")).to_have_text(
            "El nodo no aceptó este token."
        )
        assert page.evaluate("sessionStorage.getItem('transactiva.token')") is None
    finally:
        context.close()


def test_a_home_with_history_sees_its_forecast(browser: Browser, tmp_path: Path) -> None:
    with running_node(tmp_path / "node", history_days=40) as node:
        deadline = time.monotonic() + 60
        while not node.call("GET", "local/analytics/summary")["ready"]:
            assert time.monotonic() < deadline, "the analytics did not fit within 60 s"
            time.sleep(0.2)
        forecast = node.call("GET", "local/analytics/forecast?hours=24")
        assert len(forecast["series"]) == 96
        for locale, legend in (("en-GB", "Expected consumption"), ("es-MX", "Consumo esperado")):
            with opened(browser, node, locale, DESKTOP) as page:
                card = page.locator("#forecast")
                expect(card.locator("svg path.forecast-use")).to_have_count(1)
                expect(card.locator("svg path.forecast-band")).to_have_count(1)
                expect(card.locator("svg path.forecast-pv")).to_have_count(1)
                expect(card).to_contain_text(legend)
                expect(card.locator("#forecast-state")).to_have_count(0)
                # The drawn line is a step for each of the 96 quarter-hours (two segments).
                drawn = card.locator("svg path.forecast-use").get_attribute("d") or ""
                assert len(re.findall(r"[ML]", drawn)) == 2 * 96
                shot(page, f"overview-forecast-{locale[:2]}")
