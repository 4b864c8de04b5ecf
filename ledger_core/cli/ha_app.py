"""The Home Assistant app's entry point: ``transactiva app config`` and ``transactiva app run``.

The Supervisor writes the options the user chose to ``/data/options.json``
(already checked against the schema in ``addon/config.yaml``); the app's s6
service runs ``transactiva app run``, which

1. checks the options again, with messages that name the option and say what
   is wrong (:func:`parse_options`) -- the same rules the schema states, plus
   the ones a schema cannot (a SmartPi source needs its URL, a concentrator its
   tariff);
2. creates the node's home in ``/data/node`` on the first start -- keys,
   genesis, API token -- and rewrites its ``config.json`` from the options at
   every start, keeping keys, token and ledger (:func:`prepare`);
3. runs the node (:func:`ledger_core.runner.serve`) with its API and web
   interface on ``0.0.0.0:8765`` behind Home Assistant's ingress proxy and the
   P2P network on ``0.0.0.0:26656``;
4. once the API listens, announces the node to Home Assistant through the
   Supervisor's discovery API -- ``POST http://supervisor/discovery`` with
   ``{"service": "transactiva", "config": {"host", "port", "token"}}`` and
   ``Authorization: Bearer $SUPERVISOR_TOKEN`` -- retrying with backoff until
   the Supervisor takes it (:func:`announce`). Home Assistant then offers to
   add the Transactiva integration, which talks to the node with that token.

``transactiva app config`` does steps 1 and 2 only and prints what it wrote.
``transactiva app backup-pre`` and ``backup-post`` are the app's hot-backup
hooks: consistent copies of the SQLite databases in ``/data/snapshot`` while
the Supervisor archives ``/data`` without the live files; a restored ``/data``
starts from those copies (:func:`restore_snapshot`).

Roles: **home** -- the meter (SmartPi, MQTT, or readings pushed by Home
Assistant's sensors) and contract execution; **concentrator** -- the
neighbourhood operator's day-ahead prices from a tariff file and its
demand-response rules; **validator** -- keeps and produces the ledger and
serves peers. With ``invitation_code`` (a home) the node joins the chain of the
operator that invited it on its first start, as ``transactiva join`` does, and asks
to be admitted; without it or ``genesis_file`` the node starts a chain of its own
(``chain_id``) with itself as the only validator and operator, as
``transactiva init`` does; with ``genesis_file``, the node joins that chain, reaching
its peers through ``seeds``.

Paths given in options (``genesis_file``, ``tariff_file``) are absolute, or
relative to the app's configuration folder (``/config``, the host's
``/addon_configs/<slug>``) and then ``/share``. The tariff is copied into the
node's home at every start, so a backup of ``/data`` holds everything the node
needs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import random
import re
import shutil
import signal
import socket
import sqlite3
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final, TextIO

import aiohttp

from ledger_core.concentrator.tariff import TariffError, load_tariff
from ledger_core.membership.joining import JoinError, JoinOptions, join_home, read_code
from ledger_core.node.files import private_file
from ledger_core.node.home import (
    Config,
    ConfigError,
    Home,
    HomeError,
    init_home,
    write_config,
    write_token,
)
from ledger_core.p2p.wire import WireError, parse_address
from ledger_core.serve import serve
from ledger_core.types.crypto import SigningKey
from ledger_core.types.genesis import Genesis, parse_genesis

LOG: Final = logging.getLogger(__name__)

DATA_DIR: Final = Path("/data")
NODE_DIR: Final = "node"
SEARCH_ROOTS: Final = (Path("/config"), Path("/share"))
API_PORT: Final = 8765
P2P_PORT: Final = 26656
INGRESS_PROXY: Final = "172.30.32.2"
DISCOVERY_URL: Final = "http://supervisor/discovery"
SERVICE: Final = "transactiva"
TARIFF_IN_HOME: Final = "tariff.toml"
SNAPSHOT_DIR: Final = "snapshot"
DATABASES: Final = ("ledger.db", "local.db", "meter.db", "invitations.db")

EXIT_OK: Final = 0
EXIT_FAILED: Final = 1
EXIT_CONFIG: Final = 78  # EX_CONFIG: the options are wrong; the s6 finish script stops the app

ROLES: Final = ("home", "concentrator", "validator")
METER_SOURCES: Final = ("smartpi", "mqtt", "home_assistant", "none")
LOG_LEVELS: Final = ("debug", "info", "warning", "error")
CHAIN_ID_RE: Final = re.compile(r"[a-z0-9][a-z0-9-]{0,47}")
URL_RE: Final = re.compile(r"https?://[^\s/?#]+(?::[0-9]{1,5})?(?:[/?#]\S*)?")
HOST_RE: Final = re.compile(r"[A-Za-z0-9._:\[\]-]{1,253}")
MAX_TEXT: Final = 1024
MAX_SEEDS: Final = 32


class OptionsError(ValueError):
    """An option the node cannot run with; ``option`` names it."""

    def __init__(self, option: str, message: str) -> None:
        super().__init__(f"option {option!r}: {message}")
        self.option = option
        self.message = message


@dataclass(frozen=True, slots=True)
class AppOptions:
    """The app's options, checked (see ``addon/config.yaml`` and ``addon/DOCS.md``)."""

    role: str = "home"
    chain_id: str = "transactiva-local"
    genesis_file: str | None = None
    invitation_code: str | None = None
    seeds: tuple[str, ...] = ()
    meter_source: str = "home_assistant"
    smartpi_url: str | None = None
    mqtt_host: str | None = None
    mqtt_port: int | None = None
    mqtt_topic_base: str | None = None
    mqtt_username: str | None = None
    mqtt_password: str | None = field(default=None, repr=False)
    concentrator_url: str | None = None
    tariff_file: str | None = None
    log_level: str = "info"


OPTION_NAMES: Final = tuple(AppOptions.__dataclass_fields__)
REQUIRED: Final = ("role", "chain_id", "seeds", "meter_source", "log_level")


def _choice(raw: Mapping[str, Any], name: str, choices: tuple[str, ...]) -> str:
    value = raw[name]
    if value not in choices:
        raise OptionsError(name, f"must be one of {', '.join(choices)}, not {value!r}")
    return str(value)


def _text(raw: Mapping[str, Any], name: str) -> str | None:
    value = raw.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise OptionsError(name, "must be text")
    value = value.strip()
    if len(value) > MAX_TEXT:
        raise OptionsError(name, f"is longer than {MAX_TEXT} characters")
    return value or None


def parse_options(raw: object) -> AppOptions:
    """Checked options from ``options.json``'s JSON; :class:`OptionsError` otherwise."""
    if not isinstance(raw, dict):
        raise OptionsError("(all)", "options.json must hold a JSON object")
    for name in raw:
        if name not in OPTION_NAMES:
            raise OptionsError(
                str(name), f"is not an option of this app; options: {', '.join(OPTION_NAMES)}"
            )
    for name in REQUIRED:
        if name not in raw:
            raise OptionsError(name, "is required")
    role = _choice(raw, "role", ROLES)
    chain_id = raw["chain_id"]
    if not isinstance(chain_id, str) or not CHAIN_ID_RE.fullmatch(chain_id):
        raise OptionsError(
            "chain_id", "must be lower-case letters, digits and '-', at most 48, e.g. barrio-1"
        )
    seeds = raw["seeds"]
    if not isinstance(seeds, list) or len(seeds) > MAX_SEEDS:
        raise OptionsError("seeds", f"must be a list of at most {MAX_SEEDS} peer addresses")
    for i, seed in enumerate(seeds):
        if not isinstance(seed, str):
            raise OptionsError("seeds", f"item {i + 1} must be text like tv…@192.168.1.20:26656")
        try:
            parse_address(seed, f"item {i + 1}")
        except WireError as err:
            raise OptionsError("seeds", str(err)) from None
    meter_source = _choice(raw, "meter_source", METER_SOURCES)
    smartpi_url = _text(raw, "smartpi_url")
    if smartpi_url is not None and not URL_RE.fullmatch(smartpi_url):
        raise OptionsError("smartpi_url", "must be an http:// or https:// URL")
    mqtt_host = _text(raw, "mqtt_host")
    if mqtt_host is not None and not HOST_RE.fullmatch(mqtt_host):
        raise OptionsError("mqtt_host", "must be a host name or IP address")
    concentrator_url = _text(raw, "concentrator_url")
    if concentrator_url is not None and not URL_RE.fullmatch(concentrator_url):
        raise OptionsError("concentrator_url", "must be an http:// or https:// URL")
    mqtt_port = raw.get("mqtt_port")
    if mqtt_port is not None and (
        isinstance(mqtt_port, bool) or not isinstance(mqtt_port, int) or not 1 <= mqtt_port <= 65535
    ):
        raise OptionsError("mqtt_port", "must be a port number 1 to 65535")
    invitation_code = _text(raw, "invitation_code")
    if invitation_code is not None:
        try:
            read_code(invitation_code)
        except JoinError as err:
            raise OptionsError("invitation_code", err.message) from None
    options = AppOptions(
        role=role,
        chain_id=chain_id,
        genesis_file=_text(raw, "genesis_file"),
        invitation_code=invitation_code,
        seeds=tuple(seeds),
        meter_source=meter_source,
        smartpi_url=smartpi_url,
        mqtt_host=mqtt_host,
        mqtt_port=mqtt_port,
        mqtt_topic_base=_text(raw, "mqtt_topic_base"),
        mqtt_username=_text(raw, "mqtt_username"),
        mqtt_password=_text(raw, "mqtt_password"),
        concentrator_url=concentrator_url,
        tariff_file=_text(raw, "tariff_file"),
        log_level=_choice(raw, "log_level", LOG_LEVELS),
    )
    if role == "home" and meter_source == "smartpi" and smartpi_url is None:
        raise OptionsError("smartpi_url", "is required when meter_source is smartpi")
    if role == "home" and meter_source == "mqtt" and mqtt_host is None:
        raise OptionsError("mqtt_host", "is required when meter_source is mqtt")
    if invitation_code is not None and role != "home":
        raise OptionsError(
            "invitation_code",
            "an invitation is for a home (role home); a concentrator or a "
            "validator is set up with the chain's operator, see the app's documentation",
        )
    if invitation_code is not None and options.genesis_file is not None:
        raise OptionsError(
            "genesis_file",
            "give the invitation code or a genesis file, not both (the code brings the genesis)",
        )
    if role == "concentrator" and options.tariff_file is None:
        raise OptionsError(
            "tariff_file",
            "a concentrator needs its tariff (a TOML file, e.g. "
            "/usr/share/transactiva/tariffs/example-residential-tou.toml)",
        )
    return options


def read_options(path: Path) -> AppOptions:
    """Options from ``path``; OptionsError saying what is wrong with the file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise OptionsError("(all)", f"cannot read {path}: {err.strerror or err}") from None
    except UnicodeDecodeError:
        raise OptionsError("(all)", f"{path} is not UTF-8 text") from None
    try:
        raw = json.loads(text)
    except ValueError as err:
        raise OptionsError("(all)", f"{path} is not JSON: {err}") from None
    return parse_options(raw)


def find_file(name: str, roots: tuple[Path, ...], option: str) -> Path:
    """An option's file: absolute, or the first of ``roots``/``name`` that exists."""
    path = Path(name)
    candidates = [path] if path.is_absolute() else [root / path for root in roots]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise OptionsError(option, "no such file; looked for " + ", ".join(str(c) for c in candidates))


def meter_settings(options: AppOptions) -> dict[str, Any] | None:
    """The ``meter`` object of ``config.json`` for a home, or None (no meter). The readings
    go to the concentrator's node at ``concentrator_url`` (docs/privacy.md)."""
    if options.role != "home" or options.meter_source == "none":
        return None
    shared = {} if options.concentrator_url is None else {"concentrator": options.concentrator_url}
    if options.meter_source == "home_assistant":
        return {"source": {"type": "pushed", "name": "home_assistant"}, **shared}
    if options.meter_source == "smartpi":
        return {"source": {"type": "smartpi", "url": options.smartpi_url}, **shared}
    source: dict[str, Any] = {"type": "mqtt", "host": options.mqtt_host}
    for key, value in (
        ("port", options.mqtt_port),
        ("base_topic", options.mqtt_topic_base),
        ("username", options.mqtt_username),
        ("password", options.mqtt_password),
    ):
        if value is not None:
            source[key] = value
    return {"source": source, **shared}


def node_config(
    options: AppOptions, tariff: str | None, api_port: int = API_PORT, p2p_port: int = P2P_PORT
) -> Config:
    """``config.json`` for the options (``tariff``: its path inside the home)."""
    return Config(
        api_host="0.0.0.0",  # noqa: S104 - reached through the app network and ingress
        api_port=api_port,
        role="observer"
        if options.role == "home" and (options.genesis_file or options.invitation_code)
        else "validator",
        p2p_host="0.0.0.0",  # noqa: S104 - the P2P port is the one the app exposes
        p2p_port=p2p_port,
        seeds=options.seeds,
        meter=meter_settings(options),
        concentrator={"tariff": tariff} if tariff is not None else None,
        execute_contracts=options.role == "home",
        ingress_proxy=INGRESS_PROXY,
    )


@dataclass(frozen=True, slots=True)
class Prepared:
    """The node's home, ready to run, and what changed."""

    home: Home
    config: Config
    created: bool
    notes: tuple[str, ...]


def _read_genesis(path: Path) -> Genesis:
    try:
        return parse_genesis(path.read_bytes())
    except OSError as err:
        raise OptionsError("genesis_file", f"cannot read {path}: {err.strerror or err}") from None
    except ValueError as err:
        raise OptionsError("genesis_file", f"{path} is not a genesis file: {err}") from None


def _join(home: Home, genesis: Genesis, options: AppOptions, config: Config) -> None:
    """A new home for a chain that exists: its genesis and fresh keys."""
    (home.path / "keys").mkdir(parents=True, exist_ok=True, mode=0o700)
    SigningKey.generate().save(home.participant_key_file)
    if options.role != "home":
        SigningKey.generate().save(home.validator_key_file)
    genesis.save(home.genesis_file)
    write_config(home, config)
    write_token(home)


def _join_with_code(home: Home, options: AppOptions, config: Config, notes: list[str]) -> Config:
    """A new home from the invitation code (``transactiva join``'s steps: the operator checks
    the code, the genesis is fetched and checked, the home written in one go); the config
    with the invitation's peers."""
    assert options.invitation_code is not None
    join = JoinOptions(
        api_host=config.api_host,
        api_port=config.api_port,
        p2p_host=config.p2p_host,
        p2p_port=config.p2p_port or P2P_PORT,
        meter=config.meter,
        ingress_proxy=config.ingress_proxy,
    )
    try:
        _home, invitation = asyncio.run(join_home(home.path, options.invitation_code, join))
    except JoinError as err:
        raise OptionsError("invitation_code", err.message) from None
    seeds = tuple(dict.fromkeys((*invitation.seeds, *options.seeds)))
    joined = replace(config, seeds=seeds, persistent_peers=invitation.seeds)
    write_config(home, joined)
    notes.append(
        f"joined chain {invitation.chain_id!r} as {invitation.name!r} ({invitation.role}) "
        f"with the invitation code; the node asks {', '.join(invitation.seeds)} for admission"
    )
    return joined


def _same_chain(home: Home, code: str, notes: list[str]) -> None:
    """An invitation code for a home that exists: fine if it is this chain's (it was used
    to join), refused for another chain."""
    try:
        invitation = read_code(code)
    except JoinError as err:
        raise OptionsError("invitation_code", err.message) from None
    current = home.genesis()
    if invitation.genesis_hash != current.hash:
        raise OptionsError(
            "invitation_code",
            f"this node already keeps chain {current.chain_id!r}; the code is for chain "
            f"{invitation.chain_id!r}. Clear the option, or uninstall and reinstall the app "
            "to start over (its data is deleted)",
        )
    notes.append(f"invitation code for chain {invitation.chain_id!r}: already joined")


def _with_kept_peers(home: Home, config: Config) -> Config:
    """Options rewrite config.json at every start; the peers an invitation gave are kept."""
    try:
        current = home.config()
    except HomeError:
        return config
    if not current.persistent_peers:
        return config
    seeds = tuple(dict.fromkeys((*current.persistent_peers, *config.seeds)))
    return replace(config, seeds=seeds, persistent_peers=current.persistent_peers)


def _tariff_source(options: AppOptions, roots: tuple[Path, ...]) -> Path | None:
    """The concentrator's tariff file, checked; None for other roles."""
    if options.role != "concentrator":
        return None
    assert options.tariff_file is not None
    source = find_file(options.tariff_file, roots, "tariff_file")
    try:
        load_tariff(source)
    except TariffError as err:
        raise OptionsError("tariff_file", str(err)) from None
    return source


def _keep_chain(home: Home, options: AppOptions, joined: Genesis | None, notes: list[str]) -> None:
    """Refuse options that would move an existing home to another chain."""
    current = home.genesis()
    if joined is not None and joined != current and not (home.path / "ledger.db").exists():
        # The node never ran (e.g. its validator key was not in the first file it got):
        # take the new genesis, keeping the keys.
        joined.save(home.genesis_file)
        notes.append(f"genesis replaced from {options.genesis_file} (the node had not run)")
        current = joined
    if joined is not None and joined != current:
        raise OptionsError(
            "genesis_file",
            f"this node already keeps chain {current.chain_id!r}; the file describes "
            f"another chain ({joined.chain_id!r}). Restore the old file, or uninstall and "
            "reinstall the app to start over (its data is deleted)",
        )
    own = any(op.address == home.participant_key().address for op in current.operators)
    if joined is None and current.chain_id != options.chain_id and not own:
        # A chain this node joined (by invitation or genesis file): chain_id names only
        # the chain a node starts itself.
        notes.append(f"this node keeps chain {current.chain_id!r}, which it joined")
        return
    if joined is None and current.chain_id != options.chain_id:
        raise OptionsError(
            "chain_id",
            f"this node already keeps chain {current.chain_id!r}; set chain_id back to it, "
            "or uninstall and reinstall the app to start a new chain (its data is deleted)",
        )


def _check_validator(home: Home, config: Config) -> None:
    if config.role != "validator":
        return
    key = home.validator_key().public_key
    if all(v.public_key != key for v in home.genesis().validators):
        raise OptionsError(
            "genesis_file",
            "this node's validator key is not in the chain's genesis; give the chain's "
            f"operator its public key {key.hex()} (in {home.validator_key_file}) to add it",
        )


def prepare(
    options: AppOptions,
    data: Path = DATA_DIR,
    roots: tuple[Path, ...] = SEARCH_ROOTS,
    now: Callable[[], float] = time.time,
    ports: tuple[int, int] = (API_PORT, P2P_PORT),
) -> Prepared:
    """Create or update the node's home in ``data/node`` for ``options``.

    Keys, token, genesis and ledger of an existing home are kept; only
    ``config.json`` and the tariff copy are rewritten. Refuses (OptionsError)
    options that would switch an existing home to another chain.
    """
    home = Home(data / NODE_DIR)
    notes: list[str] = []
    restored = restore_snapshot(data)
    if restored:
        notes.append("restored from the backup's snapshot: " + ", ".join(restored))
    tariff = _tariff_source(options, roots)
    joined: Genesis | None = None
    if options.genesis_file is not None:
        joined = _read_genesis(find_file(options.genesis_file, roots, "genesis_file"))
    config = node_config(options, TARIFF_IN_HOME if tariff is not None else None, *ports)
    created = not home.genesis_file.exists()
    if created:
        if home.path.exists() and any(home.path.iterdir()):
            raise OptionsError(
                "(all)", f"{home.path} holds files but no genesis.json; move them away first"
            )
        if options.invitation_code is not None:
            config = _join_with_code(home, options, config, notes)
        elif joined is None:
            init_home(home.path, options.chain_id, int(now()), config)
            notes.append(f"created chain {options.chain_id!r} with this node as its validator")
        else:
            _join(home, joined, options, config)
            notes.append(f"joined chain {joined.chain_id!r} from {options.genesis_file}")
    else:
        if options.invitation_code is not None:
            _same_chain(home, options.invitation_code, notes)
        else:
            _keep_chain(home, options, joined, notes)
        config = _with_kept_peers(home, config)
        if config.role == "validator" and not home.validator_key_file.exists():
            config = replace(config, role="observer")  # a home that joined has no such key
        write_config(home, config)
    if tariff is not None:
        shutil.copyfile(tariff, home.path / TARIFF_IN_HOME)
        notes.append(f"tariff from {tariff}")
    home.config_file.chmod(0o600)  # it may hold the MQTT password
    node_key = home.path / config.node_key_file
    if not node_key.exists():
        SigningKey.generate().save(node_key)
    _check_validator(home, config)
    try:
        config = home.config()
    except HomeError as err:
        raise OptionsError("(all)", str(err)) from None
    return Prepared(home, config, created, tuple(notes))


# -- discovery ----------------------------------------------------------------------


def discovery_payload(host: str, port: int, token: str) -> dict[str, Any]:
    """The message that tells Home Assistant where the node is and how to authenticate."""
    return {"service": SERVICE, "config": {"host": host, "port": port, "token": token}}


def backoff_delays(first: float = 1.0, cap: float = 60.0) -> Callable[[int], float]:
    """Delay before retry ``n`` (1, 2, …): doubling from ``first`` up to ``cap``, ±20 % jitter."""

    def delay(n: int) -> float:
        base = min(cap, first * (1 << min(n - 1, 30)))
        jitter: float = random.uniform(0.8, 1.2)  # noqa: S311 - jitter, not a secret
        return base * jitter

    return delay


async def announce(
    url: str,
    supervisor_token: str,
    payload: Mapping[str, Any],
    stop: asyncio.Event,
    *,
    delay: Callable[[int], float] | None = None,
    request_seconds: float = 10.0,
) -> str | None:
    """POST ``payload`` to the Supervisor's discovery API until it answers 2xx.

    Returns the discovery message's uuid (None if the answer had none), or
    None when ``stop`` is set first. Every failure is logged once per attempt.
    """
    wait = delay or backoff_delays()
    headers = {"Authorization": f"Bearer {supervisor_token}"}
    attempt = 0
    limit = aiohttp.ClientTimeout(total=request_seconds)
    async with aiohttp.ClientSession(timeout=limit) as session:
        while not stop.is_set():
            attempt += 1
            try:
                async with session.post(url, json=dict(payload), headers=headers) as response:
                    text = await response.text()
                    if 200 <= response.status < 300:
                        LOG.info("announced the node to Home Assistant (discovery)")
                        return _discovery_uuid(text)
                    LOG.warning(
                        "discovery refused by the Supervisor (HTTP %d): %s",
                        response.status,
                        text[:200],
                    )
            except (aiohttp.ClientError, TimeoutError, OSError) as err:
                LOG.warning("discovery: the Supervisor is not reachable yet: %s", err)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), wait(attempt))
    return None


def _discovery_uuid(text: str) -> str | None:
    try:
        body = json.loads(text)
    except ValueError:
        return None
    data = body.get("data") if isinstance(body, dict) else None
    uuid = data.get("uuid") if isinstance(data, dict) else None
    return uuid if isinstance(uuid, str) else None


# -- backups ------------------------------------------------------------------------


def snapshot_databases(data: Path = DATA_DIR) -> list[str]:
    """``backup_pre``: a consistent copy of every SQLite database in ``data/snapshot``.

    The Supervisor archives ``/data`` while the node runs (a hot backup) and
    skips the live databases (``backup_exclude``); SQLite's online backup API
    copies each one as of a single transaction, whatever the node writes
    meanwhile. Returns the names copied.
    """
    source_dir = data / NODE_DIR
    target_dir = data / SNAPSHOT_DIR
    target_dir.mkdir(mode=0o700, exist_ok=True)
    copied = []
    for name in DATABASES:
        source = source_dir / name
        if not source.is_file():
            continue
        partial = target_dir / f"{name}.partial"
        partial.unlink(missing_ok=True)
        with (
            contextlib.closing(sqlite3.connect(source, timeout=30)) as live,
            contextlib.closing(sqlite3.connect(private_file(partial))) as copy,
        ):
            live.backup(copy)
        partial.replace(target_dir / name)
        copied.append(name)
    return copied


def clear_snapshot(data: Path = DATA_DIR) -> None:
    """``backup_post``: remove the copies ``backup_pre`` made."""
    shutil.rmtree(data / SNAPSHOT_DIR, ignore_errors=True)


def restore_snapshot(data: Path = DATA_DIR) -> list[str]:
    """At start: put back databases a restored backup holds only as snapshots.

    A restored ``/data`` has ``snapshot/<db>`` but no ``node/<db>`` (the live
    files are not archived); each is copied into place. Leftover snapshots
    (a ``backup_post`` that did not run) are removed. Returns the names restored.
    """
    snapshot = data / SNAPSHOT_DIR
    if not snapshot.is_dir():
        return []
    restored = []
    for name in DATABASES:
        copy = snapshot / name
        live = data / NODE_DIR / name
        if copy.is_file() and not live.exists():
            live.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(copy, live)
            restored.append(name)
    clear_snapshot(data)
    return restored


# -- run ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RunSettings:
    """Where the app finds its inputs; the defaults are the app container's."""

    options_file: Path = DATA_DIR / "options.json"
    data: Path = DATA_DIR
    roots: tuple[Path, ...] = SEARCH_ROOTS
    discovery_url: str = DISCOVERY_URL
    supervisor_token: str | None = None
    hostname: str = ""
    ports: tuple[int, int] = (API_PORT, P2P_PORT)


async def run_app(settings: RunSettings, prepared: Prepared, stop: asyncio.Event) -> None:
    """Serve the node until ``stop``; announce it once it listens."""
    ready = asyncio.Event()
    node = asyncio.create_task(serve(prepared.home.path, stop, ready))
    waiter = asyncio.create_task(ready.wait())
    await asyncio.wait({node, waiter}, return_when=asyncio.FIRST_COMPLETED)
    announcer: asyncio.Task[str | None] | None = None
    if ready.is_set():
        if settings.supervisor_token:
            payload = discovery_payload(
                settings.hostname, prepared.config.api_port, prepared.home.token()
            )
            announcer = asyncio.create_task(
                announce(settings.discovery_url, settings.supervisor_token, payload, stop)
            )
        else:
            LOG.info("no SUPERVISOR_TOKEN: not running under the Supervisor, so no discovery")
    else:
        waiter.cancel()
    try:
        await node
    finally:
        waiter.cancel()
        if announcer is not None:
            stop.set()
            await asyncio.gather(announcer, return_exceptions=True)


def configure(parser: argparse.ArgumentParser) -> None:
    """``transactiva app config|run|backup-pre|backup-post``."""
    sub = parser.add_subparsers(dest="app_command", metavar="ACTION", required=True)
    for name, text in (
        ("config", "check the app's options and write the node's home; print what was done"),
        ("run", "check the options, write the home, run the node and announce it"),
        ("backup-pre", "before a hot backup: consistent copies of the node's databases"),
        ("backup-post", "after a backup: remove those copies"),
    ):
        command = sub.add_parser(name, help=text)
        if not name.startswith("backup"):
            command.add_argument(
                "--options",
                type=Path,
                default=None,
                help="the options file (default: $TRANSACTIVA_APP_OPTIONS or /data/options.json)",
            )
        command.add_argument(
            "--data",
            type=Path,
            default=None,
            help="the persistent folder (default: $TRANSACTIVA_APP_DATA or /data)",
        )


def settings_from(args: argparse.Namespace, environ: Mapping[str, str]) -> RunSettings:
    """Command-line arguments over environment variables over the container's defaults."""
    data = args.data or Path(environ.get("TRANSACTIVA_APP_DATA", str(DATA_DIR)))
    options = getattr(args, "options", None) or Path(
        environ.get("TRANSACTIVA_APP_OPTIONS", str(data / "options.json"))
    )
    roots_text = environ.get("TRANSACTIVA_APP_ROOTS")
    roots = (
        tuple(Path(p) for p in roots_text.split(os.pathsep) if p) if roots_text else SEARCH_ROOTS
    )
    return RunSettings(
        options_file=options,
        data=data,
        roots=roots,
        discovery_url=environ.get("TRANSACTIVA_DISCOVERY_URL", DISCOVERY_URL),
        supervisor_token=environ.get("SUPERVISOR_TOKEN") or None,
        hostname=environ.get("TRANSACTIVA_APP_HOSTNAME") or socket.gethostname(),
        ports=(
            _env_port(environ, "TRANSACTIVA_APP_API_PORT", API_PORT),
            _env_port(environ, "TRANSACTIVA_APP_P2P_PORT", P2P_PORT),
        ),
    )


def _env_port(environ: Mapping[str, str], name: str, default: int) -> int:
    text = environ.get(name)
    if text is None:
        return default
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise OptionsError(name, "must be a port number 1 to 65535")
    return int(text)


def run(args: argparse.Namespace, out: TextIO) -> int:
    """Run ``transactiva app ...``; the exit status."""
    try:
        settings = settings_from(args, os.environ)
    except OptionsError as err:
        sys.stderr.write(f"transactiva app: {err}\n")
        return EXIT_CONFIG
    if args.app_command == "backup-pre":
        try:
            copied = snapshot_databases(settings.data)
        except (OSError, sqlite3.Error) as err:
            sys.stderr.write(f"transactiva app backup-pre: {err}\n")
            return EXIT_FAILED
        out.write(f"snapshot of {', '.join(copied) or 'no databases'} for the backup\n")
        return EXIT_OK
    if args.app_command == "backup-post":
        clear_snapshot(settings.data)
        return EXIT_OK
    try:
        options = read_options(settings.options_file)
        logging.basicConfig(
            level=options.log_level.upper(),
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        )
        prepared = prepare(options, settings.data, settings.roots, ports=settings.ports)
    except OptionsError as err:
        sys.stderr.write(f"transactiva app: {err}\n")
        return EXIT_CONFIG
    except (HomeError, ConfigError, OSError) as err:
        sys.stderr.write(f"transactiva app: {err}\n")
        return EXIT_FAILED
    home = prepared.home
    out.write(
        f"transactiva app: {options.role} node of chain {home.genesis().chain_id!r} in "
        f"{home.path}\n"
    )
    for note in prepared.notes:
        out.write(f"  {note}\n")
    out.write(
        f"  participant {home.participant_key().address}; API and web interface on port "
        f"{prepared.config.api_port}, P2P on port {prepared.config.p2p_port}\n"
    )
    out.flush()
    if args.app_command == "config":
        return EXIT_OK

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await run_app(settings, prepared, stop)

    try:
        asyncio.run(main())
    except (HomeError, OSError) as err:
        sys.stderr.write(f"transactiva app: {err}\n")
        return EXIT_FAILED
    return EXIT_OK
