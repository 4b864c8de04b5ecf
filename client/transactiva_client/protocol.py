"""The wire contract's names: the API version, its URL prefix and every enumerated value.

The node serves :data:`API_VERSION` in ``GET /api/v1/status`` (``"api_version"``). A
client works with a node whose major version equals its own and whose minor version is
at least the one it was written for (:func:`update_needed`). Within one major version a
node only adds: routes, optional fields, and members of the *open* enumerations below.

Open enumerations (a newer node may send a value this client does not know, and the
decoders keep such a value as a plain ``str``): :class:`EventKind`,
:class:`LocalEventKind`, :class:`ErrorCode`, :class:`ActionKind`, :class:`ActionTrigger`,
:class:`ActionStatus`, :class:`SettlementKind`,
:class:`WalletReason`, :class:`IntervalStatus`, :class:`ContractStatus`,
:class:`TxType`, :class:`Role`, :class:`AdmissionStatus`. Closed ones change only with a
major version, and a value outside them is a decode error: :class:`ActionResult`,
:class:`OrderSide`, :class:`SignalName`, :class:`TxStatus`, :class:`Severity`, :class:`SupplyState`.

Each enumeration names where the node produces its values, so that
``tests/client/test_agreement.py`` can prove the two sides agree.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

API_VERSION: Final = "1.1"
"""The version of the node API this client speaks, ``MAJOR.MINOR``."""

API_PREFIX: Final = "/api/v1"
"""Every route is under this prefix. ``GET /api/v1/status`` keeps answering, with
``api_version``, on nodes of later major versions too, so an old client can say what
to update."""

_VERSION_RE: Final = re.compile(r"(0|[1-9][0-9]{0,5})\.(0|[1-9][0-9]{0,5})")


@dataclass(frozen=True, order=True, slots=True)
class ApiVersion:
    """An API version: ``major`` changes break clients, ``minor`` ones only add."""

    major: int
    minor: int

    @classmethod
    def parse(cls, text: object) -> ApiVersion:
        """``"1.0"`` as ``ApiVersion(1, 0)``; ValueError for anything else."""
        match = _VERSION_RE.fullmatch(text) if isinstance(text, str) else None
        if match is None:
            raise ValueError(f"{text!r} is not an API version (MAJOR.MINOR)")
        return cls(int(match.group(1)), int(match.group(2)))

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}"


CLIENT_API_VERSION: Final = ApiVersion.parse(API_VERSION)


class Update(StrEnum):
    """Which side of an incompatible pair must be updated."""

    NODE = "node"  # the Transactiva node (the app, or the transactiva package)
    CLIENT = "client"  # transactiva-client, and what uses it (the integration, the CLI)


def update_needed(
    node: ApiVersion | None, client: ApiVersion = CLIENT_API_VERSION
) -> Update | None:
    """Which side to update before ``client`` can talk to a node serving ``node``.

    None when they are compatible: the same major version, and the node's minor version
    at least the client's. A node that does not say (``None``) predates API 1.0.
    """
    if node is None or node.major < client.major:
        return Update.NODE
    if node.major > client.major:
        return Update.CLIENT
    return Update.NODE if node.minor < client.minor else None


def known[E: StrEnum](enum: type[E], value: str) -> E | str:
    """``value`` as a member of the open enumeration ``enum``, or unchanged if unknown."""
    try:
        return enum(value)
    except ValueError:
        return value


# -- events ---------------------------------------------------------------------------------


class EventKind(StrEnum):
    """The ``type`` of an event of the ledger's stream (``GET /api/v1/events``).

    The state machine emits them (``ledger_core``'s transaction handlers, the market and
    the block store's ``new_block``); every node emits the same ones for the same chain.
    """

    NEW_BLOCK = "new_block"
    PARTICIPANT_REGISTERED = "participant_registered"
    PARTICIPANT_REVOKED = "participant_revoked"
    PARTICIPANT_NAMED = "participant_named"
    METER_BOUND = "meter_bound"
    CONTRACT_PROPOSED = "contract_proposed"
    CONTRACT_SIGNED = "contract_signed"
    CONTRACT_ACTIVATED = "contract_activated"
    CONTRACT_REVOKE_VOTE = "contract_revoke_vote"
    CONTRACT_REVOKED = "contract_revoked"
    CONTRACT_EXPIRED = "contract_expired"
    INTERVAL_REPORT = "interval_report"
    PRICE_SIGNAL = "price_signal"
    DR_EVENT = "dr_event"
    SERVICE_CUT = "service_cut"
    SERVICE_RECONNECTED = "service_reconnected"
    DEPOSIT_REQUESTED = "deposit_requested"
    WITHDRAWAL_REQUESTED = "withdrawal_requested"
    WALLET_CHANGE = "wallet_change"
    WITHDRAWAL_PAID = "withdrawal_paid"
    WALLET_REQUEST_CANCELLED = "wallet_request_cancelled"
    VALIDATOR_UPDATE = "validator_update"
    EVIDENCE_COMMITTED = "evidence_committed"
    ORDER_PLACED = "order_placed"
    ORDER_CANCELLED = "order_cancelled"
    INTERVAL_CLEARED = "interval_cleared"
    TRADE = "trade"
    SETTLEMENT = "settlement"
    INTERVAL_SETTLED = "interval_settled"
    BILL = "bill"
    DEBT_CHANGE = "debt_change"


WALLET_EVENTS: Final = frozenset(
    {
        EventKind.WALLET_CHANGE,
        EventKind.DEPOSIT_REQUESTED,
        EventKind.WITHDRAWAL_REQUESTED,
        EventKind.WITHDRAWAL_PAID,
        EventKind.WALLET_REQUEST_CANCELLED,
    }
)
"""The events that change a wallet or its pending requests."""

CONTRACT_EVENTS: Final = frozenset(
    {
        EventKind.CONTRACT_PROPOSED,
        EventKind.CONTRACT_SIGNED,
        EventKind.CONTRACT_ACTIVATED,
        EventKind.CONTRACT_REVOKE_VOTE,
        EventKind.CONTRACT_REVOKED,
        EventKind.CONTRACT_EXPIRED,
    }
)
"""The events of a contract's life; each carries its ``contract_id``."""


class LocalEventKind(StrEnum):
    """The ``type`` of an event of a home's own stream (``GET /api/v1/local/events``).

    The home agent publishes ``contract_action``; the action-result route publishes
    ``contract_action_result`` when someone reports what became of an action.
    """

    CONTRACT_ACTION = "contract_action"
    CONTRACT_ACTION_RESULT = "contract_action_result"


# -- contract actions -----------------------------------------------------------------------


class ActionKind(StrEnum):
    """What a contract asked for (``action`` of a ``contract_action``; the contract
    language's actions, ``contracts.model.ActionKind``)."""

    TURN_ON = "turn_on"
    TURN_OFF = "turn_off"
    RESTORE = "restore"
    SELL_SURPLUS = "sell_surplus"
    BUY = "buy"
    NOTIFY = "notify"
    STORE_SURPLUS = "store_surplus"
    CURTAIL_EXPORT = "curtail_export"


DEVICE_ACTIONS: Final = frozenset({ActionKind.TURN_ON, ActionKind.TURN_OFF, ActionKind.RESTORE})
"""The actions that switch a named device."""


class ActionTrigger(StrEnum):
    """What made a contract act (``trigger`` of a ``contract_action``): the contract
    language's events, and ``day_ahead`` for an order planned from the forecast."""

    INTERVAL_REPORT = "interval_report"
    SERVICE_CUT = "service_cut"
    RECONNECTION = "reconnection"
    PRICE_SIGNAL = "price_signal"
    DR_SIGNAL = "dr_signal"
    DAY_AHEAD = "day_ahead"


class ActionResult(StrEnum):
    """What became of a contract action, as reported to the node's action log (closed)."""

    OK = "ok"
    FAILED = "failed"
    UNMAPPED = "unmapped"  # no appliance is mapped to the contract's device name
    SKIPPED = "skipped"


class SettlementKind(StrEnum):
    """What a row of ``GET /market/settlements/{address}`` is (``api/market.py``; open): the
    statement of an interval's trades, or a day's bill of the energy with the supplier."""

    INTERVAL = "interval"
    BILL = "bill"


class ActionStatus(StrEnum):
    """Whether the home carried a contract's action out, or why not (the node's action log
    and ``contract_action`` events; open). The stream carries only ``effective`` ones."""

    EFFECTIVE = "effective"  # carried out
    UNCHANGED = "unchanged"  # the device is already in that state
    SUPPRESSED = "suppressed"  # held off (demand response in force, refused imports)
    SUPERSEDED = "superseded"  # another contract's action for the device won


# -- the ledger's records -------------------------------------------------------------------


class WalletReason(StrEnum):
    """Why money moved (``why`` of a ``wallet_change``; a settlement's ``lines`` keys)."""

    DEPOSIT = "deposit"
    TRANSFER = "transfer"
    ORDER_HOLD = "order_hold"
    ORDER_RELEASE = "order_release"
    P2P_ENERGY = "p2p_energy"
    NETWORK_FEE = "network_fee"
    SHORTFALL_COVER = "shortfall_cover"
    SHORTFALL = "shortfall"
    IMPORT = "import"
    UNUSED = "unused"
    EXPORT = "export"


class IntervalStatus(StrEnum):
    """A market interval's state (``status`` of ``/market/intervals`` rows and events)."""

    OPEN = "open"
    CLOSED = "closed"
    CLEARED = "cleared"
    UNPRICED = "unpriced"
    SETTLED = "settled"


class ContractStatus(StrEnum):
    """A contract's state; ``proposed`` waits for its parties' signatures."""

    PROPOSED = "proposed"
    ACTIVE = "active"
    EXPIRED = "expired"
    REVOKED = "revoked"


class OrderSide(StrEnum):
    """A market order's or a trade's side (closed)."""

    BUY = "buy"
    SELL = "sell"


class SignalName(StrEnum):
    """The OpenADR 2.0b signal of a demand-response event (closed)."""

    SIMPLE = "SIMPLE"  # a level 0-3
    ELECTRICITY_PRICE = "ELECTRICITY_PRICE"  # a price, 10^-4 MXN/kWh
    LOAD_DISPATCH = "LOAD_DISPATCH"  # a setpoint or a delta, whole watts


class Role(StrEnum):
    """What a registered participant is; ``operator`` accounts come from genesis and hold
    operator roles (:class:`OperatorRole`)."""

    PROSUMER = "prosumer"
    CONSUMER = "consumer"
    SUPPLIER = "supplier"
    DSO = "dso"
    RETAILER = "retailer"
    AGGREGATOR = "aggregator"
    METER = "meter"
    OPERATOR = "operator"


class AdmissionStatus(StrEnum):
    """Whether a home's node is a participant yet (``status`` of ``GET /local/admission``).

    ``joining``: it asks the operator's node with its invitation, or its registration is
    being committed; ``awaiting_approval``: the operator approves this home by hand;
    ``refused``: the operator refused the invitation (the ``message`` says why: used,
    expired, cancelled...); ``not_invited``: no invitation and not registered.
    """

    MEMBER = "member"
    REVOKED = "revoked"
    JOINING = "joining"
    AWAITING_APPROVAL = "awaiting_approval"
    REFUSED = "refused"
    NOT_INVITED = "not_invited"


class OperatorRole(StrEnum):
    """The roles an operator account holds (each belongs to exactly one operator)."""

    ISO = "ISO"
    SUPPLIER = "SUPPLIER"
    DSO = "DSO"


class TxType(StrEnum):
    """Every kind of transaction (``POST /api/v1/local/{type}`` takes these)."""

    REGISTER = "register"
    REVOKE = "revoke"
    BIND_METER = "bind_meter"
    SET_NAME = "set_name"
    CONTRACT_PROPOSE = "contract_propose"
    CONTRACT_SIGN = "contract_sign"
    CONTRACT_REVOKE = "contract_revoke"
    REPORT = "report"
    PRICE_SIGNAL = "price_signal"
    DR_EVENT = "dr_event"
    SERVICE = "service"
    DEPOSIT_REQUEST = "deposit_request"
    DEPOSIT_CONFIRM = "deposit_confirm"
    WITHDRAW_REQUEST = "withdraw_request"
    WITHDRAW_CONFIRM = "withdraw_confirm"
    WALLET_CANCEL = "wallet_cancel"
    TRANSFER = "transfer"
    ORDER = "order"
    ORDER_CANCEL = "order_cancel"
    DELIVERY = "delivery"
    BILL = "bill"
    VALIDATOR_UPDATE = "validator_update"
    EVIDENCE = "evidence"


class TxStatus(StrEnum):
    """Where a submitted transaction is (closed)."""

    PENDING = "pending"
    COMMITTED = "committed"


TX_OK: Final = "ok"
"""The ``code`` of a committed transaction the rules accepted (any other is an ErrorCode)."""


class Severity(StrEnum):
    """A contract diagnostic's severity (closed)."""

    ERROR = "error"
    WARNING = "warning"


class SupplyState(StrEnum):
    """The supply as a meter sees it (``service`` of a reading; closed)."""

    CONNECTED = "connected"
    CUT = "cut"
    UNKNOWN = "unknown"


# -- errors ---------------------------------------------------------------------------------


class ErrorCode(StrEnum):
    """Every ``code`` of the node's JSON errors ``{"error": {"code", "message", "field"}}``.

    The API's own codes come first; then the rules' refusals (``Rejected`` in the state
    machine and the market), which the node answers with 422 and records as the
    ``code`` of a committed transaction; then the roles' routes (meter, analytics,
    concentrator). ``method_not_allowed`` and ``content_too_large`` are aiohttp's own
    refusals, named by the node's error middleware from the HTTP reason.
    """

    # The API.
    MALFORMED = "malformed"
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    TOO_LARGE = "too_large"
    CONTENT_TOO_LARGE = "content_too_large"
    INTERNAL_ERROR = "internal_error"
    # Submission (the mempool).
    DUPLICATE = "duplicate"
    ALREADY_COMMITTED = "already_committed"
    MEMPOOL_FULL = "mempool_full"
    # More waits than the chain commits in the node's bound (503 with Retry-After).
    OVERLOADED = "overloaded"
    UNKNOWN = "unknown"  # the transaction left the mempool without being committed
    # The rules: the envelope and membership.
    WRONG_CHAIN = "wrong_chain"
    UNKNOWN_SIGNER = "unknown_signer"
    REVOKED_SIGNER = "revoked_signer"
    BAD_SIGNATURE = "bad_signature"
    STALE_NONCE = "stale_nonce"
    NOT_PERMITTED = "not_permitted"
    ALREADY_REGISTERED = "already_registered"
    UNKNOWN_ACCOUNT = "unknown_account"
    REVOKED_ACCOUNT = "revoked_account"
    NAME_TAKEN = "name_taken"
    UNKNOWN_NAME = "unknown_name"  # no participant holds the name given for an address
    # Contracts.
    INVALID_CONTRACT = "invalid_contract"
    NOT_CANONICAL = "not_canonical"
    DUPLICATE_CONTRACT = "duplicate_contract"
    EXPIRED_CONTRACT = "expired_contract"
    UNKNOWN_CONTRACT = "unknown_contract"
    UNKNOWN_PARTY = "unknown_party"
    NOT_A_PARTY = "not_a_party"
    NOT_PROPOSED = "not_proposed"
    ALREADY_SIGNED = "already_signed"
    NOT_REVOCABLE = "not_revocable"
    ALREADY_VOTED = "already_voted"
    AMBIGUOUS_ID = "ambiguous_id"  # a short id (0x + 10 hex) shared by several contracts
    # Reports, signals and the wallet.
    MISALIGNED_INTERVAL = "misaligned_interval"
    FUTURE_INTERVAL = "future_interval"
    PAST_INTERVAL = "past_interval"
    LATE_REPORT = "late_report"
    DUPLICATE_REPORT = "duplicate_report"
    STALE_MODIFICATION = "stale_modification"
    CANCELLED_EVENT = "cancelled_event"
    INSUFFICIENT_FUNDS = "insufficient_funds"
    UNKNOWN_REQUEST = "unknown_request"
    WRONG_REQUEST = "wrong_request"
    NOT_PENDING = "not_pending"
    SELF_TRANSFER = "self_transfer"
    # Validators and evidence.
    NOT_A_VALIDATOR = "not_a_validator"
    NO_VALIDATORS = "no_validators"
    TOO_MANY_VALIDATORS = "too_many_validators"
    TOO_MUCH_CHANGE = "too_much_change"
    INVALID_EVIDENCE = "invalid_evidence"
    DUPLICATE_EVIDENCE = "duplicate_evidence"
    OLD_EVIDENCE = "old_evidence"
    FUTURE_EVIDENCE = "future_evidence"
    # The market.
    SERVICE_CUT = "service_cut"
    GATE_CLOSED = "gate_closed"
    TOO_FAR_AHEAD = "too_far_ahead"
    OPPOSITE_SIDE = "opposite_side"
    TOO_MANY_ORDERS = "too_many_orders"
    IN_DEBT = "in_debt"
    UNKNOWN_ORDER = "unknown_order"
    NOT_OPEN = "not_open"
    # Metered energy from the concentrator (deliveries and bills, docs/privacy.md).
    NOT_AWAITING_DELIVERY = "not_awaiting_delivery"
    WRONG_SELLERS = "wrong_sellers"
    OVER_DELIVERY = "over_delivery"
    UNREPORTED_DELIVERY = "unreported_delivery"
    FOREIGN_METER = "foreign_meter"
    UNKNOWN_REPORT = "unknown_report"
    MISALIGNED_DAY = "misaligned_day"
    TOO_EARLY = "too_early"
    TOO_LATE = "too_late"
    OUTSIDE_DAY = "outside_day"
    ALREADY_BILLED = "already_billed"
    UNPRICED_INTERVAL = "unpriced_interval"
    NOT_BILLABLE = "not_billable"
    DELIVERY_PENDING = "delivery_pending"
    WRONG_PRICE = "wrong_price"
    UNUSED_EXCEEDS_BOUGHT = "unused_exceeds_bought"
    # The meter and its analytics.
    NO_READING = "no_reading"
    NOT_PUSHED = "not_pushed"
    NOT_READY = "not_ready"
    # The concentrator (operator routes).
    UNAVAILABLE = "unavailable"
    PENDING = "pending"
    PAST_EVENT = "past_event"
    EVENT_EXISTS = "event_exists"
    NO_FREE_ID = "no_free_id"
    UNKNOWN_EVENT = "unknown_event"
    COMPLETED_EVENT = "completed_event"
    # Membership (the operator's invitation routes).
    NOT_LISTENING = "not_listening"  # the operator's node has no P2P port for homes to join
    # The concentrator's private store of readings (docs/privacy.md).
    UNKNOWN_METER = "unknown_meter"
    COMMITMENT_MISMATCH = "commitment_mismatch"
    NOT_DEPARTED = "not_departed"
    READINGS_PENDING = "readings_pending"
