"""The web interface at 390 px and 1280 px, in English and Spanish, on pages full of real
content (``neighbourhood.py``: a concentrator and a home on one P2P network, with
participants of every role, contracts in every state, intervals open and settled, trades,
demand-response events, contract actions with every result, big amounts, long names).

On every page, the layout audit (``audit.js``) finds no table that loses a column, no cell
or value outside its card and nothing wider than its card; every word of the ledger's
vocabulary the page shows is one the interface translates, and a Spanish page shows none
of them in English. A test without the browser checks that every such word the code can
produce -- statuses, roles, action kinds and results, transaction types, peer directions
-- has an English and a Spanish text. Screenshots go to ``test-artifacts/layout-*.png``.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final, get_args

import pytest
from playwright.sync_api import Browser, Page, expect

from contracts.model import ActionKind
from ledger_core import state
from ledger_core.concentrator.dr import Phase, Status
from ledger_core.membership.admission import MEMBER_STATUSES, REASONS, STAGES
from ledger_core.node.local import RESULTS
from ledger_core.p2p.network import Direction
from ledger_core.state import market
from ledger_core.state.kernel import OPERATOR
from ledger_core.types.tx import Role, Side, TxType
from ledger_core.web import STATIC
from tests.web.browser import DESKTOP, PHONE, opened, shot
from tests.web.neighbourhood import LONG_NAME, Neighbourhood, Node, running

pytestmark = pytest.mark.timeout(420)

AUDIT: Final = (Path(__file__).parent / "audit.js").read_text(encoding="utf-8")

# The statuses the ledger writes (ledger_core/state/), by what they are the status of; a
# new one fails test_the_ledgers_statuses_are_all_known until it is placed here.
CONTRACT: Final = {"proposed", "active", "expired", "revoked"}
ACCOUNT: Final = {"active", "revoked"}
WALLET_REQUEST: Final = {"pending", "confirmed", "cancelled"}
# An interval's (ledger_core/state/market/, which also writes orders' statuses: those
# are open, cleared, unpriced -- all interval statuses too -- and cancelled). "closed"
# (an interval made by a report after its gate) is no longer written: reports carry
# commitments and never make market intervals (docs/privacy.md); chains before that had it.
INTERVAL: Final = {"open", "closed", "cleared", "unpriced", "settled"}
ORDER_ONLY: Final = {"cancelled"}


def vocabulary() -> dict[str, set[str]]:
    """Every word of the ledger's vocabulary the pages can show, by kind (the ``word.KIND.``
    keys of i18n.js), from the code that produces it."""
    return {
        "contract": CONTRACT,
        "account": ACCOUNT,
        "request": WALLET_REQUEST,
        "interval": INTERVAL,
        "side": {str(side) for side in Side},
        "role": {str(role) for role in Role} | _literals(LEDGER, "role") | {OPERATOR},
        "dr": {str(status) for status in Status},
        "phase": {str(phase) for phase in Phase},
        "action": {str(kind) for kind in ActionKind},
        "result": {*RESULTS, "waiting"},  # waiting: no result reported yet
        "peer": set(get_args(Direction.__value__)),
        "tx": {str(kind) for kind in TxType},
        "member": set(MEMBER_STATUSES),
        "stage": set(STAGES),
        "refusal": set(REASONS),
    }


def _sources(package: object, *, recursive: bool) -> str:
    """The source of every module of ``package`` (and of its sub-packages if ``recursive``)."""
    folder = Path(inspect.getfile(package)).parent  # type: ignore[arg-type]
    files = folder.rglob("*.py") if recursive else folder.glob("*.py")
    return "\n".join(path.read_text(encoding="utf-8") for path in sorted(files))


# The state machine outside the market, and the market.
LEDGER: Final = _sources(state, recursive=False)
MARKET: Final = _sources(market, recursive=True)


def _literals(source: str, field: str) -> set[str]:
    """The string values ``source`` assigns to ``field`` in records."""
    patterns = (
        rf'"{field}": "(\w+)"',
        rf'\["{field}"\] = "(\w+)"',
        r'interval_record\(state, \w+, "(\w+)"\)' if field == "status" else None,
    )
    return {found for pattern in patterns if pattern for found in re.findall(pattern, source)}


def texts() -> dict[str, dict[str, str]]:
    """The interface's texts, ``{"en": {key: text}, "es": {...}}``, read from i18n.js."""
    source = (STATIC / "js" / "i18n.js").read_text(encoding="utf-8")
    english, spanish = source.split("\n  es: {\n")
    entry = re.compile(r'^    "([\w.-]+)": "((?:[^"\\]|\\.)*)",$', re.MULTILINE)
    return {"en": dict(entry.findall(english)), "es": dict(entry.findall(spanish))}


def test_every_refusal_the_operator_sees_is_a_known_reason() -> None:
    """The reasons of refused codes (the operator's page translates them)."""
    source = "\n".join(
        path.read_text(encoding="utf-8")
        for path in (
            Path(inspect.getfile(state)).parents[1] / "membership" / "admission.py",
            Path(inspect.getfile(state)).parents[1] / "types" / "invitation.py",
        )
    )
    found = set(re.findall(r'(?:Refused|InvitationError)\(\s*"(\w+)"', source))
    found |= set(re.findall(r'self\.book\.refuse\(\s*"\w+",\s*"(\w+)"', source))
    assert found <= set(REASONS), found - set(REASONS)
    assert len(found) >= 8, "the scan finds the refusals"


def test_the_ledgers_statuses_are_all_known() -> None:
    assert _literals(LEDGER, "status") == CONTRACT | ACCOUNT | WALLET_REQUEST
    assert _literals(MARKET, "status") <= INTERVAL | ORDER_ONLY
    assert "open" in _literals(MARKET, "status"), "the scan finds interval records"


def test_every_word_of_the_ledger_the_pages_show_is_in_both_languages() -> None:
    table = texts()
    known = vocabulary()
    for kind, words in known.items():
        for word in sorted(words):
            key = f"word.{kind}.{word}"
            assert key in table["en"], f"{key} has no English text"
            assert key in table["es"], f"{key} has no Spanish text"
            english, spanish = table["en"][key], table["es"][key]
            assert "_" not in english, f"{key}: {english!r} is a machine word, not English"
            assert spanish.lower() not in (word, english.lower()), f"{key}: not Spanish"
    listed = {key for key in table["en"] if key.startswith("word.")}
    expected = {f"word.{kind}.{word}" for kind, words in known.items() for word in words}
    # Meter sources are names from the node's configuration, not the ledger's words.
    assert {key for key in listed - expected if not key.startswith("word.source.")} == set()


def _forbidden(language: str) -> re.Pattern[str]:
    """What a page in ``language`` must not show. In Spanish: every word of the vocabulary
    as the code writes it and in its English text, and the English of the node's own
    messages (``line 7:``, ``level 2``). In English: the machine words (``turn_on``,
    ``dso``); plain English ones (``open``, ``far``) may be any text of the page. A word
    that is some entry's text in that language is allowed."""
    table = texts()
    words: set[str] = set()
    for kind, values in vocabulary().items():
        for value in values:
            if language == "es":
                words |= {value, value.replace("_", " "), table["en"][f"word.{kind}.{value}"]}
            elif "_" in value or value == "dso":
                words.add(value)
    if language == "es":
        words |= {"line", "level"}
    allowed = {text.lower() for key, text in table[language].items() if key.startswith("word.")}
    words = {word for word in words if word.lower() not in allowed}
    alternatives = "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))
    return re.compile(rf"\b({alternatives})\b", re.IGNORECASE)


# -- in the browser ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def town(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Neighbourhood]:
    with running(tmp_path_factory.mktemp("neighbourhood")) as started:
        yield started


def _audit(page: Page, language: str, name: str) -> dict[str, Any]:
    """Run the audit; fail on any layout problem or untranslated word."""
    result: dict[str, Any] = page.evaluate(AUDIT)
    assert result["problems"] == [], "\n".join(result["problems"])
    assert result["untranslated"] == [], f"{name}: words the tables lack: {result['untranslated']}"
    leaked = sorted({m.group(0) for m in _forbidden(language).finditer(result["text"])})
    assert leaked == [], f"{name} in {language} shows {leaked}"
    return result


def _terms(page: Page) -> set[str]:
    found: list[str] = page.eval_on_selector_all(
        "main [data-term]", "els => els.map(e => e.dataset.term)"
    )
    return set(found)


def _tables(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {table["id"]: table for table in result["tables"]}


def _check(
    page: Page, node: Node, route: str, ready: list[str], language: str, tag: str
) -> tuple[dict[str, dict[str, Any]], set[str]]:
    """Open ``route``, wait until each of ``ready`` shows, audit and photograph the page;
    its tables (by id) and the vocabulary it shows."""
    page.goto(f"{node.url}#/{route}")
    for selector in ready:
        expect(page.locator(selector).first).to_be_visible()
    result = _audit(page, language, route)
    shot(page, f"layout-{node.name}-{route.split('/', maxsplit=1)[0]}-{tag}")
    return _tables(result), _terms(page)


def _rows(tables: dict[str, dict[str, Any]], wanted: dict[str, int]) -> None:
    """Each wanted table is there with at least so many rows."""
    for name, least in wanted.items():
        assert name in tables, f"no table {name}: {sorted(tables)}"
        assert tables[name]["rows"] >= least, (name, tables[name])


@pytest.mark.parametrize(
    ("locale", "viewport"),
    [("en-GB", PHONE), ("es-MX", PHONE), ("en-GB", DESKTOP), ("es-MX", DESKTOP)],
    ids=["en-390", "es-390", "en-1280", "es-1280"],
)
def test_every_page_keeps_its_columns_and_values_inside_its_cards(
    browser: Browser, town: Neighbourhood, locale: str, viewport: dict[str, int]
) -> None:
    language = locale[:2]
    tag = f"{language}-{viewport['width']}"
    shown: dict[str, dict[str, Any]] = {}
    terms: set[str] = set()
    with opened(browser, town.home, locale, viewport) as page:
        ready = ["#balance", "#price-upcoming tbody tr", "#dr-events li", "#reading-at"]
        tables, seen = _check(page, town.home, "overview", ready, language, tag)
        _rows(tables, {"price-upcoming": 8})
        shown |= tables
        terms |= seen

        page.goto(f"{town.home.url}#/contracts")
        expect(page.locator("#awaiting-list li", has_text="casa-9")).to_be_visible()
        page.locator("#contracts tbody tr", has_text=LONG_NAME).click()
        expect(page.locator("#actions tbody tr").nth(len(RESULTS) - 1)).to_be_visible()
        tables, seen = _check(page, town.home, "contracts", ["#actions"], language, tag)
        _rows(tables, {"contracts": 4, "actions": len(RESULTS)})
        shown |= tables
        terms |= seen

        ready = ["#trades tbody tr", "#interval-list tbody tr", "#market-chart svg"]
        tables, seen = _check(page, town.home, "market", ready, language, tag)
        _rows(tables, {"trades": 2, "interval-list": 3})
        shown |= tables
        terms |= seen

        # The block that registered the neighbours, in one go.
        route = f"explorer/{town.heights['registrations']}"
        ready = ["#block-txs tbody tr", "#peer-list tbody tr", "#block-list tbody tr"]
        tables, seen = _check(page, town.home, route, ready, language, tag)
        _rows(tables, {"validator-list": 1, "peer-list": 1, "block-list": 10, "block-txs": 1})
        shown |= tables
        terms |= seen

    with opened(browser, town.concentrator, locale, viewport) as page:
        ready = [
            "#participant-list tbody tr",
            "#operator-dr-list li",
            "#operator-price-now",
            "#invite-form",
            "#no-refusals",
        ]
        tables, seen = _check(page, town.concentrator, "operator", ready, language, tag)
        # Members (the home, seven neighbours, the operator) and an invitation not used yet.
        _rows(tables, {"participant-list": 10})
        shown |= tables
        terms |= seen
        ready = ["#peer-list tbody tr", "#block-list tbody tr"]
        terms |= _check(page, town.concentrator, "explorer", ready, language, tag)[1]

    # The pages showed the vocabulary's words, each through the interface's tables.
    roles = {
        f"role.{role}"
        for role in (
            "prosumer",
            "consumer",
            "retailer",
            "aggregator",
            "supplier",
            "dso",
            "operator",
        )
    }
    expected = {
        *(f"contract.{status}" for status in ("active", "proposed", "revoked", "expired")),
        *(f"result.{result}" for result in RESULTS),
        "action.turn_on", "action.turn_off",
        "interval.open", "interval.settled", "side.buy", "side.sell",
        "member.active", "member.revoked", "member.invited", *roles,
        "dr.active", "peer.inbound", "peer.outbound", "tx.register",
    }  # fmt: skip
    assert expected <= terms, expected - terms
    assert terms & {"dr.far", "dr.near"}, "the evening's event is announced"
    # On a phone every table but the two small ones is a list of labelled rows; on a
    # desktop, where their cards are wide enough, the wide ones stay tables.
    small = {"validator-list", "price-upcoming"}
    for name, table in shown.items():
        if viewport["width"] == PHONE["width"]:
            assert table["stacked"] == (name not in small), (name, table)
        elif name in ("contracts", "actions", "trades", "interval-list", "participant-list"):
            assert not table["stacked"], (name, table)
