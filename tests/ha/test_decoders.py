"""Property tests of the integration's own pure code: catching up with the node's action
log, and what it keeps of a contract. (The decoders of what the node sends, and the units,
are the wire contract's: tests/client.)"""

from __future__ import annotations

import dataclasses
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from custom_components.transactiva.actions import Decision, plan_catch_up
from custom_components.transactiva.coordinator import contract_info
from transactiva_client.models import ActionLogEntry, ContractAction, ContractRecord
from transactiva_client.protocol import DEVICE_ACTIONS, ActionResult

SETTINGS = settings(
    suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=300, deadline=None
)
# As the node's home agent publishes it (ActionRecord.to_event() plus action_id).
ACTION: dict[str, Any] = {
    "type": "contract_action",
    "action_id": 7,
    "time": 1795515300,
    "trigger": "price_signal",
    "contract_id": "ab" * 32,
    "short_id": "0xABABABABAB",
    "contract": "lavado barato",
    "action": "turn_on",
    "device": "Lavadora",
    "reason": "line 7: IF Price < 3 THEN",
    "description": "turn on 'Lavadora' (line 7: IF Price < 3 THEN)",
}
A, B = "tv" + "a" * 40, "tv" + "b" * 40


def test_a_contract_keeps_its_validity_window_from_its_text() -> None:
    record = ContractRecord.from_json(
        {
            "id": "ab" * 32,
            "short_id": "0xABABABABAB",
            "name": "lavado barato",
            "status": "proposed",
            "proposer": A,
            "signers": [A, B],
            "signed": [A],
            "source": "Contract 'lavado barato'\n"
            "Valid from 2026/01/01 00:00:00 to 2030/12/31 23:59:59\n",
        }
    )
    info = contract_info(record)
    assert (info.valid_from, info.valid_to) == ("2026/01/01 00:00:00", "2030/12/31 23:59:59")
    assert (info.status, info.signers, info.signed) == ("proposed", [A, B], [A])
    info.signed.append(B)  # the coordinator follows the signatures
    assert record.signed == (A,)
    bare = contract_info(dataclasses.replace(record, source="Contract 'x'\n"))
    assert (bare.valid_from, bare.valid_to) == (None, None)


DEVICES = st.sampled_from(["Lavadora", "Bomba", "Clima", None])
KINDS = st.sampled_from(["turn_on", "turn_off", "restore", "notify", "sell_surplus"])
RESULT = st.sampled_from([None, *ActionResult])


@st.composite
def action_logs(draw: st.DrawFn) -> list[ActionLogEntry]:
    """Rows of a node's action log: distinct ids, any devices, kinds and results."""
    ids = draw(st.lists(st.integers(1, 60), unique=True, max_size=25))
    rows = []
    for n in ids:
        row = ACTION | {"action_id": n, "device": draw(DEVICES), "action": draw(KINDS)}
        rows.append(ActionLogEntry(ContractAction.from_json(row), draw(RESULT), ""))
    return rows


@SETTINGS
@given(action_logs(), st.none() | st.integers(0, 70))
def test_catching_up_carries_out_each_devices_newest_missed_action_once(
    logged: list[ActionLogEntry], handled: int | None
) -> None:
    steps = plan_catch_up(logged, handled)
    ids = [item.action.action_id for item, _, _ in steps]
    assert ids == sorted(ids)
    newest = max(ids, default=0)
    if handled is None or (logged and max(i.action.action_id for i in logged) < handled):
        # The first meeting (or a replaced log): the newest row is shown, nothing is done.
        assert [decision for _, decision, _ in steps] == ([Decision.HISTORY] if logged else [])
        assert newest == max((i.action.action_id for i in logged), default=0)
        return
    missed = [item for item in logged if item.action.action_id > handled]
    assert sorted(ids) == sorted(item.action.action_id for item in missed)
    carried: set[str] = set()
    for item, decision, newer in steps:
        action = item.action
        same_device = [
            other.action.action_id
            for other in missed
            if other.action.device == action.device and other.action.action in DEVICE_ACTIONS
        ]
        if decision is Decision.CARRY_OUT:
            assert action.device is not None
            assert action.action in DEVICE_ACTIONS
            assert item.result in (None, "skipped")
            assert action.action_id == max(same_device)
            assert action.device not in carried
            carried.add(action.device)
        elif decision is Decision.SUPERSEDED:
            assert action.action in DEVICE_ACTIONS
            assert newer == max(same_device) > action.action_id
        else:
            assert newer is None
            switching = action.device is not None and action.action in DEVICE_ACTIONS
            assert not switching or item.result not in (None, "skipped")
