"""Checking a proof: a home's readings against the commitments on chain, and the statements
they imply against the ones on chain (docs/privacy.md, "Disputes: proofs").

``POST /api/v1/proofs/check`` takes a proof (``{"chain_id", "openings": [{"meter",
"interval_start", "import_wh", "export_wh", "salt"}]}``, as a home's
``GET /api/v1/local/meter/proof`` gives it) and answers, from this node's own copy of
the chain and nothing else:

* for each opening, whether it opens the commitment of that meter's report of that
  interval (``valid``), or why not (``no_report``, ``mismatch``);
* for each delivery and each bill of the meters' owners that the valid openings bear
  on, the energy on chain, the energy the readings imply (the same arithmetic as the
  concentrator's, :mod:`ledger_core.types.metering`), whether the proof covers every
  report the statement rests on (``complete``) and whether they agree.

A home checks its own statements this way, and anyone it hands its proof to checks
them on their own node: a wrong statement is proved by readings that open the
commitments its meter made before settlement.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

from aiohttp import web

from ledger_core.api.openapi import (
    ADDRESS_SCHEMA,
    ANY_OBJECT,
    BOOL,
    INT,
    TEXT,
    array,
    enum,
    obj,
    operation,
)
from ledger_core.api.server import Access, Feature, Route, error, node_of, read_json, view
from ledger_core.state import keys
from ledger_core.state.keys import StateView
from ledger_core.types.fields import FieldError
from ledger_core.types.genesis import Genesis
from ledger_core.types.metering import (
    CHAIN_ID_RE,
    MAX_ENERGY_WH,
    MAX_OPENINGS,
    SALT_RE,
    BillLine,
    IntervalUse,
    Opening,
    Proof,
    bill_lines,
    delivered,
)
from ledger_core.types.tx import MAX_TIME

MAX_PROOF_BYTES: Final = 4 << 20
DAY: Final = 86400
PRICE_LOOKBACK: Final = 31 * DAY


def _owner(state: StateView, meter: str) -> str | None:
    account = state.account(meter)
    return account.get("owner") if account is not None else None


def _final_prices(state: StateView, genesis: Genesis, start: int) -> tuple[int, int] | None:
    """The interval's price signal, else the latest before it: the ledger's backstop."""
    for since in (start - PRICE_LOOKBACK, genesis.genesis_time - DAY):
        rows = state.by_interval(keys.PRICES, since, start + 1, 1 << 20)
        if rows:
            _, record = rows[-1]
            return int(str(record["import_price"])), int(str(record["export_price"]))
    return None


def _traded(state: StateView, participant: str, start: int, end: int) -> dict[int, tuple[int, int]]:
    """``interval start -> (bought, sold)`` of a participant's trades in the range."""
    found: dict[int, tuple[int, int]] = {}
    for t, position in state.by_interval(keys.positions(participant), start, end, 1 << 20):
        bought = sold = 0
        indexes = position.get("trades")
        assert isinstance(indexes, list)
        for index in indexes:
            assert isinstance(index, int)
            trade = state.trade(t, index)
            assert trade is not None
            if trade["buyer"] == participant:
                bought += trade["energy_wh"]
            else:
                sold += trade["energy_wh"]
        found[t] = (bought, sold)
    return found


def _meters_of(state: StateView, participant: str) -> list[str]:
    return sorted(
        address
        for address, account in state.accounts()
        if account.get("role") == "meter" and account.get("owner") == participant
    )


def _lines(lines: Iterable[BillLine]) -> list[dict[str, Any]]:
    """Lines with energy, in price order (a line of zeros bills nothing)."""
    kept = [line for line in lines if line.import_wh or line.unused_wh or line.export_wh]
    return [line.to_json() for line in sorted(kept, key=lambda line: line.prices)]


def check(state: StateView, genesis: Genesis, proof: Proof) -> dict[str, Any]:
    """The answer of ``POST /proofs/check`` for ``proof``, from the committed ``state``."""
    rows: list[dict[str, Any]] = []
    valid: dict[tuple[str, int], Opening] = {}
    owners: dict[str, str] = {}
    for opening in proof.openings:
        row: dict[str, Any] = {"meter": opening.meter, "interval_start": opening.interval_start}
        report = state.report(opening.meter, opening.interval_start)
        owner = _owner(state, opening.meter)
        if report is None or owner is None:
            row |= {"valid": False, "reason": "no_report"}
        elif not opening.opens(genesis.chain_id, report["commitment"]):
            row |= {"valid": False, "reason": "mismatch"}
        else:
            row["valid"] = True
            valid[opening.meter, opening.interval_start] = opening
            owners[opening.meter] = owner
        rows.append(row)
    statements = [*_deliveries(state, valid, owners), *_bills(state, genesis, valid, owners)]
    return {
        "chain_id": genesis.chain_id,
        "openings": rows,
        "valid": sum(1 for r in rows if r["valid"]),
        "invalid": sum(1 for r in rows if not r["valid"]),
        "statements": statements,
        "agrees": all(r["valid"] for r in rows)
        and all(s["agrees"] for s in statements if s["complete"]),
    }


def _deliveries(
    state: StateView, valid: dict[tuple[str, int], Opening], owners: dict[str, str]
) -> list[dict[str, Any]]:
    found = []
    for owner, start in sorted({(owners[m], t) for m, t in valid}):
        statement = state.raw(keys.statement(owner, start))
        if not isinstance(statement, dict) or not statement.get("sold_wh"):
            continue
        cited = [str(m) for m in statement.get("meters", [])]  # type: ignore[union-attr]
        mine = [m for m in _meters_of(state, owner) if state.report(m, start) is not None]
        exported = sum(valid[m, start].export_wh for m in mine if (m, start) in valid)
        sold = int(str(statement["sold_wh"]))
        expected = delivered(exported, sold)
        on_chain = int(str(statement["delivered_wh"]))
        found.append(
            {
                "kind": "delivery",
                "participant": owner,
                "interval_start": start,
                "on_chain": {"delivered_wh": on_chain, "meters": cited},
                "expected": {"delivered_wh": expected, "meters": mine},
                "complete": all((m, start) in valid for m in mine),
                "agrees": on_chain == expected,
            }
        )
    return found


def _bills(
    state: StateView,
    genesis: Genesis,
    valid: dict[tuple[str, int], Opening],
    owners: dict[str, str],
) -> list[dict[str, Any]]:
    day_of = genesis.params.day_of
    found = []
    for owner, day in sorted({(owners[m], day_of(t)) for m, t in valid}):
        bill = state.raw(keys.bill(owner, day))
        if not isinstance(bill, dict):
            continue
        billed: list[tuple[str, int]] = []
        for meter in _meters_of(state, owner):
            for t, record in state.by_interval(keys.reports(meter), day, day + DAY, 1 << 20):
                if "billed" in record:
                    billed.append((meter, t))
        traded = _traded(state, owner, day, day + DAY)
        uses = []
        for t in sorted({t for _, t in billed}):
            openings = [valid[m, t] for m, u in billed if u == t and (m, t) in valid]
            prices = _final_prices(state, genesis, t)
            if prices is None:
                continue
            bought, sold = traded.get(t, (0, 0))
            uses.append(
                IntervalUse(
                    t,
                    sum(o.import_wh for o in openings),
                    sum(o.export_wh for o in openings),
                    bought,
                    sold,
                    *prices,
                )
            )
        raw = bill.get("by_price", [])
        assert isinstance(raw, list)
        on_chain = _lines(BillLine.from_json(line, "by_price") for line in raw)
        expected = _lines(bill_lines(uses))
        found.append(
            {
                "kind": "bill",
                "participant": owner,
                "day": day,
                "on_chain": {"by_price": on_chain, "amount": bill.get("amount")},
                "expected": {"by_price": expected},
                "reports": len(billed),
                "complete": all(report in valid for report in billed),
                "agrees": on_chain == expected,
            }
        )
    return found


ENERGY: Final = {"type": "integer", "minimum": 0, "maximum": MAX_ENERGY_WH}


async def post_check(request: web.Request) -> web.Response:
    """``POST /proofs/check``."""
    body = await read_json(request, MAX_PROOF_BYTES, "a proof")
    try:
        proof = Proof.from_json(body, "")
    except FieldError as err:
        return error(400, "malformed", err.message, err.field.lstrip("."))
    node = node_of(request)
    if proof.chain_id != node.genesis.chain_id:
        return error(
            422,
            "wrong_chain",
            f"the proof is for chain {proof.chain_id!r}, this node's is {node.genesis.chain_id!r}",
            "chain_id",
        )
    answer = check(view(request), node.genesis, proof)
    return web.json_response({"height": node.height, **answer})


FEATURE: Final = Feature(
    "proofs",
    (
        Route(
            "POST",
            "/proofs/check",
            post_check,
            Access.TOKEN,
            operation(
                "Check a proof (readings and salts) against the commitments on chain, and the "
                "deliveries and bills they bear on against the statements on chain",
                answers={
                    200: obj(
                        {
                            "height": INT,
                            "chain_id": TEXT,
                            "openings": array(
                                obj(
                                    {
                                        "meter": ADDRESS_SCHEMA,
                                        "interval_start": INT,
                                        "valid": BOOL,
                                        "reason": enum(["no_report", "mismatch"]),
                                    },
                                    optional=("reason",),
                                )
                            ),
                            "valid": INT,
                            "invalid": INT,
                            "statements": array(
                                obj(
                                    {
                                        "kind": enum(["delivery", "bill"]),
                                        "participant": ADDRESS_SCHEMA,
                                        "interval_start": INT,
                                        "day": INT,
                                        "on_chain": ANY_OBJECT,
                                        "expected": ANY_OBJECT,
                                        "complete": BOOL,
                                        "agrees": BOOL,
                                    },
                                    optional=("interval_start", "day"),
                                )
                            ),
                            "agrees": BOOL,
                        }
                    )
                },
                refusals=(400, 413, 422),
                body=obj(
                    {
                        "chain_id": {"type": "string", "pattern": f"^{CHAIN_ID_RE.pattern}$"},
                        "openings": {
                            **array(
                                obj(
                                    {
                                        "meter": ADDRESS_SCHEMA,
                                        "interval_start": {
                                            "type": "integer",
                                            "minimum": 0,
                                            "maximum": MAX_TIME,
                                        },
                                        "import_wh": ENERGY,
                                        "export_wh": ENERGY,
                                        "salt": {
                                            "type": "string",
                                            "pattern": f"^{SALT_RE.pattern}$",
                                        },
                                    },
                                    closed=True,
                                )
                            ),
                            "minItems": 1,
                            "maxItems": MAX_OPENINGS,
                        },
                    },
                    closed=True,
                ),
            ),
        ),
    ),
)
