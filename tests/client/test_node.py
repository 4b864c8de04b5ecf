"""The client against real nodes (``transactiva node`` processes on loopback): the version
handshake, the node's refusals as the client's errors, every typed answer, and the
streams: every event a node emits decodes to a known kind, and a stream resumes without
a gap.

A neighbour (a prosumer with a key of its own) signs its own transactions with the
node's signing helpers, as a neighbour's home would."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import aiohttp
import pytest

from ledger_core.demo.chain import paper_contract
from ledger_core.types.crypto import SigningKey
from ledger_core.types.tx import TxType as SignedType
from ledger_core.types.tx import sign
from tests.client.conftest import RealNode
from transactiva_client import (
    TransactivaAuthError,
    TransactivaClient,
    TransactivaRequestError,
)
from transactiva_client.models import (
    ContractChange,
    DemandResponse,
    LedgerMessage,
    MarketResult,
    NewBlock,
    PriceSignal,
    ServiceChange,
    WalletChange,
    WalletRequest,
)
from transactiva_client.protocol import (
    CLIENT_API_VERSION,
    CONTRACT_EVENTS,
    ActionKind,
    ActionResult,
    ActionTrigger,
    AdmissionStatus,
    ContractStatus,
    ErrorCode,
    EventKind,
    LocalEventKind,
    OperatorRole,
    Role,
    TxType,
    WalletReason,
)

CHAIN_ID = "transactiva-local"
INTERVAL = 900
# Decoders of the payloads of the ledger's events, by kind: each event of these kinds a
# real node streams must decode.
PAYLOADS: dict[EventKind, Callable[[Any], object]] = {
    EventKind.NEW_BLOCK: lambda event: NewBlock.from_json(event.data),
    EventKind.WALLET_CHANGE: lambda event: WalletChange.from_json(event.data),
    EventKind.DEPOSIT_REQUESTED: WalletRequest.from_event,
    EventKind.WITHDRAWAL_REQUESTED: WalletRequest.from_event,
    EventKind.WITHDRAWAL_PAID: WalletRequest.from_event,
    EventKind.WALLET_REQUEST_CANCELLED: WalletRequest.from_event,
    EventKind.SERVICE_CUT: ServiceChange.from_event,
    EventKind.SERVICE_RECONNECTED: ServiceChange.from_event,
    EventKind.PRICE_SIGNAL: lambda event: PriceSignal.from_json(event.data),
    EventKind.DR_EVENT: lambda event: DemandResponse.from_json(event.data),
    EventKind.INTERVAL_CLEARED: lambda event: MarketResult.from_json(event.data),
    **dict.fromkeys(CONTRACT_EVENTS, ContractChange.from_event),
}


class Neighbour:
    """A prosumer registered on the node's chain, signing its own transactions."""

    def __init__(self, client: TransactivaClient) -> None:
        self.key = SigningKey.generate()
        self.client = client
        self.nonce = 0

    @property
    def address(self) -> str:
        return self.key.address

    async def send(self, tx_type: TxType, body: dict[str, Any]) -> str:
        self.nonce += 1
        tx = sign(self.key, CHAIN_ID, SignedType(tx_type), self.nonce, body)
        result = await self.client.submit(tx.wire(), wait=True)
        assert result.ok, result
        return result.tx_id


async def _local(client: TransactivaClient, tx_type: TxType, body: dict[str, Any]) -> str:
    result = await client.submit_local(tx_type, body)
    assert result.ok, result
    assert result.height is not None
    return result.tx_id


async def _until[T](what: str, probe: Callable[[], Awaitable[T | None]]) -> T:
    """Wait (bounded) until ``probe`` answers something."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = await probe()
        if found is not None:
            return found
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


async def test_the_handshake_with_a_real_node(
    session: aiohttp.ClientSession, shared_node: RealNode
) -> None:
    client = TransactivaClient(session, shared_node.url, shared_node.token)
    status = await client.connect()
    assert status.api_version == CLIENT_API_VERSION
    assert (status.chain_id, status.height >= 0, status.validator is not None) == (
        CHAIN_ID,
        True,
        True,
    )
    assert status.interval_seconds == INTERVAL
    wrong = TransactivaClient(session, shared_node.url, "not the token")
    assert (await wrong.status()).participant == status.participant  # public
    with pytest.raises(TransactivaAuthError):
        await wrong.connect()
    async with TransactivaClient.open(shared_node.url, shared_node.token) as own:
        assert (await own.status()).participant == status.participant


async def test_the_nodes_refusals_are_the_clients_errors(
    session: aiohttp.ClientSession, shared_node: RealNode
) -> None:
    client = TransactivaClient(session, shared_node.url, shared_node.token)
    status = await client.status()
    with pytest.raises(TransactivaAuthError):
        await TransactivaClient(session, shared_node.url, "x").balance(status.participant)
    with pytest.raises(TransactivaRequestError) as missing:
        await client.contract("ef" * 32)
    assert (missing.value.status, missing.value.code) == (404, ErrorCode.NOT_FOUND)
    with pytest.raises(TransactivaRequestError) as malformed:
        await client.submit_local(TxType.TRANSFER, {"to": status.participant, "amount": "mucho"})
    assert (malformed.value.status, malformed.value.code) == (400, ErrorCode.MALFORMED)
    assert malformed.value.field == "body.amount"
    with pytest.raises(TransactivaRequestError) as refused:
        await client.submit_local(TxType.WITHDRAW_REQUEST, {"amount": 10**12})
    assert (refused.value.status, refused.value.code) == (422, ErrorCode.INSUFFICIENT_FUNDS)
    assert refused.value.message
    with pytest.raises(TransactivaRequestError) as unknown:
        await client.submit_local("no_such_type", {})
    assert (unknown.value.status, unknown.value.code) == (404, ErrorCode.NOT_FOUND)
    with pytest.raises(TransactivaRequestError) as no_analytics:
        await client.forecast_summary()
    assert no_analytics.value.status == 404
    assert await client.meter() is None  # no meter role
    assert await client.state("no/such/key") is None


async def test_every_event_a_node_streams_is_known_and_decodes(
    session: aiohttp.ClientSession, shared_node: RealNode
) -> None:
    client = TransactivaClient(session, shared_node.url, shared_node.token)
    status = await client.connect()
    operator = await client.participant(status.participant)
    assert (operator.role, set(operator.roles)) == (Role.OPERATOR, set(OperatorRole))
    neighbour = Neighbour(client)
    registration = {"public_key": neighbour.key.public_key.hex(), "role": "prosumer"}
    await _local(client, TxType.REGISTER, registration)
    assert (await client.participant(neighbour.address)).role is Role.PROSUMER
    # The wallet: a deposit, a withdrawal paid, a request cancelled, a transfer.
    deposit = await neighbour.send(TxType.DEPOSIT_REQUEST, {"amount": 5000})
    await _local(client, TxType.DEPOSIT_CONFIRM, {"request": deposit})
    withdrawal = await neighbour.send(TxType.WITHDRAW_REQUEST, {"amount": 1000})
    await _local(client, TxType.WITHDRAW_CONFIRM, {"request": withdrawal})
    extra = await neighbour.send(TxType.DEPOSIT_REQUEST, {"amount": 1})
    await neighbour.send(TxType.WALLET_CANCEL, {"request": extra})
    await neighbour.send(TxType.TRANSFER, {"to": status.participant, "amount": 250})
    balance = await client.balance(neighbour.address)
    assert (balance.balance, balance.held, balance.debt) == (3750, 0, 0)
    # The supply, signals and a contract.
    assert (await client.participant(neighbour.address)).service_connected is True
    for connected in (False, True):
        service = {"participant": neighbour.address, "connected": connected}
        await _local(client, TxType.SERVICE, service)
        assert (await client.participant(neighbour.address)).service_connected is connected
    start = (int(time.time()) // INTERVAL + 1) * INTERVAL
    prices = {"import_price": 31000, "export_price": 10500, "network_fee": 4130}
    await _local(client, TxType.PRICE_SIGNAL, {"interval_start": start, **prices})
    dr = {
        "event_id": "pico-1",
        "modification_number": 0,
        "signal": {"name": "LOAD_DISPATCH", "delta_w": -1500},
        "start": start,
        "duration": INTERVAL,
        "targets": [neighbour.address],
        "cancelled": False,
        "ramp_up": 60,
    }
    await _local(client, TxType.DR_EVENT, dr)
    source = paper_contract("lavadora", datetime(2026, 1, 1), datetime(2030, 12, 31, 23, 59, 59))
    checked = await client.check_contract(source)
    assert checked.valid
    assert checked.canonical is not None
    proposed = await client.submit_local(TxType.CONTRACT_PROPOSE, {"source": checked.canonical})
    event = proposed.first(EventKind.CONTRACT_PROPOSED)
    assert event is not None
    record = await client.contract(event.data["contract_id"])
    assert (record.contract_id, record.status, record.short_id) == (
        checked.contract_id,
        ContractStatus.ACTIVE,
        checked.short_id,
    )
    assert record.receipt is not None
    # The typed reads of what was just written.
    (signal,) = await client.prices(start, start + 1)
    assert (signal.start, signal.import_price) == (start, 31000)
    assert (await client.dr_event("pico-1")).to_json() == dr
    assert await client.market_intervals(0, 2**40) == []
    assert (await client.settlements(neighbour.address, 0, 2**40)).settlements == ()
    assert await client.trades(neighbour.address, 0, 2**40) == []
    assert (await client.state(f"service/{neighbour.address}"))["connected"] is True

    # The whole stream, from the first block: every kind is known, every payload decodes.
    height = (await client.status()).height
    received: list[LedgerMessage] = []
    async with client.ledger_events(from_height=1) as stream:
        async for message in stream:
            received.append(message)
            if message.event.kind == EventKind.NEW_BLOCK and message.height >= height:
                break
        assert stream.skipped == 0
    kinds = {message.event.kind for message in received}
    assert all(isinstance(kind, EventKind) for kind in kinds), kinds
    assert kinds >= {
        EventKind.PARTICIPANT_REGISTERED,
        EventKind.DEPOSIT_REQUESTED,
        EventKind.WITHDRAWAL_REQUESTED,
        EventKind.WITHDRAWAL_PAID,
        EventKind.WALLET_REQUEST_CANCELLED,
        EventKind.WALLET_CHANGE,
        EventKind.SERVICE_CUT,
        EventKind.SERVICE_RECONNECTED,
        EventKind.PRICE_SIGNAL,
        EventKind.DR_EVENT,
        EventKind.CONTRACT_PROPOSED,
        EventKind.CONTRACT_ACTIVATED,
        EventKind.NEW_BLOCK,
    }
    for message in received:
        decode = PAYLOADS.get(message.event.kind)  # type: ignore[call-overload]
        if decode is not None:
            decode(message.event)
    reasons = {
        WalletChange.from_json(m.event.data).why
        for m in received
        if m.event.kind == EventKind.WALLET_CHANGE
    }
    assert reasons == {WalletReason.DEPOSIT, WalletReason.TRANSFER}
    seqs = [message.seq for message in received]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))

    # Resuming after any seq misses nothing and repeats nothing.
    middle = received[len(received) // 2]
    async with client.ledger_events(after=middle.seq) as stream:
        resumed = [await anext(stream) for _ in range(3)]
    assert [m.seq for m in resumed] == [middle.seq + 1, middle.seq + 2, middle.seq + 3]
    assert [m.event for m in resumed] == [m.event for m in received if m.seq > middle.seq][:3]


async def test_the_homes_actions_and_their_results_stream(
    session: aiohttp.ClientSession, node: RealNode
) -> None:
    client = TransactivaClient(session, node.url, node.token)
    await client.connect()
    source = paper_contract("lavadora", datetime(2026, 1, 1), datetime(2030, 12, 31, 23, 59, 59))
    checked = await client.check_contract(source)
    assert checked.canonical is not None
    await _local(client, TxType.CONTRACT_PROPOSE, {"source": checked.canonical})
    now = int(time.time()) // INTERVAL * INTERVAL
    body = {"interval_start": now, "import_price": 20000, "export_price": 10500, "network_fee": 0}
    await _local(client, TxType.PRICE_SIGNAL, body)

    async def logged() -> list[Any] | None:
        return await client.actions(10) or None

    (entry, *_) = await _until("the contract's action", logged)
    action = entry.action
    assert (action.action, action.device, action.trigger) == (
        ActionKind.TURN_ON,
        "Lavadora",
        ActionTrigger.PRICE_SIGNAL,
    )
    assert action.contract_id == checked.contract_id
    assert entry.result is ActionResult.SKIPPED  # the node has no actuator of its own
    await client.post_action_result(action.action_id, ActionResult.OK, "switched")
    assert (await client.actions(10))[0].result is ActionResult.OK

    async with client.local_events(after=0) as stream:
        first = await anext(stream)
        assert first.event.kind is LocalEventKind.CONTRACT_ACTION
        kinds = [first.event.kind]
        while LocalEventKind.CONTRACT_ACTION_RESULT not in kinds:
            kinds.append((await anext(stream)).event.kind)
        assert stream.position is not None
        assert stream.position >= 2


async def test_names_admission_and_countersigning_through_the_client(
    session: aiohttp.ClientSession, shared_node: RealNode
) -> None:
    """API 1.1: participants by name, this home's admission, and the contracts that await
    its signature, signed through the client."""
    client = TransactivaClient(session, shared_node.url, shared_node.token)
    status = await client.connect()
    admission = await client.admission()
    assert (admission.status, admission.member, admission.role) == (
        AdmissionStatus.MEMBER,
        True,
        Role.OPERATOR,
    )
    neighbour = Neighbour(client)
    name = f"vecina-{neighbour.address[2:8]}"
    await _local(
        client,
        TxType.REGISTER,
        {"public_key": neighbour.key.public_key.hex(), "role": "prosumer", "name": name},
    )
    held = await client.name(name.upper())
    assert (held.name, held.address, held.role) == (name, neighbour.address, Role.PROSUMER)
    listed = {p.address: p for p in await client.participants()}
    assert listed[neighbour.address].name == name
    assert (await client.participant(name)).address == neighbour.address
    with pytest.raises(TransactivaRequestError) as nobody:
        await client.name("nadie-aqui")
    assert (nobody.value.status, nobody.value.code) == (404, ErrorCode.UNKNOWN_NAME)

    # The neighbour proposes a contract naming the ISO (this node's participant) and
    # itself by name; it awaits this home's signature until the client signs it.
    source = paper_contract(
        f"con {name}", datetime(2026, 1, 1), datetime(2030, 12, 31, 23, 59, 59)
    ).replace("Parties: ISO", f"Parties: ISO, '{name.upper()}'")
    await neighbour.send(TxType.CONTRACT_PROPOSE, {"source": source})
    awaiting = await client.awaiting_contracts()
    [record] = [c for c in awaiting if c.name == f"con {name}"]
    assert record.awaits(status.participant)
    assert record.party_name(neighbour.address) == name
    assert record.missing == (status.participant,)
    signed = await client.sign_contract(record.short_id)
    assert signed.status == ContractStatus.ACTIVE
    assert signed.receipt is not None
    assert signed.receipt.endswith(f"[{record.short_id}]")
    assert all(c.contract_id != record.contract_id for c in await client.awaiting_contracts())
    with pytest.raises(TransactivaRequestError) as again:
        await client.sign_contract(record.contract_id)
    assert again.value.code == ErrorCode.NOT_PROPOSED
