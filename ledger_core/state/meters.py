"""Meters: interval reports signed by a meter's key, and the DSO's service cuts.

A report (``report``) records a meter's *commitment* to what it imported and
exported in one interval (docs/privacy.md): a salted hash, never the energy.
It is accepted once per meter and interval, after the interval has ended and
within the report grace. The reading itself stays with the home and the
concentrator, which cites the commitment when it settles the energy
(:mod:`ledger_core.state.market.metered`). The DSO marks a participant's supply
cut or reconnected (``service``).
"""

from __future__ import annotations

from typing import Final

from ledger_core.state import keys
from ledger_core.state.kernel import (
    Account,
    Chain,
    Handler,
    Overlay,
    Rejected,
    active_account,
    int_of,
    require_operator,
    str_of,
)
from ledger_core.types.abci import BlockContext, Event
from ledger_core.types.codec import Value
from ledger_core.types.tx import Role, Tx, TxType


def _report(
    chain: Chain, state: Overlay, tx: Tx, account: Account, ctx: BlockContext
) -> list[Event]:
    if account.get("role") != Role.METER:
        raise Rejected("not_permitted", "only a meter sends interval reports")
    interval = chain.genesis.params.interval_seconds
    start = int_of(tx.body, "interval_start")
    if start % interval:
        raise Rejected("misaligned_interval", f"interval_start must be a multiple of {interval} s")
    end = start + interval
    if end > ctx.time:
        raise Rejected("future_interval", "the interval has not ended yet")
    grace = chain.genesis.params.report_grace_seconds
    if end + grace < ctx.time:
        raise Rejected("late_report", f"reports are accepted up to {grace} s after the interval")
    key = keys.report(tx.signer, start)
    if state.get(key) is not None:
        raise Rejected("duplicate_report", "this meter already reported this interval")
    record: dict[str, Value] = {"commitment": str_of(tx.body, "commitment"), "height": ctx.height}
    state.put(key, record)
    return [{"type": "interval_report", "meter": tx.signer, "interval_start": start, **record}]


def _service(
    chain: Chain, state: Overlay, tx: Tx, account: Account, ctx: BlockContext
) -> list[Event]:
    require_operator(account, "DSO")
    participant = str_of(tx.body, "participant")
    active_account(state, participant, "participant")
    connected = tx.body["connected"]
    state.put(keys.service(participant), {"connected": connected, "height": ctx.height})
    kind = "service_reconnected" if connected else "service_cut"
    return [{"type": kind, "participant": participant}]


HANDLERS: Final[dict[TxType, Handler]] = {
    TxType.REPORT: _report,
    TxType.SERVICE: _service,
}
