"""Inviting, admitting and countersigning in a real browser, on a real operator's node (made
with ``transactiva init --p2p-port``, so it issues invitations).

The Operator page invites a home (its code, and the code as a QR image), lists it as
invited, and cancels it; the Contracts page shows a neighbour's contract that names this
home under "awaiting your signature" and signs it with one button, showing the receipt.
In English and in Spanish. Screenshots go to ``test-artifacts/``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from playwright.sync_api import Browser, expect

from ledger_core.demo.chain import free_port, paper_contract
from ledger_core.types.crypto import SigningKey
from ledger_core.types.tx import TxType, sign
from tests.web.browser import DESKTOP, PHONE, REPO, opened, shot

pytestmark = pytest.mark.timeout(180)
CHAIN = "barrio-invita"


@dataclass
class OperatorNode:
    url: str
    token: str
    process: subprocess.Popen[bytes]

    def call(
        self, method: str, path: str, body: object | None = None, raw: bytes | None = None
    ) -> Any:
        request = urllib.request.Request(  # noqa: S310 - loopback
            f"{self.url}api/v1/{path}",
            data=raw if raw is not None else None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
            method=method,
        )
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return json.loads(response.read())


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OperatorNode]:
    home = tmp_path_factory.mktemp("operador") / "node"
    port = free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "client")])}
    subprocess.run(
        [sys.executable, "-m", "ledger_core", "init", "--dir", str(home), "--chain-id", CHAIN,
         "--api-port", str(port), "--p2p-port", str(free_port()), "--p2p-host", "127.0.0.1"],
        check=True, capture_output=True, timeout=60, env=env,
    )  # fmt: skip
    with (home / "node.log").open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "ledger_core", "node", "--dir", str(home)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
    token = (home / "api-token").read_text().strip()
    started = OperatorNode(f"http://127.0.0.1:{port}/", token, process)
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(OSError):
                started.call("GET", "status")
                break
            assert process.poll() is None, (home / "node.log").read_text()
            assert time.monotonic() < deadline, "the node did not answer within 30 s"
            time.sleep(0.1)
        yield started
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


@pytest.mark.parametrize(
    ("locale", "viewport", "texts"),
    [
        ("en-GB", DESKTOP, ("Invite a home", "invited", "No invitation code has been refused.")),
        ("es-MX", PHONE, ("Invitar a un hogar", "invitado", "No se ha rechazado ningún")),
    ],
)
def test_the_operator_invites_a_home_and_cancels_the_invitation(
    browser: Browser,
    node: OperatorNode,
    locale: str,
    viewport: dict[str, int],
    texts: tuple[str, ...],
) -> None:
    title, invited, no_refusals = texts
    name = f"casa-{locale[:2]}"
    with opened(browser, node, locale, viewport) as page:
        page.goto(f"{node.url}#/operator")
        expect(page.locator("main h2", has_text=title)).to_be_visible()
        expect(page.locator("#refusals")).to_contain_text(no_refusals)
        page.fill("#invite-name", name.upper())
        page.select_option("#invite-role", "prosumer")
        page.select_option("#invite-approve", "manual")
        page.click("#invite-form button[type=submit]")
        code = page.locator("#invitation-code")
        expect(code).to_have_text(re.compile(r"^TV1(-[A-Z2-7]{1,5})+$"))
        expect(page.locator("#invitation-qr")).to_be_visible()
        row = page.locator(f"#participant-list tr[data-name='{name}']")
        expect(row).to_contain_text(invited)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= viewport["width"] + 1, "the code wraps inside its card"
        shot(page, f"operator-invitation-{locale[:2]}")
        listed = node.call("GET", "operator/invitations")["invitations"]
        assert [e["approve"] for e in listed if e["name"] == name] == ["manual"]
        row.locator("button[data-revoke]").click()
        expect(page.locator(f"#participant-list tr[data-name='{name}']")).to_have_count(0)


def test_a_contract_awaiting_this_homes_signature_is_signed_with_one_button(
    browser: Browser, node: OperatorNode
) -> None:
    neighbour = SigningKey.generate()
    node.call(
        "POST",
        "local/register?wait=true",
        {"public_key": neighbour.public_key.hex(), "role": "prosumer", "name": "vecina-7"},
    )
    source = paper_contract("compartido", _date(2026, 1, 1), _date(2030, 12, 31)).replace(
        "Parties: ISO", "Parties: ISO, 'Vecina-7'"
    )
    proposed = sign(neighbour, CHAIN, TxType.CONTRACT_PROPOSE, 1, {"source": source})
    answer = node.call("POST", "txs?wait=true", raw=proposed.wire())
    assert answer["code"] == "ok", answer
    with opened(browser, node, "en-US", DESKTOP) as page:
        page.goto(f"{node.url}#/contracts")
        item = page.locator("#awaiting-list li", has_text="compartido")
        expect(item).to_contain_text("Proposed by")
        expect(item).to_contain_text("vecina-7")
        shot(page, "contracts-awaiting")
        item.locator("button[data-sign]").click()
        expect(page.locator("#awaiting-receipt")).to_have_text(
            re.compile(r"^Timestamp [0-9/]{10} [0-9:]{8} to 'compartido' \[0x[0-9A-F]{10}\]$")
        )
        expect(page.locator("#awaiting-none")).to_be_visible()
        expect(page.locator("#contracts tbody tr", has_text="compartido")).to_contain_text("active")


def _date(year: int, month: int, day: int) -> Any:
    from datetime import datetime  # noqa: PLC0415

    return datetime(year, month, day)
