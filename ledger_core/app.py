"""The ledger application: a deterministic state machine with the shape of an ABCI app.

``check_tx`` judges a transaction against the state plus the mempool's earlier
transactions; ``begin_block`` / ``deliver_tx`` / ``end_block`` execute an
ordered block; ``commit`` makes the block's writes the new state and returns
the app hash; ``query`` answers with a proof against that hash.

The application reads no clock and no randomness and holds no floats: block
time comes from the block, and every amount is an integer (centavos, Wh,
10^-4 MXN/kWh, Unix seconds). Given the same genesis and the same blocks, every
node computes the same state and the same app hash.

Validators execute a proposed block before voting for it, so execution and
commitment are separate steps: :meth:`Application.execute` runs a block on a
copy-on-write overlay and returns an :class:`Execution` (results, events,
writes and the app hash they give, computed without touching the state);
:meth:`Application.apply` makes a decided block's execution the state.
``begin_block`` / ``deliver_tx`` / ``end_block`` / ``commit`` remain as the
same steps one at a time.

The state also holds what consensus needs to agree on: the validator sets of
recent and coming heights (``validators/history``), the proposer priorities of
the next height (``validators/priorities``), and committed evidence
(``evidence/...``). See ``docs/consensus.md``.

Envelope rules (every transaction): the chain id matches, the signer is a
registered, active account, the signature is the signer's, and the nonce is
larger than the signer's last. A transaction that passes them consumes its
nonce even if its body is then refused, so nothing applies twice.
"""

from __future__ import annotations

import bisect
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final

from contracts import ContractError, content_hash, format_contract, parse
from ledger_core.commitment import Proof, Staged, StateCommitment
from ledger_core.market import state as market
from ledger_core.types import codec
from ledger_core.types.crypto import address_of
from ledger_core.types.evidence import EvidenceError
from ledger_core.types.evidence import verify as verify_evidence
from ledger_core.types.genesis import Genesis
from ledger_core.types.tx import Role, Tx, TxType
from ledger_core.types.validators import MAX_VALIDATORS, ValidatorSet
from ledger_core.types.vote import DuplicateVoteEvidence

type Value = codec.Value
type Event = dict[str, Value]

OK: Final = "ok"
VERIFIED_CACHE: Final = 200_000
# Evidence older than this many blocks is refused, and validator sets are kept
# in state for as long as evidence about them can arrive.
EVIDENCE_MAX_AGE: Final = 10_000
VALIDATORS_KEY: Final = "validators/history"
PRIORITIES_KEY: Final = "validators/priorities"


class Rejected(Exception):  # noqa: N818 - a verdict, not a crash
    """A transaction refused by the rules; ``code`` is stable, ``message`` says why."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        self.message = message
        super().__init__(f"{code}: {message}")


@dataclass(frozen=True, slots=True)
class TxResult:
    """The outcome of one transaction."""

    code: str
    message: str = ""
    events: tuple[Event, ...] = ()

    @property
    def ok(self) -> bool:
        """True when the transaction was applied."""
        return self.code == OK


@dataclass(frozen=True, slots=True)
class BlockContext:
    """What the block tells the application: its height and time."""

    height: int
    time: int


class InvalidBlock(Exception):  # noqa: N818 - a verdict, not a crash
    """A block the application cannot execute (bad evidence); the message says why."""


@dataclass(frozen=True, slots=True)
class Execution:
    """A block executed on top of the state at ``base_height``, not yet applied."""

    context: BlockContext
    base_height: int
    txs: tuple[Tx, ...]
    results: tuple[TxResult, ...]
    block_events: tuple[Event, ...]
    values: dict[str, Value | None]
    writes: dict[str, bytes | None]
    staged: Staged

    @property
    def app_hash(self) -> bytes:
        """The app hash the state will have once this execution is applied."""
        return self.staged.root


class Overlay:
    """Writes on top of a base mapping, kept until they are committed or dropped."""

    __slots__ = ("base", "writes")

    def __init__(self, base: Mapping[str, Value]) -> None:
        self.base = base
        self.writes: dict[str, Value | None] = {}

    def get(self, key: str) -> Value | None:
        if key in self.writes:
            return self.writes[key]
        return self.base.get(key)

    def put(self, key: str, value: Value | None) -> None:
        self.writes[key] = value

    def child(self) -> Overlay:
        """A nested overlay whose writes fold into this one on success."""
        return Overlay(self)  # type: ignore[arg-type]

    def fold_into_parent(self, parent: Overlay) -> None:
        parent.writes.update(self.writes)


def _key_time(seconds: int) -> str:
    return f"{seconds:012d}"


@dataclass
class Application:
    """The state machine of one chain."""

    genesis: Genesis
    state: dict[str, Value] = field(default_factory=dict)
    height: int = 0
    last_block_time: int = 0
    _commitment: StateCommitment = field(default_factory=StateCommitment)
    _check: Overlay | None = None
    _block: Overlay | None = None
    _context: BlockContext | None = None
    _block_events: list[Event] = field(default_factory=list)
    _expiry: list[str] = field(default_factory=list)
    # Transactions (id and signature) whose signature this process has
    # verified. An address is the hash of its public key, so a signature that
    # was valid for a signer stays valid: check_tx verifies, deliver_tx need not
    # again. The signature is part of the key: a block may carry the same
    # signed bytes with another signature, which must be checked.
    _verified: OrderedDict[str, None] = field(default_factory=OrderedDict)

    def __post_init__(self) -> None:
        if not self.state:
            self.last_block_time = self.genesis.genesis_time
            for operator in self.genesis.operators:
                self.state[f"acct/{operator.address}"] = {
                    "public_key": operator.public_key.hex(),
                    "role": "operator",
                    "roles": list(operator.roles),
                    "status": "active",
                    "since": 0,
                }
                self.state[f"bal/{operator.address}"] = 0
            self.state["total/deposits"] = 0
            self.state["total/withdrawals"] = 0
            validators = ValidatorSet((v.public_key, v.power) for v in self.genesis.validators)
            self.state[VALIDATORS_KEY] = [[1, validators.to_json()]]
            self.state[PRIORITIES_KEY] = {"height": 1, "priorities": validators.priorities_json()}
        for key, value in self.state.items():
            self._commitment.set(key, value)
        # Contracts by the local time their window closes, for end_block.
        self._expiry = sorted(k for k in self.state if k.startswith("expiry/"))
        self._check = Overlay(self.state)

    # -- ABCI-shaped interface ------------------------------------------------

    @property
    def app_hash(self) -> bytes:
        """The root over the committed state."""
        return self._commitment.root()

    def check_tx(self, tx: Tx) -> TxResult:
        """Judge ``tx`` against the state plus the mempool's earlier transactions."""
        assert self._check is not None
        context = BlockContext(self.height + 1, self.last_block_time)
        # A refused transaction leaves no trace (not even its nonce) in the
        # mempool's state, since it does not enter the mempool.
        trial = self._check.child()
        result = self._run(trial, tx, context)
        if result.ok:
            trial.fold_into_parent(self._check)
        return result

    def reset_check(self) -> None:
        """Forget the mempool's transactions: the next ``check_tx`` judges against the
        committed state alone (the node then checks its mempool again, in order)."""
        self._check = Overlay(self.state)

    def begin_block(self, context: BlockContext) -> None:
        """Start executing block ``context.height``."""
        if context.height != self.height + 1:
            raise ValueError(f"block {context.height} after {self.height}")
        if context.time < self.last_block_time:
            raise ValueError("block time goes backwards")
        self._context = context
        self._block = Overlay(self.state)
        self._block_events = []

    def deliver_tx(self, tx: Tx) -> TxResult:
        """Execute one transaction of the current block."""
        assert self._block is not None, "begin_block first"
        assert self._context is not None, "begin_block first"
        return self._run(self._block, tx, self._context)

    def end_block(self) -> tuple[Event, ...]:
        """Expire contracts whose window has closed, clear and settle the market's due
        intervals; the block's own events."""
        assert self._block is not None, "begin_block first"
        assert self._context is not None, "begin_block first"
        upto = f"expiry/{_key_time(self._local(self._context.time))}"
        due = set(self._expiry[: bisect.bisect_left(self._expiry, upto)])
        due |= {k for k, v in self._block.writes.items() if k.startswith("expiry/") and k < upto}
        events: list[Event] = []
        for key in sorted(due):
            if self._block.get(key) is None:
                continue
            contract_id = key.rsplit("/", 1)[1]
            record = self._block.get(f"contract/{contract_id}")
            assert isinstance(record, dict)
            if record["status"] in ("active", "proposed"):
                record = {**record, "status": "expired"}
                self._block.put(f"contract/{contract_id}", record)
                events.append({"type": "contract_expired", "contract_id": contract_id})
            self._block.put(key, None)
        events.extend(market.end_block(self, self._block, self._context))
        self._block_events.extend(events)
        return tuple(events)

    def commit(self) -> tuple[bytes, dict[str, bytes | None]]:
        """Make the block's writes the state; the new app hash and the writes (canonical
        bytes of each new value, None for a deletion)."""
        execution = self._finish((), ())
        self.apply(execution)
        return execution.app_hash, execution.writes

    def execute(
        self,
        context: BlockContext,
        txs: Sequence[Tx],
        evidence: Sequence[DuplicateVoteEvidence] = (),
    ) -> Execution:
        """Execute a block without changing the state; InvalidBlock for bad evidence."""
        self.begin_block(context)
        try:
            assert self._block is not None
            for i, item in enumerate(evidence):
                try:
                    self._block_events.extend(_commit_evidence(self, self._block, item, context))
                except Rejected as err:
                    raise InvalidBlock(f"evidence[{i}]: {err.message}") from None
            results = [self._run(self._block, tx, context) for tx in txs]
            self.end_block()
        except BaseException:
            self._block = None
            self._context = None
            raise
        return self._finish(tuple(txs), tuple(results))

    def _finish(self, txs: tuple[Tx, ...], results: tuple[TxResult, ...]) -> Execution:
        """Advance proposer priorities, stage the writes' root and end the block."""
        block, context = self._block, self._context
        assert block is not None, "begin_block first"
        assert context is not None, "begin_block first"
        self._next_validators(block, context.height)
        values = dict(block.writes)
        encoded = {k: None if v is None else codec.encode(v) for k, v in values.items()}
        staged = self._commitment.stage({k: (v, encoded[k]) for k, v in values.items()})
        events = tuple(self._block_events)
        self._block = None
        self._context = None
        self._block_events = []
        return Execution(context, self.height, txs, results, events, values, encoded, staged)

    def apply(self, execution: Execution) -> None:
        """Make an execution of the next block the state."""
        if execution.base_height != self.height:
            raise ValueError(
                f"the execution is on height {execution.base_height}, the state at {self.height}"
            )
        self._commitment.install(execution.staged)
        for key, value in execution.values.items():
            if value is None:
                if self.state.pop(key, None) is not None and key.startswith("expiry/"):
                    self._expiry.pop(bisect.bisect_left(self._expiry, key))
            else:
                if key not in self.state and key.startswith("expiry/"):
                    bisect.insort(self._expiry, key)
                self.state[key] = value
        self.height = execution.context.height
        self.last_block_time = execution.context.time
        self._check = Overlay(self.state)

    # -- validator sets ---------------------------------------------------------

    def validator_set(self, height: int | None = None) -> ValidatorSet:
        """The validators of ``height`` (default: the next block's, with its proposer
        priorities); KeyError for a height the state no longer or not yet knows."""
        next_height = self.height + 1
        height = next_height if height is None else height
        history = self.state[VALIDATORS_KEY]
        assert isinstance(history, list)
        if height > next_height + 1 or height < _first_height(history):
            raise KeyError(f"no validator set for height {height} at height {self.height}")
        members = _members_json_at(history, height)
        if height != next_height:
            return ValidatorSet.from_json(members)
        priorities = self.state[PRIORITIES_KEY]
        assert isinstance(priorities, dict)
        return ValidatorSet.from_json(members, priorities["priorities"])

    def _next_validators(self, state: Overlay, height: int) -> None:
        """At the end of block ``height``: the next height's proposer priorities, and
        validator sets too old for evidence dropped."""
        history = state.get(VALIDATORS_KEY)
        assert isinstance(history, list)
        priorities = state.get(PRIORITIES_KEY)
        assert isinstance(priorities, dict)
        now = ValidatorSet.from_json(_members_json_at(history, height), priorities["priorities"])
        following = ValidatorSet.from_json(_members_json_at(history, height + 1))
        if following.hash != now.hash:
            now = now.updated((m.public_key, m.power) for m in following.members)
        upcoming = now.advanced()
        state.put(PRIORITIES_KEY, {"height": height + 1, "priorities": upcoming.priorities_json()})
        cutoff = height + 1 - EVIDENCE_MAX_AGE
        keep = 0
        for i, entry in enumerate(history):
            assert isinstance(entry, list)
            if isinstance(entry[0], int) and entry[0] <= cutoff:
                keep = i
        if keep:
            state.put(VALIDATORS_KEY, history[keep:])

    def query(self, key: str) -> tuple[Value | None, Proof | None]:
        """A committed value and its proof against :attr:`app_hash`."""
        return self.state.get(key), self._commitment.prove(key)

    # -- helpers --------------------------------------------------------------

    def _local(self, seconds: int) -> int:
        """Unix seconds shifted to the market's local civil time."""
        return seconds + self.genesis.params.utc_offset_minutes * 60

    def local_datetime(self, seconds: int) -> datetime:
        """Block time as the naive local datetime that contracts use."""
        shifted = datetime.fromtimestamp(seconds, tz=UTC) + timedelta(
            minutes=self.genesis.params.utc_offset_minutes
        )
        return shifted.replace(tzinfo=None)

    def _run(self, overlay: Overlay, tx: Tx, context: BlockContext) -> TxResult:
        try:
            account = self._envelope(overlay, tx)
        except Rejected as err:
            return TxResult(err.code, err.message)
        overlay.put(f"nonce/{tx.signer}", tx.nonce)
        work = overlay.child()
        try:
            events = _HANDLERS[tx.type](self, work, tx, account, context)
        except Rejected as err:
            return TxResult(err.code, err.message)
        work.fold_into_parent(overlay)
        return TxResult(OK, "", tuple(events))

    def _envelope(self, state: Overlay, tx: Tx) -> dict[str, Value]:
        if tx.chain_id != self.genesis.chain_id:
            raise Rejected(
                "wrong_chain", f"chain id {tx.chain_id!r} is not {self.genesis.chain_id!r}"
            )
        account = state.get(f"acct/{tx.signer}")
        if not isinstance(account, dict):
            raise Rejected("unknown_signer", f"{tx.signer} is not a registered participant")
        if account["status"] != "active":
            raise Rejected("revoked_signer", f"{tx.signer} has been revoked")
        verified = tx.id + tx.signature.hex()
        if verified not in self._verified:
            public_key = bytes.fromhex(str(account["public_key"]))
            if not tx.verify_signature(public_key):
                raise Rejected("bad_signature", "the signature is not the signer's")
            self._verified[verified] = None
            if len(self._verified) > VERIFIED_CACHE:
                self._verified.popitem(last=False)
        last = state.get(f"nonce/{tx.signer}")
        last_nonce = last if isinstance(last, int) else 0
        if tx.nonce <= last_nonce:
            raise Rejected("stale_nonce", f"nonce {tx.nonce} is not above {last_nonce}")
        return account


# -- permissions ------------------------------------------------------------------


def _require_operator(account: Mapping[str, Value], *roles: str) -> None:
    held = account.get("roles")
    if account.get("role") != "operator" or not isinstance(held, list):
        raise Rejected("not_permitted", "only an operator may do this")
    if roles and not any(role in held for role in roles):
        raise Rejected("not_permitted", "only the " + " or ".join(roles) + " may do this")


def _require_participant(account: Mapping[str, Value]) -> None:
    if account.get("role") == Role.METER:
        raise Rejected("not_permitted", "a meter may only send interval reports")


def _active_account(state: Overlay, address: str, what: str) -> dict[str, Value]:
    account = state.get(f"acct/{address}")
    if not isinstance(account, dict):
        raise Rejected("unknown_account", f"{what} {address} is not registered")
    if account["status"] != "active":
        raise Rejected("revoked_account", f"{what} {address} has been revoked")
    return account


def _int_at(state: Overlay, key: str) -> int:
    value = state.get(key)
    return value if isinstance(value, int) else 0


def _str_of(body: Mapping[str, Value], name: str) -> str:
    value = body[name]
    assert isinstance(value, str)
    return value


def _int_of(body: Mapping[str, Value], name: str) -> int:
    value = body[name]
    assert isinstance(value, int)
    return value


# -- membership -------------------------------------------------------------------


def _register(
    app: Application, state: Overlay, tx: Tx, account: dict[str, Value], ctx: BlockContext
) -> list[Event]:
    _require_operator(account)
    public_key = _str_of(tx.body, "public_key")
    address = address_of(bytes.fromhex(public_key))
    if state.get(f"acct/{address}") is not None:
        raise Rejected("already_registered", f"{address} is already registered")
    role = _str_of(tx.body, "role")
    state.put(
        f"acct/{address}",
        {"public_key": public_key, "role": role, "status": "active", "since": ctx.height},
    )
    state.put(f"bal/{address}", 0)
    return [{"type": "participant_registered", "address": address, "role": role}]


def _revoke(
    app: Application, state: Overlay, tx: Tx, account: dict[str, Value], ctx: BlockContext
) -> list[Event]:
    _require_operator(account)
    address = _str_of(tx.body, "address")
    target = _active_account(state, address, "participant")
    if target.get("role") == "operator":
        raise Rejected("not_permitted", "operators are set by genesis")
    state.put(f"acct/{address}", {**target, "status": "revoked", "revoked": ctx.height})
    return [{"type": "participant_revoked", "address": address}]


def _bind_meter(
    app: Application, state: Overlay, tx: Tx, account: dict[str, Value], ctx: BlockContext
) -> list[Event]:
    _require_operator(account)
    owner = _str_of(tx.body, "participant")
    owner_account = _active_account(state, owner, "participant")
    if owner_account.get("role") in (Role.METER, "operator"):
        raise Rejected("not_permitted", "a meter is bound to a participant")
    public_key = _str_of(tx.body, "meter_public_key")
    meter = address_of(bytes.fromhex(public_key))
    existing = state.get(f"acct/{meter}")
    if existing is not None:
        raise Rejected("already_registered", f"meter {meter} is already registered")
    state.put(
        f"acct/{meter}",
        {
            "public_key": public_key,
            "role": str(Role.METER),
            "owner": owner,
            "status": "active",
            "since": ctx.height,
        },
    )
    return [{"type": "meter_bound", "meter": meter, "participant": owner}]


# -- contracts --------------------------------------------------------------------


def _resolve_parties(
    app: Application, state: Overlay, proposer: str, parties: list[str]
) -> list[str]:
    signers = [proposer]
    for party in parties:
        if party in ("ISO", "SUPPLIER", "DSO"):
            address = app.genesis.operator_for(party).address
        elif party in ("RETAILER", "AGGREGATOR"):
            raise Rejected(
                "unknown_party",
                f"the role {party} has no account on this chain; name it by address",
            )
        else:
            address = party
            _active_account(state, address, "party")
        if address not in signers:
            signers.append(address)
    return signers


def _contract_propose(
    app: Application, state: Overlay, tx: Tx, account: dict[str, Value], ctx: BlockContext
) -> list[Event]:
    _require_participant(account)
    source = _str_of(tx.body, "source")
    try:
        contract = parse(source, "contract")
    except ContractError as err:
        raise Rejected("invalid_contract", err.render()) from None
    canonical = format_contract(contract)
    if canonical != source:
        raise Rejected(
            "not_canonical", "submit the canonical text (transactiva contract fmt) of the contract"
        )
    contract_id = content_hash(contract)
    if state.get(f"contract/{contract_id}") is not None:
        raise Rejected("duplicate_contract", f"contract {contract_id} already exists")
    now_local = app.local_datetime(ctx.time)
    if contract.valid_to <= now_local:
        raise Rejected("expired_contract", "the validity window has already ended")
    names = [p.name for p in contract.parties]
    signers = _resolve_parties(app, state, tx.signer, names)
    valid_to = int((contract.valid_to - datetime(1970, 1, 1)).total_seconds())  # noqa: DTZ001
    record: dict[str, Value] = {
        "name": contract.name,
        "source": source,
        "proposer": tx.signer,
        "signers": list(signers),
        "signed": [tx.signer],
        "revoke": [],
        "status": "proposed",
        "proposed_height": ctx.height,
        "valid_to_local": valid_to,
    }
    events: list[Event] = [{"type": "contract_proposed", "contract_id": contract_id}]
    if len(signers) == 1:
        _activate(record, ctx, events, contract_id)
    state.put(f"contract/{contract_id}", record)
    state.put(f"expiry/{_key_time(valid_to)}/{contract_id}", 1)
    return events


def _activate(record: dict[str, Value], ctx: BlockContext, events: list[Event], cid: str) -> None:
    record["status"] = "active"
    record["activated_height"] = ctx.height
    record["activated_time"] = ctx.time
    events.append({"type": "contract_activated", "contract_id": cid})


def _contract_record(state: Overlay, contract_id: str) -> dict[str, Value]:
    record = state.get(f"contract/{contract_id}")
    if not isinstance(record, dict):
        raise Rejected("unknown_contract", f"no contract {contract_id}")
    return dict(record)


def _contract_sign(
    app: Application, state: Overlay, tx: Tx, account: dict[str, Value], ctx: BlockContext
) -> list[Event]:
    contract_id = _str_of(tx.body, "contract_id")
    record = _contract_record(state, contract_id)
    if record["status"] != "proposed":
        raise Rejected("not_proposed", f"the contract is {record['status']}")
    signers, signed = record["signers"], record["signed"]
    assert isinstance(signers, list)
    assert isinstance(signed, list)
    if tx.signer not in signers:
        raise Rejected("not_a_party", "the signer is not a party to this contract")
    if tx.signer in signed:
        raise Rejected("already_signed", "the signer has already signed")
    record["signed"] = [*signed, tx.signer]
    events: list[Event] = [
        {"type": "contract_signed", "contract_id": contract_id, "party": tx.signer}
    ]
    if set(record["signed"]) == set(signers):  # type: ignore[arg-type]
        _activate(record, ctx, events, contract_id)
    state.put(f"contract/{contract_id}", record)
    return events


def _contract_revoke(
    app: Application, state: Overlay, tx: Tx, account: dict[str, Value], ctx: BlockContext
) -> list[Event]:
    contract_id = _str_of(tx.body, "contract_id")
    record = _contract_record(state, contract_id)
    if record["status"] not in ("proposed", "active"):
        raise Rejected("not_revocable", f"the contract is {record['status']}")
    signers, votes = record["signers"], record["revoke"]
    assert isinstance(signers, list)
    assert isinstance(votes, list)
    if tx.signer not in signers:
        raise Rejected("not_a_party", "the signer is not a party to this contract")
    if tx.signer in votes:
        raise Rejected("already_voted", "the signer has already asked to revoke")
    record["revoke"] = [*votes, tx.signer]
    events: list[Event] = [
        {"type": "contract_revoke_vote", "contract_id": contract_id, "party": tx.signer}
    ]
    if set(record["revoke"]) == set(signers):  # type: ignore[arg-type]
        record["status"] = "revoked"
        record["revoked_height"] = ctx.height
        events.append({"type": "contract_revoked", "contract_id": contract_id})
    state.put(f"contract/{contract_id}", record)
    return events


# -- meters and signals -----------------------------------------------------------


def _report(
    app: Application, state: Overlay, tx: Tx, account: dict[str, Value], ctx: BlockContext
) -> list[Event]:
    if account.get("role") != Role.METER:
        raise Rejected("not_permitted", "only a meter sends interval reports")
    interval = app.genesis.params.interval_seconds
    start = _int_of(tx.body, "interval_start")
    if start % interval:
        raise Rejected("misaligned_interval", f"interval_start must be a multiple of {interval} s")
    end = start + interval
    if end > ctx.time:
        raise Rejected("future_interval", "the interval has not ended yet")
    grace = app.genesis.params.report_grace_seconds
    if end + grace < ctx.time:
        raise Rejected("late_report", f"reports are accepted up to {grace} s after the interval")
    key = f"report/{tx.signer}/{_key_time(start)}"
    if state.get(key) is not None:
        raise Rejected("duplicate_report", "this meter already reported this interval")
    record: dict[str, Value] = {
        "import_wh": _int_of(tx.body, "import_wh"),
        "export_wh": _int_of(tx.body, "export_wh"),
        "height": ctx.height,
    }
    state.put(key, record)
    return [
        {"type": "interval_report", "meter": tx.signer, "interval_start": start, **record},
        *market.note_report(app, state, tx.signer, start, ctx),
    ]


def _price_signal(
    app: Application, state: Overlay, tx: Tx, account: dict[str, Value], ctx: BlockContext
) -> list[Event]:
    _require_operator(account, "ISO", "SUPPLIER")
    start = _int_of(tx.body, "interval_start")
    interval = app.genesis.params.interval_seconds
    if start % interval:
        raise Rejected("misaligned_interval", f"interval_start must be a multiple of {interval} s")
    if start + interval <= ctx.time:
        raise Rejected("past_interval", "prices are published before or during their interval")
    record = {name: tx.body[name] for name in ("import_price", "export_price", "network_fee")}
    record["height"] = ctx.height
    state.put(f"price/{_key_time(start)}", record)
    market.note_price(state, start)
    return [{"type": "price_signal", "interval_start": start, **record}]


def _dr_event(
    app: Application, state: Overlay, tx: Tx, account: dict[str, Value], ctx: BlockContext
) -> list[Event]:
    _require_operator(account, "ISO", "DSO")
    event_id = _str_of(tx.body, "event_id")
    key = f"dr/{event_id}"
    previous = state.get(key)
    number = _int_of(tx.body, "modification_number")
    if isinstance(previous, dict):
        last = previous["modification_number"]
        assert isinstance(last, int)
        if number <= last:
            raise Rejected(
                "stale_modification", f"modification_number must be above {last} for this event"
            )
        if previous.get("cancelled"):
            raise Rejected("cancelled_event", "a cancelled event cannot be modified")
    targets = tx.body["targets"]
    assert isinstance(targets, list)
    for target in targets:
        _active_account(state, str(target), "target")
    record = dict(tx.body)
    record["height"] = ctx.height
    record["issuer"] = tx.signer
    state.put(key, record)
    return [{"type": "dr_event", **record}]


def _service(
    app: Application, state: Overlay, tx: Tx, account: dict[str, Value], ctx: BlockContext
) -> list[Event]:
    _require_operator(account, "DSO")
    participant = _str_of(tx.body, "participant")
    _active_account(state, participant, "participant")
    connected = tx.body["connected"]
    state.put(f"service/{participant}", {"connected": connected, "height": ctx.height})
    kind = "service_reconnected" if connected else "service_cut"
    return [{"type": kind, "participant": participant}]


# -- wallet -----------------------------------------------------------------------


def _wallet_request(
    app: Application, state: Overlay, tx: Tx, account: dict[str, Value], ctx: BlockContext
) -> list[Event]:
    _require_participant(account)
    amount = _int_of(tx.body, "amount")
    kind = "deposit" if tx.type is TxType.DEPOSIT_REQUEST else "withdrawal"
    if kind == "withdrawal":
        balance = _int_at(state, f"bal/{tx.signer}")
        if balance < amount:
            raise Rejected("insufficient_funds", f"balance {balance} is below {amount}")
        state.put(f"bal/{tx.signer}", balance - amount)
        state.put(f"held/{tx.signer}", _int_at(state, f"held/{tx.signer}") + amount)
    state.put(
        f"req/{tx.id}",
        {
            "kind": kind,
            "participant": tx.signer,
            "amount": amount,
            "reference": tx.body.get("reference", ""),
            "status": "pending",
            "height": ctx.height,
        },
    )
    return [{"type": f"{kind}_requested", "request": tx.id, "participant": tx.signer}]


def _pending_request(state: Overlay, request: str, kind: str | None = None) -> dict[str, Value]:
    record = state.get(f"req/{request}")
    if not isinstance(record, dict):
        raise Rejected("unknown_request", f"no wallet request {request}")
    if kind is not None and record["kind"] != kind:
        raise Rejected("wrong_request", f"request {request} is a {record['kind']}")
    if record["status"] != "pending":
        raise Rejected("not_pending", f"request {request} is {record['status']}")
    return dict(record)


def _deposit_confirm(
    app: Application, state: Overlay, tx: Tx, account: dict[str, Value], ctx: BlockContext
) -> list[Event]:
    _require_operator(account, "ISO", "SUPPLIER")
    request = _str_of(tx.body, "request")
    record = _pending_request(state, request, "deposit")
    participant, amount = str(record["participant"]), _int_of(record, "amount")
    state.put(f"bal/{participant}", _int_at(state, f"bal/{participant}") + amount)
    state.put("total/deposits", _int_at(state, "total/deposits") + amount)
    state.put(f"req/{request}", {**record, "status": "confirmed", "confirmed_height": ctx.height})
    return [
        {"type": "wallet_change", "participant": participant, "delta": amount, "why": "deposit"}
    ]


def _withdraw_confirm(
    app: Application, state: Overlay, tx: Tx, account: dict[str, Value], ctx: BlockContext
) -> list[Event]:
    _require_operator(account, "ISO", "SUPPLIER")
    request = _str_of(tx.body, "request")
    record = _pending_request(state, request, "withdrawal")
    participant, amount = str(record["participant"]), _int_of(record, "amount")
    state.put(f"held/{participant}", _int_at(state, f"held/{participant}") - amount)
    state.put("total/withdrawals", _int_at(state, "total/withdrawals") + amount)
    state.put(f"req/{request}", {**record, "status": "confirmed", "confirmed_height": ctx.height})
    return [{"type": "withdrawal_paid", "participant": participant, "amount": amount}]


def _wallet_cancel(
    app: Application, state: Overlay, tx: Tx, account: dict[str, Value], ctx: BlockContext
) -> list[Event]:
    request = _str_of(tx.body, "request")
    record = _pending_request(state, request)
    participant, amount = str(record["participant"]), _int_of(record, "amount")
    if tx.signer != participant:
        _require_operator(account, "ISO", "SUPPLIER")
    if record["kind"] == "withdrawal":
        state.put(f"held/{participant}", _int_at(state, f"held/{participant}") - amount)
        state.put(f"bal/{participant}", _int_at(state, f"bal/{participant}") + amount)
    state.put(f"req/{request}", {**record, "status": "cancelled", "cancelled_height": ctx.height})
    return [{"type": "wallet_request_cancelled", "request": request}]


def _transfer(
    app: Application, state: Overlay, tx: Tx, account: dict[str, Value], ctx: BlockContext
) -> list[Event]:
    _require_participant(account)
    to = _str_of(tx.body, "to")
    target = _active_account(state, to, "recipient")
    if target.get("role") == Role.METER:
        raise Rejected("not_permitted", "meters hold no money")
    if to == tx.signer:
        raise Rejected("self_transfer", "a transfer needs another recipient")
    amount = _int_of(tx.body, "amount")
    balance = _int_at(state, f"bal/{tx.signer}")
    if balance < amount:
        raise Rejected("insufficient_funds", f"balance {balance} is below {amount}")
    state.put(f"bal/{tx.signer}", balance - amount)
    state.put(f"bal/{to}", _int_at(state, f"bal/{to}") + amount)
    return [
        {"type": "wallet_change", "participant": tx.signer, "delta": -amount, "why": "transfer"},
        {"type": "wallet_change", "participant": to, "delta": amount, "why": "transfer"},
    ]


# -- validators and evidence ---------------------------------------------------------


def _first_height(history: list[Value]) -> int:
    first = history[0]
    assert isinstance(first, list)
    assert isinstance(first[0], int)
    return first[0]


def _members_json_at(history: list[Value], height: int) -> list[Value]:
    """The ``[[public key, power], ...]`` in force at ``height`` (history ascends)."""
    found: list[Value] | None = None
    for entry in history:
        assert isinstance(entry, list)
        start, members = entry
        assert isinstance(start, int)
        assert isinstance(members, list)
        if start > height:
            break
        found = members
    assert found is not None, f"no validator set at height {height}"
    return found


def _powers_at(history: list[Value], height: int) -> dict[str, int]:
    """Public key (hex) to power, in force at ``height``."""
    powers: dict[str, int] = {}
    for item in _members_json_at(history, height):
        assert isinstance(item, list)
        key, power = item
        assert isinstance(key, str)
        assert isinstance(power, int)
        powers[key] = power
    return powers


def _schedule_validators(
    state: Overlay, history: list[Value], height: int, powers: dict[str, int]
) -> None:
    """Record the set in force from ``height`` (replacing one already scheduled there)."""
    members = ValidatorSet((bytes.fromhex(k), p) for k, p in powers.items()).to_json()
    kept = [e for e in history if isinstance(e, list) and isinstance(e[0], int) and e[0] < height]
    state.put(VALIDATORS_KEY, [*kept, [height, members]])


def _validator_update(
    app: Application, state: Overlay, tx: Tx, account: dict[str, Value], ctx: BlockContext
) -> list[Event]:
    """Add, re-weight or (power 0) remove a validator from height ``ctx.height + 2``."""
    _require_operator(account, "ISO")
    public_key = _str_of(tx.body, "public_key")
    power = _int_of(tx.body, "power")
    history = state.get(VALIDATORS_KEY)
    assert isinstance(history, list)
    effective = ctx.height + 2
    base = _powers_at(history, ctx.height + 1)
    target = _powers_at(history, effective)
    if power == 0:
        if public_key not in target:
            raise Rejected("not_a_validator", f"{public_key} is not a validator")
        del target[public_key]
    else:
        target[public_key] = power
    if not target:
        raise Rejected("no_validators", "the last validator cannot be removed")
    if len(target) > MAX_VALIDATORS:
        raise Rejected("too_many_validators", f"a set holds at most {MAX_VALIDATORS} validators")
    moved = sum(abs(target.get(k, 0) - base.get(k, 0)) for k in base.keys() | target.keys())
    total = sum(base.values())
    if 3 * moved > total:
        raise Rejected(
            "too_much_change",
            f"the changes move {moved} of {total} voting power by height {effective}; "
            "at most a third may change at once",
        )
    _schedule_validators(state, history, effective, target)
    return [
        {
            "type": "validator_update",
            "address": address_of(bytes.fromhex(public_key)),
            "public_key": public_key,
            "power": power,
            "effective_height": effective,
        }
    ]


def _commit_evidence(
    app: Application, state: Overlay, evidence: DuplicateVoteEvidence, ctx: BlockContext
) -> list[Event]:
    """Record a proven equivocation and remove the offender's power from ``ctx.height + 2``."""
    if evidence.height >= ctx.height:
        raise Rejected("future_evidence", "evidence is about heights before this block")
    if evidence.height < ctx.height - EVIDENCE_MAX_AGE:
        raise Rejected("old_evidence", f"evidence older than {EVIDENCE_MAX_AGE} blocks")
    history = state.get(VALIDATORS_KEY)
    assert isinstance(history, list)
    if evidence.height < _first_height(history):
        raise Rejected("old_evidence", "the validator set of that height is no longer kept")
    validators = ValidatorSet.from_json(_members_json_at(history, evidence.height))
    try:
        member = verify_evidence(app.genesis.chain_id, evidence, validators)
    except EvidenceError as err:
        raise Rejected("invalid_evidence", str(err)) from None
    key = f"evidence/{evidence.key}"
    if state.get(key) is not None:
        raise Rejected("duplicate_evidence", "this equivocation is already on the chain")
    state.put(
        key,
        {
            "hash": evidence.hash,
            "validator": member.address,
            "power": member.power,
            "committed_height": ctx.height,
        },
    )
    target = _powers_at(history, ctx.height + 2)
    offender = member.public_key.hex()
    jailed = offender in target and len(target) > 1
    if jailed:
        del target[offender]
        _schedule_validators(state, history, ctx.height + 2, target)
    vote = evidence.vote_a
    return [
        {
            "type": "evidence_committed",
            "validator": member.address,
            "height": vote.height,
            "round": vote.round,
            "vote_type": vote.type,
            "jailed": jailed,
        }
    ]


def _evidence(
    app: Application, state: Overlay, tx: Tx, account: dict[str, Value], ctx: BlockContext
) -> list[Event]:
    """Any registered participant may put duplicate-vote evidence on the chain."""
    evidence = DuplicateVoteEvidence.from_json(tx.body["evidence"], "body.evidence")
    return _commit_evidence(app, state, evidence, ctx)


_HANDLERS: Final = {
    TxType.REGISTER: _register,
    TxType.REVOKE: _revoke,
    TxType.BIND_METER: _bind_meter,
    TxType.CONTRACT_PROPOSE: _contract_propose,
    TxType.CONTRACT_SIGN: _contract_sign,
    TxType.CONTRACT_REVOKE: _contract_revoke,
    TxType.REPORT: _report,
    TxType.PRICE_SIGNAL: _price_signal,
    TxType.DR_EVENT: _dr_event,
    TxType.SERVICE: _service,
    TxType.DEPOSIT_REQUEST: _wallet_request,
    TxType.WITHDRAW_REQUEST: _wallet_request,
    TxType.DEPOSIT_CONFIRM: _deposit_confirm,
    TxType.WITHDRAW_CONFIRM: _withdraw_confirm,
    TxType.WALLET_CANCEL: _wallet_cancel,
    TxType.TRANSFER: _transfer,
    TxType.ORDER: market.place_order,
    TxType.ORDER_CANCEL: market.cancel_order,
    TxType.VALIDATOR_UPDATE: _validator_update,
    TxType.EVIDENCE: _evidence,
}
