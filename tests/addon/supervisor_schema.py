"""The Supervisor's rules for an app's ``config.yaml``, written down for the tests.

Facts taken from home-assistant/supervisor (``supervisor/apps/options.py``,
``validate.py``, ``model.py``, ``build.py`` and ``supervisor/docker/app.py`` at
release 2026.08.0, and the same files -- then under ``supervisor/addons/`` -- at
2025.04.0 and the releases where a rule changed): the grammar of a schema string,
how options are checked against a schema, the keys an app's ``config.yaml`` may
hold, the patterns of ``watchdog`` and ``map``, which release first accepts each
``map`` type, and how the Supervisor builds an app that names no image. The code
is this project's own.

The app claims every Supervisor from :data:`OLDEST_SUPERVISOR` on; its files must
pass the rules of that release and of :data:`NEWEST_SUPERVISOR`, the newest one
read.

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


def parse_element(text: str, supervisor: str | None = None) -> Element:
    """A schema string as an :class:`Element`; SchemaError outside the grammar.

    With ``supervisor``, the grammar of that release: negative ``int``/``float``
    bounds are accepted only from :data:`NEGATIVE_BOUNDS_SINCE`.
    """
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
    element: Element | None = None
    for kind, number in (("str", r"\d+"), ("password", r"\d+"), ("int", _INT)):
        if body == kind or body.startswith(kind + "("):
            low, high = _range(body[len(kind) :], number, kind) if body != kind else (None, None)
            element = Element(kind, optional, low, high)
            break
    if element is None and (body == "float" or body.startswith("float(")):
        low, high = (
            _range(body[len("float") :], _NUMBER, "float") if body != "float" else (None, None)
        )
        element = Element("float", optional, low, high)
    if element is None:
        raise SchemaError(f"{text!r} is not a schema type the Supervisor knows")
    negative = any(bound is not None and bound < 0 for bound in (element.low, element.high))
    if negative and supervisor is not None and not at_least(supervisor, NEGATIVE_BOUNDS_SINCE):
        raise SchemaError(f"{text}: negative bounds need Supervisor {NEGATIVE_BOUNDS_SINCE}")
    return element


def parse_schema(value: object, where: str = "schema", supervisor: str | None = None) -> None:
    """Check a whole schema value (element, list of one, or mapping); SchemaError with where."""
    if isinstance(value, str):
        try:
            parse_element(value, supervisor)
        except SchemaError as err:
            raise SchemaError(f"{where}: {err}") from None
        return
    if isinstance(value, list):
        if len(value) != 1:
            raise SchemaError(f"{where}: a list schema holds exactly one element")
        if isinstance(value[0], list):
            raise SchemaError(f"{where}: a list may not hold another list")
        parse_schema(value[0], f"{where}[0]", supervisor)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise SchemaError(f"{where}: keys are strings")
            parse_schema(item, f"{where}.{key}", supervisor)
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
WATCHDOG_RE: Final = re.compile(r"^(?:https?|\[PROTO:\w+\]|tcp)://\[HOST\]:(\[PORT:\d+\]|\d+).*$")
SLUG_RE: Final = re.compile(r"^[-_.A-Za-z0-9]+$")
PORT_KEY_RE: Final = re.compile(r"^\d{1,5}(?:/(?:tcp|udp))?$")
TRANSLATION_KEYS: Final = frozenset({"configuration", "network"})


# -- what changed between releases ------------------------------------------------------

OLDEST_SUPERVISOR: Final = "2025.04.0"  # the release that came with Home Assistant 2025.4
NEWEST_SUPERVISOR: Final = "2026.08.0"  # the newest release whose source was read
_OLDER: Final = "2000.1.0"  # before any release this file reasons about

# Negative int/float bounds in an option schema (before: digits only).
NEGATIVE_BOUNDS_SINCE: Final = "2026.03.3"
# ``map`` entries as mappings {type, read_only, path} (before: "type:rw" strings only).
MAP_MAPPINGS_SINCE: Final = "2023.12.1"
# The first release that accepts each map type; the others are older than any claim here.
# A mapping entry with a type the release does not know makes the whole config.yaml invalid,
# and the app is left out of the store.
MAP_TYPE_SINCE: Final = {
    "homeassistant_config": "2023.11.0",
    "all_addon_configs": "2023.11.0",
    "addon_config": "2023.11.0",
    "local_apps": "2026.07.1",
    "all_app_configs": "2026.07.1",
    "app_config": "2026.07.1",
}
# Deprecated types (still accepted, with an advisory) and what replaces them, since when.
MAP_TYPE_REPLACED: Final = {
    "config": ("homeassistant_config", "2023.11.0"),
    "addons": ("local_apps", "2026.07.1"),
    "all_addon_configs": ("all_app_configs", "2026.07.1"),
    "addon_config": ("app_config", "2026.07.1"),
}
# Where each of the app's own folders is mounted inside the container, in every release
# that accepts the type (``path`` in the entry moves it).
MAP_MOUNT_POINTS: Final = {
    "addon_config": "/config",
    "app_config": "/config",
    "share": "/share",
    "ssl": "/ssl",
    "media": "/media",
    "backup": "/backup",
    "homeassistant_config": "/homeassistant",
}
MAP_ENTRY_KEYS: Final = frozenset({"type", "read_only", "path"})
# config.yaml keys newer than 2023.11 (the others are older than any claim here).
CONFIG_KEY_SINCE: Final = {"breaking_versions": "2024.01.1", "ulimits": "2025.10.1"}

# Builds. An app whose config.yaml has no ``image`` is built on the device: ``docker build``
# with the app's folder as the context and its Dockerfile (or Dockerfile.<arch>), with
# --platform for the device, the build arguments BUILD_VERSION (config.yaml's version) and
# BUILD_ARCH, and io.hass.* labels of the Supervisor's own. Before 2026.04.0 an app without
# build.yaml also gets BUILD_FROM=ghcr.io/home-assistant/{arch}-base:latest; from 2026.04.0
# BUILD_FROM is passed only from a build.yaml, and build.yaml draws a deprecation warning.
BUILD_ARGS: Final = frozenset({"BUILD_VERSION", "BUILD_ARCH"})
BUILD_FROM_DEFAULT_UNTIL: Final = "2026.04.0"
BUILD_YAML_DEPRECATED_SINCE: Final = "2026.04.0"
DOCKER_PLATFORMS: Final = {"amd64": "linux/amd64", "aarch64": "linux/arm64"}


def version_key(version: str) -> tuple[int, ...]:
    """A Supervisor release (YYYY.MM.N) or Home Assistant version (YYYY.M.N) for comparing."""
    if not re.fullmatch(r"\d{4}\.\d{1,2}\.\d+", version):
        raise ValueError(f"{version!r} is not a YYYY.MM.N version")
    return tuple(int(part) for part in version.split("."))


def at_least(version: str, since: str) -> bool:
    return version_key(version) >= version_key(since)


def map_types(supervisor: str) -> frozenset[str]:
    """The map types ``supervisor`` accepts."""
    return frozenset(
        kind for kind in MAP_TYPES if at_least(supervisor, MAP_TYPE_SINCE.get(kind, _OLDER))
    )


def config_keys(supervisor: str) -> frozenset[str]:
    """The config.yaml keys ``supervisor`` reads (it drops others without a word)."""
    return frozenset(
        key for key in APP_CONFIG_KEYS if at_least(supervisor, CONFIG_KEY_SINCE.get(key, _OLDER))
    )


def check_map_entry(entry: object, supervisor: str) -> str:
    """A mapping ``map`` entry as ``supervisor`` reads it; its type, or SchemaError."""
    if not at_least(supervisor, MAP_MAPPINGS_SINCE):
        raise SchemaError(f"map entries as mappings need Supervisor {MAP_MAPPINGS_SINCE}")
    if not isinstance(entry, dict) or "type" not in entry:
        raise SchemaError(f"map entry {entry!r}: a mapping with a type")
    if unknown := set(entry) - MAP_ENTRY_KEYS:
        raise SchemaError(f"map entry {entry!r}: unknown keys {sorted(unknown)}")
    kind = entry["type"]
    if kind not in map_types(supervisor):
        since = MAP_TYPE_SINCE.get(kind)
        known = f"known from Supervisor {since}" if since else "not a map type"
        raise SchemaError(f"map type {kind!r}: Supervisor {supervisor} refuses it ({known})")
    if not isinstance(entry.get("read_only", True), bool):
        raise SchemaError(f"map entry {entry!r}: read_only is true or false")
    if not isinstance(entry.get("path", ""), str):
        raise SchemaError(f"map entry {entry!r}: path is text")
    return str(kind)


def needs_build(config: dict[str, Any]) -> bool:
    """The Supervisor builds the app on the device when config.yaml names no image."""
    return "image" not in config
