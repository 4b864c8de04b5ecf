"""Config and options flows.

Config: add a node by URL and API token (both checked against the node before
anything is saved, with the node's API version: an incompatible node is refused
saying which side to update), or confirm the node the Transactiva app announced through
the Supervisor; reauthenticate when the node refuses the token; reconfigure
the address or token. A node (its local participant's address, the unique id)
is configured once. A node whose home the neighbourhood's operator has not admitted
yet is not an error: a last step says that it waits for the operator, and the entry
is added (with a repair issue until the home is a member, ``admission.py``).

Options (a menu; saving reloads the entry): map a contract device name to a
Home Assistant entity, pick Home Assistant sensors to send to the node as its
meter, add a Bluetooth actuator, or remove mappings and actuators.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import voluptuous as vol
from homeassistant.components.sensor import SensorDeviceClass, SensorStateClass
from homeassistant.config_entries import (
    ConfigEntry,
    ConfigEntryState,
    ConfigFlow,
    ConfigFlowResult,
    OptionsFlow,
)
from homeassistant.const import CONF_NAME, CONF_TOKEN, CONF_URL
from homeassistant.core import callback
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.selector import (
    EntitySelector,
    EntitySelectorConfig,
    NumberSelector,
    NumberSelectorConfig,
    NumberSelectorMode,
    SelectOptionDict,
    SelectSelector,
    SelectSelectorConfig,
    TextSelector,
    TextSelectorConfig,
    TextSelectorType,
)
from homeassistant.helpers.service_info.hassio import HassioServiceInfo
from homeassistant.util.unit_conversion import EnergyConverter, PowerConverter
from yarl import URL

from transactiva_client import (
    IncompatibleNodeError,
    TransactivaAuthError,
    TransactivaClient,
    TransactivaError,
)
from transactiva_client.models import Admission, NodeStatus

from . import version
from .ble import normalise_address, normalise_uuid, parse_payload
from .const import (
    APPLIANCE_DOMAINS,
    CONF_ADDRESS,
    CONF_APPLIANCES,
    CONF_BLUETOOTH,
    CONF_CHARACTERISTIC,
    CONF_DEVICE,
    CONF_ENTITY,
    CONF_EXPORT_SENSOR,
    CONF_IMPORT_SENSOR,
    CONF_METER_INTERVAL,
    CONF_OFF_PAYLOAD,
    CONF_ON_PAYLOAD,
    CONF_POWER_SENSOR,
    DEFAULT_METER_INTERVAL,
    DOMAIN,
    MAX_METER_INTERVAL,
)
from .node_url import parse_node_url

TOKEN_SELECTOR = TextSelector(TextSelectorConfig(type=TextSelectorType.PASSWORD))
URL_SELECTOR = TextSelector(TextSelectorConfig(type=TextSelectorType.URL))
USER_SCHEMA = vol.Schema(
    {vol.Required(CONF_URL): URL_SELECTOR, vol.Required(CONF_TOKEN): TOKEN_SELECTOR}
)
REAUTH_SCHEMA = vol.Schema({vol.Required(CONF_TOKEN): TOKEN_SELECTOR})
RECONFIGURE_SCHEMA = vol.Schema(
    {vol.Required(CONF_URL): URL_SELECTOR, vol.Optional(CONF_TOKEN): TOKEN_SELECTOR}
)
APPLIANCE_SCHEMA = vol.Schema(
    {
        vol.Required(CONF_DEVICE): TextSelector(),
        vol.Required(CONF_ENTITY): EntitySelector(
            EntitySelectorConfig(domain=list(APPLIANCE_DOMAINS))
        ),
    }
)
METER_SCHEMA = vol.Schema(
    {
        vol.Optional(CONF_POWER_SENSOR): EntitySelector(
            EntitySelectorConfig(domain="sensor", device_class=SensorDeviceClass.POWER)
        ),
        vol.Optional(CONF_IMPORT_SENSOR): EntitySelector(
            EntitySelectorConfig(domain="sensor", device_class=SensorDeviceClass.ENERGY)
        ),
        vol.Optional(CONF_EXPORT_SENSOR): EntitySelector(
            EntitySelectorConfig(domain="sensor", device_class=SensorDeviceClass.ENERGY)
        ),
    }
)
METER_UPDATES_SCHEMA = vol.Schema(
    {
        vol.Required(CONF_METER_INTERVAL): NumberSelector(
            NumberSelectorConfig(
                min=0,
                max=MAX_METER_INTERVAL,
                step=1,
                unit_of_measurement="s",
                mode=NumberSelectorMode.BOX,
            )
        )
    }
)
BLUETOOTH_SCHEMA = vol.Schema(
    {
        vol.Required(CONF_NAME): TextSelector(),
        vol.Required(CONF_ADDRESS): TextSelector(),
        vol.Required(CONF_CHARACTERISTIC): TextSelector(),
        vol.Required(CONF_ON_PAYLOAD, default="01"): TextSelector(),
        vol.Required(CONF_OFF_PAYLOAD, default="00"): TextSelector(),
    }
)


def _discovered_url(config: Mapping[str, Any]) -> URL | None:
    host, port = config.get("host"), config.get("port")
    if not isinstance(host, str) or isinstance(port, bool) or not isinstance(port, int | str):
        return None
    bracketed = f"[{host}]" if ":" in host else host
    return parse_node_url(f"http://{bracketed}:{port}")


class TransactivaConfigFlow(ConfigFlow, domain=DOMAIN):
    """Add one node; a node (its local participant) is configured once."""

    VERSION = 1

    _discovered: tuple[URL, str, str] | None = None
    _versions: dict[str, str] | None = None  # the versions, when a node was incompatible
    _admission: Admission | None = None  # the node's, once it answered
    _waiting: tuple[str, dict[str, str]] | None = None  # an entry whose home is not admitted

    @staticmethod
    @callback
    def async_get_options_flow(config_entry: ConfigEntry) -> TransactivaOptionsFlow:
        """The options flow."""
        return TransactivaOptionsFlow()

    async def _try(self, url: URL, token: str, errors: dict[str, str]) -> NodeStatus | None:
        client = TransactivaClient(async_get_clientsession(self.hass), str(url), token)
        self._versions = None
        try:
            # The admission needs the token (so it proves it), and answers for a home that
            # is not a participant yet, unlike its wallet.
            status = await client.status()
            self._admission = await client.admission()
        except IncompatibleNodeError as err:
            errors["base"] = version.translation_key(err)
            self._versions = version.placeholders(err)
        except TransactivaAuthError:
            errors[CONF_TOKEN] = "invalid_auth"
        except TransactivaError:
            errors["base"] = "cannot_connect"
        else:
            return status
        return None

    async def _create(self, status: NodeStatus, data: dict[str, str]) -> ConfigFlowResult:
        """Add the node; first say so when its home is not a member yet."""
        self._waiting = (f"Transactiva {status.chain_id}", data)
        assert self._admission is not None
        if not self._admission.member:
            return await self.async_step_not_admitted()
        return self.async_create_entry(title=self._waiting[0], data=data)

    async def async_step_not_admitted(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """The node answers but the operator has not admitted its home yet: add it anyway
        (it follows the chain, and Repairs says what it waits for)."""
        assert self._waiting is not None
        assert self._admission is not None
        if user_input is not None:
            title, data = self._waiting
            return self.async_create_entry(title=title, data=data)
        return self.async_show_form(
            step_id="not_admitted",
            description_placeholders={
                "name": self._admission.name or self._admission.participant,
                "participant": self._admission.participant,
            },
        )

    def _placeholders(self, **others: str) -> dict[str, str]:
        """A form's placeholders, with the versions of an incompatible node."""
        return others | (self._versions or {})

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Ask for the node's URL and token, and check both."""
        errors: dict[str, str] = {}
        if user_input is not None:
            url = parse_node_url(user_input.get(CONF_URL))
            token = str(user_input.get(CONF_TOKEN, "")).strip()
            if url is None:
                errors[CONF_URL] = "invalid_url"
            elif (status := await self._try(url, token, errors)) is not None:
                await self.async_set_unique_id(status.participant)
                self._abort_if_unique_id_configured(updates={CONF_URL: str(url)})
                return await self._create(status, {CONF_URL: str(url), CONF_TOKEN: token})
        return self.async_show_form(
            step_id="user",
            data_schema=self.add_suggested_values_to_schema(
                USER_SCHEMA, {k: v for k, v in (user_input or {}).items() if k != CONF_TOKEN}
            ),
            description_placeholders=self._placeholders(),
            errors=errors,
        )

    async def async_step_hassio(self, discovery_info: HassioServiceInfo) -> ConfigFlowResult:
        """The Transactiva app announced its node through the Supervisor."""
        url = _discovered_url(discovery_info.config)
        token = discovery_info.config.get("token")
        if url is None or not isinstance(token, str) or not token.strip():
            return self.async_abort(reason="invalid_discovery_info")
        client = TransactivaClient(async_get_clientsession(self.hass), str(url), token.strip())
        try:
            status = await client.status()
        except IncompatibleNodeError as err:
            return self.async_abort(
                reason=version.translation_key(err),
                description_placeholders=version.placeholders(err),
            )
        except TransactivaError:
            return self.async_abort(reason="cannot_connect")
        await self.async_set_unique_id(status.participant)
        self._abort_if_unique_id_configured(updates={CONF_URL: str(url), CONF_TOKEN: token.strip()})
        self._discovered = (url, token.strip(), discovery_info.name)
        self.context["title_placeholders"] = {"name": discovery_info.name}
        return await self.async_step_hassio_confirm()

    async def async_step_hassio_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Ask before adding the discovered node (never added unasked)."""
        assert self._discovered is not None
        url, token, name = self._discovered
        errors: dict[str, str] = {}
        if user_input is not None:
            status = await self._try(url, token, errors)
            if status is not None:
                return await self._create(status, {CONF_URL: str(url), CONF_TOKEN: token})
        return self.async_show_form(
            step_id="hassio_confirm",
            description_placeholders=self._placeholders(addon=name, url=str(url)),
            errors=errors,
        )

    async def async_step_reauth(self, entry_data: Mapping[str, Any]) -> ConfigFlowResult:
        """The node refused the stored token."""
        return await self.async_step_reauth_confirm()

    async def async_step_reauth_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Ask for a new token and check it."""
        entry = self._get_reauth_entry()
        errors: dict[str, str] = {}
        if user_input is not None:
            token = str(user_input[CONF_TOKEN]).strip()
            status = await self._try(URL(entry.data[CONF_URL]), token, errors)
            if status is not None:
                await self.async_set_unique_id(status.participant)
                self._abort_if_unique_id_mismatch(reason="wrong_node")
                return self.async_update_reload_and_abort(entry, data_updates={CONF_TOKEN: token})
        return self.async_show_form(
            step_id="reauth_confirm",
            data_schema=REAUTH_SCHEMA,
            description_placeholders=self._placeholders(url=entry.data[CONF_URL]),
            errors=errors,
        )

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Change the node's address (and token); it must still be the same node."""
        entry = self._get_reconfigure_entry()
        errors: dict[str, str] = {}
        if user_input is not None:
            url = parse_node_url(user_input.get(CONF_URL))
            token = str(user_input.get(CONF_TOKEN) or entry.data[CONF_TOKEN]).strip()
            if url is None:
                errors[CONF_URL] = "invalid_url"
            elif (status := await self._try(url, token, errors)) is not None:
                await self.async_set_unique_id(status.participant)
                self._abort_if_unique_id_mismatch(reason="wrong_node")
                return self.async_update_reload_and_abort(
                    entry, data_updates={CONF_URL: str(url), CONF_TOKEN: token}
                )
        return self.async_show_form(
            step_id="reconfigure",
            data_schema=self.add_suggested_values_to_schema(
                RECONFIGURE_SCHEMA, {CONF_URL: (user_input or entry.data).get(CONF_URL)}
            ),
            description_placeholders=self._placeholders(),
            errors=errors,
        )


def _unit_error(
    state_attributes: Mapping[str, Any] | None, units: set[str | None], counter: bool
) -> bool:
    if state_attributes is None:
        return True
    if state_attributes.get("unit_of_measurement") not in units:
        return True
    return counter and state_attributes.get("state_class") not in (
        SensorStateClass.TOTAL_INCREASING,
        SensorStateClass.TOTAL,
    )


class TransactivaOptionsFlow(OptionsFlow):
    """Appliances, Home Assistant meter sensors and Bluetooth actuators."""

    def _options(self) -> dict[str, Any]:
        options = dict(self.config_entry.options)
        options[CONF_APPLIANCES] = dict(options.get(CONF_APPLIANCES, {}))
        options[CONF_BLUETOOTH] = [dict(item) for item in options.get(CONF_BLUETOOTH, [])]
        return options

    def _save(self, options: dict[str, Any]) -> ConfigFlowResult:
        """Store the options and reload the entry so that they take effect."""
        self.hass.config_entries.async_update_entry(self.config_entry, options=options)
        self.hass.config_entries.async_schedule_reload(self.config_entry.entry_id)
        return self.async_create_entry(data=options)

    async def async_step_init(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """What to change."""
        options = self._options()
        menu = ["appliance", "meter", "bluetooth"]
        if self.config_entry.state is ConfigEntryState.LOADED and (
            self.config_entry.runtime_data.meter is not None
        ):
            menu.append("meter_updates")
        if options[CONF_APPLIANCES] or options[CONF_BLUETOOTH]:
            menu.append("remove")
        return self.async_show_menu(step_id="init", menu_options=menu)

    async def async_step_appliance(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Map a contract device name to an entity."""
        errors: dict[str, str] = {}
        if user_input is not None:
            device = str(user_input[CONF_DEVICE]).strip()
            if not 0 < len(device) <= 100:
                errors[CONF_DEVICE] = "invalid_device_name"
            else:
                options = self._options()
                options[CONF_APPLIANCES][device] = user_input[CONF_ENTITY]
                return self._save(options)
        return self.async_show_form(
            step_id="appliance",
            data_schema=self.add_suggested_values_to_schema(APPLIANCE_SCHEMA, user_input or {}),
            errors=errors,
        )

    async def async_step_meter(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Pick Home Assistant sensors to send to the node as its meter."""
        errors: dict[str, str] = {}
        options = self._options()
        if user_input is not None:
            checks = (
                (CONF_POWER_SENSOR, PowerConverter.VALID_UNITS, False, "not_power_sensor"),
                (CONF_IMPORT_SENSOR, EnergyConverter.VALID_UNITS, True, "not_energy_counter"),
                (CONF_EXPORT_SENSOR, EnergyConverter.VALID_UNITS, True, "not_energy_counter"),
            )
            for key, units, counter, error in checks:
                entity_id = user_input.get(key)
                if not entity_id:
                    options.pop(key, None)
                    continue
                state = self.hass.states.get(entity_id)
                if _unit_error(None if state is None else state.attributes, units, counter):
                    errors[key] = error
                options[key] = entity_id
            if not errors:
                return self._save(options)
        current = {
            key: options.get(key)
            for key in (CONF_POWER_SENSOR, CONF_IMPORT_SENSOR, CONF_EXPORT_SENSOR)
        }
        return self.async_show_form(
            step_id="meter",
            data_schema=self.add_suggested_values_to_schema(
                METER_SCHEMA, user_input if user_input is not None else current
            ),
            errors=errors,
        )

    async def async_step_meter_updates(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """How often the node's meter readings become states (and recorder rows)."""
        options = self._options()
        if user_input is not None:
            options[CONF_METER_INTERVAL] = int(user_input[CONF_METER_INTERVAL])
            return self._save(options)
        current = {CONF_METER_INTERVAL: options.get(CONF_METER_INTERVAL, DEFAULT_METER_INTERVAL)}
        return self.async_show_form(
            step_id="meter_updates",
            data_schema=self.add_suggested_values_to_schema(METER_UPDATES_SCHEMA, current),
        )

    async def async_step_bluetooth(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Add a Bluetooth LE actuator."""
        errors: dict[str, str] = {}
        if user_input is not None:
            options = self._options()
            name = str(user_input[CONF_NAME]).strip()
            address = normalise_address(str(user_input[CONF_ADDRESS]))
            characteristic = normalise_uuid(str(user_input[CONF_CHARACTERISTIC]))
            on = parse_payload(str(user_input[CONF_ON_PAYLOAD]))
            off = parse_payload(str(user_input[CONF_OFF_PAYLOAD]))
            if not 0 < len(name) <= 100:
                errors[CONF_NAME] = "invalid_device_name"
            if address is None:
                errors[CONF_ADDRESS] = "invalid_address"
            elif any(item[CONF_ADDRESS] == address for item in options[CONF_BLUETOOTH]):
                errors[CONF_ADDRESS] = "address_in_use"
            if characteristic is None:
                errors[CONF_CHARACTERISTIC] = "invalid_uuid"
            if on is None:
                errors[CONF_ON_PAYLOAD] = "invalid_payload"
            if off is None:
                errors[CONF_OFF_PAYLOAD] = "invalid_payload"
            if not errors:
                assert on is not None
                assert off is not None
                options[CONF_BLUETOOTH].append(
                    {
                        CONF_NAME: name,
                        CONF_ADDRESS: address,
                        CONF_CHARACTERISTIC: characteristic,
                        CONF_ON_PAYLOAD: on.hex(),
                        CONF_OFF_PAYLOAD: off.hex(),
                    }
                )
                return self._save(options)
        return self.async_show_form(
            step_id="bluetooth",
            data_schema=self.add_suggested_values_to_schema(BLUETOOTH_SCHEMA, user_input or {}),
            errors=errors,
        )

    async def async_step_remove(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Remove appliance mappings and Bluetooth actuators."""
        options = self._options()
        if user_input is not None:
            for device in user_input.get(CONF_APPLIANCES, []):
                options[CONF_APPLIANCES].pop(device, None)
            gone = set(user_input.get(CONF_BLUETOOTH, []))
            options[CONF_BLUETOOTH] = [
                item for item in options[CONF_BLUETOOTH] if item[CONF_ADDRESS] not in gone
            ]
            return self._save(options)
        appliances = [f"{device} → {entity}" for device, entity in options[CONF_APPLIANCES].items()]
        schema = vol.Schema(
            {
                vol.Optional(CONF_APPLIANCES, default=[]): SelectSelector(
                    SelectSelectorConfig(
                        options=[
                            SelectOptionDict(value=device, label=label)
                            for device, label in zip(
                                options[CONF_APPLIANCES], appliances, strict=True
                            )
                        ],
                        multiple=True,
                    )
                ),
                vol.Optional(CONF_BLUETOOTH, default=[]): SelectSelector(
                    SelectSelectorConfig(
                        options=[
                            SelectOptionDict(
                                value=item[CONF_ADDRESS],
                                label=f"{item[CONF_NAME]} ({item[CONF_ADDRESS]})",
                            )
                            for item in options[CONF_BLUETOOTH]
                        ],
                        multiple=True,
                    )
                ),
            }
        )
        return self.async_show_form(step_id="remove", data_schema=schema)
