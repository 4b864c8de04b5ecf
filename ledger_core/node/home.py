"""A node's home folder: keys, genesis, configuration, API token and database.

::

    DIR/
      config.json          where the API listens, block pacing
      genesis.json         the chain
      keys/validator.key   the validator's key (0600)
      keys/participant.key the local participant's key, used to sign for local clients (0600)
      api-token            bearer token of the node's API (0600)
      ledger.db            blocks, transactions, events and state (SQLite)
      local.db             the home's action log (SQLite)
      consensus/           the private validator's last signature and the write-ahead log
      node.lock            held (fcntl) by the one node running on this home
      invitation           a joining home's invitation code, until it is admitted (0600)

Everything in it is its owner's alone: files 0600, folders 0700 (see
:mod:`ledger_core.node.files`). A token or key file that others can read is
refused, with the ``chmod`` that fixes it; the node tightens its other files.
"""

from __future__ import annotations

import fcntl
import ipaddress
import json
import os
import secrets
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Final

from ledger_core.clock import clock_from
from ledger_core.consensus.engine import Timeouts
from ledger_core.node.files import (
    InsecureFileError,
    check_secret,
    private_dir,
    secure_home,
    write_private,
)
from ledger_core.node.networked import NodeConfig
from ledger_core.p2p.wire import parse_address
from ledger_core.types.crypto import ADDRESS_RE, KeyFileError, SigningKey
from ledger_core.types.fields import FieldError
from ledger_core.types.genesis import Genesis, Operator, Params, Validator, parse_genesis

DEFAULT_PORT: Final = 8765


class HomeError(Exception):
    """A node home that is missing, incomplete or would be overwritten."""


def default_home() -> Path:
    """The per-user data directory.

    ``$XDG_DATA_HOME/transactiva``, or ``~/.local/share/transactiva``.
    """
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "transactiva"


class ConfigError(ValueError):
    """A ``config.json`` value of the wrong type or out of range; the text names the key."""


ROLES: Final = ("validator", "observer")
# The ``consensus`` section: round timeouts (``Timeouts``) and a networked node's
# pacing (``NodeConfig``), integers with their allowed range.
_MS: Final = 3_600_000
CONSENSUS_KEYS: Final[dict[str, tuple[int, int]]] = {
    "propose_ms": (1, _MS),
    "propose_delta_ms": (0, _MS),
    "prevote_ms": (1, _MS),
    "prevote_delta_ms": (0, _MS),
    "precommit_ms": (1, _MS),
    "precommit_delta_ms": (0, _MS),
    "timeout_commit_ms": (0, _MS),
    "empty_block_every_ms": (1, 86_400_000),
    "rebroadcast_ms": (10, _MS),
    "status_every_ms": (10, _MS),
    "sync_timeout_ms": (10, _MS),
    "snapshot_threshold": (1, 10**9),
    "max_buffered": (1, 10**7),
}


@dataclass(frozen=True, slots=True)
class Config:
    """Node settings kept in ``config.json``.

    ``p2p_port`` None means no P2P network (a one-validator chain). Peer
    addresses are ``[node id@]host:port``; ``allow_peers`` None admits any node
    of the chain, a list admits only those node ids (a permissioned network).
    """

    api_host: str = "127.0.0.1"
    api_port: int = DEFAULT_PORT
    block_interval: float = 0.2
    empty_block_every: float = 60.0
    role: str = "validator"
    p2p_host: str = "127.0.0.1"
    p2p_port: int | None = None
    # host:port others dial to reach this node (sent in the handshake and carried by the
    # invitations it issues); None: p2p_host:p2p_port, or this machine's address when
    # p2p_host listens on every interface.
    p2p_advertise: str | None = None
    seeds: tuple[str, ...] = ()
    persistent_peers: tuple[str, ...] = ()
    max_peers: int = 20
    allow_peers: tuple[str, ...] | None = None
    node_key_file: str = "keys/node.key"
    pex: bool = True
    # Round timeouts and pacing of a network of validators (CONSENSUS_KEYS);
    # block_interval and empty_block_every are the defaults of timeout_commit_ms
    # and empty_block_every_ms.
    consensus: dict[str, int] | None = None
    # A clock that runs ``clock_speed`` times faster than real time, reading
    # ``clock_start`` at real Unix time ``clock_epoch`` (demos and tests only).
    # Roles beside the ledger (see ledger_core/services.py).
    meter: dict[str, Any] | None = None
    concentrator: dict[str, Any] | None = None
    analytics: dict[str, Any] | None = None
    execute_contracts: bool = True
    # The address of Home Assistant's ingress proxy (the Supervisor, 172.30.32.2)
    # when the node runs as a Home Assistant app: the web interface then answers
    # only requests from it, and API requests it forwards need no token (Home
    # Assistant has authenticated the user). None: a standalone node.
    ingress_proxy: str | None = None
    clock_epoch: float | None = None
    clock_start: int | None = None
    clock_speed: float = 1.0
    # Seconds added to the node's clock (fault tests: a validator whose clock is
    # ahead or behind; docs/consensus.md "Faulty clocks"). Never set it otherwise.
    clock_offset: float = 0.0

    def timeouts(self) -> Timeouts:
        """The round timeouts: the defaults with the ``consensus`` section's changes."""
        names = {f.name for f in fields(Timeouts)}
        chosen = {k: v for k, v in (self.consensus or {}).items() if k in names}
        return Timeouts(**chosen)

    def node_config(self) -> NodeConfig:
        """A networked node's pacing: ``block_interval`` and ``empty_block_every``, then
        the ``consensus`` section's settings."""
        names = {f.name for f in fields(NodeConfig)}
        chosen: dict[str, int] = {
            "timeout_commit_ms": round(self.block_interval * 1000),
            "empty_block_every_ms": round(self.empty_block_every * 1000),
        }
        chosen.update({k: v for k, v in (self.consensus or {}).items() if k in names})
        return NodeConfig(**chosen)

    def clock(self) -> Callable[[], float]:
        """The node's clock: real time, or the configured accelerated one, moved by
        ``clock_offset`` seconds."""
        clock = make_clock(self.clock_epoch, self.clock_start, self.clock_speed)
        offset = self.clock_offset
        if not offset:
            return clock
        return lambda: clock() + offset

    @classmethod
    def from_json(cls, raw: object) -> Config:
        """A config from parsed JSON; ConfigError naming the key otherwise."""
        if not isinstance(raw, dict):
            raise ConfigError("must be a JSON object")
        known = {f.name for f in fields(cls)}
        for name in raw:
            if name not in known:
                raise ConfigError(f"unknown key {name!r}; known keys: {', '.join(sorted(known))}")
        values: dict[str, Any] = {}
        for name, value in raw.items():
            values[name] = _config_value(name, value)
        return cls(**values)

    def to_json(self) -> dict[str, Any]:
        """The JSON object written to ``config.json``."""
        return {
            name: list(value) if isinstance(value, tuple) else value
            for name, value in asdict(self).items()
        }


def _config_value(name: str, value: object) -> object:
    """One checked config value."""
    special = _SPECIAL.get(name)
    if special is not None:
        return special(value)
    if name in ("api_host", "p2p_host"):
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{name}: must be a host name or address")
        return value
    if name in ("api_port", "p2p_port"):
        if value is None and name == "p2p_port":
            return None
        if type(value) is not int or not 0 <= value <= 65535:
            raise ConfigError(f"{name}: must be a port number 0 to 65535")
        return value
    if name in ("block_interval", "empty_block_every"):
        if type(value) not in (int, float) or not 0 < value <= 86400:  # type: ignore[operator]
            raise ConfigError(f"{name}: must be a number of seconds above 0")
        return float(value)  # type: ignore[arg-type]
    if name in ("meter", "concentrator", "analytics"):
        if value is not None and not isinstance(value, dict):
            raise ConfigError(f"{name}: must be an object (see docs/node.md)")
        return value
    if name in ("execute_contracts", "pex"):
        if not isinstance(value, bool):
            raise ConfigError(f"{name}: must be true or false")
        return value
    if name == "consensus":
        return _consensus_value(value)
    if name.startswith("clock_"):
        return _clock_value(name, value)
    if name == "role":
        if value not in ROLES:
            raise ConfigError(f"role: must be one of {', '.join(ROLES)}")
        return value
    if name == "max_peers":
        if type(value) is not int or not 1 <= value <= 1000:
            raise ConfigError("max_peers: must be an integer 1 to 1000")
        return value
    if name == "node_key_file":
        if not isinstance(value, str) or not value or value.startswith("/") or ".." in value:
            raise ConfigError("node_key_file: must be a path inside the node's home")
        return value
    if name == "allow_peers" and value is None:
        return None
    if not isinstance(value, list):
        raise ConfigError(f"{name}: must be a list")
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise ConfigError(f"{name}[{i}]: must be a string")
        if name == "allow_peers":
            if not ADDRESS_RE.fullmatch(item):
                raise ConfigError(f"allow_peers[{i}]: must be a node id (tv + 40 hex digits)")
        else:
            parse_address(item, f"{name}[{i}]")
    return tuple(value)


def _proxy_value(value: object) -> str | None:
    """The checked ``ingress_proxy``: an IP address or None."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ConfigError("ingress_proxy: must be an IP address or null")
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise ConfigError("ingress_proxy: must be an IP address or null") from None


def _advertise_value(value: object) -> str | None:
    """The checked ``p2p_advertise``: host:port or None."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ConfigError("p2p_advertise: must be host:port or null")
    if parse_address(value, "p2p_advertise").id is not None:
        raise ConfigError("p2p_advertise: host:port, without a node id")
    return value


def _clock_value(name: str, value: object) -> object:
    """A checked ``clock_*`` setting."""
    if name in ("clock_epoch", "clock_start"):
        if value is not None and type(value) not in (int, float):
            raise ConfigError(f"{name}: must be Unix seconds or null")
        return int(value) if name == "clock_start" and value is not None else value  # type: ignore[call-overload]
    if name == "clock_speed":
        if type(value) not in (int, float) or not 0 < value <= 100_000:  # type: ignore[operator]
            raise ConfigError("clock_speed: must be a number above 0")
        return float(value)  # type: ignore[arg-type]
    if type(value) not in (int, float) or not -86400 <= value <= 86400:  # type: ignore[operator]
        raise ConfigError("clock_offset: must be seconds from -86400 to 86400")
    return float(value)  # type: ignore[arg-type]


def _consensus_value(value: object) -> dict[str, int] | None:
    """The checked ``consensus`` section."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ConfigError("consensus: must be an object of timeouts in milliseconds")
    checked: dict[str, int] = {}
    for key, item in value.items():
        bounds = CONSENSUS_KEYS.get(key)
        if bounds is None:
            known = ", ".join(CONSENSUS_KEYS)
            raise ConfigError(f"consensus.{key}: unknown setting; known: {known}")
        low, high = bounds
        if type(item) is not int or not low <= item <= high:
            raise ConfigError(f"consensus.{key}: must be an integer {low} to {high}")
        checked[key] = item
    return checked


_SPECIAL: Final[dict[str, Callable[[object], object]]] = {
    "p2p_advertise": _advertise_value,
    "consensus": _consensus_value,
    "ingress_proxy": _proxy_value,
}


def make_clock(epoch: float | None, start: int | None, speed: float = 1.0) -> Callable[[], float]:
    """Unix time, or one that reads ``start`` at real time ``epoch`` and runs ``speed``x."""
    if not speed > 0:
        raise HomeError(f"clock_speed must be positive, not {speed}")
    return clock_from(epoch, start, speed).now


class NodeLock:
    """The home held by this process (:meth:`Home.lock`); :meth:`release` lets go."""

    def __init__(self, fd: int) -> None:
        self._fd: int | None = fd

    def release(self) -> None:
        """Let another node run on the home."""
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


@dataclass(frozen=True, slots=True)
class Home:
    """The files of one node."""

    path: Path

    @property
    def genesis_file(self) -> Path:
        return self.path / "genesis.json"

    @property
    def config_file(self) -> Path:
        return self.path / "config.json"

    @property
    def token_file(self) -> Path:
        return self.path / "api-token"

    @property
    def validator_key_file(self) -> Path:
        return self.path / "keys" / "validator.key"

    @property
    def participant_key_file(self) -> Path:
        return self.path / "keys" / "participant.key"

    @property
    def lock_file(self) -> Path:
        return self.path / "node.lock"

    @property
    def invitation_file(self) -> Path:
        return self.path / "invitation"

    def lock(self) -> NodeLock:
        """Hold the home for one node process; HomeError at once if another holds it.

        The lock is an ``fcntl`` lock on ``node.lock`` (released by the kernel when the
        process ends, however it ends), taken before anything else is opened, so a second
        ``transactiva node`` on the same home is refused before it touches the ledger.
        """
        if not self.path.is_dir():
            raise HomeError(
                f"{self.path}: no such home; run 'transactiva init --dir {self.path}' or "
                f"'transactiva join CODE --dir {self.path}' first"
            )
        try:
            fd = os.open(self.lock_file, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as err:
            raise HomeError(f"{self.lock_file}: {err.strerror or err}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
            os.close(fd)
            who = f" (process {holder})" if holder.isdigit() else ""
            raise HomeError(
                f"{self.path}: a node is already running on this home{who}; stop it first "
                "(one node per home: two would write the same ledger and sign with the "
                "same keys)"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        return NodeLock(fd)

    def genesis(self) -> Genesis:
        """The chain's genesis (HomeError naming the file and field when it is not one)."""
        try:
            return parse_genesis(self._read(self.genesis_file))
        except FieldError as err:
            raise HomeError(f"{self.genesis_file}: {err}") from None

    def config(self) -> Config:
        """The node's settings."""
        try:
            return Config.from_json(json.loads(self._read(self.config_file)))
        except ValueError as err:
            raise HomeError(f"{self.config_file}: {err}") from None

    @property
    def keys_dir(self) -> Path:
        return self.path / "keys"

    def token(self) -> str:
        """The API's bearer token (HomeError when others can read its file)."""
        try:
            check_secret(self.token_file, "the API token")
        except InsecureFileError as err:
            raise HomeError(str(err)) from None
        raw = self._read(self.token_file)
        try:
            token = raw.decode("ascii").strip()
        except UnicodeDecodeError:
            token = ""
        if not token or any(c.isspace() for c in token):
            raise HomeError(
                f"{self.token_file}: not an API token (one line of text); write a new one "
                f"with: python -c 'import secrets; print(secrets.token_hex(32))' "
                f"> {self.token_file} && chmod 600 {self.token_file}"
            )
        return token

    def secrets(self) -> dict[Path, str]:
        """The home's secret files and what each is: the API token, every file in ``keys/``."""
        found = {self.token_file: "the API token"} if self.token_file.exists() else {}
        if self.keys_dir.is_dir():
            for path in sorted(self.keys_dir.iterdir()):
                if path.is_file():
                    found[path] = "the key file"
        return found

    def secure(self) -> list[Path]:
        """Refuse (HomeError) a secret others can read; make every other file of the home
        0600 and every folder 0700. The paths it had to tighten."""
        try:
            return secure_home(self.path, self.secrets())
        except InsecureFileError as err:
            raise HomeError(str(err)) from None

    def validator_key(self) -> SigningKey:
        return _load_key(self.validator_key_file)

    def participant_key(self) -> SigningKey:
        return _load_key(self.participant_key_file)

    def node_key(self, config: Config) -> SigningKey:
        """The node's P2P identity, from the file ``config`` names."""
        return _load_key(self.path / config.node_key_file)

    def _read(self, path: Path) -> bytes:
        try:
            return path.read_bytes()
        except OSError as err:
            raise HomeError(
                f"{path}: {err.strerror or err}; run 'transactiva init --dir {self.path}' first"
            ) from None


def _load_key(path: Path) -> SigningKey:
    """A key file of the home (HomeError saying what is wrong and how to fix it)."""
    try:
        return SigningKey.load(path)
    except KeyFileError as err:
        raise HomeError(str(err)) from None


def init_home(path: Path, chain_id: str, genesis_time: int, config: Config) -> Home:
    """Create a one-validator network in ``path``: the node is the concentrator.

    The operator key (ISO, supplier and DSO roles) is the local participant's
    key; the validator has its own. Refuses to touch an existing home.
    """
    home = Home(path)
    if home.genesis_file.exists() or home.validator_key_file.exists():
        raise HomeError(f"{path} already holds a node; choose another --dir")
    private_dir(path)
    private_dir(home.keys_dir)
    operator = SigningKey.generate()
    validator = SigningKey.generate()
    operator.save(home.participant_key_file)
    validator.save(home.validator_key_file)
    genesis = Genesis(
        chain_id=chain_id,
        genesis_time=genesis_time,
        operators=(Operator(operator.public_key, ("ISO", "SUPPLIER", "DSO")),),
        validators=(Validator(validator.public_key, 10),),
        params=Params(),
    )
    write_genesis(home, genesis)
    write_config(home, config)
    write_token(home)
    home.secure()
    return home


def write_genesis(home: Home, genesis: Genesis) -> None:
    """Write ``genesis.json`` (0600, replaced whole)."""
    write_private(home.genesis_file, genesis.encode() + b"\n")


def write_config(home: Home, config: Config) -> None:
    """Write ``config.json`` (0600, replaced whole)."""
    text = json.dumps(config.to_json(), indent=2) + "\n"
    write_private(home.config_file, text.encode("utf-8"))


def write_token(home: Home) -> None:
    """Create the API token file (0600) with a new random token."""
    fd = os.open(home.token_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, (secrets.token_hex(32) + "\n").encode("ascii"))
    finally:
        os.close(fd)
