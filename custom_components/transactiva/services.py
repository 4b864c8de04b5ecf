"""The integration's actions, registered once in ``async_setup``.

Every action names the node's entry with ``config_entry_id``. Amounts are in
MXN, energy in kWh and prices in MXN/kWh, converted exactly to the ledger's
integers (centavos, Wh, 10^-4 MXN/kWh): a value finer than the ledger keeps is
refused, never rounded. Bad input raises ``ServiceValidationError`` with a
translated message before anything reaches the node; a transaction the ledger
refuses raises it with the node's reason; a node that cannot be reached, that
does not have a feature, or whose forecast is not ready yet, raises
``HomeAssistantError``. Transactions are signed by the node with the local
participant's key and the actions wait until the block commits.

``get_prices``, ``get_settlements``, ``get_trades``, ``get_forecast`` and
``get_advice`` only answer (``SupportsResponse.ONLY``): series and forecasts
belong in responses, never in states or attributes.
"""

from __future__ import annotations

import re
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

from .api import (
    TransactivaAuthError,
    TransactivaError,
    TransactivaNotReadyError,
    TransactivaRequestError,
)
from .const import CURRENCY, DOMAIN, PRICE_UNIT
from .coordinator import now_seconds
from .events import ADDRESS_RE, CONTRACT_ID_RE, PriceRow, price_row
from .units import (
    ENERGY_DECIMALS,
    MONEY_DECIMALS,
    PRICE_DECIMALS,
    NotExactError,
    money,
    price,
    scale_exact,
    unscale,
)

if TYPE_CHECKING:
    from . import TransactivaConfigEntry

ATTR_CONFIG_ENTRY_ID: Final = "config_entry_id"
SHORT_ID_RE: Final = re.compile(r"0x[0-9A-F]{10}")
EVENT_ID_RE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:\-]{0,63}")

NUMBER = vol.Any(int, float, str)
BASE: Final = {vol.Required(ATTR_CONFIG_ENTRY_ID): cv.string}

type ServiceHandler = Callable[[HomeAssistant, ServiceCall], Awaitable[ServiceResponse]]


# -- input checks ---------------------------------------------------------------------


def _invalid(key: str, **placeholders: object) -> ServiceValidationError:
    return ServiceValidationError(
        translation_domain=DOMAIN,
        translation_key=key,
        translation_placeholders={k: str(v) for k, v in placeholders.items()},
    )


def _exact(call: ServiceCall, name: str, decimals: int, *, positive: bool = True) -> int:
    """A field converted exactly to ledger units (see units.py)."""
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


def _contract_id(entry: TransactivaConfigEntry, raw: str) -> str:
    """A full contract id from a full id or a short id (``0x`` + 10 hex digits)."""
    value = raw.strip()
    if CONTRACT_ID_RE.fullmatch(value.lower()):
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
        if err.status == 404 and feature is not None and err.code == "not_found":
            raise HomeAssistantError(
                translation_domain=DOMAIN,
                translation_key="unsupported_by_node",
                translation_placeholders={"feature": feature},
            ) from err
        raise _invalid("node_refused", code=err.code, message=err.message) from err
    except TransactivaNotReadyError as err:
        raise HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="not_ready",
            translation_placeholders={"message": err.message},
        ) from err
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


async def _local(
    entry: TransactivaConfigEntry, tx_type: str, body: dict[str, Any]
) -> dict[str, Any]:
    """Submit a transaction signed by the node and wait for its block."""
    client = entry.runtime_data.client
    return await _node(entry, client.local(tx_type, body), feature=f"transaction type {tx_type}")


def _tx_answer(result: dict[str, Any]) -> dict[str, Any]:
    return {
        "transaction": result.get("id"),
        "status": result.get("status"),
        "height": result.get("height"),
    }


def _first_event(result: dict[str, Any], kind: str, key: str) -> str | None:
    for event in result.get("events") or []:
        if isinstance(event, dict) and event.get("type") == kind:
            return str(event.get(key))
    return None


# -- contracts --------------------------------------------------------------------------


def _diagnostics(answer: dict[str, Any], severity: str) -> list[Any]:
    return [
        {
            "line": d.get("line"),
            "column": d.get("column"),
            "message": d.get("message"),
            "expected": d.get("expected"),
            "hint": d.get("hint"),
        }
        for d in answer.get("diagnostics", [])
        if isinstance(d, dict) and d.get("severity") == severity
    ]


async def _check(entry: TransactivaConfigEntry, source: str) -> dict[str, Any]:
    return await _node(
        entry,
        entry.runtime_data.client.check_contract(source),
        feature="contract checking",
    )


async def _validate_contract(hass: HomeAssistant, call: ServiceCall) -> ServiceResponse:
    entry = _entry(hass, call)
    answer = await _check(entry, call.data["source"])
    return {
        "valid": bool(answer.get("valid")),
        "contract_id": answer.get("id"),
        "short_id": answer.get("short_id"),
        "name": answer.get("name"),
        "canonical": answer.get("canonical"),
        "errors": _diagnostics(answer, "error"),
        "warnings": _diagnostics(answer, "warning"),
    }


async def _contract_answer(entry: TransactivaConfigEntry, contract_id: str) -> dict[str, Any]:
    record = await _node(entry, entry.runtime_data.client.contract(contract_id))
    return {
        "contract_id": contract_id,
        "short_id": record.get("short_id"),
        "status": record.get("status"),
        "receipt": record.get("receipt"),
    }


async def _submit_contract(hass: HomeAssistant, call: ServiceCall) -> ServiceResponse:
    entry = _entry(hass, call)
    answer = await _check(entry, call.data["source"])
    if not answer.get("valid"):
        errors = _diagnostics(answer, "error")
        first = errors[0] if errors else {"line": 1, "column": 1, "message": "invalid"}
        raise _invalid(
            "invalid_contract",
            line=first["line"],
            column=first["column"],
            message=first["message"],
            count=len(errors),
        )
    result = await _local(entry, "contract_propose", {"source": answer["canonical"]})
    contract_id = _first_event(result, "contract_proposed", "contract_id") or str(answer["id"])
    return await _contract_answer(entry, contract_id)


async def _sign_contract(hass: HomeAssistant, call: ServiceCall) -> ServiceResponse:
    entry = _entry(hass, call)
    contract_id = _contract_id(entry, call.data["contract"])
    await _local(entry, "contract_sign", {"contract_id": contract_id})
    return await _contract_answer(entry, contract_id)


async def _revoke_contract(hass: HomeAssistant, call: ServiceCall) -> ServiceResponse:
    entry = _entry(hass, call)
    contract_id = _contract_id(entry, call.data["contract"])
    await _local(entry, "contract_revoke", {"contract_id": contract_id})
    return await _contract_answer(entry, contract_id)


# -- wallet and market ------------------------------------------------------------------


def _wallet_request(tx_type: str) -> ServiceHandler:
    async def handler(hass: HomeAssistant, call: ServiceCall) -> ServiceResponse:
        entry = _entry(hass, call)
        body: dict[str, Any] = {"amount": _exact(call, "amount", MONEY_DECIMALS)}
        if call.data.get("reference"):
            body["reference"] = call.data["reference"]
        return _tx_answer(await _local(entry, tx_type, body))

    return handler


async def _transfer(hass: HomeAssistant, call: ServiceCall) -> ServiceResponse:
    entry = _entry(hass, call)
    to = call.data["to"].strip()
    if not ADDRESS_RE.fullmatch(to):
        raise _invalid("invalid_address", field="to", value=to)
    body: dict[str, Any] = {"to": to, "amount": _exact(call, "amount", MONEY_DECIMALS)}
    if call.data.get("memo"):
        body["memo"] = call.data["memo"]
    return _tx_answer(await _local(entry, "transfer", body))


async def _place_order(hass: HomeAssistant, call: ServiceCall) -> ServiceResponse:
    entry = _entry(hass, call)
    body = {
        "interval_start": _timestamp(call.data["interval_start"]),
        "side": call.data["side"],
        "energy_wh": _exact(call, "energy", ENERGY_DECIMALS),
        "limit_price": _exact(call, "limit_price", PRICE_DECIMALS, positive=False),
    }
    return _tx_answer(await _local(entry, "order", body))


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
    prices = sorted((price_row(row) for row in rows), key=lambda row: row.start)
    interval = entry.runtime_data.coordinator.data.status.interval_seconds
    hourly = call.data.get("resolution") == "hour"
    groups: dict[int, list[PriceRow]] = {}
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


def _kwh(wh: object) -> float | None:
    """Wh from the node as kWh (exact to the Wh), None for anything else."""
    if isinstance(wh, bool) or not isinstance(wh, int):
        return None
    return float(unscale(wh, ENERGY_DECIMALS))


def _mxn(centavos: object) -> float | None:
    if isinstance(centavos, bool) or not isinstance(centavos, int):
        return None
    return float(money(centavos))


def _mxn_per_kwh(units: object) -> float | None:
    if isinstance(units, bool) or not isinstance(units, int):
        return None
    return _price_json(price(units))


def _interval(entry: TransactivaConfigEntry, row: dict[str, Any]) -> dict[str, Any]:
    """An interval's start and end as ISO times."""
    start = row.get("interval_start")
    if isinstance(start, bool) or not isinstance(start, int):
        return {"start": None, "end": None}
    length = entry.runtime_data.coordinator.data.status.interval_seconds
    return {
        "start": dt_util.utc_from_timestamp(start).isoformat(),
        "end": dt_util.utc_from_timestamp(start + length).isoformat(),
    }


SETTLEMENT_ENERGY: Final = (
    "bought",
    "sold",
    "delivered",
    "shortfall",
    "import",
    "export",
    "supplier_import",
    "supplier_export",
    "unused",
)


async def _get_settlements(hass: HomeAssistant, call: ServiceCall) -> ServiceResponse:
    entry = _entry(hass, call)
    first, last = _range(call, 1)
    runtime = entry.runtime_data
    answer = await _node(
        entry,
        runtime.client.settlements(runtime.status.participant, first, last),
        feature="settlements",
    )
    settlements: list[Any] = []
    total = 0
    for row in answer["settlements"]:
        amount = row.get("amount")
        if isinstance(amount, int) and not isinstance(amount, bool):
            total += amount
        lines = row.get("lines")
        settlements.append(
            _interval(entry, row)
            | {"amount": _mxn(amount)}
            | {f"{name}_energy": _kwh(row.get(f"{name}_wh")) for name in SETTLEMENT_ENERGY}
            | {
                "import_price": _mxn_per_kwh(row.get("import_price")),
                "export_price": _mxn_per_kwh(row.get("export_price")),
                "lines": {
                    str(why): _mxn(value)
                    for why, value in (lines.items() if isinstance(lines, dict) else [])
                },
                "late_reports": row.get("late_reports", 0),
            }
        )
    return {
        "currency": CURRENCY,
        "total": float(money(total)),
        "debt": _mxn(answer["debt"]),
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
            _interval(entry, row)
            | {
                "side": row.get("side"),
                "energy": _kwh(row.get("energy_wh")),
                "price": _mxn_per_kwh(row.get("price")),
                "payment": _mxn(row.get("payment")),
                "fee": _mxn(row.get("fee")),
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


async def _analytics(
    entry: TransactivaConfigEntry, name: str, query: dict[str, str] | None = None
) -> dict[str, Any]:
    """An analytics answer; a node without a meter has none (its own message)."""
    if entry.runtime_data.meter is None:
        raise HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="no_meter",
            translation_placeholders={"entry": entry.title},
        )
    return await _node(entry, entry.runtime_data.client.analytics(name, query))


async def _get_forecast(hass: HomeAssistant, call: ServiceCall) -> ServiceResponse:
    entry = _entry(hass, call)
    answer = await _analytics(entry, "forecast", {"hours": str(call.data["hours"])})
    step = answer.get("interval_seconds")
    step = step if isinstance(step, int) and not isinstance(step, bool) else 900
    intervals: list[Any] = []
    for row in answer.get("series") or []:
        if not isinstance(row, dict) or not isinstance(row.get("start"), int):
            continue
        intervals.append(
            {
                "start": dt_util.utc_from_timestamp(row["start"]).isoformat(),
                "end": dt_util.utc_from_timestamp(row["start"] + step).isoformat(),
                **{name: _kwh(row.get(key)) for name, key in FORECAST_COLUMNS},
            }
        )
    fitted = answer.get("fitted_at")
    return {
        "unit": "kWh",
        "fitted_at": (
            dt_util.utc_from_timestamp(fitted).isoformat() if isinstance(fitted, int) else None
        ),
        "kwp": answer.get("kwp"),
        "intervals": intervals,
    }


async def _get_advice(hass: HomeAssistant, call: ServiceCall) -> ServiceResponse:
    entry = _entry(hass, call)
    answer = await _analytics(entry, "advice")
    language = "es" if hass.config.language.startswith("es") else "en"
    items: list[Any] = []
    for item in answer.get("items") or []:
        if not isinstance(item, dict):
            continue
        title, detail = item.get("title"), item.get("detail")
        items.append(
            {
                "id": item.get("id"),
                "title": title.get(language) if isinstance(title, dict) else None,
                "detail": detail.get(language) if isinstance(detail, dict) else None,
                "savings": _mxn(item.get("centavos")),
                "period_days": item.get("period_days"),
                "evidence": item.get("evidence"),
            }
        )
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
    return _tx_answer(await _local(entry, "price_signal", body))


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
    event_id = call.data.get("event_id") or f"ha-{now_seconds()}"
    if not EVENT_ID_RE.fullmatch(event_id):
        raise _invalid("invalid_event_id", value=event_id)
    targets = [t.strip() for t in call.data.get("targets", [])]
    for target in targets:
        if not ADDRESS_RE.fullmatch(target):
            raise _invalid("invalid_address", field="targets", value=target)
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
    return {"event_id": event_id} | _tx_answer(await _local(entry, "dr_event", body))


async def _cancel_demand_response(hass: HomeAssistant, call: ServiceCall) -> ServiceResponse:
    entry = _entry(hass, call)
    _require_role(entry, {"ISO", "DSO"})
    event_id = call.data["event_id"]
    if not EVENT_ID_RE.fullmatch(event_id):
        raise _invalid("invalid_event_id", value=event_id)
    record = await _node(entry, entry.runtime_data.client.dr_event(event_id))
    body = {key: record[key] for key in ("event_id", "signal", "start", "duration", "targets")} | {
        "modification_number": int(record["modification_number"]) + 1,
        "cancelled": True,
    }
    return {"event_id": event_id} | _tx_answer(await _local(entry, "dr_event", body))


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
        _wallet_request("deposit_request"),
        {
            vol.Required("amount"): NUMBER,
            vol.Optional("reference"): vol.All(cv.string, vol.Length(max=64)),
        },
        SupportsResponse.OPTIONAL,
    ),
    "withdraw": (
        _wallet_request("withdraw_request"),
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
