"""The Supervisor's rules for an app's ``config.yaml``, written down for the tests.

Facts taken from home-assistant/supervisor (``supervisor/apps/options.py`` and
``supervisor/apps/validate.py``, 2026): the grammar of a schema string, how
options are checked against a schema, the keys an app's ``config.yaml`` may
hold, and the patterns of ``watchdog`` and ``map``. The code is this project's
own.

Schema strings::

    element  := ( "" | "bool" | "email" | "url" | "port"
                | "device" [ "(subsystem=" [a-z]+ ")" ]
                | ("str" | "password") [ "(" [digits] "," [digits] ")" ]
                | "int" [ "(" [int] "," [int] ")" ]
                | "float" [ "(" [number] "," [number] ")" ]
                | "match(" REGEX ")"
                | "list(" choice { "|" choice } ")" ) [ "?" ]

A schema value is an element, a list holding one element or one mapping (a
list never holds a list), or a mapping of names to schema values. An option
is required unless its element (or its list's element) ends with ``?``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlparse

KINDS: Final = ("bool", "email", "url", "port", "device", "str", "password", "int", "float")
_INT: Final = r"-?\d+"
_NUMBER: Final = r"-?\d*\.?\d+"


class SchemaError(ValueError):
    """A schema string or value outside the Supervisor's grammar."""


class OptionError(ValueError):
    """An option value the Supervisor would refuse."""


@dataclass(frozen=True, slots=True)
class Element:
    """One parsed schema string."""

    kind: str  # one of KINDS, "match", "list" or "" (anything)
    optional: bool
    low: float | None = None
    high: float | None = None
    pattern: str | None = None
    choices: tuple[str, ...] = ()
    device_filter: str | None = None


def _range(text: str, number: str, kind: str) -> tuple[float | None, float | None]:
    match = re.fullmatch(rf"\(({number})?,({number})?\)", text)
    if match is None:
        raise SchemaError(f"{kind}{text}: a range is ({number.replace(chr(92), '')},…)")
    low, high = match.groups()
    return (float(low) if low else None, float(high) if high else None)


def parse_element(text: str) -> Element:
    """A schema string as an :class:`Element`; SchemaError outside the grammar."""
    if not isinstance(text, str):
        raise SchemaError(f"{text!r} is not a schema string")
    optional = text.endswith("?")
    body = text[:-1] if optional else text
    if body in ("", "bool", "email", "url", "port"):
        return Element(body, optional)
    if body.startswith("match(") and body.endswith(")"):
        pattern = body[len("match(") : -1]
        try:
            re.compile(pattern)
        except re.error as err:
            raise SchemaError(f"{text}: not a regular expression: {err}") from None
        return Element("match", optional, pattern=pattern)
    if body.startswith("list(") and body.endswith(")") and len(body) > len("list()"):
        return Element("list", optional, choices=tuple(body[len("list(") : -1].split("|")))
    if body.startswith("device"):
        rest = body[len("device") :]
        if rest and not re.fullmatch(r"\(subsystem=[a-z]+\)", rest):
            raise SchemaError(f"{text}: a device filter is (subsystem=name)")
        return Element("device", optional, device_filter=rest[1:-1] or None)
    for kind, number in (("str", r"\d+"), ("password", r"\d+"), ("int", _INT)):
        if body == kind or body.startswith(kind + "("):
            low, high = _range(body[len(kind) :], number, kind) if body != kind else (None, None)
            return Element(kind, optional, low, high)
    if body == "float" or body.startswith("float("):
        low, high = (
            _range(body[len("float") :], _NUMBER, "float") if body != "float" else (None, None)
        )
        return Element("float", optional, low, high)
    raise SchemaError(f"{text!r} is not a schema type the Supervisor knows")


def parse_schema(value: object, where: str = "schema") -> None:
    """Check a whole schema value (element, list of one, or mapping); SchemaError with where."""
    if isinstance(value, str):
        try:
            parse_element(value)
        except SchemaError as err:
            raise SchemaError(f"{where}: {err}") from None
        return
    if isinstance(value, list):
        if len(value) != 1:
            raise SchemaError(f"{where}: a list schema holds exactly one element")
        if isinstance(value[0], list):
            raise SchemaError(f"{where}: a list may not hold another list")
        parse_schema(value[0], f"{where}[0]")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise SchemaError(f"{where}: keys are strings")
            parse_schema(item, f"{where}.{key}")
        return
    raise SchemaError(f"{where}: {value!r} is not a schema")


def _optional(value: object) -> bool:
    if isinstance(value, list) and value:
        value = value[0]
    return isinstance(value, str) and value.endswith("?")


def _bounded(value: float, element: Element, key: str) -> None:
    if element.low is not None and value < element.low:
        raise OptionError(f"{key}: {value} is below {element.low}")
    if element.high is not None and value > element.high:
        raise OptionError(f"{key}: {value} is above {element.high}")


def _boolean(value: object, key: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on", "enable"):
        return True
    if isinstance(value, str) and value.lower() in ("0", "false", "no", "off", "disable"):
        return False
    if isinstance(value, int):
        return bool(value)
    raise OptionError(f"{key}: {value!r} is not a boolean")


def _number(value: object, kind: type[int] | type[float], key: str) -> float:
    if isinstance(value, bool | int | float | str):
        try:
            return kind(value)
        except (TypeError, ValueError):
            pass
    raise OptionError(f"{key}: {value!r} is not {kind.__name__}")


def check_value(element: Element, value: object, key: str) -> Any:
    """One option value as the Supervisor checks it; the value it stores."""
    if value is None:
        raise OptionError(f"{key}: is required")
    if element.kind in ("str", "password"):
        if not isinstance(value, str):
            raise OptionError(f"{key}: {value!r} is not text")
        _bounded(len(value), element, key)
        return value
    if element.kind == "int":
        number = _number(value, int, key)
        _bounded(number, element, key)
        return number
    if element.kind == "float":
        number = _number(value, float, key)
        _bounded(number, element, key)
        return number
    if element.kind == "bool":
        return _boolean(value, key)
    if element.kind == "email":
        if not isinstance(value, str) or not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", value):
            raise OptionError(f"{key}: {value!r} is not an e-mail address")
        return value
    if element.kind == "url":
        parsed = urlparse(str(value))
        if not parsed.scheme or not parsed.netloc:
            raise OptionError(f"{key}: {value!r} is not a URL")
        return value
    if element.kind == "port":
        port = _number(value, int, key)
        if not 1 <= port <= 65535:
            raise OptionError(f"{key}: {port} is not a port (1 to 65535)")
        return port
    if element.kind == "match":
        assert element.pattern is not None
        if re.match(element.pattern, str(value)) is None:
            raise OptionError(f"{key}: {value!r} does not match {element.pattern}")
        return str(value)
    if element.kind == "list":
        if str(value) not in element.choices:
            raise OptionError(f"{key}: {value!r} is not one of {'|'.join(element.choices)}")
        return str(value)
    if element.kind == "device":
        if not isinstance(value, str) or not value.startswith("/dev/"):
            raise OptionError(f"{key}: {value!r} is not a device path")
        return value
    return value


def check_options(schema: dict[str, Any], options: dict[str, Any], where: str = "") -> None:
    """Options as the Supervisor checks them, except that unknown keys are errors here.

    (The Supervisor drops unknown keys with a warning; an app's own defaults
    must not have any.)
    """
    for key, value in options.items():
        name = f"{where}{key}"
        if key not in schema:
            raise OptionError(f"{name}: not in the schema")
        _check(schema[key], value, name)
    for key, rule in schema.items():
        if key not in options and not _optional(rule):
            raise OptionError(f"{where}{key}: missing and not optional")


def _check(rule: Any, value: Any, name: str) -> None:
    if isinstance(rule, list):
        if not isinstance(value, list):
            raise OptionError(f"{name}: must be a list")
        for i, item in enumerate(value):
            _check(rule[0], item, f"{name}[{i}]")
    elif isinstance(rule, dict):
        if not isinstance(value, dict):
            raise OptionError(f"{name}: must be a mapping")
        check_options(rule, value, f"{name}.")
    else:
        check_value(parse_element(rule), value, name)


# -- config.yaml ----------------------------------------------------------------------

APP_CONFIG_KEYS: Final = frozenset(
    {
        "name", "version", "slug", "description", "arch", "machine", "url", "startup", "boot",
        "init", "advanced", "stage", "ports", "ports_description", "watchdog", "webui",
        "ingress", "ingress_port", "ingress_entry", "ingress_stream", "panel_icon",
        "panel_title", "panel_admin", "homeassistant", "host_network", "host_pid", "host_ipc",
        "host_uts", "host_dbus", "devices", "udev", "tmpfs", "map", "environment",
        "privileged", "apparmor", "full_access", "audio", "video", "gpio", "usb", "uart",
        "devicetree", "kernel_modules", "realtime", "hassio_api", "hassio_role",
        "homeassistant_api", "stdin", "legacy", "docker_api", "auth_api", "services",
        "discovery", "backup_exclude", "backup_pre", "backup_post", "backup", "options",
        "schema", "image", "ulimits", "timeout", "journald", "breaking_versions",
    }
)  # fmt: skip
REQUIRED_KEYS: Final = frozenset({"name", "version", "slug", "description", "arch"})
ARCHES: Final = frozenset({"aarch64", "amd64"})
STARTUPS: Final = frozenset({"initialize", "system", "services", "application", "once"})
BOOTS: Final = frozenset({"auto", "manual", "manual_only"})
BACKUP_MODES: Final = frozenset({"hot", "cold"})
MAP_TYPES: Final = frozenset(
    {
        "data", "config", "ssl", "local_apps", "addons", "backup", "share", "media",
        "homeassistant_config", "all_app_configs", "all_addon_configs", "app_config",
        "addon_config",
    }
)  # fmt: skip
LEGACY_MAP_TYPES: Final = frozenset({"addons", "all_addon_configs", "addon_config", "config"})
WATCHDOG_RE: Final = re.compile(r"^(?:https?|\[PROTO:\w+\]|tcp)://\[HOST\]:(\[PORT:\d+\]|\d+).*$")
SLUG_RE: Final = re.compile(r"^[-_.A-Za-z0-9]+$")
PORT_KEY_RE: Final = re.compile(r"^\d{1,5}(?:/(?:tcp|udp))?$")
TRANSLATION_KEYS: Final = frozenset({"configuration", "network"})
