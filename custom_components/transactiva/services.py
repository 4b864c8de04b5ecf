"""The integration's actions, registered once in ``async_setup``.

Every action names the node's entry with ``config_entry_id``. Amounts are in
MXN, energy in kWh and prices in MXN/kWh, converted exactly to the ledger's
integers (centavos, Wh, 10^-4 MXN/kWh): a value finer than the ledger keeps is
refused, never rounded. What the person can put right or wait for raises
``ServiceValidationError`` with a translated message, and Home Assistant shows
it without a traceback: bad input (before anything reaches the node), a
transaction the ledger refuses (with the node's reason), a node without the
feature or without a meter, a forecast that is not ready yet. A node that
cannot be reached or refuses the token raises ``HomeAssistantError``.
Transactions are signed by the node with the local participant's key and the
actions wait until the block commits; a home that the operator has not admitted
yet cannot sign any (``not_admitted``).

Wherever an action takes a participant (``transfer``'s ``to``, the targets of a
demand-response event, the quoted parties of a contract) a participant's display name
is taken too: the node says which address holds it, and a name nobody holds is refused
(``unknown_name``) before anything is signed. ``sign_contract`` countersigns a contract
that awaits this home's signature, by its id or its short id (the node finds it among
all contracts; a short id shared by several is refused as ambiguous).

``get_prices``, ``get_settlements``, ``get_trades``, ``get_forecast`` and
``get_advice`` only answer (``SupportsResponse.ONLY``): series and forecasts
belong in responses, never in states or attributes.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import TYPE_CHECKING, Any, Final

import voluptuous as vol
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import (
    HomeAssistant,
    ServiceCall,
    ServiceResponse,
    SupportsResponse,
    callback,
)
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import config_validation as cv
from homeassistant.util import dt as dt_util

from transactiva_client import (
    TransactivaAuthError,
    TransactivaError,
    TransactivaNotReadyError,
    TransactivaRequestError,
)
from transactiva_client.models import (
    ADDRESS_RE,
    EVENT_ID_RE,
    HASH_RE,
    SETTLEMENT_ENERGY,
    SHORT_ID_RE,
    ContractCheck,
    ContractRecord,
    PriceSignal,
    Settlement,
    TxResult,
)
from transactiva_client.protocol import ErrorCode, EventKind, SettlementKind, Severity, TxType
from transactiva_client.units import (
    ENERGY_DECIMALS,
    ENERGY_UNIT,
    MONEY_DECIMALS,
    PRICE_DECIMALS,
    NotExactError,
    energy,
    money,
    price,
    scale_exact,
)

from .const import CURRENCY, DOMAIN, PRICE_UNIT
from .coordinator import now_seconds

if TYPE_CHECKING:
    from . import TransactivaConfigEntry

ATTR_CONFIG_ENTRY_ID: Final = "config_entry_id"

NUMBER = vol.Any(int, float, str)
BASE: Final = {vol.Required(ATTR_CONFIG_ENTRY_ID): cv.string}
# What may be a participant's name (the node checks the finer rules: reserved words...).
NAME_TEXT_RE: Final = re.compile(r"[A-Za-z0-9._-]{1,32}")

type ServiceHandler = Callable[[HomeAssistant, ServiceCall], Awaitable[ServiceResponse]]


# -- input checks ---------------------------------------------------------------------


def _invalid(key: str, **placeholders: object) -> ServiceValidationError:
    return ServiceValidationError(
        translation_domain=DOMAIN,
        translation_key=key,
        translation_placeholders={k: str(v) for k, v in placeholders.items()},
    )


def _exact(call: ServiceCall, name: str, decimals: int, *, positive: bool = True) -> int:
    """A field converted exactly to ledger units (transactiva_client.units)."""
    try:
        value = scale_exact(call.data[name], decimals)
    except NotExactError:
        raise _invalid("not_exact", field=name, value=call.data[name], decimals=decimals) from None
    if positive and value <= 0:
        raise _invalid("not_positive", field=name, value=call.data[name])
    return value


def _timestamp(moment: datetime) -> int:
    """Unix seconds; a time without zone is Home Assistant's local time."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt_util.get_default_time_zone())
    return int(moment.timestamp())


def _entry(hass: HomeAssistant, call: ServiceCall) -> TransactivaConfigEntry:
    entry_id = call.data[ATTR_CONFIG_ENTRY_ID]
    entry = hass.config_entries.async_get_entry(entry_id)
    if entry is None or entry.domain != DOMAIN:
        raise _invalid("entry_not_found", entry_id=entry_id)
    if entry.state is not ConfigEntryState.LOADED:
        raise _invalid("entry_not_loaded", entry=entry.title)
    return entry


def _require_role(entry: TransactivaConfigEntry, roles: set[str]) -> None:
    held = set(entry.runtime_data.coordinator.data.roles)
    if not held & roles:
        raise _invalid("not_operator", entry=entry.title, roles=" or ".join(sorted(roles)))


def _require_member(entry: TransactivaConfigEntry) -> None:
    """A home that is not a participant (yet) signs nothing: say so, not the node's code."""
    admission = entry.runtime_data.coordinator.data.admission
    if admission is not None and not admission.member:
        raise _invalid("not_admitted", entry=entry.title, status=admission.status)


async def _participant(entry: TransactivaConfigEntry, field: str, raw: str) -> str:
    """The address of a participant given by its address or its display name."""
    value = raw.strip()
    if ADDRESS_RE.fullmatch(value):
        return value
    if not NAME_TEXT_RE.fullmatch(value):
        raise _invalid("invalid_address", field=field, value=raw)

    async def holder() -> str:
        try:
            return (await entry.runtime_data.client.name(value)).address
        except TransactivaRequestError as err:
            if err.code == ErrorCode.UNKNOWN_NAME:
                raise _invalid("unknown_name", field=field, name=value) from err
            if err.code == ErrorCode.MALFORMED:
                raise _invalid("invalid_address", field=field, value=raw) from err
            raise

    return await _node(entry, holder())


def _contract_id(entry: TransactivaConfigEntry, raw: str) -> str:
    """A full contract id from a full id or a short id (``0x`` + 10 hex digits)."""
    value = raw.strip()
    if HASH_RE.fullmatch(value.lower()):
        return value.lower()
    short = "0x" + value[2:].upper() if value[:2].lower() == "0x" else ""
    if SHORT_ID_RE.fullmatch(short):
        for info in entry.runtime_data.coordinator.data.contracts.values():
            if info.short_id == short:
                return info.contract_id
    raise _invalid("unknown_contract", contract=raw)


async def _node[T](
    entry: TransactivaConfigEntry, request: Awaitable[T], feature: str | None = None
) -> T:
    """Run one request; translate the node's refusals and failures for people.

    ``feature`` names a route the node may not have yet: a 404 then means the
    node does not support it (rather than that something was not found).
    """
    try:
        return await request
    except TransactivaRequestError as err:
        if err.status == 404 and feature is not None and err.code == ErrorCode.NOT_FOUND:
            raise _invalid("unsupported_by_node", feature=feature) from err
        raise _invalid("node_refused", code=err.code, message=err.message) from err
    except TransactivaNotReadyError as err:
        raise _invalid("not_ready", message=err.message) from err
    except TransactivaAuthError as err:
        entry.async_start_reauth(entry.runtime_data.coordinator.hass)
        raise HomeAssistantError(translation_domain=DOMAIN, translation_key="invalid_auth") from err
    except TransactivaError as err:
        raise HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="cannot_connect",
            translation_placeholders={
                "url": str(entry.runtime_data.node_url),
                "error": str(err),
            },
        ) from err


async def _local(entry: TransactivaConfigEntry, tx_type: TxType, body: dict[str, Any]) -> TxResult:
    """Submit a transaction signed by the node and wait for its block."""
    _require_member(entry)
    client = entry.runtime_data.client
    return await _node(
        entry, client.submit_local(tx_type, body), feature=f"transaction type {tx_type}"
    )


def _tx_answer(result: TxResult) -> dict[str, Any]:
    return {"transaction": result.tx_id, "status": str(result.status), "height": result.height}


# -- contracts --------------------------------------------------------------------------


def _diagnostics(answer: ContractCheck, severity: Severity) -> list[Any]:
    return [diagnostic.to_json() for diagnostic in answer.of_severity(severity)]


async def _check(entry: TransactivaConfigEntry, source: str) -> ContractCheck:
    return await _node(
        entry,
        entry.runtime_data.client.check_contract(source),
        feature="contract checking",
    )


async def _validate_contract(hass: HomeAssistant, call: ServiceCall) -> ServiceResponse:
    entry = _entry(hass, call)
    answer = await _check(entry, call.data["source"])
    return {
        "valid": answer.valid,
        "contract_id": answer.contract_id,
        "short_id": answer.short_id,
        "name": answer.name,
        "canonical": answer.canonical,
        "errors": _diagnostics(answer, Severity.ERROR),
        "warnings": _diagnostics(answer, Severity.WARNING),
    }


async def _contract_answer(entry: TransactivaConfigEntry, contract_id: str) -> dict[str, Any]:
    record = await _node(entry, entry.runtime_data.client.contract(contract_id))
    return {
        "contract_id": contract_id,
        "short_id": record.short_id,
        "status": str(record.status),
        "receipt": record.receipt,
    }


async def _submit_contract(hass: HomeAssistant, call: ServiceCall) -> ServiceResponse:
    entry = _entry(hass, call)
    answer = await _check(entry, call.data["source"])
    if not answer.valid or answer.canonical is None or answer.contract_id is None:
        errors = _diagnostics(answer, Severity.ERROR)
        first = errors[0] if errors else {"line": 1, "column": 1, "message": "invalid"}
        raise _invalid(
            "invalid_contract",
            line=first["line"],
            column=first["column"],
            message=first["message"],
            count=len(errors),
        )
    await _named_parties(entry, answer.parties)
    result = await _local(entry, TxType.CONTRACT_PROPOSE, {"source": answer.canonical})
    proposed = result.first(EventKind.CONTRACT_PROPOSED)
    contract_id = str(proposed.data["contract_id"]) if proposed else answer.contract_id
    return await _contract_answer(entry, contract_id)


async def _named_parties(entry: TransactivaConfigEntry, parties: tuple[str, ...]) -> None:
    """Every quoted party that is a name must be held by someone (roles and addresses are
    the ledger's to judge when the contract is proposed)."""
    client = entry.runtime_data.client
    for party in parties:
        if ADDRESS_RE.fullmatch(party) or not NAME_TEXT_RE.fullmatch(party):
            continue

        async def holder(name: str = party) -> None:
            try:
                await client.name(name)
            except TransactivaRequestError as err:
                if err.code == ErrorCode.UNKNOWN_NAME:
                    raise _invalid("unknown_name", field="Parties", name=name) from err
                if err.code != ErrorCode.MALFORMED:  # a role (ISO, DSO...): not a name
                    raise

        await _node(entry, holder())


# What the node's refusals of a signature mean for the person signing.
SIGN_REFUSALS: Final = {
    ErrorCode.UNKNOWN_CONTRACT: "unknown_contract",
    ErrorCode.AMBIGUOUS_ID: "ambiguous_contract_id",
    ErrorCode.NOT_A_PARTY: "not_a_party",
    ErrorCode.ALREADY_SIGNED: "already_signed",
    ErrorCode.NOT_PROPOSED: "not_awaiting_signature",
}


async def _sign_contract(hass: HomeAssistant, call: ServiceCall) -> ServiceResponse:
    entry = _entry(hass, call)
    raw = call.data["contract"]
    value = raw.strip()
    short = "0x" + value[2:].upper() if value[:2].lower() == "0x" else ""
    if not HASH_RE.fullmatch(value.lower()) and not SHORT_ID_RE.fullmatch(short):
        raise _invalid("unknown_contract", contract=raw)
    _require_member(entry)

    async def sign() -> ContractRecord:
        try:
            return await entry.runtime_data.client.sign_contract(value.lower())
        except TransactivaRequestError as err:
            for code, key in SIGN_REFUSALS.items():
                if err.code == code:
                    raise _invalid(key, contract=raw, message=err.message) from err
            raise

    record = await _node(entry, sign())
    return {
        "contract_id": record.contract_id,
        "short_id": record.short_id,
        "status": str(record.status),
        "receipt": record.receipt,
    }


async def _revoke_contract(hass: HomeAssistant, call: ServiceCall) -> ServiceResponse:
    entry = _entry(hass, call)
    contract_id = _contract_id(entry, call.data["contract"])
    await _local(entry, TxType.CONTRACT_REVOKE, {"contract_id": contract_id})
    return await _contract_answer(entry, contract_id)


# -- wallet and market ------------------------------------------------------------------


def _wallet_request(tx_type: TxType) -> ServiceHandler:
    async def handler(hass: HomeAssistant, call: ServiceCall) -> ServiceResponse:
        entry = _entry(hass, call)
        body: dict[str, Any] = {"amount": _exact(call, "amount", MONEY_DECIMALS)}
        if call.data.get("reference"):
            body["reference"] = call.data["reference"]
        return _tx_answer(await _local(entry, tx_type, body))

    return handler


async def _transfer(hass: HomeAssistant, call: ServiceCall) -> ServiceResponse:
    entry = _entry(hass, call)
    to = await _participant(entry, "to", call.data["to"])
    body: dict[str, Any] = {"to": to, "amount": _exact(call, "amount", MONEY_DECIMALS)}
    if call.data.get("memo"):
        body["memo"] = call.data["memo"]
    return _tx_answer(await _local(entry, TxType.TRANSFER, body))


async def _place_order(hass: HomeAssistant, call: ServiceCall) -> ServiceResponse:
    entry = _entry(hass, call)
    body = {
        "interval_start": _timestamp(call.data["interval_start"]),
        "side": call.data["side"],
        "energy_wh": _exact(call, "energy", ENERGY_DECIMALS),
        "limit_price": _exact(call, "limit_price", PRICE_DECIMALS, positive=False),
    }
    return _tx_answer(await _local(entry, TxType.ORDER, body))


def _range(call: ServiceCall, days: int) -> tuple[int, int]:
    start = call.data.get("start")
    first = (
        _timestamp(start) if start is not None else int(dt_util.start_of_local_day().timestamp())
    )
    end = call.data.get("end")
    last = _timestamp(end) if end is not None else first + days * 86400
    if last <= first:
        raise _invalid("empty_range", start=first, end=last)
    return first, last


def _price_json(value: Decimal) -> float:
    return float(round(value, PRICE_DECIMALS))


async def _get_prices(hass: HomeAssistant, call: ServiceCall) -> ServiceResponse:
    entry = _entry(hass, call)
    first, last = _range(call, 2)
    rows = await _node(entry, entry.runtime_data.client.prices(first, last))
    prices = sorted(rows, key=lambda row: row.start)
    interval = entry.runtime_data.coordinator.data.status.interval_seconds
    hourly = call.data.get("resolution") == "hour"
    groups: dict[int, list[PriceSignal]] = {}
    for row in prices:
        key = row.start
        if hourly:
            local = dt_util.as_local(dt_util.utc_from_timestamp(row.start))
            key = int(local.replace(minute=0, second=0, microsecond=0).timestamp())
        groups.setdefault(key, []).append(row)
    intervals: list[Any] = []
    for start, members in groups.items():
        end = start + 3600 if hourly else start + interval
        intervals.append(
            {
                "start": dt_util.utc_from_timestamp(start).isoformat(),
                "end": dt_util.utc_from_timestamp(end).isoformat(),
                **{
                    name: _price_json(
                        sum((price(getattr(m, name)) for m in members), Decimal(0)) / len(members)
                    )
                    for name in ("import_price", "export_price", "network_fee")
                },
            }
        )
    return {
        "currency": CURRENCY,
        "unit": PRICE_UNIT,
        "resolution": "hour" if hourly else "interval",
        "intervals": intervals,
    }


def _kwh(wh: int) -> float:
    """Wh from the node as kWh (exact to the Wh)."""
    return float(energy(wh))


def _mxn(centavos: int) -> float:
    return float(money(centavos))


def _mxn_per_kwh(units: int) -> float:
    return _price_json(price(units))


def _interval(entry: TransactivaConfigEntry, start: int) -> dict[str, Any]:
    """An interval's start and end as ISO times."""
    length = entry.runtime_data.coordinator.data.status.interval_seconds
    return {
        "start": dt_util.utc_from_timestamp(start).isoformat(),
        "end": dt_util.utc_from_timestamp(start + length).isoformat(),
    }


def _settled_span(entry: TransactivaConfigEntry, row: Settlement) -> dict[str, Any]:
    """An interval's statement spans the interval; a day's bill, from its local midnight to
    the next (in Home Assistant's time zone, the home's)."""
    if row.kind != SettlementKind.BILL:
        return _interval(entry, row.start)
    day = dt_util.as_local(dt_util.utc_from_timestamp(row.start)).date()
    end = dt_util.start_of_local_day(day + timedelta(days=1))
    return {
        "start": dt_util.utc_from_timestamp(row.start).isoformat(),
        "end": dt_util.as_utc(end).isoformat(),
    }


async def _get_settlements(hass: HomeAssistant, call: ServiceCall) -> ServiceResponse:
    entry = _entry(hass, call)
    first, last = _range(call, 1)
    runtime = entry.runtime_data
    answer = await _node(
        entry,
        runtime.client.settlements(runtime.status.participant, first, last),
        feature="settlements",
    )
    settlements: list[Any] = [
        _settled_span(entry, row)
        | {"kind": str(row.kind), "amount": _mxn(row.amount)}
        | {f"{name}_energy": _kwh(row.energy_wh[name]) for name in SETTLEMENT_ENERGY}
        | {
            "import_price": _mxn_per_kwh(row.import_price),
            "export_price": _mxn_per_kwh(row.export_price),
            "lines": {str(why): _mxn(value) for why, value in row.lines.items()},
            "late_reports": row.late_reports,
        }
        for row in answer.settlements
    ]
    return {
        "currency": CURRENCY,
        "total": float(money(sum(row.amount for row in answer.settlements))),
        "debt": _mxn(answer.debt),
        "settlements": settlements,
    }


async def _get_trades(hass: HomeAssistant, call: ServiceCall) -> ServiceResponse:
    entry = _entry(hass, call)
    first, last = _range(call, 1)
    runtime = entry.runtime_data
    rows = await _node(
        entry, runtime.client.trades(runtime.status.participant, first, last), feature="trades"
    )
    return {
        "currency": CURRENCY,
        "unit": PRICE_UNIT,
        "trades": [
            _interval(entry, row.start)
            | {
                "side": str(row.side),
                "energy": _kwh(row.energy_wh),
                "price": _mxn_per_kwh(row.price),
                "payment": _mxn(row.payment),
                "fee": _mxn(row.fee),
            }
            for row in rows
        ],
    }


# -- forecasts and advice ------------------------------------------------------------------


FORECAST_COLUMNS: Final = (
    ("consumption", "consumption_wh"),
    ("consumption_p10", "consumption_p10"),
    ("consumption_p90", "consumption_p90"),
    ("consumption_mean", "consumption_mean"),
    ("production", "production_wh"),
    ("production_p10", "production_p10"),
    ("production_p90", "production_p90"),
    ("production_mean", "production_mean"),
)


def _require_meter(entry: TransactivaConfigEntry) -> None:
    """A node without a meter has no analytics (its own message)."""
    if entry.runtime_data.meter is None:
        raise _invalid("no_meter", entry=entry.title)


async def _get_forecast(hass: HomeAssistant, call: ServiceCall) -> ServiceResponse:
    entry = _entry(hass, call)
    _require_meter(entry)
    answer = await _node(entry, entry.runtime_data.client.forecast(call.data["hours"]))
    step = answer.interval_seconds
    intervals: list[Any] = [
        {
            "start": dt_util.utc_from_timestamp(point.start).isoformat(),
            "end": dt_util.utc_from_timestamp(point.start + step).isoformat(),
            **{name: _kwh(point.values[key]) for name, key in FORECAST_COLUMNS},
        }
        for point in answer.series
    ]
    fitted = answer.fitted_at
    return {
        "unit": ENERGY_UNIT,
        "fitted_at": None if fitted is None else dt_util.utc_from_timestamp(fitted).isoformat(),
        "kwp": answer.kwp,
        "intervals": intervals,
    }


async def _get_advice(hass: HomeAssistant, call: ServiceCall) -> ServiceResponse:
    entry = _entry(hass, call)
    _require_meter(entry)
    answer = await _node(entry, entry.runtime_data.client.advice())
    language = "es" if hass.config.language.startswith("es") else "en"
    items: list[Any] = [
        {
            "id": item.id,
            "title": item.title.get(language),
            "detail": item.detail.get(language),
            "savings": _mxn(item.centavos),
            "period_days": item.period_days,
            "evidence": item.evidence,
        }
        for item in answer.items
    ]
    return {"currency": CURRENCY, "items": items}


# -- operators --------------------------------------------------------------------------


async def _send_price_signal(hass: HomeAssistant, call: ServiceCall) -> ServiceResponse:
    entry = _entry(hass, call)
    _require_role(entry, {"ISO", "SUPPLIER"})
    body = {
        "interval_start": _timestamp(call.data["interval_start"]),
        **{
            name: _exact(call, name, PRICE_DECIMALS, positive=False)
            for name in ("import_price", "export_price", "network_fee")
        },
    }
    return _tx_answer(await _local(entry, TxType.PRICE_SIGNAL, body))


def new_event_id(now: int) -> str:
    """A demand-response event id: ``ha-``, the UTC time of issue and 12 random hex digits
    (two events sent in the same second are two events; the node's own are ``dr-...``)."""
    return f"ha-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime(now))}-{secrets.token_hex(6)}"


async def _send_demand_response(hass: HomeAssistant, call: ServiceCall) -> ServiceResponse:
    entry = _entry(hass, call)
    _require_role(entry, {"ISO", "DSO"})
    level, signal_price = call.data.get("level"), call.data.get("price")
    if (level is None) == (signal_price is None):
        raise _invalid("level_or_price")
    signal: dict[str, Any] = (
        {"name": "SIMPLE", "level": level}
        if level is not None
        else {
            "name": "ELECTRICITY_PRICE",
            "price": _exact(call, "price", PRICE_DECIMALS, positive=False),
        }
    )
    event_id = call.data.get("event_id") or new_event_id(now_seconds())
    if not EVENT_ID_RE.fullmatch(event_id):
        raise _invalid("invalid_event_id", value=event_id)
    targets = [await _participant(entry, "targets", t) for t in call.data.get("targets", [])]
    start = call.data.get("start")
    body = {
        "event_id": event_id,
        "modification_number": 0,
        "signal": signal,
        "start": _timestamp(start) if start is not None else now_seconds(),
        "duration": int(call.data["duration"].total_seconds()),
        "targets": targets,
        "cancelled": False,
    }
    return {"event_id": event_id} | _tx_answer(await _local(entry, TxType.DR_EVENT, body))


async def _cancel_demand_response(hass: HomeAssistant, call: ServiceCall) -> ServiceResponse:
    entry = _entry(hass, call)
    _require_role(entry, {"ISO", "DSO"})
    event_id = call.data["event_id"]
    if not EVENT_ID_RE.fullmatch(event_id):
        raise _invalid("invalid_event_id", value=event_id)
    record = (await _node(entry, entry.runtime_data.client.dr_event(event_id))).to_json()
    body = {key: record[key] for key in ("event_id", "signal", "start", "duration", "targets")} | {
        "modification_number": record["modification_number"] + 1,
        "cancelled": True,
    }
    return {"event_id": event_id} | _tx_answer(await _local(entry, TxType.DR_EVENT, body))


# -- registration -------------------------------------------------------------------------

DURATION = vol.All(cv.time_period, vol.Range(min=timedelta(minutes=1), max=timedelta(days=7)))

SERVICES: Final[dict[str, tuple[ServiceHandler, dict[Any, Any], SupportsResponse]]] = {
    "validate_contract": (
        _validate_contract,
        {vol.Required("source"): cv.string},
        SupportsResponse.ONLY,
    ),
    "submit_contract": (
        _submit_contract,
        {vol.Required("source"): cv.string},
        SupportsResponse.OPTIONAL,
    ),
    "sign_contract": (
        _sign_contract,
        {vol.Required("contract"): cv.string},
        SupportsResponse.OPTIONAL,
    ),
    "revoke_contract": (
        _revoke_contract,
        {vol.Required("contract"): cv.string},
        SupportsResponse.OPTIONAL,
    ),
    "deposit": (
        _wallet_request(TxType.DEPOSIT_REQUEST),
        {
            vol.Required("amount"): NUMBER,
            vol.Optional("reference"): vol.All(cv.string, vol.Length(max=64)),
        },
        SupportsResponse.OPTIONAL,
    ),
    "withdraw": (
        _wallet_request(TxType.WITHDRAW_REQUEST),
        {
            vol.Required("amount"): NUMBER,
            vol.Optional("reference"): vol.All(cv.string, vol.Length(max=64)),
        },
        SupportsResponse.OPTIONAL,
    ),
    "transfer": (
        _transfer,
        {
            vol.Required("to"): cv.string,
            vol.Required("amount"): NUMBER,
            vol.Optional("memo"): vol.All(cv.string, vol.Length(max=140)),
        },
        SupportsResponse.OPTIONAL,
    ),
    "place_order": (
        _place_order,
        {
            vol.Required("interval_start"): cv.datetime,
            vol.Required("side"): vol.In(["buy", "sell"]),
            vol.Required("energy"): NUMBER,
            vol.Required("limit_price"): NUMBER,
        },
        SupportsResponse.OPTIONAL,
    ),
    "get_prices": (
        _get_prices,
        {
            vol.Optional("start"): cv.datetime,
            vol.Optional("end"): cv.datetime,
            vol.Optional("resolution", default="interval"): vol.In(["interval", "hour"]),
        },
        SupportsResponse.ONLY,
    ),
    "get_settlements": (
        _get_settlements,
        {vol.Optional("start"): cv.datetime, vol.Optional("end"): cv.datetime},
        SupportsResponse.ONLY,
    ),
    "get_trades": (
        _get_trades,
        {vol.Optional("start"): cv.datetime, vol.Optional("end"): cv.datetime},
        SupportsResponse.ONLY,
    ),
    "get_forecast": (
        _get_forecast,
        {vol.Optional("hours", default=24): vol.All(vol.Coerce(int), vol.Range(min=1, max=48))},
        SupportsResponse.ONLY,
    ),
    "get_advice": (_get_advice, {}, SupportsResponse.ONLY),
    "send_price_signal": (
        _send_price_signal,
        {
            vol.Required("interval_start"): cv.datetime,
            vol.Required("import_price"): NUMBER,
            vol.Required("export_price"): NUMBER,
            vol.Required("network_fee"): NUMBER,
        },
        SupportsResponse.OPTIONAL,
    ),
    "send_demand_response": (
        _send_demand_response,
        {
            vol.Optional("event_id"): cv.string,
            vol.Optional("level"): vol.All(vol.Coerce(int), vol.Range(min=0, max=3)),
            vol.Optional("price"): NUMBER,
            vol.Optional("start"): cv.datetime,
            vol.Required("duration"): DURATION,
            vol.Optional("targets", default=list): vol.All(cv.ensure_list, [cv.string]),
        },
        SupportsResponse.OPTIONAL,
    ),
    "cancel_demand_response": (
        _cancel_demand_response,
        {vol.Required("event_id"): cv.string},
        SupportsResponse.OPTIONAL,
    ),
}


async def _dispatch(
    hass: HomeAssistant, handler: ServiceHandler, call: ServiceCall
) -> ServiceResponse:
    response = await handler(hass, call)
    return response if call.return_response else None


@callback
def async_setup_services(hass: HomeAssistant) -> None:
    """Register every action of the integration."""
    for name, (handler, fields, supports) in SERVICES.items():
        hass.services.async_register(
            DOMAIN,
            name,
            partial(_dispatch, hass, handler),
            schema=vol.Schema({**BASE, **fields}),
            supports_response=supports,
        )
